"""In-memory indexes the engine runs over, loaded with a handful of set-based queries.

No model instances and no query per payment: each table is read once with values_list.
Amounts are read as the integer thousandths MoneyField stores (ExpressionWrapper skips the
Decimal conversion of a million rows); inside the engine sums and comparisons on those integers
are exact, and everything the engine hands back is converted to Decimal at the edge (money.py).
"""

from array import array
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import BigIntegerField, ExpressionWrapper, F, Sum

from ledger.models import Customer, DocumentStatus, Invoice
from payments.matching.normalise import digits_key, reference_key
from payments.models import AllocationPlan, AllocationPlanLine, MatchRule, PayerMapping, Payment

MILLI = 1000
# positions in an items row (the values_list row of invoice_rows())
ITEM_ENTITY, ITEM_CUSTOMER, ITEM_CURRENCY, ITEM_NUMBER, ITEM_EXTERNAL = 1, 2, 3, 4, 5
OPEN_STATUSES = (DocumentStatus.POSTED, DocumentStatus.PART_PAID)
# Plans that hold an invoice's money until AIQ has confirmed them (then the mirror shows it).
RESERVING_PLAN_STATES = (
    AllocationPlan.State.DRAFT,
    AllocationPlan.State.AWAITING_APPROVAL,
    AllocationPlan.State.APPROVED,
    AllocationPlan.State.SENT,
)
LIVE_PLAN_STATES = (*RESERVING_PLAN_STATES, AllocationPlan.State.CONFIRMED)

# Which invoice field a reference key came from (kept in the low bits of the index entry).
FIELD_INVOICE_NUMBER, FIELD_EXTERNAL_REFERENCE, FIELD_NUMBER_DIGITS = 0, 1, 2
FIELD_NAMES = ("invoice_number", "external_reference", "invoice_number_digits")


def label(item) -> str:
    """How a person names an invoice (its row in OpenItems.items)."""
    return item[ITEM_NUMBER] or item[ITEM_EXTERNAL] or f"#{item[0]}"


def raw(name: str) -> ExpressionWrapper:
    """A MoneyField column as its stored integer thousandths."""
    return ExpressionWrapper(F(name), output_field=BigIntegerField())


def to_milli(amount: Decimal) -> int:
    scaled = Decimal(amount).scaleb(3)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} has more than three decimal places")
    return int(scaled)


def from_milli(value: int) -> Decimal:
    return Decimal(value).scaleb(-3)


@dataclass(slots=True)
class RuleSpec:
    id: int | None
    kind: str
    order: int
    name: str
    auto_approve: bool = False
    tolerance_milli: int = 0
    tolerance_percent: Decimal = Decimal(0)
    tolerance_action: str = MatchRule.ToleranceAction.DISCOUNT
    write_off_gl_account_code: str = ""
    max_invoices: int = 6
    max_candidates: int = 40


@dataclass(slots=True)
class PaymentInput:
    id: int
    entity_id: int
    source: str
    currency: str
    amount_milli: int
    customer_id: int | None
    payer_email: str
    payer_reference: str
    description: str
    references: list


@dataclass
class OpenItems:
    """Open invoices and how to reach them.

    items: invoice id -> its row (id, entity_id, customer_id, currency, invoice_number,
    external_reference, open as loaded; see the ITEM_* positions); open: invoice id -> open amount (thousandths, after other plans' holds);
    by_ref: reference key -> packed entry or list of them (invoice_id * 4 + field);
    by_customer: (customer id, currency) -> invoice ids (an array), oldest first;
    customer_opens: the same key -> those invoices' open amounts, position by position (the
    engine reads a payer's open items from this short list rather than by a million-entry
    dict look-up per invoice, each a cache miss).
    """

    items: dict = field(default_factory=dict)
    open: dict = field(default_factory=dict)
    by_ref: dict = field(default_factory=dict)
    by_customer: dict = field(default_factory=dict)
    customer_opens: dict = field(default_factory=dict)
    customers: dict = field(default_factory=dict)  # id -> (entity_id, currency)
    by_email: dict = field(default_factory=dict)  # (entity_id, email) -> id, or 0 if several
    payer_map: dict = field(default_factory=dict)  # (source, payer_key) -> customer id

    def add_ref(self, key: str, entry: int) -> None:
        if not key:
            return
        current = self.by_ref.get(key)
        if current is None:
            self.by_ref[key] = entry  # most keys are unique: no list per key
        elif isinstance(current, list):
            if entry not in current:
                current.append(entry)
        elif current != entry:
            self.by_ref[key] = [current, entry]

    def add_invoice(self, row) -> None:
        """Rows must come oldest first (per-customer lists are in load order)."""
        invoice_id, entity_id, customer_id, currency, number, external, open_milli = row
        self.items[invoice_id] = row  # the row tuple itself: no second tuple per invoice
        self.open[invoice_id] = open_milli
        packed = invoice_id * 4
        key = reference_key(number)
        self.add_ref(key, packed + FIELD_INVOICE_NUMBER)
        if external:
            self.add_ref(reference_key(external), packed + FIELD_EXTERNAL_REFERENCE)
        self.add_ref(digits_key(number, key), packed + FIELD_NUMBER_DIGITS)
        ids = self.by_customer.get((customer_id, currency))
        if ids is None:
            # arrays of machine integers: reading a payer's list touches one short block of
            # memory, not one int object per invoice scattered over the million loaded
            self.by_customer[(customer_id, currency)] = array("q", (invoice_id,))
            self.customer_opens[(customer_id, currency)] = array("q", (open_milli,))
        else:
            ids.append(invoice_id)
            self.customer_opens[(customer_id, currency)].append(open_milli)

    def hold(self, invoice_id: int, amount: int) -> None:
        """Less open on an invoice (held by a plan), in both places that keep its amount."""
        self.open[invoice_id] -= amount
        item = self.items[invoice_id]
        key = (item[ITEM_CUSTOMER], item[ITEM_CURRENCY])
        self.customer_opens[key][self.by_customer[key].index(invoice_id)] -= amount

    def lookup(self, key: str) -> list[int]:
        entry = self.by_ref.get(key)
        if entry is None:
            return []
        return entry if isinstance(entry, list) else [entry]


def load_rules() -> list[RuleSpec]:
    rows = MatchRule.objects.filter(enabled=True).order_by("order", "id")
    return [
        RuleSpec(
            id=r.id,
            kind=r.kind,
            order=r.order,
            name=r.name,
            auto_approve=r.auto_approve,
            tolerance_milli=to_milli(r.tolerance_absolute),
            tolerance_percent=r.tolerance_percent,
            tolerance_action=r.tolerance_action,
            write_off_gl_account_code=r.write_off_gl_account_code,
            max_invoices=r.max_invoices,
            max_candidates=r.max_candidates,
        )
        for r in rows
    ]


def invoice_rows(entity_ids=None):
    """Open invoices, oldest first (so per-customer lists come out in age order)."""
    query = Invoice.objects.filter(status__in=OPEN_STATUSES, outstanding_amount__gt=0)
    if entity_ids is not None:
        query = query.filter(entity_id__in=entity_ids)
    return (
        query.annotate(open_milli=raw("outstanding_amount"))
        .order_by("invoice_date", "id")
        .values_list(
            "id",
            "entity_id",
            "customer_id",
            "currency",
            "invoice_number",
            "external_reference",
            "open_milli",
        )
        .iterator(chunk_size=20000)
    )


def reserved_by_invoice() -> dict[int, int]:
    """Amounts held by plans not yet confirmed in AIQ, per invoice (one grouped query)."""
    rows = (
        AllocationPlanLine.objects.filter(
            plan__state__in=RESERVING_PLAN_STATES, unallocated_at__isnull=True
        )
        .values("invoice_id")
        .annotate(
            held=Sum(
                F("amount") + F("discount_amount") + F("write_off_amount"),
                output_field=BigIntegerField(),
            )
        )
        .values_list("invoice_id", "held")
    )
    return dict(rows)


def load_open_items(*, entity_ids=None) -> OpenItems:
    from payments.matching.engine import gc_paused

    with gc_paused():  # a million tuples in: the cyclic GC would rescan them over and over
        return _load_open_items(entity_ids)


def _load_open_items(entity_ids) -> OpenItems:
    index = OpenItems()
    customers = Customer.objects.all()
    if entity_ids is not None:
        customers = customers.filter(entity_id__in=entity_ids)
    for customer_id, entity_id, currency, email in customers.values_list(
        "id", "entity_id", "currency", "email"
    ).iterator(chunk_size=20000):
        index.customers[customer_id] = (entity_id, currency)
        if email:
            key = (entity_id, email.strip().lower())
            # two customers with one email: the email identifies nobody
            index.by_email[key] = 0 if key in index.by_email else customer_id
    for source, payer_key, customer_id in PayerMapping.objects.values_list(
        "source", "payer_key", "customer_id"
    ):
        index.payer_map[(source, payer_key.strip().lower())] = customer_id
    _index_invoices(index, invoice_rows(entity_ids))
    for invoice_id, held in reserved_by_invoice().items():
        if invoice_id in index.open:
            index.hold(invoice_id, held)
    return index


def _index_invoices(index: OpenItems, rows) -> None:
    """OpenItems.add_invoice for a million rows: the same steps inlined, with the dicts and
    methods bound to locals (a method call and attribute look-ups per key were a third of it)."""
    items, opens, by_ref = index.items, index.open, index.by_ref
    by_customer, customer_opens, add_ref = index.by_customer, index.customer_opens, index.add_ref
    for row in rows:
        invoice_id, _entity_id, customer_id, currency, number, external, open_milli = row
        items[invoice_id] = row
        opens[invoice_id] = open_milli
        packed = invoice_id * 4
        key = reference_key(number)
        if key:
            if key in by_ref:
                add_ref(key, packed + FIELD_INVOICE_NUMBER)
            else:
                by_ref[key] = packed + FIELD_INVOICE_NUMBER
        if external:
            other = reference_key(external)
            if other:
                if other in by_ref:
                    add_ref(other, packed + FIELD_EXTERNAL_REFERENCE)
                else:
                    by_ref[other] = packed + FIELD_EXTERNAL_REFERENCE
        other = digits_key(number, key)
        if other:
            if other in by_ref:
                add_ref(other, packed + FIELD_NUMBER_DIGITS)
            else:
                by_ref[other] = packed + FIELD_NUMBER_DIGITS
        customer_key = (customer_id, currency)
        ids = by_customer.get(customer_key)
        if ids is None:
            by_customer[customer_key] = array("q", (invoice_id,))
            customer_opens[customer_key] = array("q", (open_milli,))
        else:
            ids.append(invoice_id)
            customer_opens[customer_key].append(open_milli)


def load_payments(*, payment_ids=None) -> list[PaymentInput]:
    """Payments to match: the given ones, else every succeeded payment not matched yet.

    Payments with a live plan are left alone: a person (or a rule) already decided them.
    """
    query = Payment.objects.all()
    if payment_ids is not None:
        query = query.filter(id__in=list(payment_ids))
    else:
        query = query.filter(
            match_state=Payment.MatchState.UNMATCHED, status=Payment.Status.SUCCEEDED
        )
    query = query.exclude(plans__state__in=LIVE_PLAN_STATES)
    rows = (
        query.annotate(amount_milli=raw("amount") - raw("amount_refunded"))
        .order_by("received_at", "id")
        .values_list(
            "id",
            "entity_id",
            "source",
            "currency",
            "amount_milli",
            "customer_id",
            "payer_email",
            "payer_reference",
            "description",
            "references",
        )
        .iterator(chunk_size=20000)
    )
    return [PaymentInput(*row) for row in rows]
