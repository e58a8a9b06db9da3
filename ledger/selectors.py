"""Reads for the ledger screens that no service module owns: invoices, customers, sync.

Lists are paged by core.paging.keyset_page.
"""

from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from ledger.models import (
    CreditNote,
    Customer,
    DocumentStatus,
    DuplicateWrite,
    Invoice,
    OutboxCommand,
    Receipt,
    SyncState,
)

# --- invoices and customers -----------------------------------------------------------------


def invoice_list() -> QuerySet:
    return Invoice.objects.select_related("customer", "entity")


def invoice_totals(queryset: QuerySet) -> list[dict]:
    """How many invoices a (filtered) list holds and what they add up to, per currency (never
    summed across currencies)."""
    return list(
        queryset.order_by()
        .values("currency")
        .annotate(n=Count("id"), gross=Sum("gross_amount"), open=Sum("outstanding_amount"))
        .order_by("currency")
    )


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
    return Customer.objects.select_related("entity")


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
    """A plain credit check: open items against the credit limit (0 means no limit set), and
    what of them is past its due date."""
    today = timezone.localdate()
    figures = customer_open_items(customer).aggregate(
        total=Sum("outstanding_amount"),
        n=Count("id"),
        overdue=Sum("outstanding_amount", filter=Q(due_date__lt=today)),
        overdue_n=Count("id", filter=Q(due_date__lt=today)),
    )
    open_total = figures["total"] or 0
    limit = customer.credit_limit or 0
    return {
        "open_total": open_total,
        "open_count": figures["n"],
        "overdue_total": figures["overdue"] or 0,
        "overdue_count": figures["overdue_n"],
        "headroom": (limit - open_total) if limit else None,
        "over_limit": bool(limit) and open_total > limit,
    }


def open_invoices_search(
    *, text: str, currency: str | None = None, entity_id: int | None = None, limit: int = 20
) -> QuerySet:
    """Open invoices of any customer (of one company, when given) by invoice number,
    reference, customer code or name."""
    text = text.strip()
    queryset = Invoice.objects.select_related("customer").filter(
        outstanding_amount__gt=0,
        status__in=[DocumentStatus.POSTED, DocumentStatus.PART_PAID],
    )
    if entity_id is not None:
        queryset = queryset.filter(entity_id=entity_id)
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


def outbox_state_counts(entity_ids: list[int] | None = None) -> dict[str, int]:
    """Commands per state, of these companies (None: all)."""
    rows = OutboxCommand.objects.order_by()
    if entity_ids is not None:
        rows = rows.filter(entity_id__in=entity_ids)
    rows = rows.values("state").annotate(n=Count("id"))
    return {row["state"]: row["n"] for row in rows}


def outbox_origin_pending(limit: int = 50) -> list[OutboxCommand]:
    """Confirmed writes whose origin's handler raised (ledger/outbox/origins.py), oldest first."""
    return list(OutboxCommand.objects.filter(origin_pending=True).order_by("pk")[:limit])


def sync_states() -> QuerySet:
    return SyncState.objects.select_related("entity").order_by("entity__name", "object_type")


def duplicates_to_repair() -> QuerySet:
    """Writes of ours AIQ holds more than once (and invoices allocated beyond their gross) that
    a person has not resolved yet, oldest first, for the Sync screen."""
    return (
        DuplicateWrite.objects.filter(
            state__in=[DuplicateWrite.State.OPEN, DuplicateWrite.State.REVERSING]
        )
        .select_related("entity", "command", "reversal")
        .order_by("created_at", "pk")
    )


def customer_credits(customer: Customer) -> dict:
    """A customer's receipts with money on account and posted credit notes with money open
    (to allocate later or refund), oldest first, at most 50 of each."""
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
