"""Receipts, journals and allocations: the money movements AIQ holds against invoices."""

from django.db import models
from django.db.models import F, Q

from core.fields import MoneyField
from ledger.models.entities import SyncedModel
from ledger.models.invoices import CreditNote, Invoice
from ledger.models.master_data import BankAccount, Customer


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
