"""Reads for the staff screens that no service module owns: lists, details, dashboard figures.

Hot lists page with keysets over an indexed (value, id) pair, newest first: no OFFSET and no
COUNT(*) over the whole table, so page 1 and page 10,000 cost the same.
"""

import base64
from dataclasses import dataclass, field
from datetime import timedelta

from django.core.exceptions import BadRequest
from django.db.models import Count, Max, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from ledger.models import Customer, DocumentStatus, Invoice, OutboxCommand, SyncState
from staff.models import AuditEntry

AGEING_BUCKETS = ((0, 7, "0–7 days"), (8, 30, "8–30 days"), (31, 60, "31–60 days"))


class BadCursor(BadRequest):
    """A page cursor that was not made by keyset_page (edited by hand, or stale format)."""


@dataclass
class KeysetPage:
    items: list
    next_cursor: str | None
    size: int
    extra: dict = field(default_factory=dict)

    @property
    def has_next(self) -> bool:
        return self.next_cursor is not None


def _encode(values) -> str:
    return base64.urlsafe_b64encode("|".join(str(v) for v in values).encode()).decode()


def _decode(queryset: QuerySet, order: tuple[str, str], cursor: str):
    try:
        raw = base64.urlsafe_b64decode(cursor.encode()).decode()
        first, last_id = raw.rsplit("|", 1)
        model_field = queryset.model._meta.get_field(order[0])
        return model_field.to_python(first), int(last_id)
    except Exception as error:  # any malformed cursor is the user's input, not our bug
        raise BadCursor(
            "That page link is not valid any more; start from the first page."
        ) from error


def _beyond(queryset: QuerySet, key: str, pk: str, value, last_id: int, descending: bool):
    """The rows that come after (value, last_id) in the page order.

    Written as `v <= x AND (v < x OR id < y)` (or >= / > ascending) so the database can use
    the first column as an index range instead of scanning an OR.
    """
    wide, strict = ("lte", "lt") if descending else ("gte", "gt")
    return queryset.filter(
        Q(**{f"{key}__{wide}": value})
        & (Q(**{f"{key}__{strict}": value}) | Q(**{f"{pk}__{strict}": last_id}))
    )


def keyset_page(
    queryset: QuerySet,
    *,
    order: tuple[str, str],
    after: str | None,
    size: int = 50,
    descending: bool = True,
    count_rest: bool = False,
    total: int | None = None,
):
    """One page by (order[0], id), newest first unless descending=False, starting after the
    cursor. count_rest=True also counts the rows beyond this page (extra["rest"]), so a
    screen can say how many it has not shown yet instead of cutting silently; on the first
    page a caller that counted all the rows already (total) saves that second count.
    """
    key, pk = order
    sign = "-" if descending else ""
    queryset = queryset.order_by(f"{sign}{key}", f"{sign}{pk}")
    page_rows = queryset
    if after:
        value, last_id = _decode(queryset, order, after)
        page_rows = _beyond(queryset, key, pk, value, last_id, descending)
    rows = list(page_rows[: size + 1])
    next_cursor = None
    extra = {}
    if len(rows) > size:
        rows = rows[:size]
        last = rows[-1]
        last_value, last_pk = getattr(last, key), getattr(last, pk)
        next_cursor = _encode((last_value, last_pk))
        if count_rest and total is not None and not after:
            extra["rest"] = total - size
        elif count_rest:
            extra["rest"] = _beyond(queryset, key, pk, last_value, last_pk, descending).count()
    elif count_rest:
        extra["rest"] = 0
    return KeysetPage(items=rows, next_cursor=next_cursor, size=size, extra=extra)


# --- invoices and customers -----------------------------------------------------------------


def invoice_list() -> QuerySet:
    return Invoice.objects.select_related("customer")


def invoice_detail(invoice_id: int) -> Invoice:
    return (
        Invoice.objects.select_related("customer", "entity")
        .prefetch_related("lines", "credit_notes")
        .get(pk=invoice_id)
    )


def invoice_allocations(invoice: Invoice) -> QuerySet:
    return invoice.allocations.select_related("receipt", "credit_note", "journal").order_by(
        "allocation_date", "id"
    )


def customer_list() -> QuerySet:
    return Customer.objects.all()


def customer_search(queryset: QuerySet, text: str) -> QuerySet:
    """Customers whose code, name or email contains the text, any case."""
    text = text.strip()
    if not text:
        return queryset
    return queryset.filter(
        Q(code__icontains=text) | Q(name__icontains=text) | Q(email__icontains=text)
    )


def customer_open_items(customer: Customer) -> QuerySet:
    return customer.invoices.filter(outstanding_amount__gt=0).order_by("invoice_date", "id")


def customer_exposure(customer: Customer) -> dict:
    """A plain credit check: open items against the credit limit (0 means no limit set)."""
    figures = customer_open_items(customer).aggregate(
        total=Sum("outstanding_amount"), n=Count("id")
    )
    open_total = figures["total"] or 0
    limit = customer.credit_limit or 0
    return {
        "open_total": open_total,
        "open_count": figures["n"],
        "headroom": (limit - open_total) if limit else None,
        "over_limit": bool(limit) and open_total > limit,
    }


def open_invoices_search(*, text: str, currency: str | None = None, limit: int = 20) -> QuerySet:
    """Open invoices of any customer by invoice number, reference, customer code or name."""
    text = text.strip()
    queryset = Invoice.objects.select_related("customer").filter(
        outstanding_amount__gt=0,
        status__in=[DocumentStatus.POSTED, DocumentStatus.PART_PAID],
    )
    if currency:
        queryset = queryset.filter(currency=currency)
    if text:
        queryset = queryset.filter(
            Q(invoice_number__iexact=text)
            | Q(invoice_number__istartswith=text)
            | Q(external_reference__iexact=text)
            | Q(customer__code__istartswith=text)
            | Q(customer__name__icontains=text)
        )
    return queryset.order_by("invoice_date", "id")[:limit]


# --- sync -----------------------------------------------------------------------------------


def outbox_by_state(state: str | None) -> QuerySet:
    queryset = OutboxCommand.objects.select_related("entity")
    return queryset.filter(state=state) if state else queryset


def outbox_state_counts() -> dict[str, int]:
    rows = OutboxCommand.objects.values("state").annotate(n=Count("id"))
    return {row["state"]: row["n"] for row in rows}


def sync_states() -> QuerySet:
    return SyncState.objects.select_related("entity").order_by("entity__name", "object_type")


# --- audit ----------------------------------------------------------------------------------


def audit_entries() -> QuerySet:
    return AuditEntry.objects.select_related("actor")


def audit_filter(
    queryset, *, q="", user="", object_type="", object_id="", date_from=None, date_to=None
):
    if q:
        queryset = queryset.filter(Q(action__icontains=q) | Q(summary__icontains=q))
    if user:
        queryset = queryset.filter(actor__username__iexact=user)
    if object_type:
        queryset = queryset.filter(object_type__iexact=object_type)
    if object_id:
        queryset = queryset.filter(object_id=object_id)
    if date_from:
        queryset = queryset.filter(at__date__gte=date_from)
    if date_to:
        queryset = queryset.filter(at__date__lte=date_to)
    return queryset


# --- dashboard ------------------------------------------------------------------------------


def dashboard_figures(now=None) -> dict:
    from payments.models import AllocationPlan, Payment

    now = now or timezone.now()
    unmatched = Payment.objects.filter(match_state=Payment.MatchState.UNMATCHED)
    totals = list(
        unmatched.values("currency")
        .annotate(n=Count("id"), total=Sum("amount"))
        .order_by("currency")
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
    awaiting = AllocationPlan.objects.filter(state=AllocationPlan.State.AWAITING_APPROVAL)
    from ledger.outbox.selectors import outbox_health

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


def match_rate_by_day(*, days: int, now=None) -> dict:
    """Share of each day's payments that have left "unmatched" (proposed or further)."""
    from payments.models import Payment

    now = now or timezone.now()
    rows = (
        Payment.objects.filter(received_at__gte=now - timedelta(days=days))
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
        labels.append(row["day"].isoformat())
        rates.append(round(100 * row["matched"] / row["n"], 1) if row["n"] else 0)
    return {"labels": labels, "rates": rates}


def cash_by_day_and_source(*, days: int, now=None) -> list[dict]:
    """Cash received per day, one chart per currency (amounts in different currencies are
    never added up), one series per source; amounts as decimal strings."""
    from payments.models import Payment

    now = now or timezone.now()
    rows = (
        Payment.objects.filter(
            received_at__gte=now - timedelta(days=days), status=Payment.Status.SUCCEEDED
        )
        .annotate(day=TruncDate("received_at"))
        .values("day", "source", "currency")
        .annotate(total=Sum("amount"))
        .order_by("currency", "day")
    )
    charts: dict[str, dict] = {}
    for row in rows:
        chart = charts.setdefault(row["currency"], {"labels": [], "series": {}})
        day = row["day"].isoformat()
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


def customer_credits(customer: Customer) -> dict:
    """A customer's receipts with money on account and posted credit notes with money open
    (to allocate later or refund), oldest first, at most 50 of each."""
    from ledger.models import CreditNote, Receipt

    return {
        "receipts": list(
            Receipt.objects.filter(
                customer=customer, unallocated_amount__gt=0, aiq_transaction_id__isnull=False
            ).order_by("payment_date", "id")[:50]
        ),
        "notes": list(
            CreditNote.objects.filter(
                customer=customer, outstanding_amount__gt=0, aiq_transaction_id__isnull=False
            )
            .exclude(status=DocumentStatus.DRAFT)
            .order_by("credit_date", "id")[:50]
        ),
    }
