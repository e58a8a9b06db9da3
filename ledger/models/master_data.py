"""AIQ's master data as mirrored: customers, suppliers, GL accounts, bank accounts, tax codes, departments
(BI codes) and the analysis dimensions they are coded on."""

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


class Supplier(SyncedModel):
    """An AIQ supplier (GetSupplierList, GetSupplier), mirrored so a purchase invoice is
    checked before it is queued: the code exists, the supplier is active, its currency is
    the invoice's. AIQ users set suppliers up in AIQ; the product never creates one."""

    code = models.CharField(max_length=50, help_text="AIQ supplier code (upper case).")
    name = models.CharField(max_length=200)
    currency = models.CharField(max_length=3)
    aiq_account_id = models.IntegerField(null=True, blank=True)
    active = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["entity", "code"], name="supplier_code_unique"),
            models.CheckConstraint(condition=Q(code=Upper("code")), name="supplier_code_upper"),
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


class AnalysisDimension(SyncedModel):
    """One of AIQ's (up to six) BI dimensions (GetAnalysisDimensionSetup): e.g. Region, with
    its codes. A department's AnalysisCodeN is a code of dimension N."""

    position = models.PositiveSmallIntegerField(help_text="1 to 6: AnalysisCodeN of a department")
    code = models.CharField(max_length=50)
    description = models.CharField(max_length=200, blank=True)
    # [{"code", "description"}] as AIQ lists them
    codes = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["entity", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["entity", "position"], name="analysis_dimension_position_unique"
            ),
            models.CheckConstraint(
                condition=Q(position__gte=1) & Q(position__lte=6),
                name="analysis_dimension_position_1_to_6",
            ),
        ]

    def __str__(self):
        return f"{self.position}. {self.description or self.code}"


class Department(SyncedModel):
    """A BI code (AIQ calls them departments). Retired = not active: AIQ keeps the code on old
    lines, and no new line may carry it."""

    department_id = models.CharField(max_length=50, help_text="AIQ DepartmentID")
    name = models.CharField(max_length=200)
    bi_code = models.CharField(max_length=50, blank=True, help_text="Business intelligence code")
    # AnalysisCode1..6 as AIQ gives them ("" where a dimension has no code)
    analysis_codes = models.JSONField(default=list, blank=True)
    active = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["entity", "department_id"], name="department_id_unique"
            ),
        ]

    def __str__(self):
        return f"{self.department_id} {self.name}"

    @property
    def state_text(self) -> str:
        return "Active" if self.active else "Retired"
