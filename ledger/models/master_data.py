"""AIQ's master data as mirrored: customers, GL accounts, bank accounts, tax codes, departments."""

from django.db import models
from django.db.models import Q
from django.db.models.functions import Upper

from core.fields import MoneyField
from ledger.models.entities import SyncedModel


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
