"""The AIQ mirror: local copies of AccountsIQ's objects, named and shaped after AIQ's own.

AIQ stays the book of record. Every row keeps its AIQ identifiers and when it was last synced;
money is MoneyField (exact Decimal). Invariants are named database constraints.
"""

from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Upper

from core.fields import MoneyField
from ledger.references import invoice_keys


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


class Customer(SyncedModel):
    code = models.CharField(max_length=50, help_text="AIQ customer code (upper case).")
    name = models.CharField(max_length=200)
    email = models.EmailField(blank=True)
    currency = models.CharField(max_length=3)
    credit_limit = MoneyField(default=0)
    # the customer's AIQ credit term (CreditTermID -> GetCreditTermList): an invoice is due
    # credit_days after its date, or after the end of its month with credit_end_of_month
    credit_days = models.PositiveSmallIntegerField(null=True, blank=True)
    credit_end_of_month = models.BooleanField(default=False)
    balance = MoneyField(default=0, help_text="Balance as AIQ reports it (positive: owes us).")
    aiq_account_id = models.IntegerField(null=True, blank=True)
    row_version = models.CharField(max_length=64, blank=True, help_text="AIQ RowVersionNumber")
    active = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["entity", "code"], name="customer_code_unique"),
            models.CheckConstraint(condition=Q(code=Upper("code")), name="customer_code_upper"),
            models.CheckConstraint(
                condition=Q(credit_limit__gte=0), name="customer_credit_limit_gte_0"
            ),
        ]

    def __str__(self):
        return f"{self.code} {self.name}"


class GLAccount(SyncedModel):
    code = models.CharField(max_length=50)
    name = models.CharField(max_length=200)
    account_type = models.CharField(max_length=50, blank=True)
    active = models.BooleanField(default=True)

    class Meta:
        verbose_name = "GL account"
        constraints = [
            models.UniqueConstraint(fields=["entity", "code"], name="glaccount_code_unique"),
        ]

    def __str__(self):
        return f"{self.code} {self.name}"


class BankAccount(SyncedModel):
    """AIQ keeps two codes apart: BankCode is the bank's GL code, BankAccountCode the account."""

    bank_code = models.CharField(max_length=50, help_text="AIQ BankCode: the GL code of the bank.")
    bank_account_code = models.CharField(
        max_length=50, help_text="AIQ BankAccountCode: the physical bank account."
    )
    name = models.CharField(max_length=200)
    currency = models.CharField(max_length=3)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["entity", "bank_account_code"], name="bankaccount_code_unique"
            ),
        ]

    def __str__(self):
        return f"{self.bank_account_code} {self.name} ({self.currency})"


class TaxCode(SyncedModel):
    code = models.CharField(max_length=20)
    description = models.CharField(max_length=200, blank=True)
    rate = models.DecimalField(max_digits=7, decimal_places=4, help_text="Percent, e.g. 20.0000")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["entity", "code"], name="taxcode_code_unique"),
            models.CheckConstraint(condition=Q(rate__gte=0), name="taxcode_rate_gte_0"),
        ]

    def __str__(self):
        return f"{self.code} ({self.rate}%)"


class Department(SyncedModel):
    department_id = models.CharField(max_length=50, help_text="AIQ DepartmentID")
    name = models.CharField(max_length=200)
    bi_code = models.CharField(max_length=50, blank=True, help_text="Business intelligence code")
    active = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["entity", "department_id"], name="department_id_unique"
            ),
        ]

    def __str__(self):
        return f"{self.department_id} {self.name}"


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


class Invoice(SyncedModel):
    class Kind(models.TextChoices):
        ITEM = "item", "Item invoice"
        BATCH = "batch", "Batch invoice"

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="invoices")
    kind = models.CharField(max_length=5, choices=Kind, default=Kind.ITEM)
    invoice_number = models.CharField(max_length=50, blank=True)
    external_reference = models.CharField(max_length=100, blank=True)
    aiq_invoice_id = models.IntegerField(null=True, blank=True)
    aiq_transaction_id = models.IntegerField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=DocumentStatus, default=DocumentStatus.POSTED)
    currency = models.CharField(max_length=3)
    invoice_date = models.DateField()
    due_date = models.DateField(null=True, blank=True)
    net_amount = MoneyField(default=0)
    tax_amount = MoneyField(default=0)
    gross_amount = MoneyField(default=0)
    outstanding_amount = MoneyField(default=0)
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
            models.UniqueConstraint(
                fields=["entity", "external_reference"],
                condition=~Q(external_reference=""),
                name="invoice_external_reference_unique",
            ),
            models.CheckConstraint(condition=Q(gross_amount__gte=0), name="invoice_gross_gte_0"),
            models.CheckConstraint(condition=Q(net_amount__gte=0), name="invoice_net_gte_0"),
            models.CheckConstraint(condition=Q(tax_amount__gte=0), name="invoice_tax_gte_0"),
            models.CheckConstraint(
                condition=Q(gross_amount=F("net_amount") + F("tax_amount")),
                name="invoice_gross_is_net_plus_tax",
            ),
            models.CheckConstraint(
                condition=Q(outstanding_amount__gte=0)
                & Q(outstanding_amount__lte=F("gross_amount")),
                name="invoice_outstanding_within_gross",
            ),
        ]

    def __str__(self):
        return self.invoice_number or self.external_reference or f"invoice #{self.pk}"

    def save(self, *args, update_fields=None, **kwargs):
        set_invoice_keys(self)
        if update_fields is not None and _INVOICE_KEYS_OF.keys() & set(update_fields):
            update_fields = {*update_fields, *INVOICE_KEY_FIELDS}
        super().save(*args, update_fields=update_fields, **kwargs)


class InvoiceLine(models.Model):
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="lines")
    line_number = models.PositiveIntegerField()
    aiq_invoice_item_id = models.IntegerField(null=True, blank=True)
    stock_item_id = models.CharField(max_length=50, blank=True)
    description = models.CharField(max_length=500, blank=True)
    gl_account_code = models.CharField(max_length=50, blank=True)
    department_id = models.CharField(max_length=50, blank=True)
    tax_code = models.CharField(max_length=20, blank=True)
    tax_rate = models.DecimalField(max_digits=7, decimal_places=4, default=0)
    quantity = models.DecimalField(max_digits=15, decimal_places=4, default=1)
    unit_price = MoneyField(default=0)
    net_amount = MoneyField(default=0)
    tax_amount = MoneyField(default=0)
    gross_amount = MoneyField(default=0)

    class Meta:
        ordering = ["invoice", "line_number"]
        constraints = [
            models.UniqueConstraint(
                fields=["invoice", "line_number"], name="invoiceline_number_unique"
            ),
            models.CheckConstraint(
                condition=Q(gross_amount=F("net_amount") + F("tax_amount")),
                name="invoiceline_gross_is_net_plus_tax",
            ),
        ]

    def __str__(self):
        return f"{self.invoice} line {self.line_number}"


class CreditNote(SyncedModel):
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="credit_notes")
    invoice = models.ForeignKey(
        Invoice, null=True, blank=True, on_delete=models.PROTECT, related_name="credit_notes"
    )
    credit_note_number = models.CharField(max_length=50, blank=True)
    external_reference = models.CharField(max_length=100, blank=True)
    aiq_credit_note_id = models.IntegerField(null=True, blank=True)
    aiq_transaction_id = models.IntegerField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=DocumentStatus, default=DocumentStatus.DRAFT)
    currency = models.CharField(max_length=3)
    credit_date = models.DateField()
    net_amount = MoneyField(default=0)
    tax_amount = MoneyField(default=0)
    gross_amount = MoneyField(default=0)
    outstanding_amount = MoneyField(default=0)
    reason = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["entity", "aiq_credit_note_id"], name="creditnote_aiq_id_unique"
            ),
            models.UniqueConstraint(
                fields=["entity", "aiq_transaction_id"], name="creditnote_aiq_transaction_unique"
            ),
            models.UniqueConstraint(
                fields=["entity", "external_reference"],
                condition=~Q(external_reference=""),
                name="creditnote_external_reference_unique",
            ),
            models.CheckConstraint(
                condition=Q(gross_amount=F("net_amount") + F("tax_amount")),
                name="creditnote_gross_is_net_plus_tax",
            ),
            models.CheckConstraint(
                condition=Q(outstanding_amount__gte=0)
                & Q(outstanding_amount__lte=F("gross_amount")),
                name="creditnote_outstanding_within_gross",
            ),
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


class CreditNoteLine(models.Model):
    credit_note = models.ForeignKey(CreditNote, on_delete=models.PROTECT, related_name="lines")
    line_number = models.PositiveIntegerField()
    stock_item_id = models.CharField(max_length=50, blank=True)
    description = models.CharField(max_length=500, blank=True)
    gl_account_code = models.CharField(max_length=50, blank=True)
    tax_code = models.CharField(max_length=20, blank=True)
    tax_rate = models.DecimalField(max_digits=7, decimal_places=4, default=0)
    quantity = models.DecimalField(max_digits=15, decimal_places=4, default=1)
    unit_price = MoneyField(default=0)
    net_amount = MoneyField(default=0)
    tax_amount = MoneyField(default=0)
    gross_amount = MoneyField(default=0)

    class Meta:
        ordering = ["credit_note", "line_number"]
        constraints = [
            models.UniqueConstraint(
                fields=["credit_note", "line_number"], name="creditnoteline_number_unique"
            ),
            models.CheckConstraint(
                condition=Q(gross_amount=F("net_amount") + F("tax_amount")),
                name="creditnoteline_gross_is_net_plus_tax",
            ),
        ]

    def __str__(self):
        return f"{self.credit_note} line {self.line_number}"


class Receipt(SyncedModel):
    """A sales receipt in AIQ (SaveSalesReceiptGetBackTransactionID)."""

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="receipts")
    bank_account = models.ForeignKey(BankAccount, on_delete=models.PROTECT)
    check_reference = models.CharField(
        max_length=100, help_text="AIQ CheckReference: our deterministic external reference."
    )
    aiq_transaction_id = models.IntegerField(null=True, blank=True)
    currency = models.CharField(max_length=3)
    payment_date = models.DateField()
    amount = MoneyField()
    unallocated_amount = MoneyField(help_text="Left on the customer's account.")
    description = models.CharField(max_length=500, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["entity", "check_reference"], name="receipt_check_reference_unique"
            ),
            models.UniqueConstraint(
                fields=["entity", "aiq_transaction_id"], name="receipt_aiq_transaction_unique"
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="receipt_amount_gt_0"),
            models.CheckConstraint(
                condition=Q(unallocated_amount__gte=0) & Q(unallocated_amount__lte=F("amount")),
                name="receipt_unallocated_within_amount",
            ),
        ]

    def __str__(self):
        return f"receipt {self.check_reference}"


class Journal(SyncedModel):
    class Kind(models.TextChoices):
        SALES_DEBIT = "sales_debit", "Sales debit journal"
        GENERAL = "general", "General journal"

    kind = models.CharField(max_length=12, choices=Kind)
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.PROTECT, related_name="journals"
    )
    bank_account = models.ForeignKey(
        BankAccount, null=True, blank=True, on_delete=models.PROTECT, related_name="journals"
    )
    reference = models.CharField(max_length=100)
    aiq_transaction_id = models.IntegerField(null=True, blank=True)
    currency = models.CharField(max_length=3)
    journal_date = models.DateField()
    amount = MoneyField(default=0, help_text="Total of the debits (equals the credits).")
    outstanding_amount = MoneyField(default=0)
    description = models.CharField(max_length=500, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["entity", "reference"], name="journal_reference_unique"
            ),
            models.UniqueConstraint(
                fields=["entity", "aiq_transaction_id"], name="journal_aiq_transaction_unique"
            ),
            models.CheckConstraint(condition=Q(amount__gte=0), name="journal_amount_gte_0"),
            models.CheckConstraint(
                condition=Q(outstanding_amount__gte=0) & Q(outstanding_amount__lte=F("amount")),
                name="journal_outstanding_within_amount",
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {self.reference}"


class JournalLine(models.Model):
    journal = models.ForeignKey(Journal, on_delete=models.PROTECT, related_name="lines")
    line_number = models.PositiveIntegerField()
    gl_account_code = models.CharField(max_length=50)
    description = models.CharField(max_length=500, blank=True)
    debit = MoneyField(default=0)
    credit = MoneyField(default=0)
    department_id = models.CharField(max_length=50, blank=True)

    class Meta:
        ordering = ["journal", "line_number"]
        constraints = [
            models.UniqueConstraint(
                fields=["journal", "line_number"], name="journalline_number_unique"
            ),
            models.CheckConstraint(
                condition=Q(debit__gte=0) & Q(credit__gte=0), name="journalline_amounts_gte_0"
            ),
            models.CheckConstraint(
                condition=Q(debit=0) | Q(credit=0), name="journalline_debit_or_credit"
            ),
        ]

    def __str__(self):
        return f"{self.journal} line {self.line_number}"


class Allocation(SyncedModel):
    """Two AIQ transactions allocated against each other (AllocateTransactions[WithDiscount]).

    transaction_id_1 is the paying side (receipt, credit note or journal), transaction_id_2 the
    side being settled (invoice or debit journal). The foreign keys say which mirrored rows those
    are, where we have them.
    """

    class State(models.TextChoices):
        ACTIVE = "active", "Allocated"
        UNALLOCATED = "unallocated", "Unallocated"

    transaction_id_1 = models.IntegerField(help_text="AIQ transaction ID of the paying side")
    transaction_id_2 = models.IntegerField(help_text="AIQ transaction ID of the settled side")
    receipt = models.ForeignKey(
        Receipt, null=True, blank=True, on_delete=models.PROTECT, related_name="allocations"
    )
    credit_note = models.ForeignKey(
        CreditNote, null=True, blank=True, on_delete=models.PROTECT, related_name="allocations"
    )
    invoice = models.ForeignKey(
        Invoice, null=True, blank=True, on_delete=models.PROTECT, related_name="allocations"
    )
    journal = models.ForeignKey(
        Journal, null=True, blank=True, on_delete=models.PROTECT, related_name="allocations"
    )
    amount = MoneyField()
    discount_amount = MoneyField(default=0)
    currency = models.CharField(max_length=3)
    allocation_date = models.DateField()
    reference = models.CharField(max_length=100)
    # AIQ's AllocationId, where known (the pull, a read-back): what tells two allocations of
    # the same pair and amount apart, since AIQ's allocation lists do not carry our reference
    aiq_allocation_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    state = models.CharField(max_length=12, choices=State, default=State.ACTIVE)
    unallocated_at = models.DateTimeField(null=True, blank=True)
    unallocation_reason = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="allocation_amount_gt_0"),
            models.CheckConstraint(
                condition=Q(discount_amount__gte=0), name="allocation_discount_gte_0"
            ),
            models.CheckConstraint(
                condition=~Q(transaction_id_1=F("transaction_id_2")),
                name="allocation_two_distinct_transactions",
            ),
            models.UniqueConstraint(
                fields=["entity", "reference"],
                condition=Q(state="active"),
                name="allocation_active_reference_unique",
            ),
        ]

    def __str__(self):
        return f"{self.transaction_id_1} -> {self.transaction_id_2}: {self.amount} {self.currency}"


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


class SyncState(models.Model):
    """Where the last pull from AIQ got to, per entity and object type, and its progress."""

    entity = models.ForeignKey(Entity, on_delete=models.PROTECT)
    object_type = models.CharField(max_length=40)
    last_modified_cursor = models.DateTimeField(null=True, blank=True)
    last_started_at = models.DateTimeField(null=True, blank=True)
    last_finished_at = models.DateTimeField(null=True, blank=True)
    running = models.BooleanField(default=False)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    # rows read so far by the step now running, so a long step shows it is moving
    progress_step = models.CharField(max_length=40, blank=True)
    progress_rows = models.PositiveIntegerField(default=0)
    # written with every progress update: a running pull whose heartbeat is older than the
    # task timeout was killed, and its claim no longer blocks the next pull
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["entity", "object_type"], name="syncstate_unique")
        ]

    def __str__(self):
        return f"{self.entity} {self.object_type}"


class OutboxCommand(models.Model):
    """One write to AIQ. The queue only wakes work; this row is the truth about it.

    AIQ has no idempotency keys, so every command carries a deterministic external reference
    derived from the row; after any ambiguous outcome the executor reads back by that reference
    before sending again (see RELIABILITY.md).
    """

    class Kind(models.TextChoices):
        ENSURE_CUSTOMER = "ensure_customer", "Create or update customer"
        POST_RECEIPT = "post_receipt", "Post sales receipt"
        ALLOCATE = "allocate", "Allocate transactions"
        ALLOCATE_WITH_DISCOUNT = "allocate_discount", "Allocate with discount"
        UNALLOCATE = "unallocate", "Unallocate transactions"
        CREATE_CREDIT_NOTE = "create_credit_note", "Create and post credit note"
        POST_SALES_DEBIT_JOURNAL = "post_debit_journal", "Post sales debit journal"
        POST_GENERAL_JOURNAL = "post_general_journal", "Post general journal"
        ATTACH_DOCUMENT = "attach_document", "Attach document"
        PAY_AND_ALLOCATE = "pay_and_allocate", "Pay and allocate sales invoice(s)"
        POST_WRITE_OFF = "post_write_off", "Post write-off (sales credit journal)"
        STRIPE_REFUND = "stripe_refund", "Refund through Stripe"
        OTHER_RECEIPT = "other_receipt", "Post other receipt (sundry, to a GL account)"

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        IN_FLIGHT = "in_flight", "In flight"
        UNCERTAIN = "uncertain", "Uncertain (checking AIQ)"
        CONFIRMED = "confirmed", "Confirmed"
        FAILED = "failed", "Failed permanently"
        NEEDS_PERSON = "needs_person", "Needs a person"
        CANCELLED = "cancelled", "Cancelled"

    entity = models.ForeignKey(Entity, on_delete=models.PROTECT)
    kind = models.CharField(max_length=24, choices=Kind)
    payload = models.JSONField(default=dict, help_text="Arguments; never secrets.")
    external_reference = models.CharField(max_length=100)
    depends_on = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="dependents"
    )
    state = models.CharField(max_length=12, choices=State, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=8)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    last_error_code = models.CharField(max_length=100, blank=True)
    last_error_message = models.TextField(blank=True)
    result = models.JSONField(default=dict, blank=True, help_text="AIQ ids once confirmed.")
    # When the last send to AIQ started: AIQ may still commit it until OUTBOX_SETTLE_SECONDS
    # later, so an uncertain row is not read back (and resent) before then. Null = never sent.
    sent_at = models.DateTimeField(null=True, blank=True)
    # What the executor saw in AIQ just before sending (e.g. the AllocationIds already there),
    # so a read-back recognises its own write by AIQ's identity, never by what the mirror knows;
    # and answers that arrived after their lease ran out ("late_answers").
    evidence = models.JSONField(default=dict, blank=True)
    origin_type = models.CharField(max_length=40, blank=True, help_text='e.g. "allocation_plan"')
    origin_id = models.BigIntegerField(null=True, blank=True)
    # the origin's handler (ledger/outbox/origins.py) raised on the verdict: the sweeper runs it
    # again and the sync screen lists the command until it goes through
    origin_pending = models.BooleanField(default=False)
    origin_error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # the sweeper's query: due rows by state and time
            models.Index(fields=["state", "next_attempt_at"], name="outbox_due"),
            models.Index(fields=["origin_type", "origin_id"], name="outbox_origin"),
            # the sweeper's retry of origin handlers: only the few rows that need it
            models.Index(
                fields=["origin_pending"],
                condition=Q(origin_pending=True),
                name="outbox_origin_pending",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["entity", "external_reference"], name="outbox_external_reference_unique"
            ),
            models.CheckConstraint(
                condition=~Q(state="in_flight") | Q(lease_until__isnull=False),
                name="outbox_in_flight_has_lease",
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {self.external_reference} [{self.state}]"


# Attachments sent to AIQ and the mirrored customer statements live in their own modules (split
# by concept); imported here so Django registers the models with the ledger app.
from ledger.models_attachments import Attachment  # noqa: E402, F401
from ledger.models_duplicates import DuplicateWrite  # noqa: E402, F401
from ledger.models_statements import CustomerStatement, CustomerStatementLine  # noqa: E402, F401
