"""Money in, matching and review.

One normalised Payment per external payment (unique per source), the raw payload kept as
received. Matching produces MatchProposals; staff turn them into AllocationPlans, which a
second person approves (maker-checker) before the outbox writes them to AIQ.
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Upper

from core.fields import MoneyField
from staff.maker_checker import MakerChecked, approver_is_not_maker


class Source(models.TextChoices):
    STRIPE = "stripe", "Stripe"
    GOCARDLESS = "gocardless", "GoCardless"
    SMARTDEBIT = "smartdebit", "SmartDebit"
    BANK = "bank", "Bank transfer"


class Payout(models.Model):
    source = models.CharField(max_length=12, choices=Source)
    external_id = models.CharField(max_length=100)
    amount = MoneyField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=20, blank=True)
    arrival_date = models.DateField(null=True, blank=True)
    raw = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "external_id"], name="payout_external_unique")
        ]

    def __str__(self):
        return f"{self.get_source_display()} payout {self.external_id}"


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
        APPROVED = "approved", "Approved"
        SENT = "sent", "Sent to AIQ"
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
    customer = models.ForeignKey(
        "ledger.Customer", null=True, blank=True, on_delete=models.PROTECT, related_name="payments"
    )
    payout = models.ForeignKey(
        Payout, null=True, blank=True, on_delete=models.PROTECT, related_name="payments"
    )
    receipt = models.ForeignKey(
        "ledger.Receipt", null=True, blank=True, on_delete=models.PROTECT, related_name="payments"
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
        return f"{self.get_source_display()} {self.external_id} {self.amount} {self.currency}"


class Fee(models.Model):
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="fees")
    kind = models.CharField(max_length=40)
    description = models.CharField(max_length=200, blank=True)
    amount = MoneyField()
    currency = models.CharField(max_length=3)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(amount__gte=0), name="fee_amount_gte_0")]


class Dispute(models.Model):
    source = models.CharField(max_length=12, choices=Source)
    external_id = models.CharField(max_length=100)
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="disputes")
    amount = MoneyField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=40)
    reason = models.CharField(max_length=100, blank=True)
    raw = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["source", "external_id"], name="dispute_external_unique"
            )
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

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "event_id"], name="webhookevent_unique")
        ]


class ImportFormat(models.Model):
    """A saved column mapping for one bank's or SmartDebit's CSV/Excel layout."""

    name = models.CharField(max_length=100, unique=True)
    source = models.CharField(max_length=12, choices=Source, default=Source.BANK)
    column_map = models.JSONField(
        default=dict, help_text='Our field -> the file\'s column header, e.g. {"amount": "Credit"}'
    )
    date_format = models.CharField(max_length=30, default="%d/%m/%Y")
    decimal_comma = models.BooleanField(default=False)
    currency = models.CharField(max_length=3, blank=True, help_text="When the file has none")

    def __str__(self):
        return self.name


class ImportBatch(models.Model):
    class State(models.TextChoices):
        PREVIEWED = "previewed", "Previewed"
        IMPORTED = "imported", "Imported"
        REJECTED = "rejected", "Rejected"

    import_format = models.ForeignKey(ImportFormat, on_delete=models.PROTECT)
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


class MatchRule(models.Model):
    class Kind(models.TextChoices):
        REFERENCE = "reference", "Reference found in the payment"
        PAYER_EXACT = "payer_exact", "Payer + exact amount"
        PAYER_COMBINATION = "payer_combination", "Payer + combination of invoices"
        TOLERANCE = "tolerance", "Within tolerance (discount or write-off)"
        OVERPAYMENT = "overpayment", "Overpayment / underpayment"

    class ToleranceAction(models.TextChoices):
        DISCOUNT = "discount", "Settlement discount"
        WRITE_OFF = "write_off", "Write-off to GL account"

    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=20, choices=Kind)
    order = models.PositiveIntegerField(default=100)
    enabled = models.BooleanField(default=True)
    auto_approve = models.BooleanField(default=False)
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


class MatchProposal(models.Model):
    class State(models.TextChoices):
        OPEN = "open", "Open"
        ACCEPTED = "accepted", "Accepted"
        REJECTED = "rejected", "Rejected"
        SUPERSEDED = "superseded", "Superseded"

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="proposals")
    rule = models.ForeignKey(MatchRule, null=True, blank=True, on_delete=models.PROTECT)
    rule_kind = models.CharField(max_length=20, choices=MatchRule.Kind)
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


class AllocationPlan(MakerChecked):
    """Maker-checker (staff/maker_checker.py): `maker` is who last changed the lines."""

    class State(models.TextChoices):
        DRAFT = "draft", "Draft"
        AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        SENT = "sent", "Sent to AIQ"
        CONFIRMED = "confirmed", "Confirmed in AIQ"
        FAILED = "failed", "Failed in AIQ"
        NEEDS_PERSON = "needs_person", "Needs a person"
        VOID = "void", "Void"

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


class Refund(MakerChecked):
    """Maker-checker (staff/maker_checker.py): `maker` is who asked for it or last changed it."""

    class Kind(models.TextChoices):
        CANCEL_INVOICE = "cancel_invoice", "Cancel/reduce unpaid invoice (credit note)"
        REFUND_INVOICE = "refund_invoice", "Refund a paid invoice"
        REFUND_ON_ACCOUNT = "refund_on_account", "Refund a payment on account"
        EXTERNAL = "external", "Refund made outside (e.g. Stripe dashboard)"

    class State(models.TextChoices):
        REQUESTED = "requested", "Awaiting approval"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        SENT = "sent", "Sent"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"

    kind = models.CharField(max_length=20, choices=Kind)
    state = models.CharField(max_length=10, choices=State, default=State.REQUESTED)
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
