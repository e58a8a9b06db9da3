"""Customer statements as AIQ last reported them (GetCustomersStatement), mirrored by the pull.

One CustomerStatement per customer holds AIQ's aged balance as of `up_to`; its lines are the open
items in AIQ's order. A pull replaces a customer's statement whole (header and lines in one
transaction), so the page never shows half of one pull and half of another.
"""

from django.db import models

from core.fields import MoneyField
from ledger.models.entities import Entity
from ledger.models.master_data import Customer


class CustomerStatement(models.Model):
    entity = models.ForeignKey(Entity, on_delete=models.PROTECT)
    customer = models.OneToOneField(Customer, on_delete=models.CASCADE, related_name="statement")
    up_to = models.DateTimeField(help_text="The upTo sent to AIQ: the statement is as of then.")
    currency = models.CharField(max_length=3, help_text="The customer's (AIQ gives none).")
    balance = MoneyField(default=0, help_text="AIQ's CurrentBalance.")
    days_0_30 = MoneyField(default=0)
    days_30_60 = MoneyField(default=0)
    days_60_90 = MoneyField(default=0)
    days_90_120 = MoneyField(default=0)
    days_120_plus = MoneyField(default=0)
    future = MoneyField(default=0)

    def __str__(self):
        return f"{self.customer.code} as of {self.up_to:%d/%m/%Y %H:%M}"


class CustomerStatementLine(models.Model):
    statement = models.ForeignKey(CustomerStatement, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveIntegerField(help_text="Order in AIQ's answer.")
    aiq_transaction_id = models.IntegerField(help_text="AIQ's TransactionReference.")
    transaction_type = models.CharField(max_length=40, blank=True)
    internal_number = models.CharField(max_length=50, blank=True)
    external_reference = models.CharField(max_length=100, blank=True)
    description = models.CharField(max_length=200, blank=True)
    transaction_date = models.DateField()
    amount = MoneyField()
    outstanding_amount = MoneyField()
    running_balance = MoneyField(
        help_text="Sum of the outstanding amounts up to this line; the last equals the balance."
    )

    class Meta:
        ordering = ("statement", "position")
        constraints = [
            models.UniqueConstraint(
                fields=["statement", "position"], name="statementline_position_unique"
            )
        ]

    def __str__(self):
        return f"{self.internal_number or self.aiq_transaction_id}: {self.amount}"
