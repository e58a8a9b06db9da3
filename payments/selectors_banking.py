"""Reads for the two bank-side screens: Direct Debit payers the Bacs reports flagged, and each
bank statement's figures beside what the app holds for the same account and period."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

from django.db.models import Count, Sum

from payments.models import DirectDebitNotice, Payment, Statement

FLAGGED_PAYERS_SHOWN = 500
STATEMENTS_SHOWN = 100


@dataclass
class FlaggedPayer:
    payer_reference: str
    payer_name: str = ""
    notices: list = field(default_factory=list)  # newest first
    returned: dict = field(default_factory=dict)  # currency -> total returned unpaid (ARUDD)

    @property
    def latest(self):
        return self.notices[0]

    @property
    def kinds(self) -> list[str]:
        return sorted({n.get_kind_display() for n in self.notices})


def flagged_payers(*, kind: str = "") -> dict:
    """Payer references with Bacs notices (ARUDD returns, ADDACS changes, AUDDIS refusals),
    the newest first, with counts and the returned totals per currency."""
    notices = DirectDebitNotice.objects.select_related("payment", "payment__customer")
    if kind in DirectDebitNotice.Kind.values:
        notices = notices.filter(kind=kind)
    by_kind = dict(notices.values_list("kind").annotate(n=Count("id")).order_by())
    returned_totals = list(
        notices.filter(kind=DirectDebitNotice.Kind.ARUDD, amount__isnull=False)
        .values("currency")
        .annotate(total=Sum("amount"), n=Count("id"))
        .order_by("currency")
    )
    payers: dict[str, FlaggedPayer] = {}
    for notice in notices.order_by("-effective_date", "-id")[: FLAGGED_PAYERS_SHOWN * 5]:
        payer = payers.get(notice.payer_reference)
        if payer is None:
            if len(payers) >= FLAGGED_PAYERS_SHOWN:
                continue
            payer = payers[notice.payer_reference] = FlaggedPayer(notice.payer_reference)
        payer.payer_name = payer.payer_name or notice.payer_name
        payer.notices.append(notice)
        if notice.kind == DirectDebitNotice.Kind.ARUDD and notice.amount is not None:
            payer.returned[notice.currency] = (
                payer.returned.get(notice.currency, Decimal(0)) + notice.amount
            )
    return {
        "payers": list(payers.values()),
        "payer_count": notices.values("payer_reference").distinct().count(),
        "notice_count": sum(by_kind.values()),
        "by_kind": [
            (label, by_kind.get(value, 0)) for value, label in DirectDebitNotice.Kind.choices
        ],
        "returned_totals": returned_totals,
    }


@dataclass
class StatementFigures:
    statement: Statement
    held_count: int
    held_total: Decimal

    @property
    def difference(self) -> Decimal | None:
        """The bank's money in minus what we hold; None when the file's money in is unknown."""
        if self.statement.money_in is None:
            return None
        return self.statement.money_in - self.held_total


def statement_figures(
    *, account_id: int | None = None, entity_ids: list[int] | None = None
) -> dict:
    """The latest statements (per account and period) of these companies' accounts (None:
    all): the bank's opening and closing balance and money in, beside the payments we hold
    for that account and period (every import of it, whichever file brought them), with
    totals per currency."""
    statements = Statement.objects.select_related("account", "batch").order_by("-end_date", "-id")
    if entity_ids is not None:
        statements = statements.filter(account__entity_id__in=entity_ids)
    if account_id:
        statements = statements.filter(account_id=account_id)
    rows = []
    totals: dict[str, dict] = defaultdict(
        lambda: {"bank_in": Decimal(0), "held": Decimal(0), "statements": 0, "unknown": 0}
    )
    for statement in statements[:STATEMENTS_SHOWN]:
        held = {"n": 0, "total": None}
        if statement.start_date and statement.end_date:
            # statement rows are booked at noon UTC of their day: a range on the column
            held = Payment.objects.filter(
                statement_account_id=statement.account_id,
                received_at__gte=datetime.combine(statement.start_date, time.min, UTC),
                received_at__lt=datetime.combine(
                    statement.end_date + timedelta(days=1), time.min, UTC
                ),
            ).aggregate(n=Count("id"), total=Sum("amount"))
        figures = StatementFigures(statement, held["n"], held["total"] or Decimal(0))
        rows.append(figures)
        total = totals[statement.currency or statement.account.currency or ""]
        total["statements"] += 1
        total["held"] += figures.held_total
        if statement.money_in is None:
            total["unknown"] += 1
        else:
            total["bank_in"] += statement.money_in
    return {
        "rows": rows,
        "count": statements.count(),
        "totals": [
            {"currency": currency, **values, "difference": values["bank_in"] - values["held"]}
            for currency, values in sorted(totals.items())
        ],
    }
