"""Reads several screens share: proposals, plans waiting for a checker, a payment's history.

Selectors return QuerySets (callers paginate and render); no writes here.
"""

from django.db.models import Prefetch, QuerySet

from payments.matching.index import LIVE_PLAN_STATES, RESERVING_PLAN_STATES
from payments.models import AllocationPlan, AllocationPlanLine, MatchProposal, Payment

REVIEW_CONFIDENCE = "0.500"  # rank-1 proposals below this need a person (engine.REVIEW_BELOW)


def payment_proposals(payment: Payment) -> QuerySet:
    """The latest run's proposals for a payment, best first (rank 1 = the engine's choice)."""
    return MatchProposal.objects.filter(
        payment=payment, state=MatchProposal.State.OPEN
    ).select_related("rule")


def payments_needing_review() -> QuerySet:
    """Payments whose best proposal is unsure or ambiguous, newest first."""
    unsure = MatchProposal.objects.filter(
        rank=1, state=MatchProposal.State.OPEN, confidence__lt=REVIEW_CONFIDENCE
    ).values("payment_id")
    return Payment.objects.filter(match_state=Payment.MatchState.PROPOSED, pk__in=unsure).order_by(
        "-received_at", "-id"
    )


def live_plan(payment: Payment) -> AllocationPlan | None:
    return (
        AllocationPlan.objects.filter(payment=payment, state__in=LIVE_PLAN_STATES)
        .prefetch_related(
            Prefetch("lines", queryset=AllocationPlanLine.objects.select_related("invoice"))
        )
        .first()
    )


def plans_awaiting_approval(*, checker=None) -> QuerySet:
    """Plans a checker can approve: waiting, and (for a given checker) not their own."""
    plans = AllocationPlan.objects.filter(state=AllocationPlan.State.AWAITING_APPROVAL)
    if checker is not None:
        plans = plans.exclude(maker=checker)
    return plans.select_related("payment", "customer", "maker").order_by("created_at", "id")


def invoice_holds(invoice_ids) -> QuerySet:
    """Plan lines still holding money on these invoices (not yet confirmed in AIQ)."""
    return AllocationPlanLine.objects.filter(
        invoice_id__in=invoice_ids,
        plan__state__in=RESERVING_PLAN_STATES,
        unallocated_at__isnull=True,
    ).select_related("plan")


def payment_plans(payment: Payment) -> QuerySet:
    """Every plan a payment has had, newest first (void and rejected ones are its history)."""
    return payment.plans.select_related("maker", "approver").order_by("-created_at", "-id")


def layouts_described() -> list[dict]:
    """Each saved CSV/Excel layout with what it expects of a file, in a clerk's words: the
    columns (by header, or by position), the date format as an example date, the header row,
    decimal comma, sign, and which bank accounts use it."""
    from datetime import date

    from payments.models import ImportFormat, StatementAccount
    from payments.sources.bank_csv import FIELDS

    users: dict[int, list[str]] = {}
    for account in StatementAccount.objects.exclude(import_format=None).order_by("name"):
        users.setdefault(account.import_format_id, []).append(str(account))
    described = []
    for layout in ImportFormat.objects.order_by("name"):
        columns = [
            {"field": FIELDS.get(name, name).split(" (")[0], "column": column}
            for name, column in layout.column_map.items()
        ]
        example = date(2025, 3, 31).strftime(layout.date_format)
        described.append(
            {
                "layout": layout,
                "columns": columns,
                "date_example": example,
                "header": f"row {layout.header_row}" if layout.header_row else "found by its names",
                "accounts": users.get(layout.pk, []),
            }
        )
    return described
