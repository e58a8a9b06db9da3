"""Sales invoices and credit notes as AIQ keeps them, with the reference keys they are found by."""

from django.db import models
from django.db.models import F, Q

from core.fields import MoneyField
from ledger.models.entities import SyncedModel
from ledger.models.master_data import Customer
from ledger.references import invoice_keys


class DocumentStatus(models.TextChoices):
    DRAFT = "draft", "Draft (not in AIQ yet)"
    SAVED = "saved", "Saved in AIQ, not posted"
    POSTED = "posted", "Posted, open"
    PART_PAID = "part_paid", "Part paid"
    PAID = "paid", "Paid"
    CREDITED = "credited", "Credited"


# Each reference an invoice is written with, and the keys it is found by (ledger/references.py).
_INVOICE_KEYS_OF = {
    "invoice_number": ("number_key", "number_digits_key"),
    "external_reference": ("external_reference_key",),
}
INVOICE_KEY_FIELDS = ("number_key", "external_reference_key", "number_digits_key")


def set_invoice_keys(invoice: "Invoice") -> None:
    keys = invoice_keys(invoice.invoice_number, invoice.external_reference)
    for name, key in zip(INVOICE_KEY_FIELDS, keys, strict=True):
        # upper() can lengthen a text ("ß" -> "SS"): cut such a key to its column, or one odd
        # number would fail the whole write on PostgreSQL instead of only never matching
        setattr(invoice, name, key[: invoice._meta.get_field(name).max_length])


class NetTaxGross(models.Model):
    """Net, VAT and gross of a document or a line, as AIQ keeps them: gross = net + VAT, a
    database CHECK named after the model (`<model>_gross_is_net_plus_tax`)."""

    net_amount = MoneyField(default=0)
    tax_amount = MoneyField(default=0)
    gross_amount = MoneyField(default=0)

    class Meta:
        abstract = True
        constraints = [
            models.CheckConstraint(
                condition=Q(gross_amount=F("net_amount") + F("tax_amount")),
                name="%(class)s_gross_is_net_plus_tax",
            ),
        ]


class InvoiceQuerySet(models.QuerySet):
    """Writes that bypass Invoice.save() keep the reference keys in step all the same."""

    def bulk_create(self, objs, *args, **kwargs):
        objs = list(objs)
        for invoice in objs:
            set_invoice_keys(invoice)
        return super().bulk_create(objs, *args, **kwargs)

    def bulk_update(self, objs, fields, *args, **kwargs):
        objs, fields = list(objs), list(fields)
        if _INVOICE_KEYS_OF.keys() & set(fields):
            for invoice in objs:
                set_invoice_keys(invoice)
            fields += [name for name in INVOICE_KEY_FIELDS if name not in fields]
        return super().bulk_update(objs, fields, *args, **kwargs)

    def update(self, **kwargs):
        # An SQL UPDATE cannot normalise a reference; bulk_update (above) sends the keys along.
        for reference, keys in _INVOICE_KEYS_OF.items():
            if reference in kwargs and not all(key in kwargs for key in keys):
                raise TypeError(
                    f"Invoice queryset update() cannot change {reference}: its reference keys "
                    f"({', '.join(keys)}) would go stale. Save each invoice, or use bulk_update()."
                )
        return super().update(**kwargs)


class MirroredDocument(SyncedModel, NetTaxGross):
    """What an invoice and a credit note mirrored from AIQ share: AIQ's transaction id, our
    external reference (once per company when given), the currency, and what is still open
    (never below zero nor above the gross: a CHECK named `<model>_outstanding_within_gross`)."""

    external_reference = models.CharField(max_length=100, blank=True)
    aiq_transaction_id = models.IntegerField(null=True, blank=True)
    currency = models.CharField(max_length=3)
    outstanding_amount = MoneyField(default=0)

    class Meta:
        abstract = True
        constraints = [
            models.UniqueConstraint(
                fields=["entity", "external_reference"],
                condition=~Q(external_reference=""),
                name="%(class)s_external_reference_unique",
            ),
            *NetTaxGross.Meta.constraints,
            models.CheckConstraint(
                condition=Q(outstanding_amount__gte=0)
                & Q(outstanding_amount__lte=F("gross_amount")),
                name="%(class)s_outstanding_within_gross",
            ),
        ]


class Invoice(MirroredDocument):
    class Kind(models.TextChoices):
        ITEM = "item", "Item invoice"
        BATCH = "batch", "Batch invoice"

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="invoices")
    kind = models.CharField(max_length=5, choices=Kind, default=Kind.ITEM)
    invoice_number = models.CharField(max_length=50, blank=True)
    aiq_invoice_id = models.IntegerField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=DocumentStatus, default=DocumentStatus.POSTED)
    # AIQ's ExchangeRate of the invoice: units of its currency per base unit (empty: not pulled
    # yet); a receipt at another rate settles it with a realised exchange gain or loss
    exchange_rate = models.DecimalField(max_digits=18, decimal_places=6, null=True, blank=True)
    invoice_date = models.DateField()
    due_date = models.DateField(null=True, blank=True)
    notes = models.TextField(blank=True)
    row_version = models.CharField(max_length=64, blank=True)
    # invoice_keys() of the two references, set on every save: a matching run looks up the
    # keys its payments carry here instead of normalising every open invoice's number
    number_key = models.CharField(max_length=50, blank=True, default="", editable=False)
    external_reference_key = models.CharField(
        max_length=100, blank=True, default="", editable=False
    )
    number_digits_key = models.CharField(max_length=51, blank=True, default="", editable=False)

    objects = InvoiceQuerySet.as_manager()

    class Meta:
        indexes = [
            # matching: the invoices named by the reference keys of the payments in a run
            models.Index(fields=["number_key"], name="invoice_number_key"),
            models.Index(fields=["external_reference_key"], name="invoice_external_key"),
            models.Index(fields=["number_digits_key"], name="invoice_digits_key"),
            # open-item indexes for matching: per customer, oldest first
            models.Index(fields=["customer", "invoice_date"], name="invoice_customer_date"),
            models.Index(fields=["entity", "invoice_number"], name="invoice_number_idx"),
            models.Index(fields=["status", "invoice_date", "id"], name="invoice_status_date"),
            # staff invoice list: keyset pages newest first, no filter (ledger/selectors.py)
            models.Index(fields=["-invoice_date", "-id"], name="invoice_recent"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["entity", "aiq_invoice_id"], name="invoice_aiq_invoice_id_unique"
            ),
            models.UniqueConstraint(
                fields=["entity", "aiq_transaction_id"], name="invoice_aiq_transaction_id_unique"
            ),
            models.CheckConstraint(condition=Q(gross_amount__gte=0), name="invoice_gross_gte_0"),
            models.CheckConstraint(condition=Q(net_amount__gte=0), name="invoice_net_gte_0"),
            models.CheckConstraint(condition=Q(tax_amount__gte=0), name="invoice_tax_gte_0"),
            *MirroredDocument.Meta.constraints,
        ]

    def __str__(self):
        return self.invoice_number or self.external_reference or f"invoice #{self.pk}"

    def save(self, *args, update_fields=None, **kwargs):
        set_invoice_keys(self)
        if update_fields is not None and _INVOICE_KEYS_OF.keys() & set(update_fields):
            update_fields = {*update_fields, *INVOICE_KEY_FIELDS}
        super().save(*args, update_fields=update_fields, **kwargs)


class DocumentLine(NetTaxGross):
    """What an invoice line and a credit note line share: the same AIQ InvoiceLine fields,
    department (BI code) included, so a credit note copies its invoice's lines field by field."""

    line_number = models.PositiveIntegerField()
    stock_item_id = models.CharField(max_length=50, blank=True)
    description = models.CharField(max_length=500, blank=True)
    gl_account_code = models.CharField(max_length=50, blank=True)
    department_id = models.CharField(max_length=50, blank=True, help_text="AIQ DepartmentID")
    tax_code = models.CharField(max_length=20, blank=True)
    tax_rate = models.DecimalField(max_digits=7, decimal_places=4, default=0)
    quantity = models.DecimalField(max_digits=15, decimal_places=4, default=1)
    unit_price = MoneyField(default=0)

    class Meta(NetTaxGross.Meta):
        abstract = True


class InvoiceLine(DocumentLine):
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="lines")
    aiq_invoice_item_id = models.IntegerField(null=True, blank=True)

    class Meta:
        ordering = ["invoice", "line_number"]
        constraints = [
            *DocumentLine.Meta.constraints,
            models.UniqueConstraint(
                fields=["invoice", "line_number"], name="invoiceline_number_unique"
            ),
        ]

    def __str__(self):
        return f"{self.invoice} line {self.line_number}"


class CreditNote(MirroredDocument):
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="credit_notes")
    invoice = models.ForeignKey(
        Invoice, null=True, blank=True, on_delete=models.PROTECT, related_name="credit_notes"
    )
    credit_note_number = models.CharField(max_length=50, blank=True)
    aiq_credit_note_id = models.IntegerField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=DocumentStatus, default=DocumentStatus.DRAFT)
    credit_date = models.DateField()
    reason = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["entity", "aiq_credit_note_id"], name="creditnote_aiq_id_unique"
            ),
            models.UniqueConstraint(
                fields=["entity", "aiq_transaction_id"], name="creditnote_aiq_transaction_unique"
            ),
            *MirroredDocument.Meta.constraints,
        ]

    def __str__(self):
        return self.credit_note_number or self.external_reference or f"credit note #{self.pk}"

    @property
    def status_text(self) -> str:
        """Its state as a clerk reads it: a posted credit note is open only while some of it
        is not allocated (DocumentStatus.POSTED says "open" for invoices and notes alike)."""
        if self.status == DocumentStatus.POSTED and not self.outstanding_amount:
            return "Posted, fully allocated"
        return self.get_status_display()


class CreditNoteLine(DocumentLine):
    credit_note = models.ForeignKey(CreditNote, on_delete=models.PROTECT, related_name="lines")
    # the invoice line it credits (department, GL account and tax code copied from it)
    invoice_line = models.ForeignKey(
        InvoiceLine, null=True, blank=True, on_delete=models.PROTECT, related_name="credited_by"
    )

    class Meta:
        ordering = ["credit_note", "line_number"]
        constraints = [
            *DocumentLine.Meta.constraints,
            models.UniqueConstraint(
                fields=["credit_note", "line_number"], name="creditnoteline_number_unique"
            ),
        ]

    def __str__(self):
        return f"{self.credit_note} line {self.line_number}"
