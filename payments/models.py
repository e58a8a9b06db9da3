"""Money in, matching and review.

One normalised Payment per external payment (unique per source), the raw payload kept as
received. Matching produces MatchProposals; staff turn them into AllocationPlans, which a
second person approves (maker-checker) before the outbox writes them to AIQ.
"""

from django.conf import settings
from django.db import models
from django.db.models import BigIntegerField, F, Q, Sum
from django.db.models.functions import Upper

from core.fields import MoneyField
from core.money import format_money
from staff.maker_checker import MakerChecked, approver_is_not_maker


class Source(models.TextChoices):
    STRIPE = "stripe", "Stripe"
    GOCARDLESS = "gocardless", "GoCardless"
    SMARTDEBIT = "smartdebit", "SmartDebit"
    BANK = "bank", "Bank transfer"
    API = "api", "Recorded through the API"


def company_field(help_text: str) -> models.ForeignKey:
    """The company a setting belongs to (a layout, a rule, an import); empty: every company."""
    return models.ForeignKey(
        "ledger.Entity",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text=help_text,
    )


class Payout(models.Model):
    source = models.CharField(max_length=12, choices=Source)
    external_id = models.CharField(max_length=100)
    amount = MoneyField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=20, blank=True)
    arrival_date = models.DateField(null=True, blank=True)
    # a payout the provider converted (a EUR balance paid into a GBP bank): `amount`/`currency`
    # are what left the provider's balance (the payout's balance transaction), these what
    # arrives in the bank (the payout object's amount and currency); empty: no conversion
    arrival_amount = MoneyField(null=True, blank=True)
    arrival_currency = models.CharField(max_length=3, blank=True)
    raw = models.JSONField(default=dict)
    # its books (payments/services/provider_books.py): the provider account it belongs to, the
    # AIQ journals of its fees, of the transfer clearing -> bank and of that transfer's
    # reversal (a failed payout), and the bank statement line it arrived as
    provider_account = models.ForeignKey(
        "ProviderAccount", null=True, blank=True, on_delete=models.PROTECT, related_name="payouts"
    )
    fees_command = models.ForeignKey(
        "ledger.OutboxCommand", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    transfer_command = models.ForeignKey(
        "ledger.OutboxCommand", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reversal_command = models.ForeignKey(
        "ledger.OutboxCommand", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # the realised exchange gain or loss of the foreign-currency payments it settled
    # (payments/services/provider_fx.py)
    fx_command = models.ForeignKey(
        "ledger.OutboxCommand", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    statement_payment = models.OneToOneField(
        "Payment",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="settles_payout",
        help_text="The bank statement line this payout arrived as",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "external_id"], name="payout_external_unique")
        ]

    def __str__(self):
        return f"{self.get_source_display()} payout {self.external_id}"

    @property
    def landed(self) -> tuple:
        """(amount, currency) the bank receives: converted by the provider, or as paid out."""
        if self.arrival_currency and self.arrival_amount is not None:
            return self.arrival_amount, self.arrival_currency
        return self.amount, self.currency


class StatementAccount(models.Model):
    """A bank account as its statements name it, and the AIQ bank account (so the entity) its
    money goes to. Statements (camt, MT940, BAI2, OFX, QIF, CSV) belong to one; a bank's
    transaction ids are unique per account, not per bank."""

    entity = models.ForeignKey("ledger.Entity", on_delete=models.PROTECT)
    bank_account = models.ForeignKey(
        "ledger.BankAccount",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="statement_accounts",
        help_text="The AIQ bank account its receipts are booked to",
    )
    name = models.CharField(max_length=100, blank=True)
    # normalised: an IBAN ("GB29NWBK60161331926819"), a UK sort code and account number
    # ("601613 31926819"), or the account id the bank's file gives (BAI2, OFX, MT940 :25:)
    account_key = models.CharField(max_length=70, unique=True)
    currency = models.CharField(max_length=3, blank=True)
    import_format = models.ForeignKey(
        "ImportFormat",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The saved layout of this account's CSV/Excel exports",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.name or self.account_key


class Payment(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELED = "canceled", "Canceled"
        REFUNDED = "refunded", "Refunded"
        PARTIALLY_REFUNDED = "partially_refunded", "Partially refunded"
        DISPUTED = "disputed", "Disputed"

    class MatchState(models.TextChoices):
        UNMATCHED = "unmatched", "Unmatched"
        PROPOSED = "proposed", "Proposed"
        AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
        # One name per state, the same as its plan's (AllocationPlan.State): approved and
        # handed to the outbox, then confirmed by AIQ.
        APPROVED = "approved", "Approved, on its way to AIQ"
        SENT = "sent", "Confirmed in AIQ"
        FAILED = "failed", "Failed in AIQ"
        # a write to AIQ was parked (attempts used up, a duplicate, a bad payload): a person
        # must look before anything more is sent
        NEEDS_PERSON = "needs_person", "Needs a person"
        REJECTED = "rejected", "Rejected"
        IGNORED = "ignored", "Not for AIQ"

    entity = models.ForeignKey("ledger.Entity", on_delete=models.PROTECT)
    source = models.CharField(max_length=12, choices=Source)
    external_id = models.CharField(max_length=100, help_text="pi_/ch_ id, PM id, bank row hash")
    amount = MoneyField(help_text="Gross amount received, major units")
    currency = models.CharField(max_length=3)
    fee_amount = MoneyField(null=True, blank=True)
    net_amount = MoneyField(null=True, blank=True)
    amount_refunded = MoneyField(default=0)
    exchange_rate = models.CharField(max_length=30, blank=True, help_text="As the source gave it")
    received_at = models.DateTimeField()
    payer_name = models.CharField(max_length=200, blank=True)
    payer_email = models.CharField(max_length=254, blank=True)
    payer_reference = models.CharField(
        max_length=100, blank=True, help_text="The source's customer id (cus_..., CU...)"
    )
    description = models.TextField(blank=True)
    # Bank statement entries (empty for card/Direct Debit providers): the account the money
    # arrived in, the payer's own account (IBAN, or "sort code account number"), the bank's
    # reference for the entry and the payer's end-to-end id (ISO 20022 EndToEndId).
    statement_account = models.ForeignKey(
        StatementAccount, null=True, blank=True, on_delete=models.PROTECT, related_name="payments"
    )
    payer_account = models.CharField(max_length=70, blank=True)
    bank_reference = models.CharField(max_length=140, blank=True)
    end_to_end_id = models.CharField(max_length=140, blank=True)
    references = models.JSONField(
        default=list, blank=True, help_text="Reference texts to match on, with where they came from"
    )
    status = models.CharField(max_length=20, choices=Status, default=Status.SUCCEEDED)
    # no index of its own: payment_inbox starts with it (a second index only slowed the
    # matching run's state update of 100,000 rows, bench/bench_matching.py)
    match_state = models.CharField(max_length=20, choices=MatchState, default=MatchState.UNMATCHED)
    # why the last matching run proposed nothing for it: {"run_id": …, "notes": [...]}, or {}
    # (a payment with proposals has its notes in their evidence); shown on the payment's page
    # (a database default too: the bulk writers insert payments with raw SQL)
    match_notes = models.JSONField(default=dict, db_default={}, blank=True, editable=False)
    # why a person marked it "Not for AIQ" (match_state ignored): shown on its page
    # (a database default too: the bulk writers insert payments with raw SQL)
    not_for_aiq_reason = models.TextField(blank=True, default="", db_default="")
    customer = models.ForeignKey(
        "ledger.Customer", null=True, blank=True, on_delete=models.PROTECT, related_name="payments"
    )
    payout = models.ForeignKey(
        Payout, null=True, blank=True, on_delete=models.PROTECT, related_name="payments"
    )
    receipt = models.ForeignKey(
        "ledger.Receipt", null=True, blank=True, on_delete=models.PROTECT, related_name="payments"
    )
    # the AIQ bank account the money came into, when its source says (an API client's
    # bank_account_id); empty: the company's receiving bank (payments/services/plan_outbox.py)
    bank_account = models.ForeignKey(
        "ledger.BankAccount", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    raw = models.JSONField(default=dict, help_text="The payload exactly as received")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            # inbox tabs: keyset pagination on (received_at, id) within a match state
            models.Index(fields=["match_state", "-received_at", "-id"], name="payment_inbox"),
            models.Index(fields=["-received_at", "-id"], name="payment_recent"),
            # inbox search box: a reference or an exact amount (payments/views/filters.py)
            models.Index(fields=["external_id"], name="payment_external_id"),
            models.Index(fields=["amount"], name="payment_amount"),
            models.Index(fields=["payer_reference"], name="payment_payer_reference"),
            # the search box's exact references, and payer identification by account
            models.Index(fields=["bank_reference"], name="payment_bank_reference"),
            models.Index(fields=["payer_account"], name="payment_payer_account"),
            models.Index(Upper("payer_email"), name="payment_payer_email_upper"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "external_id"], name="payment_external_unique"
            ),
            models.CheckConstraint(condition=Q(amount__gte=0), name="payment_amount_gte_0"),
            models.CheckConstraint(
                condition=Q(amount_refunded__gte=0) & Q(amount_refunded__lte=F("amount")),
                name="payment_refunded_within_amount",
            ),
            models.CheckConstraint(
                condition=Q(fee_amount__isnull=True) | Q(fee_amount__gte=0),
                name="payment_fee_gte_0",
            ),
        ]

    def __str__(self):
        amount = format_money(self.amount, self.currency)
        return f"{self.get_source_display()} {self.shown_reference} {amount}"

    @property
    def shown_reference(self) -> str:
        """What people call this payment: the provider's id (pi_…, PM…), or for a bank or
        SmartDebit row the bank's own reference or narrative, never our row hash."""
        if self.external_id.startswith("row:") or self.source in ("bank", "smartdebit"):
            text = self.bank_reference or " ".join((self.description or "").split())
            if text:
                return text[:60]
        return self.external_id

    @property
    def lodgment_number(self) -> str:
        """The bank's own reference for the entry, for the AIQ receipt's LodgmentNumber (the
        outbox cuts it to AIQ's limit): a bank or SmartDebit row's bank reference, else its
        end-to-end id; empty for card and Direct Debit providers, whose ids are in the
        description. The receipt's CheckReference stays ours (RCPT-<id>): AIQ reads a receipt
        back by it (GetTransactionsByExternalReference)."""
        if self.source in ("bank", "smartdebit"):
            return " ".join((self.bank_reference or self.end_to_end_id or "").split())
        return ""

    @property
    def receipt_text(self) -> str:
        """The receipt's description in AIQ: the bank's reference and narrative as the bank
        gave them (AIQ keeps 250 characters), else the provider and its id."""
        if self.source in ("bank", "smartdebit"):
            parts = [self.bank_reference, " ".join((self.description or "").split())]
            text = " ".join(p for p in dict.fromkeys(parts) if p)
            if self.payer_name and self.payer_name not in text:
                text = f"{text} ({self.payer_name})" if text else self.payer_name
            if text:
                return text[:250]
        return f"{self.get_source_display()} {self.external_id}"[:250]


class Fee(models.Model):
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="fees")
    kind = models.CharField(max_length=40)
    description = models.CharField(max_length=200, blank=True)
    amount = MoneyField()
    currency = models.CharField(max_length=3)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(amount__gte=0), name="fee_amount_gte_0")]

    def __str__(self):
        return f"{self.kind} fee {format_money(self.amount, self.currency)}"


# one name per state on the screens: Stripe's dispute statuses and the GoCardless ones ours
DISPUTE_STATUS_SHOWN = {
    "warning_needs_response": "Inquiry: needs a response",
    "warning_under_review": "Inquiry: under review",
    "warning_closed": "Inquiry closed",
    "needs_response": "Needs a response",
    "under_review": "Under review",
    "won": "Won",
    "lost": "Lost",
    "late_failure": "Lost: Direct Debit failed after payout",
    "charged_back": "Lost: Direct Debit charged back",
}


# a dispute decided against us: the money stays out of clearing and is written off
DISPUTE_LOST = frozenset({"lost", "late_failure", "charged_back"})


class Dispute(MakerChecked):
    """A card dispute or Direct Debit charge-back. Writing a lost one off (DISPLOST) is money
    written off: its maker is whoever proposed it (empty: the provider's event), a different
    person approves (maker-checker, staff/maker_checker.py) before the journal is queued."""

    source = models.CharField(max_length=12, choices=Source)
    external_id = models.CharField(max_length=100)
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="disputes")
    amount = MoneyField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=40)
    reason = models.CharField(max_length=100, blank=True)
    raw = models.JSONField(default=dict)
    # its books (payments/services/provider_disputes.py): the AIQ journals that took the
    # disputed money (and the dispute fee) out of clearing, wrote a lost one off, and put a
    # won one back
    withdrawal_command = models.ForeignKey(
        "ledger.OutboxCommand", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    loss_command = models.ForeignKey(
        "ledger.OutboxCommand", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reinstatement_command = models.ForeignKey(
        "ledger.OutboxCommand", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # the write-off of a lost dispute was proposed (it then waits for an approver)
    loss_proposed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["source", "external_id"], name="dispute_external_unique"
            ),
            # a dispute is written off or reinstated only after its money was taken out
            models.CheckConstraint(
                condition=(Q(loss_command__isnull=True) & Q(reinstatement_command__isnull=True))
                | Q(withdrawal_command__isnull=False),
                name="dispute_books_after_withdrawal",
            ),
            # money is written off only after a second person approved it
            models.CheckConstraint(
                condition=Q(loss_command__isnull=True) | Q(approved_at__isnull=False),
                name="dispute_loss_after_approval",
            ),
            approver_is_not_maker("dispute_approver_is_not_maker"),
        ]

    def __str__(self):
        return f"{self.get_source_display()} dispute {self.external_id} ({self.status})"

    @property
    def status_shown(self) -> str:
        return DISPUTE_STATUS_SHOWN.get(self.status, self.status.replace("_", " ").capitalize())

    @property
    def loss_awaits_approval(self) -> bool:
        return bool(
            self.loss_proposed_at
            and self.approved_at is None
            and self.loss_command_id is None
            and self.reinstatement_command_id is None
            and self.status in DISPUTE_LOST
        )

    @property
    def commands(self):
        """Its journals: money taken, written off (lost), put back (won); None where not yet."""
        return (self.withdrawal_command, self.loss_command, self.reinstatement_command)

    @property
    def account_commands(self):
        """The writes on the customer's account besides those journals: the receipt taken off
        its invoice and put against the reversal (lost), the invoice paid again (won)."""
        commands = self._meta.get_field("loss_command").related_model.objects  # OutboxCommand
        own = {c.pk for c in self.commands if c is not None}
        return [
            c
            for c in commands.filter(origin_type="dispute", origin_id=self.pk).order_by("pk")
            if c.pk not in own
        ]


class WebhookEvent(models.Model):
    """Each provider event stored once (unique id) before we answer 2xx; processed after."""

    class State(models.TextChoices):
        RECEIVED = "received", "Received"
        PROCESSED = "processed", "Processed"
        IGNORED = "ignored", "Ignored (type not handled)"
        RETRY = "retry", "Waiting to retry"
        # signed, but not the shape the provider documents: kept with the reason, not retried
        FAILED = "failed", "Cannot be processed"

    source = models.CharField(max_length=12, choices=Source)
    event_id = models.CharField(max_length=100)
    event_type = models.CharField(max_length=100)
    payload = models.JSONField()
    state = models.CharField(max_length=10, choices=State, default=State.RECEIVED)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    # the provider account whose webhook address it came to (and so its company and API key);
    # empty: the installation's default address (PAYMENTS_ENTITY, docs/configuration.md)
    provider_account = models.ForeignKey(
        "payments.ProviderAccount",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "event_id"], name="webhookevent_unique")
        ]

    def __str__(self):
        return f"{self.get_source_display()} {self.event_type} {self.event_id}"


class ImportFormat(models.Model):
    """A saved column mapping for one bank's or SmartDebit's CSV/Excel layout."""

    name = models.CharField(max_length=100, unique=True)
    # a company's own layout; empty: a layout every company may use (the ready-made banks')
    entity = company_field("The company whose layout this is (empty: every company's)")
    source = models.CharField(max_length=12, choices=Source, default=Source.BANK)
    column_map = models.JSONField(
        default=dict, help_text='Our field -> the file\'s column header, e.g. {"amount": "Credit"}'
    )
    date_format = models.CharField(max_length=30, default="%d/%m/%Y")
    decimal_comma = models.BooleanField(default=False)
    currency = models.CharField(max_length=3, blank=True, help_text="When the file has none")
    header_row = models.PositiveIntegerField(
        default=0,
        help_text="Row number of the column headers as a spreadsheet shows it (1 = first row); "
        "0 = find it (the first row holding every mapped column)",
    )
    amounts_inverted = models.BooleanField(
        default=False, help_text="The file shows money in as negative (card-statement style)"
    )
    origin = models.CharField(
        max_length=300, blank=True, help_text="Where this layout came from (bank's own guide…)"
    )

    def __str__(self):
        return self.name


class ImportBatch(models.Model):
    class State(models.TextChoices):
        PREVIEWED = "previewed", "Previewed"
        IMPORTED = "imported", "Imported"
        REJECTED = "rejected", "Rejected"

    # the company whose money the file is (the statement account's, else the one chosen)
    entity = company_field("")
    # empty for self-describing files (camt, MT940, BAI2, OFX, QIF)
    import_format = models.ForeignKey(ImportFormat, null=True, blank=True, on_delete=models.PROTECT)
    file_format = models.CharField(max_length=20, blank=True, help_text="csv, camt.053, mt940…")
    statement_account = models.ForeignKey(
        StatementAccount, null=True, blank=True, on_delete=models.PROTECT, related_name="batches"
    )
    filename = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    state = models.CharField(max_length=10, choices=State, default=State.PREVIEWED)
    row_count = models.PositiveIntegerField(default=0)
    imported_count = models.PositiveIntegerField(default=0)
    duplicate_count = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    # The uploaded file between preview and confirm, in the database so that the confirm can
    # land on any web host; emptied once imported, or a day after a preview nobody confirmed,
    # so the table does not keep every statement. The upload form caps it at bank_csv.MAX_BYTES.
    content = models.BinaryField(editable=False, default=b"")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "import batches"

    def __str__(self):
        return f"{self.filename} ({self.get_state_display().lower()})"


class Statement(models.Model):
    """One statement of a bank account as the bank sent it: its period and balances, so a
    later screen can say "the bank says X, we hold Y" and overlapping statements are seen."""

    account = models.ForeignKey(
        StatementAccount, on_delete=models.PROTECT, related_name="statements"
    )
    batch = models.ForeignKey(ImportBatch, on_delete=models.PROTECT, related_name="statements")
    statement_id = models.CharField(max_length=100, blank=True, help_text="The bank's own id")
    start_date = models.DateField(null=True, blank=True)
    end_date = models.DateField(null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    opening_balance = MoneyField(null=True, blank=True)
    closing_balance = MoneyField(null=True, blank=True)
    entry_count = models.PositiveIntegerField(default=0)
    # the file's entries: money in (credits, and how many) and money out; empty for statements
    # imported before these were kept
    money_in = MoneyField(null=True, blank=True)
    money_out = MoneyField(null=True, blank=True)
    credit_count = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["account", "end_date"], name="statement_account_end")]


class DirectDebitNotice(models.Model):
    """A Bacs report line about a Direct Debit payer, kept as received: ARUDD (a collection
    returned unpaid: the payment is reversed by a compensating entry, never deleted), ADDACS
    (the payer's instruction changed or was cancelled) or AUDDIS (an instruction refused). The
    notices of a payer reference are the flag a person sees before collecting again."""

    class Kind(models.TextChoices):
        ARUDD = "arudd", "Returned unpaid (ARUDD)"
        ADDACS = "addacs", "Instruction amended or cancelled (ADDACS)"
        AUDDIS = "auddis", "Instruction refused (AUDDIS)"

    kind = models.CharField(max_length=6, choices=Kind)
    payer_reference = models.CharField(max_length=100)
    payer_name = models.CharField(max_length=200, blank=True)
    payer_account = models.CharField(max_length=70, blank=True)
    code = models.CharField(max_length=10, blank=True, help_text="Bacs reason/return code")
    description = models.CharField(max_length=200, blank=True)
    amount = MoneyField(null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    effective_date = models.DateField(null=True, blank=True)
    payment = models.ForeignKey(
        Payment, null=True, blank=True, on_delete=models.PROTECT, related_name="dd_notices"
    )
    refund = models.ForeignKey(
        "Refund", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    raw = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["payer_reference"], name="ddnotice_payer_reference")]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "payer_reference", "effective_date", "code", "amount"],
                name="ddnotice_once",
            )
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {self.payer_reference} {self.code}"


class PayerMapping(models.Model):
    """A payer (source customer id or email) that staff confirmed belongs to an AIQ customer."""

    source = models.CharField(max_length=12, choices=Source)
    payer_key = models.CharField(max_length=254, help_text="cus_... id or lower-cased email")
    customer = models.ForeignKey("ledger.Customer", on_delete=models.PROTECT)
    confirmed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "payer_key"], name="payermapping_unique")
        ]


class SettlementTerms(models.Model):
    """Early-settlement discount terms: `percent` off an invoice paid within `days` of its
    date. One row per customer with its own terms; the row without a customer is everyone
    else's default. The matcher proposes a payment short by exactly that discount as
    settling the invoice with a discount (AIQ: AllocateTransactionsWithDiscount)."""

    customer = models.OneToOneField(
        "ledger.Customer",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="settlement_terms",
        help_text="Empty: the default for every customer without terms of its own",
    )
    percent = models.DecimalField(max_digits=5, decimal_places=3)
    days = models.PositiveIntegerField()

    class Meta:
        verbose_name = "settlement discount terms"
        verbose_name_plural = "settlement discount terms"
        constraints = [
            models.CheckConstraint(
                condition=Q(percent__gt=0) & Q(percent__lt=100), name="terms_percent_0_100"
            ),
            models.CheckConstraint(condition=Q(days__gt=0), name="terms_days_gt_0"),
        ]

    def __str__(self):
        return f"{self.percent}% within {self.days} days"


class MatchRule(models.Model):
    class Kind(models.TextChoices):
        REFERENCE = "reference", "Reference found in the payment"
        PAYER_EXACT = "payer_exact", "Payer + exact amount"
        PAYER_COMBINATION = "payer_combination", "Payer + combination of invoices"
        SETTLEMENT_DISCOUNT = "settlement_discount", "Settlement discount within terms"
        TOLERANCE = "tolerance", "Within tolerance (discount or write-off)"
        OVERPAYMENT = "overpayment", "Overpayment / underpayment"

    class ToleranceAction(models.TextChoices):
        DISCOUNT = "discount", "Settlement discount"
        WRITE_OFF = "write_off", "Write-off to GL account"

    name = models.CharField(max_length=100)
    # a company's own rule; empty: a rule for every company (a company's own rules of a kind
    # replace the shared ones of that kind for its payments: payments/matching/rules.py)
    entity = company_field("The company this rule is for (empty: every company without its own)")
    kind = models.CharField(max_length=20, choices=Kind)
    order = models.PositiveIntegerField(default=100)
    enabled = models.BooleanField(default=True)
    auto_approve = models.BooleanField(default=False)
    monitor = models.BooleanField(
        default=False,
        help_text="Record on each proposal whether this rule would have auto-approved it "
        "(without approving), so the run page shows its observed precision before it is "
        "switched on",
    )
    tolerance_absolute = MoneyField(default=0)
    tolerance_percent = models.DecimalField(max_digits=6, decimal_places=3, default=0)
    tolerance_action = models.CharField(
        max_length=10, choices=ToleranceAction, default=ToleranceAction.DISCOUNT
    )
    write_off_gl_account_code = models.CharField(max_length=50, blank=True)
    max_invoices = models.PositiveIntegerField(default=6)
    max_candidates = models.PositiveIntegerField(default=40)

    class Meta:
        ordering = ["order", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(tolerance_absolute__gte=0) & Q(tolerance_percent__gte=0),
                name="matchrule_tolerance_gte_0",
            ),
        ]

    def __str__(self):
        return f"{self.order}. {self.name}"


class MatchingLease(models.Model):
    """One row: the writing matching run that holds it (payments/services/matching_lease.py).

    Two runs at once would each propose for the same unmatched payments, leaving a second set
    of open proposals beside plans the first run's auto-approval made. Runs take turns instead;
    a run whose worker died frees the lease when `until` passes.
    """

    holder = models.CharField(max_length=32, blank=True)  # the run id; "" when free
    until = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"matching run {self.holder} until {self.until}" if self.holder else "free"


# What made a proposal: a rule's kind, or another group company's invoice its reference names
# (matching proposes a cross-company receipt where the group allows them; no rule row).
CROSS_COMPANY = "cross_company"
PROPOSAL_KINDS = [*MatchRule.Kind.choices, (CROSS_COMPANY, "Another group company's invoice")]


class MatchProposal(models.Model):
    class State(models.TextChoices):
        OPEN = "open", "Open"
        ACCEPTED = "accepted", "Accepted"
        REJECTED = "rejected", "Rejected"
        SUPERSEDED = "superseded", "Superseded"

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="proposals")
    rule = models.ForeignKey(MatchRule, null=True, blank=True, on_delete=models.PROTECT)
    rule_kind = models.CharField(max_length=20, choices=PROPOSAL_KINDS)
    rank = models.PositiveIntegerField(default=1)
    confidence = models.DecimalField(max_digits=4, decimal_places=3)
    explanation = models.CharField(max_length=500)
    evidence = models.JSONField(default=dict)
    lines = models.JSONField(
        default=list, help_text='[{"invoice_id": 1, "amount": "10.00", "discount": "0.00"}]'
    )
    on_account_amount = MoneyField(default=0)
    state = models.CharField(max_length=10, choices=State, default=State.OPEN)
    run_id = models.CharField(max_length=40, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["payment", "rank"]
        indexes = [
            # a run's proposals (the run's audit page, pages by id; auto-approval's rank-1
            # look-up): without it each read scans every run's rows, a table that only grows
            models.Index(fields=["run_id", "id"], name="proposal_run"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(confidence__gte=0) & Q(confidence__lte=1),
                name="matchproposal_confidence_0_1",
            ),
        ]

    def __str__(self):
        return f"Proposal {self.rank} for payment #{self.payment_id}: {self.explanation}"


class AllocationPlan(MakerChecked):
    """Maker-checker (staff/maker_checker.py): `maker` is who last changed the lines."""

    class State(models.TextChoices):
        DRAFT = "draft", "Draft"
        AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        SENT = "sent", "Approved, on its way to AIQ"  # the payment's APPROVED
        CONFIRMED = "confirmed", "Confirmed in AIQ"  # the payment's SENT
        FAILED = "failed", "Failed in AIQ"
        NEEDS_PERSON = "needs_person", "Needs a person"
        VOID = "void", "Void"

    # The groups of states, spelled once for the queries, services and screens:
    # holds its invoices' money until AIQ has confirmed it (then the mirror shows it)
    RESERVING = (State.DRAFT, State.AWAITING_APPROVAL, State.APPROVED, State.SENT)
    # the payment's decision: reserving, or in AIQ
    LIVE = (*RESERVING, State.CONFIRMED)
    # a person may still change its lines, or reject it
    EDITABLE = (State.DRAFT, State.AWAITING_APPROVAL)
    # the plan a payment shows other systems (the API): its live one, or one that failed in AIQ
    SHOWN = (*LIVE, State.FAILED)

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="plans")
    proposal = models.ForeignKey(
        MatchProposal, null=True, blank=True, on_delete=models.PROTECT, related_name="plans"
    )
    state = models.CharField(max_length=20, choices=State, default=State.DRAFT)
    on_account_amount = MoneyField(default=0, help_text="Remainder left on the customer's account")
    customer = models.ForeignKey("ledger.Customer", on_delete=models.PROTECT)
    needs_approval = models.BooleanField(default=True)
    rejection_reason = models.TextField(blank=True)
    version = models.PositiveIntegerField(default=1)
    # the realised FX journal that counted this plan's allocations (its payout's FXR-<payout>,
    # or its own FXR-<payout>-<plan> when it was confirmed after the payout was booked):
    # each allocation's exchange difference is booked once (payments/services/provider_fx.py)
    fx_command = models.ForeignKey(
        "ledger.OutboxCommand", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(on_account_amount__gte=0), name="plan_on_account_gte_0"
            ),
            # maker-checker: nobody approves what they last changed, superusers included.
            approver_is_not_maker("plan_approver_is_not_maker"),
            # one live plan per payment at a time (one parked for a person may still reach
            # AIQ after a retry, so it stays live until it is confirmed or cancelled)
            models.UniqueConstraint(
                fields=["payment"],
                condition=Q(
                    state__in=[
                        "draft",
                        "awaiting_approval",
                        "approved",
                        "sent",
                        "confirmed",
                        "needs_person",
                    ]
                ),
                name="plan_one_live_per_payment",
            ),
        ]

    def __str__(self):
        state = self.get_state_display()
        return f"Plan #{self.pk} v{self.version} for payment #{self.payment_id} ({state})"


class AllocationPlanLineQuerySet(models.QuerySet):
    """ "Money held on an invoice" by plans, spelled once (matching, plan checks, refunds)."""

    def holding(self):
        """Lines whose plan still holds their money on the invoice: the plan is not yet
        confirmed in AIQ (then the mirror shows it) and the line was not unallocated."""
        return self.filter(plan__state__in=AllocationPlan.RESERVING, unallocated_at__isnull=True)

    def held_per_invoice(self) -> dict[int, int]:
        """invoice id -> cash + discount + write-off of these lines, in stored thousandths
        (one grouped query; no MoneyField conversion on the sum)."""
        return {invoice_id: int(held) for invoice_id, held in self.held_rows()}

    def held_rows(self):
        """held_per_invoice as a values_list queryset of (invoice id, thousandths)."""
        return (
            self.values("invoice_id")
            .annotate(
                held=Sum(
                    F("amount") + F("discount_amount") + F("write_off_amount"),
                    output_field=BigIntegerField(),
                )
            )
            .values_list("invoice_id", "held")
            .order_by()  # none: a union's parts may have no ORDER BY (SQLite)
        )


class AllocationPlanLine(models.Model):
    plan = models.ForeignKey(AllocationPlan, on_delete=models.PROTECT, related_name="lines")
    invoice = models.ForeignKey("ledger.Invoice", on_delete=models.PROTECT)
    amount = MoneyField(help_text="Cash allocated to the invoice")
    discount_amount = MoneyField(default=0)
    write_off_amount = MoneyField(default=0)
    write_off_gl_account_code = models.CharField(max_length=50, blank=True)
    # Undo is a reversing action: the line stays, its cash goes back on account.
    unallocated_at = models.DateTimeField(null=True, blank=True)
    unallocation_reason = models.TextField(blank=True)

    objects = AllocationPlanLineQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(amount__gte=0) & Q(discount_amount__gte=0) & Q(write_off_amount__gte=0),
                name="planline_amounts_gte_0",
            ),
            models.CheckConstraint(
                condition=Q(amount__gt=0) | Q(discount_amount__gt=0) | Q(write_off_amount__gt=0),
                name="planline_not_empty",
            ),
            models.CheckConstraint(
                condition=Q(write_off_amount=0) | ~Q(write_off_gl_account_code=""),
                name="planline_write_off_has_account",
            ),
            models.UniqueConstraint(fields=["plan", "invoice"], name="planline_invoice_once"),
        ]

    def __str__(self):
        return f"Plan #{self.plan_id}, invoice #{self.invoice_id}"


class Refund(MakerChecked):
    """Maker-checker (staff/maker_checker.py): `maker` is who asked for it or last changed it."""

    class Kind(models.TextChoices):
        CANCEL_INVOICE = "cancel_invoice", "Cancel/reduce unpaid invoice (credit note)"
        REFUND_INVOICE = "refund_invoice", "Refund a paid invoice"
        REFUND_ON_ACCOUNT = "refund_on_account", "Refund a payment on account"
        REFUND_CREDIT_NOTE = "refund_credit_note", "Refund a credit note's open amount"
        EXTERNAL = "external", "Refund made outside (e.g. Stripe dashboard)"

    class State(models.TextChoices):
        REQUESTED = "requested", "Awaiting approval"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        SENT = "sent", "Sent"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"
        # a step was parked in the outbox (attempts used up, a duplicate, a bad payload): a
        # person must act; a retry that confirms it completes the refund, a cancel fails it
        NEEDS_PERSON = "needs_person", "Needs a person"

    kind = models.CharField(max_length=20, choices=Kind)
    state = models.CharField(max_length=12, choices=State, default=State.REQUESTED)
    customer = models.ForeignKey("ledger.Customer", on_delete=models.PROTECT)
    payment = models.ForeignKey(
        Payment, null=True, blank=True, on_delete=models.PROTECT, related_name="refunds"
    )
    invoice = models.ForeignKey(
        "ledger.Invoice", null=True, blank=True, on_delete=models.PROTECT, related_name="refunds"
    )
    receipt = models.ForeignKey(
        "ledger.Receipt", null=True, blank=True, on_delete=models.PROTECT, related_name="refunds"
    )
    credit_note = models.ForeignKey(
        "ledger.CreditNote",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="refunds",
    )
    amount = MoneyField()
    currency = models.CharField(max_length=3)
    # where the money is paid from; empty: the receipt's bank, else the company's default
    bank_account = models.ForeignKey(
        "ledger.BankAccount", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.TextField()
    stripe_refund_id = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_gt_0"),
            approver_is_not_maker("refund_approver_is_not_maker"),
            models.UniqueConstraint(
                fields=["stripe_refund_id"],
                condition=~Q(stripe_refund_id=""),
                name="refund_stripe_id_unique",
            ),
        ]

    def __str__(self):
        amount = format_money(self.amount, self.currency)
        return f"Refund #{self.pk}: {amount} ({self.get_state_display()})"


class Unallocation(MakerChecked):
    """Undoing an allocation in AIQ (UnallocateTransactions): a reversing step, never a delete.
    Above APPROVAL_THRESHOLD a second person approves it (maker-checker); at or below it, asking
    is approving. The outbox command is queued in the approval's transaction."""

    class State(models.TextChoices):
        REQUESTED = "requested", "Awaiting approval"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"

    allocation = models.ForeignKey(
        "ledger.Allocation", on_delete=models.PROTECT, related_name="unallocations"
    )
    state = models.CharField(max_length=10, choices=State, default=State.REQUESTED)
    reason = models.TextField()
    rejection_reason = models.TextField(blank=True)
    command = models.ForeignKey(
        "ledger.OutboxCommand", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            approver_is_not_maker("unallocation_approver_is_not_maker"),
            # one undo asked for or under way per allocation
            models.UniqueConstraint(
                fields=["allocation"],
                condition=Q(state__in=["requested", "approved"]),
                name="unallocation_one_live_per_allocation",
            ),
            # approved means handed to the outbox, in the same transaction
            models.CheckConstraint(
                condition=~Q(state="approved") | Q(command__isnull=False),
                name="unallocation_approved_has_command",
            ),
        ]


# Later allocations and other receipts live in their own module (split by concept); imported
# here so Django registers the models with the payments app.
from payments.models_money_later import (  # noqa: E402, F401
    ContactAllocation,
    ContactAllocationLine,
    CrossCompanyReceipt,
    CustomerGroup,
    CustomerGroupMember,
    GroupPolicy,
    OtherReceipt,
    OtherReceiptLine,
)
from payments.models_provider import ClearingBalance, ProviderAccount  # noqa: E402, F401
