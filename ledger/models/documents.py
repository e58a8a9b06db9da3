"""PDFs fetched from AIQ, cached."""

from django.db import models

from ledger.models.entities import Entity


class Document(models.Model):
    """A cached PDF from AIQ (invoice or receipt), so downloads do not hit AIQ every time."""

    class Kind(models.TextChoices):
        INVOICE_PDF = "invoice_pdf", "Invoice PDF"
        RECEIPT_PDF = "receipt_pdf", "Receipt PDF"
        CREDIT_NOTE_PDF = "credit_note_pdf", "Credit note PDF"

    entity = models.ForeignKey(Entity, on_delete=models.PROTECT)
    kind = models.CharField(max_length=20, choices=Kind)
    aiq_transaction_id = models.IntegerField()
    filename = models.CharField(max_length=200)
    content = models.BinaryField()
    fetched_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["entity", "kind", "aiq_transaction_id"], name="document_unique"
            )
        ]

    def __str__(self):
        return self.filename
