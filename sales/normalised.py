"""The one shape every invoice source produces (CSV/Excel upload, Stripe Billing, the REST API).

A source turns its own payload into a `NormalisedInvoice`; `check()` names every problem (line
by line) instead of stopping at the first, so an upload's preview can list them all. Money is
Decimal in the invoice's currency, exact to its minor unit (core.money.exact): the VAT a source
computed is kept as it is, never recomputed, so a batch invoice posts it to the cent.
"""

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from core.money import MoneyError, exact, normalise_currency

CODE_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.&/")
MAX_CODE = 50
MAX_DEFERRED_MONTHS = 60  # sales.models.MAX_DEFERRED_MONTHS (a database constraint)
DEFAULT_DEFERRED_MONTHS = (
    12  # our Customer.code column; AIQ's own limit is not documented in the references
)


def customer_code_rule(code: str) -> str | None:
    """AIQ's rule for customer codes as this product applies it: upper case letters, digits
    and - _ . & /, at most MAX_CODE characters. None when the code is fine, else why not."""
    if not code:
        return "the customer code is empty"
    if code != code.upper():
        return f"customer code {code!r} must be upper case"
    if len(code) > MAX_CODE:
        return f"customer code {code!r} is longer than {MAX_CODE} characters"
    bad = sorted(set(code) - CODE_CHARS)
    if bad:
        return f"customer code {code!r} has characters AIQ does not accept: {''.join(bad)}"
    return None


@dataclass
class NormalisedLine:
    net_amount: Decimal
    tax_amount: Decimal
    tax_code: str = ""
    description: str = ""
    item_code: str = ""
    department: str = ""
    gl_account_code: str = ""
    order_number: str = ""
    delivery_date: date | None = None
    quantity: Decimal = Decimal(1)
    # deferred revenue: earned over this many months (sales/services/deferred.py)
    deferred_months: int | None = None


@dataclass
class NormalisedPaid:
    """An already-paid order (web shop, Stripe checkout): the receipt AIQ posts with the
    invoice (PostPayAndAllocateSalesInvoice)."""

    amount: Decimal
    bank_account_code: str
    reference: str
    paid_on: date

    def problems(self, currency: str, gross: Decimal) -> list[str]:
        errors = []
        try:
            exact(self.amount, currency)
        except MoneyError as error:
            errors.append(f"paid amount: {error}")
        if self.amount != gross:
            errors.append(
                f"paid {self.amount} {currency} but the invoice is {gross} {currency}: an "
                "already-paid order must be paid in full"
            )
        if not self.bank_account_code:
            errors.append("a paid order needs the bank account it was paid into")
        if not self.reference.strip() or len(self.reference) > 100:
            errors.append("a paid order needs its payment reference (1 to 100 characters)")
        return errors


class _Totals:
    """Net, VAT and gross of a document's lines."""

    lines: list

    @property
    def net_amount(self) -> Decimal:
        return sum((line.net_amount for line in self.lines), Decimal(0))

    @property
    def tax_amount(self) -> Decimal:
        return sum((line.tax_amount for line in self.lines), Decimal(0))

    @property
    def gross_amount(self) -> Decimal:
        return self.net_amount + self.tax_amount


@dataclass
class NormalisedInvoice(_Totals):
    external_reference: str
    customer_code: str
    customer_name: str
    invoice_date: date
    currency: str
    lines: list[NormalisedLine] = field(default_factory=list)
    due_date: date | None = None
    customer_email: str = ""
    customer_address: str = ""
    customer_postcode: str = ""
    description: str = ""
    paid: NormalisedPaid | None = None
    # source rows (1-based) the invoice came from, for error messages of an upload
    rows: list[int] = field(default_factory=list)

    def check(self) -> list[str]:
        """Every reason this invoice cannot be sent; empty when it can."""
        errors = []
        if not self.external_reference or len(self.external_reference) > 100:
            errors.append("the external reference must have 1 to 100 characters")
        problem = customer_code_rule(self.customer_code)
        if problem:
            errors.append(problem)
        if not self.customer_name:
            errors.append("the customer name is empty")
        try:
            currency = normalise_currency(self.currency)
        except MoneyError as error:
            return [*errors, str(error)]
        if self.due_date and self.due_date < self.invoice_date:
            errors.append("the due date is before the invoice date")
        if not self.lines:
            errors.append("the invoice has no lines")
        errors += line_problems(self.lines, currency)
        for number, line in enumerate(self.lines, start=1):
            if line.deferred_months is not None and not (
                1 <= line.deferred_months <= MAX_DEFERRED_MONTHS
            ):
                errors.append(
                    f"line {number}: deferred revenue is released over 1 to "
                    f"{MAX_DEFERRED_MONTHS} months, not {line.deferred_months}"
                )
        if self.paid is not None:
            errors += self.paid.problems(currency, self.gross_amount)
        return errors

    def needs_item_invoice(self) -> str:
        """Why this invoice needs an item invoice (order numbers, delivery dates, item
        codes), or '' when a batch invoice carries everything it has."""
        for line in self.lines:
            if line.order_number:
                return "it has order numbers"
            if line.delivery_date:
                return "it has delivery dates"
            if line.item_code:
                return "it has item codes"
        return ""


def line_problems(lines: list[NormalisedLine], currency: str) -> list[str]:
    """What is wrong with an invoice's or credit note's lines, line by line."""
    errors = []
    for number, line in enumerate(lines, start=1):
        for name in ("net_amount", "tax_amount"):
            try:
                exact(getattr(line, name), currency)
            except MoneyError as error:
                errors.append(f"line {number} {name.replace('_', ' ')}: {error}")
        if line.net_amount <= 0:
            errors.append(f"line {number}: the net amount must be greater than zero")
        if line.tax_amount < 0:
            errors.append(f"line {number}: the VAT amount cannot be negative")
        if line.tax_amount and not line.tax_code:
            errors.append(f"line {number}: VAT without a VAT code")
    return errors


@dataclass
class NormalisedCreditNote(_Totals):
    """A credit note the source raised against one of its invoices (sales/services/
    credit_notes.py); its lines in the invoice's currency."""

    external_reference: str
    invoice_reference: str  # the credited invoice's external reference
    credit_date: date
    lines: list[NormalisedLine] = field(default_factory=list)
    reason: str = ""
    # the invoice line (its number, 1-based) each line credits; empty: line N credits the
    # invoice's line N (a source credits its own invoice line by line)
    invoice_line_numbers: list[int] = field(default_factory=list)

    def check(self, currency: str) -> list[str]:
        problems = []
        if not self.external_reference.strip():
            problems.append("the credit note has no reference")
        if len(self.external_reference) > 100:
            problems.append("the credit note's reference is longer than 100 characters")
        if not self.lines:
            problems.append("the credit note has no lines")
        return problems + line_problems(self.lines, currency)
