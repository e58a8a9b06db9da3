"""Writes of ours that AIQ holds more than once (or allocations beyond what an invoice owes).

Found by the pull, by a read-back that sees several hits, and by the nightly drift check; listed
on the sync screen until an approver reverses the extra one (a reversing entry through the
outbox, never a delete) or dismisses the flag with a reason. One row per (entity, key): finding
the same duplicate again refreshes the row instead of adding another.
"""

from django.db import models

from ledger.models.entities import Entity
from ledger.models.outbox import OutboxCommand


class DuplicateWrite(models.Model):
    class Kind(models.TextChoices):
        TRANSACTION = "transaction", "Transaction posted more than once"
        ALLOCATION = "allocation", "Allocation made more than once"
        OVER_ALLOCATED = "over_allocated", "Invoice allocated beyond its gross"
        MISSING = "missing", "Confirmed here but not found in AIQ"

    class State(models.TextChoices):
        OPEN = "open", "Needs a person"
        REVERSING = "reversing", "Reversal queued"
        REVERSED = "reversed", "Reversed"
        DISMISSED = "dismissed", "Dismissed"

    entity = models.ForeignKey(Entity, on_delete=models.PROTECT)
    kind = models.CharField(max_length=16, choices=Kind)
    # "txn:<reference>", "alloc:<reference>", "invoice:<AIQ id>": what makes a flag the same flag
    key = models.CharField(max_length=140)
    external_reference = models.CharField(max_length=100, blank=True)
    command = models.ForeignKey(
        OutboxCommand, null=True, blank=True, on_delete=models.PROTECT, related_name="duplicates"
    )
    # AIQ ids: the one our command keeps ("kept") and the extra ones ("extra")
    kept_aiq_id = models.BigIntegerField(null=True, blank=True)
    extra_aiq_ids = models.JSONField(default=list, blank=True)
    amount = models.DecimalField(max_digits=19, decimal_places=4, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    detail = models.CharField(max_length=500, blank=True)
    found_by = models.CharField(max_length=20, help_text="pull, read_back or drift_check")
    state = models.CharField(max_length=10, choices=State, default=State.OPEN)
    reversal = models.ForeignKey(
        OutboxCommand, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    resolved_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["entity", "key"], name="duplicatewrite_key_unique")
        ]
        indexes = [models.Index(fields=["state", "created_at"], name="duplicatewrite_open")]

    def __str__(self):
        return f"{self.get_kind_display()}: {self.external_reference or self.key}"
