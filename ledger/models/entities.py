"""The AIQ companies we keep books for, and the fields every mirrored AIQ object has."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from core.fields import MoneyField


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
    # this company's own limit above which a second person approves (empty: the installation's
    # APPROVAL_THRESHOLD); a group's Irish company may want a lower one than its UK parent
    approval_threshold = MoneyField(
        null=True,
        blank=True,
        help_text="Above this (in the company's money) a second person approves; "
        "empty: APPROVAL_THRESHOLD",
    )

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


class EntityGrant(models.Model):
    """A person's access to one company. Someone with no grant at all works for every company
    (a single-company installation needs none); someone with grants sees only those companies'
    payments, invoices, customers, refunds and audit. Superusers and the Admin role (group
    finance) always see every company. Grants are made in the admin, which audits each one."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="company_grants"
    )
    entity = models.ForeignKey(Entity, on_delete=models.PROTECT, related_name="grants")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "company grant"
        constraints = [
            models.UniqueConstraint(fields=["user", "entity"], name="entitygrant_unique")
        ]

    def __str__(self):
        return f"{self.user} → {self.entity.name}"
