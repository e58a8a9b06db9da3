"""Money that is already in AIQ, allocated later, and money that is not a customer's.

- ContactAllocation (Sage `contact_allocations`, AIQ `AllocateTransactions`): money a receipt
  left on account, or a credit note's open amount, allocated to one or more invoices after
  the fact. One credit side (the receipt or the credit note), one or more invoices; the signed
  amounts sum to zero (the credit side negative), so the credit side's amount is the lines'
  total.
- OtherReceipt (Sage `other_payments` OTHER_RECEIPT, AIQ
  `SaveSundryReceiptPaymentsGetBackTransactionIDs`): money into a bank account booked straight
  to a GL account, with VAT where it applies (interest, a grant, a transfer, or an unidentified
  payment parked on the suspense account). One line per GL account; each line is one AIQ
  sundry receipt.

- A later allocation may pay the invoices of another customer of the same group (a parent
  paying for its subsidiary: CustomerGroup): `transfer_to` is that customer. AIQ allocates only
  within one account, so the money moves first: a sales debit journal on the paying customer
  (allocated against its receipt or credit note) and a sales credit journal on the customer
  paid for (allocated against its invoices), both to the transfer GL account, which they leave
  at zero. Always approved by a second person.

Both are decided by a maker and, above APPROVAL_THRESHOLD, approved by somebody else
(the approver is never the maker: a database constraint), then written to AIQ through the
outbox, one command per AIQ write with a deterministic external reference.
"""

from django.db import models
from django.db.models import F, Q

from core.fields import MoneyField
from staff.maker_checker import MakerChecked, approver_is_not_maker


class LaterState(models.TextChoices):
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    REJECTED = "rejected", "Rejected"
    SENT = "sent", "Approved, on its way to AIQ"  # as a plan says it
    CONFIRMED = "confirmed", "Confirmed in AIQ"
    FAILED = "failed", "Failed in AIQ"
    # a write to AIQ was parked (attempts used up, a duplicate, a bad payload): a person must
    # look; it stays live (a retry that confirms it confirms the row, a cancel fails it)
    NEEDS_PERSON = "needs_person", "Needs a person"


# states that hold money (what they allocate or book is not available to anything else)
HOLDING_STATES = (LaterState.AWAITING_APPROVAL, LaterState.SENT, LaterState.NEEDS_PERSON)


class LaterDecision(MakerChecked):
    """What a maker decided, and who approved it (the approver is never the maker:
    staff/maker_checker.py)."""

    State = LaterState

    state = models.CharField(max_length=20, choices=LaterState)
    needs_approval = models.BooleanField(default=False)
    rejection_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class CustomerGroup(models.Model):
    """Customers of one company that may pay each other's invoices (a parent and its
    subsidiaries): money of one may be allocated to another's invoices, with approval."""

    entity = models.ForeignKey("ledger.Entity", on_delete=models.PROTECT)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["entity", "name"], name="customergroup_name_once")
        ]

    def __str__(self):
        return self.name


class CustomerGroupMember(models.Model):
    group = models.ForeignKey(CustomerGroup, on_delete=models.PROTECT, related_name="members")
    customer = models.OneToOneField(
        "ledger.Customer", on_delete=models.PROTECT, related_name="group_membership"
    )

    def __str__(self):
        return f"{self.customer_id} in {self.group}"


class ContactAllocation(LaterDecision):
    entity = models.ForeignKey("ledger.Entity", on_delete=models.PROTECT)
    customer = models.ForeignKey("ledger.Customer", on_delete=models.PROTECT)
    # another customer of the same group whose invoices this money pays (null: the credit's
    # own customer's invoices); the money moves by a pair of journals first
    transfer_to = models.ForeignKey(
        "ledger.Customer",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    receipt = models.ForeignKey(
        "ledger.Receipt",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="later_allocations",
    )
    credit_note = models.ForeignKey(
        "ledger.CreditNote",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="later_allocations",
    )
    amount = MoneyField(help_text="What the credit side gives: the lines' total")
    currency = models.CharField(max_length=3)
    allocation_date = models.DateField()

    class Meta:
        indexes = [models.Index(fields=["-updated_at", "-id"], name="contactalloc_updated")]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="contactalloc_amount_gt_0"),
            models.CheckConstraint(
                condition=(Q(receipt__isnull=True) & Q(credit_note__isnull=False))
                | (Q(receipt__isnull=False) & Q(credit_note__isnull=True)),
                name="contactalloc_one_credit_side",
            ),
            approver_is_not_maker("contactalloc_approver_is_not_maker"),
            # a transfer to another customer is always approved by a second person
            models.CheckConstraint(
                condition=Q(transfer_to__isnull=True) | Q(needs_approval=True),
                name="contactalloc_transfer_needs_approval",
            ),
            models.CheckConstraint(
                condition=~Q(transfer_to=F("customer")), name="contactalloc_transfer_to_other"
            ),
        ]

    def __str__(self):
        return f"allocation #{self.pk}"

    @property
    def credit_side(self):
        return self.receipt or self.credit_note


class ContactAllocationLine(models.Model):
    allocation = models.ForeignKey(
        ContactAllocation, on_delete=models.PROTECT, related_name="lines"
    )
    invoice = models.ForeignKey("ledger.Invoice", on_delete=models.PROTECT, related_name="+")
    amount = MoneyField()

    class Meta:
        ordering = ["allocation", "invoice_id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="contactallocline_amount_gt_0"),
            models.UniqueConstraint(
                fields=["allocation", "invoice"], name="contactallocline_invoice_once"
            ),
        ]


class OtherReceipt(LaterDecision):
    """Money into or out of a bank account booked straight to GL accounts, with VAT (Sage's
    other_payments). Amounts are kept positive; `kind` says which way the money went."""

    class Purpose(models.TextChoices):
        OTHER = "other", "Other receipt"
        SUSPENSE = "suspense", "Suspense account"

    class Kind(models.TextChoices):
        # Sage's transaction_type_id of other_payments
        OTHER_RECEIPT = "OTHER_RECEIPT", "Other receipt (money in)"
        OTHER_PAYMENT = "OTHER_PAYMENT", "Other payment (money out)"
        OTHER_RECEIPT_REFUND = "OTHER_RECEIPT_REFUND", "Other receipt refunded (money out)"
        OTHER_PAYMENT_REFUND = "OTHER_PAYMENT_REFUND", "Other payment refunded (money in)"

    MONEY_OUT = (Kind.OTHER_PAYMENT, Kind.OTHER_RECEIPT_REFUND)

    entity = models.ForeignKey("ledger.Entity", on_delete=models.PROTECT)
    purpose = models.CharField(max_length=10, choices=Purpose, default=Purpose.OTHER)
    kind = models.CharField(max_length=20, choices=Kind, default=Kind.OTHER_RECEIPT)
    payment = models.ForeignKey(
        "payments.Payment",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="other_receipts",
        help_text="The payment this books, when it came in through the app",
    )
    customer = models.ForeignKey(
        "ledger.Customer",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Optional contact (Sage contact_id)",
    )
    bank_account = models.ForeignKey("ledger.BankAccount", on_delete=models.PROTECT)
    receipt_date = models.DateField()
    reference = models.CharField(max_length=25, blank=True)
    description = models.CharField(max_length=250)
    total_amount = MoneyField()
    currency = models.CharField(max_length=3)

    class Meta:
        indexes = [models.Index(fields=["-updated_at", "-id"], name="otherreceipt_updated")]
        constraints = [
            models.CheckConstraint(condition=Q(total_amount__gt=0), name="otherreceipt_total_gt_0"),
            # one live booking per payment: a payment parked twice would be in AIQ twice
            models.UniqueConstraint(
                fields=["payment"],
                condition=Q(payment__isnull=False)
                & Q(state__in=["awaiting_approval", "sent", "confirmed"]),
                name="otherreceipt_one_live_per_payment",
            ),
            approver_is_not_maker("otherreceipt_approver_is_not_maker"),
            # money out is never a payment that came in, nor parked on suspense
            models.CheckConstraint(
                condition=Q(kind__in=["OTHER_RECEIPT", "OTHER_PAYMENT_REFUND"])
                | (Q(payment__isnull=True) & Q(purpose="other")),
                name="otherreceipt_money_out_alone",
            ),
        ]

    @property
    def money_out(self) -> bool:
        return self.kind in self.MONEY_OUT

    def __str__(self):
        return f"{'other payment' if self.money_out else 'other receipt'} #{self.pk}"


class OtherReceiptLine(models.Model):
    receipt = models.ForeignKey(OtherReceipt, on_delete=models.PROTECT, related_name="lines")
    line_number = models.PositiveIntegerField()
    gl_account_code = models.CharField(max_length=50)
    tax_code = models.CharField(max_length=20, blank=True)
    tax_rate = models.DecimalField(max_digits=7, decimal_places=4, default=0)
    net_amount = MoneyField()
    tax_amount = MoneyField(default=0)
    total_amount = MoneyField()
    description = models.CharField(max_length=250, blank=True)

    class Meta:
        ordering = ["receipt", "line_number"]
        constraints = [
            models.UniqueConstraint(
                fields=["receipt", "line_number"], name="otherreceiptline_number_unique"
            ),
            models.CheckConstraint(
                condition=Q(total_amount=F("net_amount") + F("tax_amount")),
                name="otherreceiptline_total_is_net_plus_tax",
            ),
            models.CheckConstraint(
                condition=Q(net_amount__gt=0) & Q(tax_amount__gte=0),
                name="otherreceiptline_amounts",
            ),
        ]


class GroupPolicy(models.Model):
    """The group's rules across its AIQ companies: one row (pk 1), changed only through
    payments/services/cross_company.py: group_policy_set (audited)."""

    cross_company_receipts = models.BooleanField(
        default=False,
        help_text="A payment into one group company that names another group company's "
        "invoice may be received there through AIQ's intercompany accounts",
    )
    cross_company_auto_approve = models.BooleanField(
        default=False,
        help_text="Matching may approve a cross-company receipt without a person, only where "
        "the payment names the invoice by its exact reference for exactly its open amount "
        "(and cross-company receipts are allowed)",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "group policy"
        constraints = [models.CheckConstraint(condition=Q(pk=1), name="grouppolicy_one_row")]

    def __str__(self):
        return "group policy"


class CrossCompanyReceipt(LaterDecision):
    """Money that arrived in one group company (`entity`, the payment's) for another group
    company's customer invoice (`invoice`, of `invoice.entity`). AIQ keeps each company's
    books apart and allocates only within one account, so two companies' entries are made
    (payments/services/cross_company.py): in the receiving company a sales receipt into the
    bank the money is in, on the customer account that stands for the other company there
    (AIQ's intercompany connection: `intercompany_customer_code`), left on account (the
    receiving company now owes the other); in the invoice's company a sales credit journal
    on the paying customer to the intercompany GL account (`gl_account_code`: owed by the
    receiving company), allocated against the invoice. Approved by a second person, unless
    matching approved it under the group's policy (GroupPolicy.cross_company_auto_approve: the
    exact reference and amount; no maker then)."""

    entity = models.ForeignKey("ledger.Entity", on_delete=models.PROTECT, related_name="+")
    payment = models.ForeignKey(
        "payments.Payment", on_delete=models.PROTECT, related_name="cross_company_receipts"
    )
    invoice = models.ForeignKey("ledger.Invoice", on_delete=models.PROTECT, related_name="+")
    connection = models.ForeignKey(
        "ledger.InterCompanyConnection", on_delete=models.PROTECT, related_name="+"
    )
    intercompany_customer_code = models.CharField(max_length=50)
    bank_account = models.ForeignKey(
        "ledger.BankAccount", on_delete=models.PROTECT, related_name="+"
    )
    gl_account_code = models.CharField(max_length=50)
    amount = MoneyField()
    currency = models.CharField(max_length=3)
    receipt_date = models.DateField()

    class Meta:
        indexes = [models.Index(fields=["-updated_at", "-id"], name="crossreceipt_updated")]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="crossreceipt_amount_gt_0"),
            # money moved between companies waits for a second person, unless the system
            # (matching, under the group's policy) approved it
            models.CheckConstraint(
                condition=Q(needs_approval=True) | Q(maker__isnull=True),
                name="crossreceipt_needs_approval",
            ),
            # one live receipt per payment: the money would be in AIQ twice
            models.UniqueConstraint(
                fields=["payment"],
                condition=Q(state__in=["awaiting_approval", "sent", "confirmed", "needs_person"]),
                name="crossreceipt_one_live_per_payment",
            ),
            approver_is_not_maker("crossreceipt_approver_is_not_maker"),
        ]

    def __str__(self):
        return f"cross-company receipt #{self.pk}"
