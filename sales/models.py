"""Sales invoicing into AIQ: sources, their settings, upload batches and invoices.

A `SalesInvoice` is our record of one invoice a selling system raised: its normalised content,
why it is a batch or an item invoice, where it stands (held, queued, posted or linked) and, once
AIQ has it, AIQ's transaction id. After that it is never edited: a change is a credit note.
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from ledger.fields import MoneyField
from ledger.models import Entity, OutboxCommand
from ledger.models.invoices import NetTaxGross

MAX_DEFERRED_MONTHS = 60


class InvoiceType(models.TextChoices):
    BATCH = "batch", "Batch invoice"
    ITEM = "item", "Item invoice"


class CreditAction(models.TextChoices):
    WARN = "warn", "Warn and post"
    HOLD = "hold", "Hold for an approver"
    REFUSE = "refuse", "Refuse the invoice"


class SalesSettings(models.Model):
    """Per AIQ company: what a credit problem does, whether new customers need a person, and
    the batch total above which a second person approves an upload."""

    entity = models.OneToOneField(Entity, on_delete=models.PROTECT, related_name="sales_settings")
    credit_action = models.CharField(max_length=6, choices=CreditAction, default=CreditAction.HOLD)
    approve_new_customers = models.BooleanField(
        default=False, help_text="A new customer waits for an approver before AIQ creates it"
    )
    batch_approval_total = MoneyField(
        default=10000, help_text="Batches whose gross total is above this need an approver"
    )
    email_invoices = models.BooleanField(
        default=False, help_text="E-mail the AIQ invoice PDF to the customer once posted"
    )
    email_receipts = models.BooleanField(
        default=False,
        help_text="E-mail the AIQ receipt PDF to the customer once a payment is posted in AIQ",
    )
    deferred_revenue_gl_account_code = models.CharField(
        max_length=50,
        blank=True,
        help_text="GL account (a liability) a deferred invoice line posts to; its revenue is "
        "released to the line's own GL account month by month",
    )

    class Meta:
        verbose_name_plural = "sales settings"
        constraints = [
            models.CheckConstraint(
                condition=Q(batch_approval_total__gte=0), name="sales_settings_total_gte_0"
            )
        ]


class InvoiceSource(models.Model):
    """A system that sells (a CRM, a billing system, Stripe, the API) and how its invoices go
    into AIQ: batch invoices when it computes VAT, item invoices when it needs order numbers,
    delivery dates or item codes. The reason is shown on every invoice of the source."""

    entity = models.ForeignKey(Entity, on_delete=models.PROTECT)
    code = models.CharField(max_length=30, help_text="Short name, e.g. CRM, STRIPE, API")
    name = models.CharField(max_length=100)
    invoice_type = models.CharField(max_length=5, choices=InvoiceType, default=InvoiceType.BATCH)
    type_reason = models.CharField(
        max_length=300,
        default="The source computes VAT: batch invoices post its VAT to the cent.",
    )
    column_map = models.JSONField(
        default=dict,
        blank=True,
        help_text='Upload layout: our field -> the file\'s column header, e.g. {"net": "Net"}',
    )
    date_format = models.CharField(max_length=30, default="%d/%m/%Y")
    attach_breakdown = models.BooleanField(
        default=True, help_text="Attach the uploaded file to each invoice in AIQ (AttachDocument)"
    )
    default_gl_account_code = models.CharField(max_length=50, blank=True)
    default_tax_code = models.CharField(
        max_length=20,
        blank=True,
        help_text="AIQ VAT code for taxed lines whose source names none (e.g. a Stripe tax rate "
        "without an aiq_tax_code in its metadata)",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["entity", "code"], name="invoice_source_code_unique")
        ]

    def __str__(self):
        return self.name


class SalesBatch(models.Model):
    """One upload (or one push of many invoices): its file, who made it, who approved it."""

    class State(models.TextChoices):
        AWAITING_APPROVAL = "awaiting_approval", "Waiting for an approver"
        QUEUED = "queued", "Sent to AIQ"
        CANCELLED = "cancelled", "Cancelled"

    entity = models.ForeignKey(Entity, on_delete=models.PROTECT)
    source = models.ForeignKey(InvoiceSource, on_delete=models.PROTECT, related_name="batches")
    filename = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64)
    content = models.BinaryField(blank=True, default=b"")
    state = models.CharField(max_length=20, choices=State, default=State.QUEUED)
    invoice_count = models.PositiveIntegerField(default=0)
    gross_total = MoneyField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    approved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # the same file cannot be imported twice for a source
            models.UniqueConstraint(fields=["source", "sha256"], name="sales_batch_file_once"),
        ]

    def __str__(self):
        return f"{self.filename} ({self.invoice_count} invoices)"


class DocumentSentToAiq(NetTaxGross):
    """What every document this product writes into AIQ has (a sales invoice, a sales credit
    note, a purchase invoice): its company, the external reference AIQ finds it by (once per
    company), net + VAT = gross with net above zero, the outbox command that writes it, AIQ's
    transaction id once it is there (a CHECK: posted or linked means AIQ's id is known), AIQ's
    message when refused, and who made it. Each document declares its own `state`."""

    IN_AIQ: tuple = ("posted", "linked")

    entity = models.ForeignKey(Entity, on_delete=models.PROTECT)
    external_reference = models.CharField(max_length=100)
    currency = models.CharField(max_length=3)
    command = models.ForeignKey(
        OutboxCommand, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    aiq_transaction_id = models.IntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
        constraints = [
            *NetTaxGross.Meta.constraints,
            # once per reference per AIQ company: a repeated upload or webhook links to it
            models.UniqueConstraint(
                fields=["entity", "external_reference"], name="%(class)s_reference_once"
            ),
            models.CheckConstraint(condition=Q(net_amount__gt=0), name="%(class)s_net_gt_0"),
            models.CheckConstraint(condition=Q(tax_amount__gte=0), name="%(class)s_tax_gte_0"),
            models.CheckConstraint(
                condition=~Q(state__in=["posted", "linked"]) | Q(aiq_transaction_id__isnull=False),
                name="%(class)s_in_aiq_has_transaction",
            ),
        ]

    def __str__(self):
        return self.external_reference


class LineSentToAiq(models.Model):
    """A line of a document sent to AIQ: net above zero, VAT not below, with its GL account,
    VAT code and BI code (AIQ's DepartmentID); numbered once per document (`invoice`)."""

    line_number = models.PositiveIntegerField()
    description = models.CharField(max_length=500, blank=True)
    net_amount = MoneyField()
    tax_code = models.CharField(max_length=20, blank=True)
    tax_amount = MoneyField(default=0)
    gl_account_code = models.CharField(max_length=50, blank=True)
    department = models.CharField(max_length=50, blank=True, help_text="BI code (DepartmentID)")

    class Meta:
        abstract = True
        constraints = [
            models.UniqueConstraint(
                fields=["invoice", "line_number"], name="%(class)s_number_unique"
            ),
            models.CheckConstraint(condition=Q(net_amount__gt=0), name="%(class)s_net_gt_0"),
            models.CheckConstraint(condition=Q(tax_amount__gte=0), name="%(class)s_tax_gte_0"),
        ]


class SalesInvoice(DocumentSentToAiq):
    class State(models.TextChoices):
        HELD_CREDIT = "held_credit", "Held: credit check"
        HELD_CUSTOMER = "held_customer", "Held: new customer"
        AWAITING_BATCH = "awaiting_batch", "Waiting for the batch's approval"
        QUEUED = "queued", "Queued for AIQ"
        POSTED = "posted", "Posted in AIQ"
        LINKED = "linked", "Already in AIQ (linked)"
        FAILED = "failed", "Refused by AIQ"
        REFUSED = "refused", "Refused: credit check"
        CANCELLED = "cancelled", "Cancelled"

    IN_AIQ = (State.POSTED, State.LINKED)

    source = models.ForeignKey(InvoiceSource, on_delete=models.PROTECT, related_name="invoices")
    batch = models.ForeignKey(
        SalesBatch, null=True, blank=True, on_delete=models.PROTECT, related_name="invoices"
    )
    customer_code = models.CharField(max_length=50)
    customer_name = models.CharField(max_length=200)
    customer_email = models.EmailField(blank=True)
    invoice_date = models.DateField()
    due_date = models.DateField(null=True, blank=True)
    description = models.CharField(max_length=500, blank=True)
    invoice_type = models.CharField(max_length=5, choices=InvoiceType)
    type_reason = models.CharField(max_length=300, blank=True)
    # an already-paid order: {"amount", "bank_account_code", "reference", "paid_on"}
    paid = models.JSONField(null=True, blank=True)
    content_hash = models.CharField(max_length=64, help_text="sha256 of the normalised content")
    state = models.CharField(max_length=16, choices=State, default=State.QUEUED)
    held_reason = models.TextField(blank=True)
    credit_figures = models.JSONField(default=dict, blank=True)
    aiq_invoice_id = models.IntegerField(null=True, blank=True)
    aiq_number = models.CharField(max_length=50, blank=True)
    receipt_transaction_id = models.IntegerField(null=True, blank=True)
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        indexes = [models.Index(fields=["state", "id"], name="sales_invoice_state")]
        constraints = [
            *DocumentSentToAiq.Meta.constraints,
            models.UniqueConstraint(
                fields=["entity", "aiq_transaction_id"], name="sales_invoice_transaction_once"
            ),
        ]


class SalesInvoiceLine(LineSentToAiq):
    invoice = models.ForeignKey(SalesInvoice, on_delete=models.PROTECT, related_name="lines")
    item_code = models.CharField(max_length=50, blank=True)
    order_number = models.CharField(max_length=50, blank=True)
    delivery_date = models.DateField(null=True, blank=True)
    quantity = models.DecimalField(max_digits=15, decimal_places=4, default=1)
    # deferred revenue: earned over this many months; posted to deferred_gl_account_code (the
    # company's deferred revenue account when the invoice was accepted) and released to
    # gl_account_code one month at a time (DeferredRelease)
    deferred_months = models.PositiveSmallIntegerField(null=True, blank=True)
    deferred_gl_account_code = models.CharField(max_length=50, blank=True)

    class Meta:
        constraints = [
            *LineSentToAiq.Meta.constraints,
            models.CheckConstraint(
                condition=Q(deferred_months__isnull=True)
                | (
                    Q(deferred_months__gte=1)
                    & Q(deferred_months__lte=MAX_DEFERRED_MONTHS)
                    & ~Q(deferred_gl_account_code="")
                ),
                name="sales_line_deferred_months_and_account",
            ),
        ]


class DeferredRevenueSchedule(models.Model):
    """One deferred invoice line: its net amount sits on the deferred revenue account from the
    invoice and is released to the line's revenue account in `months` monthly journals."""

    class State(models.TextChoices):
        ACTIVE = "active", "Releasing"
        DONE = "done", "Fully released"
        CREDITED = "credited", "Ended by a credit note"

    entity = models.ForeignKey(Entity, on_delete=models.PROTECT)
    invoice = models.ForeignKey(SalesInvoice, on_delete=models.PROTECT, related_name="deferrals")
    line = models.OneToOneField(SalesInvoiceLine, on_delete=models.PROTECT, related_name="deferral")
    currency = models.CharField(max_length=3, help_text="The invoice's currency")
    amount = MoneyField(help_text="The line's net amount, in the invoice's currency")
    # Release journals are general journals, which AIQ keeps in the company's base currency
    # (they have no currency field): a line in another currency is released in the base
    # currency at AIQ's rate of the invoice (what the invoice put on the deferred account),
    # read from AIQ once the invoice is posted; until then the schedule has no releases.
    base_currency = models.CharField(
        max_length=3, blank=True, help_text="The company's base currency: the releases'"
    )
    exchange_rate = models.DecimalField(
        max_digits=18,
        decimal_places=6,
        null=True,
        blank=True,
        help_text="AIQ's rate of the invoice: units of its currency per base unit",
    )
    base_amount = MoneyField(
        null=True,
        blank=True,
        help_text="The net amount in the base currency at that rate, released over the months",
    )
    months = models.PositiveSmallIntegerField()
    start_date = models.DateField(help_text="The invoice date: the first release is that month's")
    revenue_gl_account_code = models.CharField(max_length=50)
    deferred_gl_account_code = models.CharField(max_length=50)
    department = models.CharField(max_length=50, blank=True)
    state = models.CharField(max_length=10, choices=State, default=State.ACTIVE)
    # the credit notes (ledger.CreditNote ids) already applied: each changes the schedule once
    credit_notes = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="deferral_amount_gt_0"),
            models.CheckConstraint(
                condition=Q(base_amount__isnull=True) | Q(base_amount__gt=0),
                name="deferral_base_amount_gt_0",
            ),
            models.CheckConstraint(
                condition=Q(exchange_rate__isnull=True) | Q(exchange_rate__gt=0),
                name="deferral_exchange_rate_gt_0",
            ),
            models.CheckConstraint(
                condition=Q(months__gte=1) & Q(months__lte=MAX_DEFERRED_MONTHS),
                name="deferral_months_in_range",
            ),
        ]

    def __str__(self):
        return f"{self.invoice} line {self.line.line_number} over {self.months} months"

    @property
    def release_currency(self) -> str:
        """The currency of its release journals (and of every DeferredRelease amount)."""
        return self.base_currency or self.currency

    @property
    def waiting_for_rate(self) -> bool:
        return self.base_amount is None

    @property
    def exchange_rate_text(self) -> str:
        """The rate as AIQ gives it, without trailing zeros: 1.15, not 1.150000."""
        if self.exchange_rate is None:
            return ""
        return format(self.exchange_rate.normalize(), "f")


class DeferredRelease(models.Model):
    """One journal of a schedule: a monthly release (Dr deferred revenue, Cr revenue) or, when a
    credit note takes back revenue already released, its reversal (Dr revenue, Cr deferred).
    Its amount is in the schedule's release currency (the company's base currency)."""

    class Kind(models.TextChoices):
        RELEASE = "release", "Monthly release"
        REVERSAL = "reversal", "Reversal of released revenue (credit note)"

    class State(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        QUEUED = "queued", "Sent to AIQ"
        RELEASED = "released", "Posted in AIQ"
        FAILED = "failed", "Refused by AIQ"
        CANCELLED = "cancelled", "Cancelled by a credit note"

    schedule = models.ForeignKey(
        DeferredRevenueSchedule, on_delete=models.PROTECT, related_name="releases"
    )
    kind = models.CharField(max_length=8, choices=Kind, default=Kind.RELEASE)
    number = models.PositiveSmallIntegerField(help_text="Month 1..N; a reversal: 0")
    credit_note_id = models.IntegerField(
        null=True, blank=True, help_text="ledger.CreditNote a reversal answers"
    )
    release_date = models.DateField()
    amount = MoneyField()
    state = models.CharField(max_length=10, choices=State, default=State.SCHEDULED)
    external_reference = models.CharField(max_length=100)
    command = models.ForeignKey(
        OutboxCommand, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    aiq_transaction_id = models.IntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["schedule", "release_date", "number"]
        indexes = [models.Index(fields=["state", "release_date"], name="deferred_release_due")]
        constraints = [
            # each month released once, each credit note reversed once: the external
            # reference is what AIQ finds the journal by (read back before any resend)
            models.UniqueConstraint(fields=["external_reference"], name="deferred_release_ref"),
            models.UniqueConstraint(
                fields=["schedule", "number"],
                condition=Q(kind="release"),
                name="deferred_release_month_once",
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="deferred_release_gt_0"),
        ]

    def __str__(self):
        return self.external_reference


class SalesCreditNote(DocumentSentToAiq):
    """A credit note the selling system raised against one of its invoices (a cancelled order,
    a Stripe credit note or voided invoice): posted in AIQ once (external reference = the
    source's) and allocated to the invoice. It waits while its invoice is not in AIQ yet."""

    class State(models.TextChoices):
        WAITING = "waiting", "Waiting for its invoice to reach AIQ"
        QUEUED = "queued", "Queued for AIQ"
        POSTED = "posted", "Posted and allocated in AIQ"
        FAILED = "failed", "Refused by AIQ"
        # a Stripe credit note whose money went back to the card: the refund of the payment
        # books the credit note and the money out (payments' refunds), so it is not posted
        # again from here: one credit, not two
        REFUNDED = "refunded", "Booked by its refund"
        CANCELLED = "cancelled", "Cancelled"

    IN_AIQ = (State.POSTED,)

    source = models.ForeignKey(InvoiceSource, on_delete=models.PROTECT, related_name="+")
    invoice = models.ForeignKey(SalesInvoice, on_delete=models.PROTECT, related_name="credit_notes")
    refund_references = models.CharField(
        max_length=200, blank=True, help_text="The source's refunds that paid it back (re_...)"
    )
    credit_date = models.DateField()
    reason = models.CharField(max_length=300, blank=True)
    # [{"description", "tax_code", "net_amount", "tax_amount", "gl_account_code"}], decimals
    # as strings
    lines = models.JSONField(default=list)
    state = models.CharField(max_length=10, choices=State, default=State.WAITING)
    allocate_command = models.ForeignKey(
        OutboxCommand, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )


class CustomerUpdate(models.Model):
    """A selling system changed a customer's details (name, e-mail, address): the change as
    sent to AIQ (UpdateCustomer over AIQ's current record), once per distinct change."""

    class State(models.TextChoices):
        QUEUED = "queued", "Queued for AIQ"
        DONE = "done", "Updated in AIQ"
        FAILED = "failed", "Refused by AIQ"
        CANCELLED = "cancelled", "Cancelled"

    entity = models.ForeignKey(Entity, on_delete=models.PROTECT)
    customer_code = models.CharField(max_length=50)
    origin = models.CharField(max_length=100, help_text="What reported the change")
    details = models.JSONField(help_text="AIQ Customer fields and their new values")
    previous = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=10, choices=State, default=State.QUEUED)
    command = models.ForeignKey(
        OutboxCommand, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"{self.customer_code} ({self.get_state_display()})"


# --- purchase invoices, back-to-back pairs and intercompany sales ----------------------------


class PurchaseInvoice(DocumentSentToAiq):
    """One purchase invoice this product puts into AIQ (GetNewPurchasesInvoice ->
    SaveInvoiceGetBackInvoiceID -> PostInvoiceGetBackTransactionID): the supplier half of a
    back-to-back pair, or the buyer's half of an intercompany sale. Never edited once queued."""

    class State(models.TextChoices):
        QUEUED = "queued", "Queued for AIQ"
        POSTED = "posted", "Posted in AIQ"
        LINKED = "linked", "Already in AIQ (linked)"
        HELD = "held", "Held: needs a person"
        FAILED = "failed", "Refused by AIQ"
        CANCELLED = "cancelled", "Cancelled"

    IN_AIQ = (State.POSTED, State.LINKED)

    supplier_code = models.CharField(max_length=50)
    invoice_date = models.DateField()
    description = models.CharField(max_length=500, blank=True)
    state = models.CharField(max_length=10, choices=State, default=State.QUEUED)


class PurchaseInvoiceLine(LineSentToAiq):
    invoice = models.ForeignKey(PurchaseInvoice, on_delete=models.PROTECT, related_name="lines")


class BackToBackRule(models.Model):
    """How one kind of resold cost is invoiced back to back (e.g. agency labour): the supplier
    it is bought from, the mark-up the customer pays, and the accounts and VAT of each half."""

    entity = models.ForeignKey(Entity, on_delete=models.PROTECT)
    code = models.CharField(max_length=30, help_text="Short name, e.g. LABOUR")
    name = models.CharField(max_length=100)
    supplier_code = models.CharField(max_length=50, help_text="AIQ supplier code")
    markup_percent = models.DecimalField(
        max_digits=7, decimal_places=4, help_text="Sale net = cost net x (1 + mark-up / 100)"
    )
    source = models.ForeignKey(
        InvoiceSource,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The invoice source the sales halves go through (batch or item invoices)",
    )
    purchase_gl_account_code = models.CharField(max_length=50, blank=True)
    purchase_tax_code = models.CharField(max_length=20, blank=True)
    sales_gl_account_code = models.CharField(max_length=50, blank=True)
    sales_tax_code = models.CharField(max_length=20, blank=True)
    active = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["entity", "code"], name="back_to_back_rule_code_once"),
            models.CheckConstraint(
                condition=Q(markup_percent__gte=0), name="back_to_back_markup_gte_0"
            ),
        ]

    def __str__(self):
        return f"{self.code} ({self.supplier_code} + {self.markup_percent}%)"


class BackToBackPair(models.Model):
    """One source line invoiced back to back: the purchase invoice from the supplier and the
    sales invoice to the customer, linked. The sales half waits in the outbox for the purchase
    half (depends_on), so a refused purchase holds the sale for a person."""

    entity = models.ForeignKey(Entity, on_delete=models.PROTECT)
    rule = models.ForeignKey(BackToBackRule, on_delete=models.PROTECT, related_name="pairs")
    reference = models.CharField(max_length=80, help_text="The source line's own id")
    customer_code = models.CharField(max_length=50)
    description = models.CharField(max_length=500, blank=True)
    department = models.CharField(max_length=50, blank=True, help_text="BI code of the line")
    currency = models.CharField(max_length=3)
    cost_net = MoneyField()
    sale_net = MoneyField()
    markup_percent = models.DecimalField(max_digits=7, decimal_places=4)
    purchase = models.OneToOneField(
        PurchaseInvoice, on_delete=models.PROTECT, related_name="back_to_back"
    )
    sales_invoice = models.OneToOneField(
        SalesInvoice, on_delete=models.PROTECT, related_name="back_to_back"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["entity", "reference"], name="back_to_back_reference_once"
            ),
            models.CheckConstraint(condition=Q(cost_net__gt=0), name="back_to_back_cost_gt_0"),
            models.CheckConstraint(
                condition=Q(sale_net__gte=F("cost_net")), name="back_to_back_sale_gte_cost"
            ),
        ]

    def __str__(self):
        return self.reference


class InterCompanySale(models.Model):
    """A sale from one company of the group to another: the sales invoice in the seller's AIQ
    company and the matching purchase invoice in the buyer's, linked. The purchase half waits
    in the outbox for the sales half (depends_on)."""

    connection = models.ForeignKey(
        "ledger.InterCompanyConnection", on_delete=models.PROTECT, related_name="+"
    )
    seller = models.ForeignKey(Entity, on_delete=models.PROTECT, related_name="+")
    buyer = models.ForeignKey(Entity, on_delete=models.PROTECT, related_name="+")
    reference = models.CharField(max_length=80)
    sales_invoice = models.OneToOneField(
        SalesInvoice, on_delete=models.PROTECT, related_name="intercompany"
    )
    purchase = models.OneToOneField(
        PurchaseInvoice, on_delete=models.PROTECT, related_name="intercompany"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["seller", "reference"], name="intercompany_sale_reference_once"
            ),
            models.CheckConstraint(
                condition=~Q(seller=F("buyer")), name="intercompany_sale_two_companies"
            ),
        ]

    def __str__(self):
        return self.reference
