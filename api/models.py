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


# --- outgoing webhooks (api/webhooks.py, docs/api.md) -----------------------------------------


class WebhookSubscription(models.Model):
    """A URL of an API client's system that receives its company's events, signed with the
    subscription's secret (shown once when made; kept, since every delivery is signed with it)."""

    client = models.ForeignKey(ApiClient, on_delete=models.PROTECT, related_name="webhooks")
    url = models.URLField(max_length=500)
    secret = models.CharField(max_length=80, editable=False)
    event_types = models.JSONField(
        default=list, blank=True, help_text="Event types sent (empty: every type)"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    disabled_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "webhook subscription"

    def __str__(self):
        return f"{self.client} → {self.url}"

    def wants(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


class WebhookEvent(models.Model):
    """Something an integrator hears about: a receipt, allocation, other receipt or refund
    changed state (confirmed in AIQ, failed, waiting for a person...). Written in the same
    transaction as the change; `data` is the object as the API shows it at that moment."""

    entity = models.ForeignKey("ledger.Entity", on_delete=models.PROTECT, related_name="+")
    type = models.CharField(max_length=60)
    object_id = models.CharField(max_length=40)
    data = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self):
        return f"evt_{self.pk} {self.type} {self.object_id}"


class WebhookDelivery(models.Model):
    """One event to one subscription: the durable queue. A worker claims a due row (a
    conditional UPDATE that sets a lease), posts, then records the attempt; a failure is retried
    with exponential backoff until WEBHOOK_MAX_ATTEMPTS, then the row is failed (a person can
    replay it)."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed (gave up)"

    event = models.ForeignKey(WebhookEvent, on_delete=models.PROTECT, related_name="deliveries")
    subscription = models.ForeignKey(
        WebhookSubscription, on_delete=models.PROTECT, related_name="deliveries"
    )
    state = models.CharField(max_length=10, choices=State, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    lease_until = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["event", "subscription"], name="webhook_delivery_once_per_subscription"
            ),
            models.CheckConstraint(
                condition=~Q(state="delivered") | Q(delivered_at__isnull=False),
                name="webhook_delivered_has_time",
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(state="pending"),
                name="webhook_delivery_due",
            )
        ]

    def __str__(self):
        return f"{self.event} → {self.subscription.url} ({self.state})"


class WebhookAttempt(models.Model):
    """The delivery log: every POST made, with what the subscriber answered."""

    delivery = models.ForeignKey(
        WebhookDelivery, on_delete=models.PROTECT, related_name="attempt_log"
    )
    number = models.PositiveIntegerField()
    at = models.DateTimeField(auto_now_add=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    milliseconds = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["delivery", "number"]
