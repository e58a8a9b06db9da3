"""Roles and the append-only audit log.

The audit table refuses UPDATE and DELETE at the database level (triggers created in a
migration), so a history entry cannot be rewritten by any code path, admin included.
"""

from django.conf import settings
from django.db import models


class Role(models.TextChoices):
    CLERK = "clerk", "Clerk"
    APPROVER = "approver", "Approver"
    ADMIN = "admin", "Admin"


class AuditEntry(models.Model):
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        help_text="Empty for the system (workers, webhooks).",
    )
    action = models.CharField(max_length=60, db_index=True, help_text='e.g. "plan.approve"')
    object_type = models.CharField(max_length=60)
    object_id = models.CharField(max_length=64)
    summary = models.CharField(max_length=500, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    # the AIQ company (ledger.Entity id) the change belongs to, so the audit screen shows a
    # clerk only their companies' entries; empty for installation-wide entries (a matching
    # run, a setting), which only people who see every company see. A plain id, not a foreign
    # key: staff sits below ledger (docs/architecture.md) and an entry outlives anything.
    entity_id = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "audit entries"
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["object_type", "object_id"], name="audit_object"),
            models.Index(fields=["entity_id", "-at"], name="audit_entity_recent"),
        ]

    def __str__(self):
        return f"{self.at:%d/%m/%Y %H:%M} {self.action} {self.object_type}#{self.object_id}"


class FormSubmission(models.Model):
    """One row per form a person submitted that changes money: the form carries a token made
    when the page was rendered, and the service that acts on it claims the token in its own
    transaction. A second POST of the same form (a double click, a resend after a slow answer)
    finds the token taken and is answered with the first one's result instead of acting again.
    """

    token = models.UUIDField(unique=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    action = models.CharField(max_length=60)
    object_type = models.CharField(max_length=60, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "submitted form"

    def __str__(self):
        return f"{self.action} by {self.actor} at {self.at:%d/%m/%Y %H:%M}"


class LoginThrottle(models.Model):
    """Failed sign-ins counted per username ("user:<name>") and per client address
    ("address:<ip>"), in the database so every web process and host sees the same counts
    (a per-process cache let 3 gunicorn workers give 15 tries instead of 5)."""

    key = models.CharField(max_length=200, unique=True)
    failures = models.PositiveIntegerField(default=0)
    window_started_at = models.DateTimeField()
    locked_until = models.DateTimeField(null=True, blank=True)
