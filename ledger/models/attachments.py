"""Files staff attach to invoices in AIQ (AttachDocument), kept here until AIQ has them.

The bytes live in this table, not in the outbox payload: a 5 MB breakdown would otherwise be
copied as base64 into every read of the outbox row (claims, screens, the admin). The outbox
command references the row by id (ledger/outbox/executors_documents.py).
"""

from django.db import models
from django.db.models import Q

from ledger.models.entities import Entity
from ledger.models.invoices import Invoice

MAX_ATTACHMENT_BYTES = 5 * 1024 * 1024


class Attachment(models.Model):
    class Kind(models.TextChoices):
        CSV = "csv", "CSV"
        XLSX = "xlsx", "Excel (.xlsx)"

    entity = models.ForeignKey(Entity, on_delete=models.PROTECT)
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="attachments")
    kind = models.CharField(max_length=4, choices=Kind)
    filename = models.CharField(max_length=200, help_text="As uploaded.")
    aiq_filename = models.CharField(
        max_length=200,
        blank=True,
        help_text="As sent to AIQ: carries our reference, so a read-back can find it.",
    )
    description = models.CharField(max_length=200, blank=True)
    content = models.BinaryField()
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    aiq_document_id = models.IntegerField(null=True, blank=True)
    attached_at = models.DateTimeField(null=True, blank=True, help_text="Confirmed in AIQ.")
    created_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(size__gt=0) & Q(size__lte=MAX_ATTACHMENT_BYTES),
                name="attachment_size_in_range",
            ),
            models.UniqueConstraint(
                fields=["entity", "aiq_filename"],
                condition=~Q(aiq_filename=""),
                name="attachment_aiq_filename_unique",
            ),
        ]

    def __str__(self):
        return f"{self.filename} on {self.invoice}"

    @property
    def external_reference(self) -> str:
        return f"ATT-{self.pk}"
