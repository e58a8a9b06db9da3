"""API clients (token per client, stored hashed) and idempotency keys.

A client is created by an admin, acts as a named service user with a role (clerk, or approver)
in one company, with read or write scope. Its token is shown once and only its SHA-256 is
stored (the token is 32 random bytes: a fast hash is enough, nothing to brute-force); the
first characters are kept in clear to find the row. Revoking keeps the row (audit).

An idempotency key is kept per client for at least API_IDEMPOTENCY_HOURS with the hash of the
request it came with and the answer given, so a repeat of the same request gets the first answer
and the same key with another request is refused (docs/api.md).
"""

from django.conf import settings
from django.db import models
from django.db.models import Q


class ApiClient(models.Model):
    class Scope(models.TextChoices):
        READ = "read", "Read only"
        WRITE = "write", "Read and write"

    name = models.CharField(max_length=100, unique=True)
    entity = models.ForeignKey("ledger.Entity", on_delete=models.PROTECT)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="api_client",
        help_text="The service user the client acts as (its role decides what it may do)",
    )
    scope = models.CharField(max_length=5, choices=Scope, default=Scope.READ)
    token_prefix = models.CharField(max_length=16, unique=True, editable=False)
    token_hash = models.CharField(max_length=64, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        editable=False,
    )
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "API client"

    def __str__(self):
        return self.name

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class IdempotencyKey(models.Model):
    client = models.ForeignKey(ApiClient, on_delete=models.PROTECT, related_name="+")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64, help_text="SHA-256 of method, path and body")
    response_status = models.PositiveSmallIntegerField()
    response_body = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["client", "key"], name="idempotency_key_unique"),
            models.CheckConstraint(
                condition=Q(response_status__lt=500), name="idempotency_no_server_error"
            ),
        ]
