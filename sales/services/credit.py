"""Credit check before selling: the customer's balance and credit limit as AIQ reports them
(GetAccountBalanceInformation, one call for every customer of a submission) and the overdue
amount from the mirror (open invoices past their due date, as the last pull left them).

Over the limit (balance + what this submission adds > credit limit, when a limit is set) or
anything overdue with a limit set: the entity's credit action applies — warn (queued, the
figures noted), hold (waits for an approver, figures shown) or refuse (never sent).
"""

from datetime import datetime
from decimal import Decimal

from django.db.models import Sum
from django.utils import timezone

from core.money import format_money
from ledger.aiq.client import AiqClient
from ledger.aiq.results import as_decimal, get
from ledger.models import Customer, Entity, Invoice
from sales.models import CreditAction, SalesInvoice, SalesSettings

State = SalesInvoice.State


def aiq_balances(entity: Entity, customers: list[Customer]) -> dict[str, dict]:
    """AIQ's AccountBalanceInformation by customer code: of the given accounts when the mirror
    knows all their ids, else of every account (one call either way), which also tells which
    customers AIQ does not have yet."""
    ids = sorted({c.aiq_account_id for c in customers if c.aiq_account_id})
    if not customers:
        return {}
    client = AiqClient.for_entity(entity)
    now = timezone.now()
    at = datetime(now.year, now.month, now.day, 23, 59, 59)
    if len(ids) == len(customers):
        rows = client.get_account_balance_information(at=at, account_ids=ids)
    else:
        rows = client.get_account_balance_information(at=at)
    return {
        (get(r, "AccountCode") or "").upper(): r
        for r in rows
        if get(r, "AccountType") in (None, "Customer")
    }


def _overdue(entity: Entity, customers: list[Customer]) -> dict[int, Decimal]:
    today = timezone.localdate()
    rows = (
        Invoice.objects.filter(
            entity=entity,
            customer__in=customers,
            due_date__lt=today,
            outstanding_amount__gt=0,
        )
        .values("customer_id")
        .annotate(total=Sum("outstanding_amount"))
    )
    return {r["customer_id"]: r["total"] for r in rows}


def credit_check(
    entity: Entity,
    config: SalesSettings,
    rows: list[SalesInvoice],
    customers: dict[str, Customer],
    balances: dict[str, dict],
) -> None:
    """Set state/held_reason/credit_figures on rows (unsaved): held or refused when the
    customer is over its limit or has overdue invoices, per the entity's credit action."""
    if not rows:
        return
    involved = [customers[code] for code in {r.customer_code for r in rows}]
    overdue = _overdue(entity, [c for c in involved if c.pk])
    adding: dict[str, Decimal] = {}
    # rows not stored yet (pk None) keep their order: the sort is stable
    for row in sorted(rows, key=lambda r: (r.invoice_date, r.pk is None, r.pk or 0)):
        customer = customers[row.customer_code]
        info = balances.get(row.customer_code)
        if info is None:
            continue  # new in AIQ: no balance, no limit
        limit = as_decimal(get(info, "CreditLimit") or 0)
        if limit <= 0:
            continue
        balance = as_decimal(get(info, "Balance") or 0)
        adding[row.customer_code] = adding.get(row.customer_code, Decimal(0)) + row.gross_amount
        after = balance + adding[row.customer_code]
        late = overdue.get(customer.pk, Decimal(0))
        figures = {
            "balance": str(balance),
            "credit_limit": str(limit),
            "overdue": str(late),
            "after_invoice": str(after),
            "currency": get(info, "CurrencyCode") or row.currency,
        }
        row.credit_figures = figures
        reasons = []
        code = figures["currency"]

        def shown(amount, code=code) -> str:
            return format_money(amount, code)

        if after > limit:
            reasons.append(
                f"balance {shown(balance)} + {shown(adding[row.customer_code])} = "
                f"{shown(after)} is over the credit limit {shown(limit)}"
            )
        if late > 0:
            reasons.append(f"{shown(late)} is overdue")
        if not reasons:
            continue
        text = f"{row.customer_code}: " + "; ".join(reasons) + "."
        if config.credit_action == CreditAction.WARN:
            row.held_reason = "Warning only: " + text
        elif config.credit_action == CreditAction.REFUSE:
            row.state = State.REFUSED
            row.held_reason = text
        else:
            row.state = State.HELD_CREDIT
            row.held_reason = text
            adding[row.customer_code] -= row.gross_amount  # held: not added to the balance yet
