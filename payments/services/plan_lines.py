"""Plan lines: their input shape and the checks every plan change runs under row locks.

See payments/services/plans.py for the invariants and the lock order.
"""

from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import ValidationError

from core.money import MoneyError, exact, format_money
from core.prepared import prepared
from ledger.companies import approval_threshold
from ledger.models import GLAccount, Invoice
from payments.matching.index import OPEN_STATUSES
from payments.models import AllocationPlan, AllocationPlanLine, Payment
from payments.services.contact_allocations import held_on_invoices

ZERO = Decimal("0")


class PlanRefused(ValidationError):
    """A plan change that would break a rule; the message says which, for a person to read."""


@dataclass(frozen=True)
class LineInput:
    invoice_id: int
    amount: Decimal
    discount_amount: Decimal = ZERO
    write_off_amount: Decimal = ZERO
    write_off_gl_account_code: str = ""

    @classmethod
    def coerce(cls, value) -> "LineInput":
        if isinstance(value, cls):
            return value
        if isinstance(value, AllocationPlanLine):
            value = {
                "invoice_id": value.invoice_id,
                "amount": value.amount,
                "discount_amount": value.discount_amount,
                "write_off_amount": value.write_off_amount,
                "write_off_gl_account_code": value.write_off_gl_account_code,
            }
        try:
            return cls(
                invoice_id=int(value["invoice_id"]),
                amount=Decimal(str(value.get("amount") or 0)),
                discount_amount=Decimal(str(value.get("discount_amount") or 0)),
                write_off_amount=Decimal(str(value.get("write_off_amount") or 0)),
                write_off_gl_account_code=str(value.get("write_off_gl_account_code") or ""),
            )
        except (KeyError, TypeError, ValueError, ArithmeticError):
            raise PlanRefused(f"Not a valid plan line: {value!r}.") from None


def amount_text(amount: Decimal, currency: str) -> str:
    """Outbox payload amounts at the currency's precision ("199.40", not "199.400")."""
    return str(exact(amount, currency))


def available_amount(payment: Payment) -> Decimal:
    return payment.amount - payment.amount_refunded


def reserved_elsewhere(invoice_ids, *, exclude_plan_id=None) -> dict[int, Decimal]:
    """What other not-yet-confirmed live plans, later allocations and cross-company receipts
    hold on these invoices (one query, compiled once per shape: core/prepared.py)."""
    held: dict[int, Decimal] = {}
    for invoice_id, thousandths in _held_rows(list(invoice_ids), exclude_plan_id):
        held[invoice_id] = held.get(invoice_id, ZERO) + Decimal(int(thousandths)).scaleb(-3)
    return held


@prepared
def _held_rows(invoice_ids, exclude_plan_id):
    rows = AllocationPlanLine.objects.holding().filter(invoice_id__in=invoice_ids)
    if exclude_plan_id is not None:
        rows = rows.exclude(plan_id=exclude_plan_id)
    return rows.held_rows().union(*held_on_invoices(invoice_ids), all=True)


def check_lines(payment: Payment, lines: list[LineInput], customer_id, plan_id=None, invoices=None):
    """Validate lines against locked invoices; returns (customer_id, invoices by id, on account).
    `invoices`: the lines' invoices by id when the caller locked them already (locked_invoices)."""
    ids = [line.invoice_id for line in lines]
    if invoices is None:
        invoices = {row.pk: row for row in locked_invoices(Invoice.objects.filter(pk__in=ids))}
    held = reserved_elsewhere(ids, exclude_plan_id=plan_id)
    codes = {line.write_off_gl_account_code for line in lines if line.write_off_amount} - {""}
    gl_codes = (
        set(
            GLAccount.objects.filter(entity_id=payment.entity_id, code__in=codes).values_list(
                "code", flat=True
            )
        )
        if codes
        else set()
    )
    customer_id, on_account = validate_lines(payment, lines, customer_id, invoices, held, gl_codes)
    return customer_id, invoices, on_account


def locked_invoices(rows):
    """These invoices, to be locked FOR UPDATE in id order (see module docstring)."""
    return rows.select_for_update().order_by("pk")


def validate_lines(
    payment: Payment,
    lines: list[LineInput],
    customer_id,
    invoices: dict,
    held: dict[int, Decimal],
    gl_codes,
):
    """The checks of check_lines over rows already locked and read: the invoices by id, what
    other live plans hold on them, the payment's entity's known GL codes among the lines'.
    Returns (customer_id, on account) or raises PlanRefused; reads nothing from the database,
    so a bulk caller can check many plans against one chunk's locked rows."""
    currency = payment.currency
    ids = [line.invoice_id for line in lines]
    if len(set(ids)) != len(ids):
        raise PlanRefused("An invoice appears twice in the plan; use one line per invoice.")
    for line in lines:
        invoice = invoices.get(line.invoice_id)
        if invoice is None:
            raise PlanRefused(f"Invoice #{line.invoice_id} does not exist.")
        label = str(invoice)
        if invoice.entity_id != payment.entity_id:
            raise PlanRefused(f"Invoice {label} belongs to another company.")
        if invoice.currency != currency:
            raise PlanRefused(
                f"Invoice {label} is in {invoice.currency}, the payment in {currency}: "
                "currencies must match."
            )
        if invoice.status not in OPEN_STATUSES:
            raise PlanRefused(f"Invoice {label} is not open ({invoice.get_status_display()}).")
        customer_id = customer_id or invoice.customer_id
        if invoice.customer_id != customer_id:
            raise PlanRefused(f"Invoice {label} belongs to another customer than the plan's.")
        try:
            for value in (line.amount, line.discount_amount, line.write_off_amount):
                exact(value, currency)
        except MoneyError as error:
            raise PlanRefused(f"Invoice {label}: {error}") from None
        if min(line.amount, line.discount_amount, line.write_off_amount) < 0:
            raise PlanRefused(f"Invoice {label}: amounts cannot be negative.")
        settles = line_settles(line)
        if settles == 0:
            raise PlanRefused(f"Invoice {label}: the line allocates nothing.")
        if line.discount_amount and not line.amount:
            raise PlanRefused(f"Invoice {label}: a discount is given with a cash allocation.")
        if line.write_off_amount:
            code = line.write_off_gl_account_code
            if not code:
                raise PlanRefused(f"Invoice {label}: a write-off needs a GL account.")
            if code not in gl_codes:
                raise PlanRefused(f"Invoice {label}: GL account {code} is not known.")
        open_amount = invoice.outstanding_amount - held.get(invoice.pk, ZERO)
        if settles > open_amount:
            held_here = held.get(invoice.pk, ZERO)
            raise PlanRefused(
                f"Invoice {label} has {format_money(max(open_amount, ZERO), currency)} open"
                + (
                    f" ({format_money(invoice.outstanding_amount, currency)} outstanding, "
                    f"{format_money(held_here, currency)} held by other plans)"
                    if held_here
                    else ""
                )
                + f"; the plan settles {format_money(settles, currency)}."
            )
    allocated = sum((line.amount for line in lines), ZERO)
    on_account = available_amount(payment) - allocated
    if on_account < 0:
        raise PlanRefused(
            f"The plan allocates {format_money(allocated, currency)}, more than the "
            f"payment's {format_money(available_amount(payment), currency)}."
        )
    if customer_id is None:
        raise PlanRefused("A plan with no invoices needs a customer to hold the money on account.")
    return customer_id, on_account


def line_settles(line: LineInput) -> Decimal:
    """How much of the invoice's open amount the line uses up."""
    return line.amount + line.discount_amount + line.write_off_amount


def lines_need_approval(payment: Payment, lines: list[LineInput]) -> bool:
    """Maker-checker: above the threshold, and every discount or write-off, needs a checker."""
    return bool(approval_reasons(payment, lines))


def approval_reasons(payment: Payment, lines, invoices: dict | None = None) -> list[str]:
    """Why a second person must approve these lines, in a clerk's words (empty: nobody
    needs to). The one place the approval rule is written; `invoices` by id names them."""
    currency = payment.currency
    reasons = []
    available = available_amount(payment)
    # the company's own, else the setting (its row as the payment holds it, if read already)
    loaded = payment.entity if Payment.entity.is_cached(payment) else None
    threshold = approval_threshold(payment.entity_id, entity=loaded)
    if available > threshold:
        reasons.append(
            f"{format_money(available, currency)} is above the approval threshold of "
            f"{format_money(threshold, currency)}"
        )
    for line in lines:
        line = LineInput.coerce(line)
        name = (invoices or {}).get(line.invoice_id) or f"invoice #{line.invoice_id}"
        if line.discount_amount:
            reasons.append(
                f"settlement discount of {format_money(line.discount_amount, currency)} on {name}"
            )
        if line.write_off_amount:
            reasons.append(
                f"write-off of {format_money(line.write_off_amount, currency)} on {name} "
                f"to GL account {line.write_off_gl_account_code}"
            )
    return reasons


def plan_snapshot(plan: AllocationPlan) -> dict:
    return snapshot_of(
        state=plan.state,
        version=plan.version,
        on_account=plan.on_account_amount,
        lines=plan.lines.order_by("invoice_id"),
    )


def snapshot_of(*, state: str, version: int, on_account: Decimal, lines) -> dict:
    """plan_snapshot from values in hand: lines sorted by invoice id, amounts as stored."""
    return {
        "state": state,
        "version": version,
        "on_account": on_account,
        "lines": [
            {
                "invoice_id": line.invoice_id,
                "amount": line.amount,
                "discount": line.discount_amount,
                "write_off": line.write_off_amount,
                "gl": line.write_off_gl_account_code,
            }
            for line in lines
        ],
    }


def write_lines(plan: AllocationPlan, lines: list[LineInput]) -> None:
    AllocationPlanLine.objects.bulk_create(
        [
            AllocationPlanLine(
                plan=plan,
                invoice_id=line.invoice_id,
                amount=line.amount,
                discount_amount=line.discount_amount,
                write_off_amount=line.write_off_amount,
                write_off_gl_account_code=line.write_off_gl_account_code,
            )
            for line in lines
        ]
    )
