"""Reads several screens share: proposals, plans waiting for a checker, a payment's history,
the dashboard's figures.

Selectors return QuerySets (callers paginate and render); no writes here.
"""

from datetime import date, timedelta

from django.core.cache import cache
from django.db.models import Count, Max, Prefetch, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from ledger.models import OutboxCommand
from ledger.outbox.selectors import outbox_health
from payments.models import (
    AllocationPlan,
    AllocationPlanLine,
    ContactAllocation,
    ImportFormat,
    MatchProposal,
    Payment,
    Refund,
    StatementAccount,
    Unallocation,
)
from payments.sources.bank_csv import FIELDS


def payment_proposals(payment: Payment) -> QuerySet:
    """The latest run's proposals for a payment, best first (rank 1 = the engine's choice)."""
    return payment.proposals.filter(state=MatchProposal.State.OPEN).order_by("rank", "id")


def live_plan(payment: Payment) -> AllocationPlan | None:
    return (
        AllocationPlan.objects.filter(payment=payment, state__in=AllocationPlan.LIVE)
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
    return (
        plans.select_related("payment", "customer", "maker", "proposal")
        .prefetch_related("lines__invoice")
        .order_by("created_at", "id")
    )


def unallocations_awaiting_approval() -> QuerySet:
    """Requested undos of allocations, oldest first, for the approvals screen."""
    return (
        Unallocation.objects.filter(state=Unallocation.State.REQUESTED)
        .select_related("allocation__invoice", "allocation__receipt", "maker")
        .order_by("created_at", "id")
    )


def payment_later_allocations(payment: Payment):
    """Its receipt's money on account allocated later (to its customer's invoices or, paying
    for them, to a group member's), newest first."""
    if not payment.receipt_id:
        return []
    return (
        ContactAllocation.objects.filter(receipt_id=payment.receipt_id)
        .select_related("transfer_to", "maker", "approver")
        .prefetch_related("lines__invoice")
        .order_by("-id")[:20]
    )


def payment_plans(payment: Payment) -> QuerySet:
    """Every plan a payment has had, newest first (void and rejected ones are its history)."""
    return (
        payment.plans.select_related("maker", "approver", "proposal")
        .prefetch_related("lines__invoice")
        .order_by("-created_at", "-id")
    )


AGEING_BUCKETS = ((0, 7, "0–7 days"), (8, 30, "8–30 days"), (31, 60, "31–60 days"))


# --- dashboard ------------------------------------------------------------------------------


def _of_companies(queryset, entity_ids, field="entity_id"):
    return queryset if entity_ids is None else queryset.filter(**{f"{field}__in": entity_ids})


def dashboard_figures(now=None, entity_ids: list[int] | None = None) -> dict:
    """The dashboard's figures for these companies (None: all), per company and currency:
    amounts of different currencies or companies are never added up."""
    now = now or timezone.now()
    unmatched = _of_companies(
        Payment.objects.filter(match_state=Payment.MatchState.UNMATCHED), entity_ids
    )
    totals = list(
        unmatched.values("entity__name", "currency")
        .annotate(n=Count("id"), total=Sum("amount"))
        .order_by("entity__name", "currency")
    )
    ageing = []
    for low, high, label in AGEING_BUCKETS:
        window = unmatched.filter(
            received_at__lte=now - timedelta(days=low),
            received_at__gt=now - timedelta(days=high + 1),
        )
        ageing.append({"label": label, "n": window.count()})
    ageing.append(
        {
            "label": "over 60 days",
            "n": unmatched.filter(received_at__lte=now - timedelta(days=61)).count(),
        }
    )
    awaiting = _of_companies(
        AllocationPlan.objects.filter(state=AllocationPlan.State.AWAITING_APPROVAL),
        entity_ids,
        "payment__entity_id",
    )
    health = outbox_health()
    outbox = {
        "pending": health.waiting,
        "oldest_pending": (
            now - timedelta(seconds=health.oldest_waiting_seconds)
            if health.oldest_waiting_seconds is not None
            else None
        ),
        "attention": health.needs_attention,
        "failed_last_hour": health.failures_last_hour,
        "healthy": health.healthy,
        "last_confirmed": OutboxCommand.objects.aggregate(last=Max("confirmed_at"))["last"],
    }
    return {
        "unmatched_totals": totals,
        "unmatched_count": sum(row["n"] for row in totals),
        "ageing": ageing,
        "awaiting_count": awaiting.count(),
        "outbox": outbox,
        "now": now,
    }


def match_rate_by_day(*, days: int, now=None, entity_ids: list[int] | None = None) -> dict:
    """Share of each day's payments that have left "unmatched" (proposed or further)."""
    now = now or timezone.now()
    rows = (
        _of_companies(Payment.objects, entity_ids)
        .filter(received_at__gte=now - timedelta(days=days))
        .annotate(day=TruncDate("received_at"))
        .values("day")
        .annotate(
            n=Count("id"),
            matched=Count("id", filter=~Q(match_state=Payment.MatchState.UNMATCHED)),
        )
        .order_by("day")
    )
    labels, rates = [], []
    for row in rows:
        labels.append(f"{row['day']:%d/%m/%Y}")
        rates.append(round(100 * row["matched"] / row["n"], 1) if row["n"] else 0)
    return {"labels": labels, "rates": rates}


def cash_by_day_and_source(
    *, days: int, now=None, entity_ids: list[int] | None = None
) -> list[dict]:
    """Cash received per day, one chart per currency (amounts in different currencies are
    never added up), one series per source; amounts as decimal strings."""
    now = now or timezone.now()
    rows = (
        _of_companies(Payment.objects, entity_ids)
        .filter(received_at__gte=now - timedelta(days=days), status=Payment.Status.SUCCEEDED)
        .annotate(day=TruncDate("received_at"))
        .values("day", "source", "currency")
        .annotate(total=Sum("amount"))
        .order_by("currency", "day")
    )
    charts: dict[str, dict] = {}
    for row in rows:
        chart = charts.setdefault(row["currency"], {"labels": [], "series": {}})
        day = f"{row['day']:%d/%m/%Y}"
        if day not in chart["labels"]:
            chart["labels"].append(day)
        chart["series"].setdefault(row["source"], {})[day] = str(row["total"])
    return [
        {
            "currency": currency,
            "labels": chart["labels"],
            "series": [
                {"label": source, "data": [points.get(day, "0") for day in chart["labels"]]}
                for source, points in sorted(chart["series"].items())
            ],
        }
        for currency, chart in sorted(charts.items())
    ]


def run_rule_counts(run_id: str) -> list[dict]:
    """Per rule, a run's first proposals: how many, how many its rule auto-approved, how many
    it would have (monitor mode), and for monitored rules the precision observed so far over
    every run: of the proposals the rule would have auto-approved that people then decided,
    the share they accepted as proposed (rejected, or superseded by another plan, is wrong)."""
    would = Q(evidence__would_auto_approve=True)
    rows = list(
        MatchProposal.objects.filter(run_id=run_id, rank=1)
        .values("rule_id", "rule__name", "rule_kind", "rule__monitor", "rule__auto_approve")
        .annotate(
            proposals=Count("id"),
            auto_approved=Count(
                "id", filter=Q(plans__id__isnull=False, plans__maker__isnull=True), distinct=True
            ),
            would_auto_approve=Count("id", filter=would, distinct=True),
        )
        .order_by("rule_kind", "rule_id")
    )
    monitored = [row["rule_id"] for row in rows if row["rule__monitor"]]
    decided = {
        row["rule_id"]: row
        for row in MatchProposal.objects.filter(rule_id__in=monitored, rank=1)
        .filter(would)
        .values("rule_id")
        .annotate(
            accepted=Count("id", filter=Q(state=MatchProposal.State.ACCEPTED)),
            wrong=Count(
                "id",
                filter=Q(state__in=[MatchProposal.State.REJECTED, MatchProposal.State.SUPERSEDED]),
            ),
        )
    }
    for row in rows:
        seen = decided.get(row["rule_id"])
        row["observed"] = None
        if seen and seen["accepted"] + seen["wrong"]:
            row["observed"] = {
                "accepted": seen["accepted"],
                "decided": seen["accepted"] + seen["wrong"],
                "precision": seen["accepted"] / (seen["accepted"] + seen["wrong"]),
            }
    return rows


def outbox_commands(*, state: str = "", customers=None, payments=None) -> QuerySet:
    """Writes to AIQ for people: by state, and by the customers or payments they are for.

    A command names its origin (an allocation plan, a refund, a customer, an allocation being
    undone); a customer's commands are those of its plans and refunds, its own customer
    record, and any whose payload names its code. `customers`/`payments` are QuerySets (the
    screen resolves what was typed); None means no filter on that.
    """
    queryset = OutboxCommand.objects.select_related("entity")
    if state:
        queryset = queryset.filter(state=state)
    if payments is not None:
        queryset = queryset.filter(_plans_and_refunds(payment__in=payments))
    if customers is not None:
        by_code = Q(pk__in=[])
        for entity_id, code in customers.values_list("entity_id", "code"):
            by_code |= Q(entity_id=entity_id, payload__customer_code=code)
        queryset = queryset.filter(
            _plans_and_refunds(customer__in=customers)
            | Q(origin_type="customer", origin_id__in=customers.values("pk"))
            | by_code
        )
    return queryset


def _plans_and_refunds(**lookup) -> Q:
    """Commands whose origin is a plan or a refund matching the lookup (both have payment
    and customer)."""
    return Q(
        origin_type="allocation_plan",
        origin_id__in=AllocationPlan.objects.filter(**lookup).values("pk"),
    ) | Q(origin_type="refund", origin_id__in=Refund.objects.filter(**lookup).values("pk"))


def layouts_described(entity_ids: list[int] | None = None) -> list[dict]:
    """Each saved CSV/Excel layout (shared, or of these companies; None: all) with what it
    expects of a file, in a clerk's words: the columns (by header, or by position), the date
    format as an example date, the header row, decimal comma, sign, and which bank accounts
    use it."""
    users: dict[int, list[str]] = {}
    accounts = _of_companies(StatementAccount.objects.exclude(import_format=None), entity_ids)
    for account in accounts.order_by("name"):
        users.setdefault(account.import_format_id, []).append(str(account))
    described = []
    layouts = ImportFormat.objects.order_by("name")
    if entity_ids is not None:
        layouts = layouts.filter(Q(entity__isnull=True) | Q(entity_id__in=entity_ids))
    for layout in layouts:
        columns = [
            {
                "field": FIELDS.get(name, name).split(" (")[0],
                "column": " or ".join(str(column).split("|")),  # a renamed column's spellings
            }
            for name, column in layout.column_map.items()
        ]
        example = " or ".join(date(2025, 3, 31).strftime(f) for f in layout.date_format.split("|"))
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


def invoice_plan_lines(invoice) -> QuerySet:
    """Allocation plans touching the invoice that are not yet in AIQ (what is in flight), for
    the invoice's page (registered with ledger.views.invoices in PaymentsConfig.ready())."""
    State = AllocationPlan.State
    return (
        AllocationPlanLine.objects.filter(invoice=invoice)
        .select_related("plan", "plan__payment", "plan__maker")
        .exclude(plan__state__in=[State.CONFIRMED, State.VOID, State.REJECTED])
        .order_by("-plan__created_at")
    )


def inbox_tab_figures(tabs: dict, entity_ids: list[int] | None = None) -> dict[str, dict]:
    """Per inbox tab: how many payments and their total per currency (never summed across
    currencies), of the companies shown (None: all). One GROUP BY over the payments, kept
    30 s in the cache so a busy inbox does not read the whole table on every page view
    (figures may lag by that much)."""

    def compute():
        rows = Payment.objects.order_by()
        if entity_ids is not None:
            rows = rows.filter(entity_id__in=entity_ids)
        rows = rows.values("match_state", "currency")
        rows = rows.annotate(n=Count("id"), total=Sum("amount"))
        figures = {}
        for key, (_label, states) in tabs.items():
            chosen = [r for r in rows if states is None or r["match_state"] in states]
            totals: dict[str, object] = {}
            for r in chosen:
                totals[r["currency"]] = totals.get(r["currency"], 0) + r["total"]
            figures[key] = {
                "count": sum(r["n"] for r in chosen),
                "totals": sorted(totals.items()),
            }
        return figures

    companies = "all" if entity_ids is None else ",".join(map(str, sorted(entity_ids)))
    return cache.get_or_set(f"payments:inbox-tab-figures:{companies}", compute, 30)
