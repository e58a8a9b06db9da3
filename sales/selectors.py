"""Reads the sales screens share: the two halves of back-to-back pairs and intercompany sales,
each half with the one name of where it stands."""

from dataclasses import dataclass

from django.db.models import Q

from ledger.models import OutboxCommand
from sales.models import BackToBackPair, InterCompanySale, PurchaseInvoice, SalesInvoice

C = OutboxCommand.State
# the names a half has on screens beyond its own state's label
WAITING = "Waiting for the other half"
HELD_FOR_OTHER = "Held: waits for the other half"
NEEDS_PERSON = "Needs a person"
CANCELLED = "Cancelled"
ATTENTION = {HELD_FOR_OTHER, NEEDS_PERSON}
LIMIT = 200


@dataclass(frozen=True)
class Half:
    label: str
    state: str  # for the badge: posted, queued, failed, held ...
    in_aiq: bool
    transaction_id: int | None
    error: str

    @property
    def needs_person(self) -> bool:
        return self.label in ATTENTION or self.state in ("failed", "held", "cancelled")


def half(row: SalesInvoice | PurchaseInvoice) -> Half:
    """Where one half stands: its own state, or, while it is queued, its command's."""
    in_aiq = row.state in row.IN_AIQ
    label, state = row.get_state_display(), row.state
    command = row.command
    if not in_aiq and row.state == row.State.QUEUED and command is None:
        # an intercompany purchase whose sale is held before AIQ: queued when the sale posts
        label, state = WAITING, "pending"
    elif not in_aiq and row.state == row.State.QUEUED:
        if command.state == C.CANCELLED:
            label, state = CANCELLED, "cancelled"
        elif command.state == C.NEEDS_PERSON and command.last_error_code == "DEPENDENCY":
            label, state = HELD_FOR_OTHER, "held"
        elif command.state == C.NEEDS_PERSON:
            label, state = NEEDS_PERSON, "held"
        elif command.depends_on_id and command.depends_on.state != C.CONFIRMED:
            label, state = WAITING, "pending"
    error = row.error or (command.last_error_message if command and not in_aiq else "")
    return Half(label, state, in_aiq, row.aiq_transaction_id, error)


def _not_both_in_aiq(prefix: str = "") -> Q:
    return ~(
        Q(**{f"{prefix}purchase__state__in": PurchaseInvoice.IN_AIQ})
        & Q(**{f"{prefix}sales_invoice__state__in": SalesInvoice.IN_AIQ})
    )


_HALVES = (
    "purchase__command__depends_on",
    "sales_invoice__command__depends_on",
    "purchase__entity",
    "sales_invoice__entity",
)


def back_to_back_pairs(*, open_only: bool, visible=None) -> list[BackToBackPair]:
    """Newest first, each with `.purchase_half` and `.sales_half`; `open_only`: pairs whose
    halves are not both in AIQ; `visible`: the company ids the reader sees (None: all)."""
    rows = BackToBackPair.objects.select_related("rule", "entity", *_HALVES)
    if visible is not None:
        rows = rows.filter(entity__in=visible)
    if open_only:
        rows = rows.filter(_not_both_in_aiq())
    rows = list(rows.order_by("-created_at", "-pk")[:LIMIT])
    for row in rows:
        row.purchase_half, row.sales_half = half(row.purchase), half(row.sales_invoice)
    return rows


def intercompany_sales(*, unmatched_only: bool, visible=None) -> list[InterCompanySale]:
    """Newest first, each with `.sales_half` and `.purchase_half`; `unmatched_only`: sales
    whose two halves are not both in AIQ; `visible`: the company ids the reader sees (None:
    all), either side of the sale."""
    rows = InterCompanySale.objects.select_related("seller", "buyer", "connection", *_HALVES)
    if visible is not None:
        rows = rows.filter(Q(seller__in=visible) | Q(buyer__in=visible))
    if unmatched_only:
        rows = rows.filter(_not_both_in_aiq())
    rows = list(rows.order_by("-created_at", "-pk")[:LIMIT])
    for row in rows:
        row.sales_half, row.purchase_half = half(row.sales_invoice), half(row.purchase)
    return rows
