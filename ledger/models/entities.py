"""The AIQ companies we keep books for, and the fields every mirrored AIQ object has."""

from django.db import models
from django.db.models import Q


class ApiVersion(models.TextChoices):
    V1_1 = "1.1", "Integration 1.1 (Login token)"
    V2_0 = "2.0", "Integration 2.0 (OAuth)"


class Entity(models.Model):
    """One AIQ company. Credentials come from the environment, never from this table."""

    name = models.CharField(max_length=200)
    company_id = models.CharField(max_length=100, help_text="AIQ company ID used to log in.")
    region = models.CharField(
        max_length=40,
        default="sandbox",
        help_text='AIQ region host prefix (e.g. "eu1"), or "sandbox" for the local stand-in.',
    )
    api_version = models.CharField(max_length=3, choices=ApiVersion, default=ApiVersion.V1_1)
    base_currency = models.CharField(max_length=3, default="GBP")
    credentials_key = models.CharField(
        max_length=40,
        help_text="Environment prefix: AIQ_<KEY>_PARTNER_KEY / _USER_KEY (1.1) or "
        "AIQ_<KEY>_CLIENT_ID / _CLIENT_SECRET (2.0).",
    )
    default_bank_account = models.ForeignKey(
        "BankAccount", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    last_synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "entities"
        constraints = [
            models.UniqueConstraint(fields=["company_id"], name="entity_company_id_unique"),
            models.CheckConstraint(
                condition=Q(credentials_key__regex=r"^[A-Z0-9_]+$"),
                name="entity_credentials_key_env_safe",
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.company_id})"


class SyncedModel(models.Model):
    """Fields every mirrored AIQ object has."""

    entity = models.ForeignKey(Entity, on_delete=models.PROTECT)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
