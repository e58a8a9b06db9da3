"""In-memory indexes the engine runs over, loaded with a handful of set-based queries.

No model instances and no query per payment: each table is read once with values_list.
Amounts are read as the integer thousandths MoneyField stores (ExpressionWrapper skips the
Decimal conversion of a million rows); inside the engine sums and comparisons on those integers
are exact, and everything the engine hands back is converted to Decimal at the edge (money.py).
"""

from array import array
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import chain, compress, count, groupby

import orjson
from django.db import connection
from django.db.models import BigIntegerField, ExpressionWrapper, F

from core.forking import fork_map
from core.gcpause import gc_paused
from ledger.models import Customer, DocumentStatus, Entity, Invoice
from ledger.references import (
    digits_keys,
    reference_key,
    reference_keys,
    text_keys,
)
from payments.matching.payers import NameIndex
from payments.matching.typed import typed_keys
from payments.models import (
    CROSS_COMPANY,
    AllocationPlan,
    AllocationPlanLine,
    GroupPolicy,
    MatchProposal,
    MatchRule,
    PayerMapping,
    Payment,
    SettlementTerms,
)

MILLI = 1000
# positions in an items row (the values_list row of invoice_rows())
ITEM_ENTITY, ITEM_CUSTOMER, ITEM_CURRENCY, ITEM_NUMBER, ITEM_EXTERNAL, ITEM_OPEN = 1, 2, 3, 4, 5, 6
OPEN_STATUSES = (DocumentStatus.POSTED, DocumentStatus.PART_PAID)
# Payments a run matches: money received, matched on what is left after refunds (a fully
# refunded one is loaded too, so its notes say there is nothing to allocate).
MATCHED_STATUSES = (
    Payment.Status.SUCCEEDED,
    Payment.Status.PARTIALLY_REFUNDED,
    Payment.Status.REFUNDED,
)

# Which invoice field a reference key came from (kept in the low bits of the index entry).
FIELD_INVOICE_NUMBER, FIELD_EXTERNAL_REFERENCE, FIELD_NUMBER_DIGITS = 0, 1, 2
# 3: read against the payer's own invoices (matching/near.py: cut short, one digit off, ...)
FIELD_NAMES = ("invoice_number", "external_reference", "invoice_number_digits", "number as typed")


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
    monitor: bool = False
    tolerance_milli: int = 0
    tolerance_percent: Decimal = Decimal(0)
    tolerance_action: str = MatchRule.ToleranceAction.DISCOUNT
    write_off_gl_account_code: str = ""
    max_invoices: int = 6
    max_candidates: int = 40
    entity_id: int | None = None  # a company's own rule; None: every company's


def rules_for(rules: list[RuleSpec], entity_id: int) -> list[RuleSpec]:
    """The rules a company's payments are matched by: its own, and the shared ones of every
    kind it has none of its own of (its own tolerance rule replaces the shared tolerance)."""
    own = [r for r in rules if r.entity_id == entity_id]
    kinds = {r.kind for r in own}
    return [
        r
        for r in rules
        if r.entity_id == entity_id or (r.entity_id is None and r.kind not in kinds)
    ]


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
    payer_name: str = ""  # as the statement or the source gave it
    payer_account: str = ""  # the payer's bank account (IBAN or sort code + number), if given
    received_on: object = None  # the date the money arrived (settlement discount terms)
    texts: list | None = None  # reference_texts(self); load_payments fills it in
    # (payer reference, payer email) stripped and lower-cased, as payer mappings and customer
    # emails are keyed; load_payments fills it in
    payer_keys: tuple | None = None
    # allocations a person rejected for this payment: {tuple of engine lines}; see
    # rejected_allocations()
    rejected: frozenset | None = None
    # resolve_customer(index, self) when a split run's planning made it already (the shares
    # are forked after, so each reads it instead of identifying the payer again)
    resolved: tuple | None = None


@dataclass
class OpenItems:
    """Open invoices and how to reach them.

    items: invoice id -> its row (id, entity_id, customer_id, currency, invoice_number,
    external_reference, open as loaded; see the ITEM_* positions);
    held: invoice id -> open amount after other plans' holds, for the few invoices plans hold
    (every other invoice's open amount is its row's: open_amount());
    by_ref: reference key -> packed entry or list of them (invoice_id * 4 + field);
    by_customer: (customer id, currency) -> invoice ids (an array), oldest first;
    customer_opens: the same key -> those invoices' open amounts, position by position (the
    engine reads a payer's open items from this short list rather than by a million-entry
    dict look-up per invoice, each a cache miss).
    """

    items: dict = field(default_factory=dict)
    held: dict = field(default_factory=dict)
    by_ref: dict = field(default_factory=dict)
    by_customer: dict = field(default_factory=dict)
    customer_opens: dict = field(default_factory=dict)
    # invoice id -> its place in its customer's two arrays (a claim updates that place without
    # scanning the array, which makes a Python int of every element it passes)
    position: dict = field(default_factory=dict)
    customers: dict = field(default_factory=dict)  # id -> (entity_id, currency)
    by_email: dict = field(default_factory=dict)  # (entity_id, email) -> id, or 0 if several
    payer_map: dict = field(default_factory=dict)  # (source, payer_key) -> customer id
    names: object = None  # payers.NameIndex: customer names and codes (identify())
    paid: dict = field(default_factory=dict)  # key -> paid invoices it names (paid_rows)
    terms: dict = field(default_factory=dict)  # customer id (None: default) -> (percent, days)
    dates: dict = field(default_factory=dict)  # invoice id -> date, where terms may apply
    # entity id -> company name: a reference naming another company's invoice is explained
    entity_names: dict = field(default_factory=dict)
    # the group's policy on a reference naming another group company's invoice: None, not
    # allowed (explained); else the RuleSpec its cross-company proposals carry
    # (cross_company_rule: auto_approve is the policy's)
    cross_company: object = None

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
        """One invoice row (oldest first per customer), as loading indexes a million."""
        _index_invoices(self, [row], None)

    def open_amount(self, invoice_id: int) -> int:
        held = self.held.get(invoice_id)
        return self.items[invoice_id][ITEM_OPEN] if held is None else held

    def hold(self, invoice_id: int, amount: int) -> None:
        """Less open on an invoice (held by a plan), in both places that keep its amount."""
        self.held[invoice_id] = self.open_amount(invoice_id) - amount
        item = self.items[invoice_id]
        key = (item[ITEM_CUSTOMER], item[ITEM_CURRENCY])
        self.customer_opens[key][self.position[invoice_id]] -= amount

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
            monitor=r.monitor,
            tolerance_milli=to_milli(r.tolerance_absolute),
            tolerance_percent=r.tolerance_percent,
            tolerance_action=r.tolerance_action,
            write_off_gl_account_code=r.write_off_gl_account_code,
            max_invoices=r.max_invoices,
            max_candidates=r.max_candidates,
            entity_id=r.entity_id,
        )
        for r in rows
    ]


# an items row, as loaded (the ITEM_* positions)
ITEM_COLUMNS = (
    "id",
    "entity_id",
    "customer_id",
    "currency",
    "invoice_number",
    "external_reference",
    "open_milli",
)
# the stored key columns (ledger.references.invoice_keys) by field code
KEY_COLUMNS = ("number_key", "external_reference_key", "number_digits_key")


def invoice_rows(*, customer_range=(None, None), customer_ids=None):
    """Open invoices, each customer's together and oldest first (index invoice_customer_date):
    the per-customer lists are then slices of the loaded columns (_index_columns).

    customer_range: [low, high) of customer ids (None: unbounded); customer_ids: those only.
    """
    query = Invoice.objects.filter(status__in=OPEN_STATUSES, outstanding_amount__gt=0)
    low, high = customer_range
    if low is not None:
        query = query.filter(customer_id__gte=low)
    if high is not None:
        query = query.filter(customer_id__lt=high)
    if customer_ids is not None:
        query = query.filter(customer_id__in=customer_ids)
    return (
        query.annotate(open_milli=raw("outstanding_amount"))
        .order_by("customer_id", "invoice_date", "id")
        .values_list(*ITEM_COLUMNS)
        .iterator(chunk_size=20000)
    )


def hit_rows(wanted: set[str]) -> list[tuple]:
    """Open invoices whose stored keys are among `wanted`, as (invoice id, customer id, field
    code, key): one indexed look-up per key and field in the database, where a run used to
    normalise every open invoice's number.

    Ordered as indexing all invoices would have added them (field, then customer, oldest first),
    so an ambiguous key lists its invoices in the same order, and the engine's evidence too.
    """
    keys = sorted(key for key in wanted if key and not key.startswith("#"))
    digit_keys = sorted(key for key in wanted if key.startswith("#"))
    table = connection.ops.quote_name(Invoice._meta.db_table)
    if connection.vendor == "postgresql":
        member, pack, unindexed = "= ANY(%s)", list, ""
    else:  # one JSON parameter: a hundred thousand keys would exceed SQLite's variable limit
        member, pack = "IN (SELECT value FROM json_each(%s))", _json_text
        # SQLite's planner, without statistics, would walk the status index (every open
        # invoice) instead of the key's; a unary + keeps it off the status column
        unindexed = "+"
    parts, params = [], []
    for field_code, column in enumerate(KEY_COLUMNS):
        wanted_here = digit_keys if field_code == FIELD_NUMBER_DIGITS else keys
        if not wanted_here:
            continue
        # the "<> ''" lets SQLite use the key's index; "" is never wanted anyway
        parts.append(
            f"SELECT id, customer_id, invoice_date, {field_code} AS field, {column} AS key "
            f"FROM {table} WHERE {column} <> '' AND {column} {member} "
            f"AND {unindexed}status IN (%s, %s) AND {unindexed}outstanding_amount > 0"
        )
        params.extend([pack(wanted_here), *OPEN_STATUSES])
    if not parts:
        return []
    sql = (
        "SELECT id, customer_id, field, key FROM ("
        + " UNION ALL ".join(parts)
        + ") AS hits ORDER BY field, customer_id, invoice_date, id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _json_text(values) -> str:
    return orjson.dumps(values).decode()


def reserved_by_invoice() -> dict[int, int]:
    """Amounts held by plans not yet confirmed in AIQ, per invoice (one grouped query)."""
    return AllocationPlanLine.objects.holding().held_per_invoice()


def held_by_open_proposals(run_payment_ids: set[int]) -> dict[int, int]:
    """Amounts the open first proposals of payments outside this run hold, per invoice: a
    proposal waiting for a person keeps its invoices, so a later run does not offer the same
    open amount to another payment (both accepted would put more cash on it than is open)."""
    held: dict[int, int] = {}
    rows = MatchProposal.objects.filter(
        state=MatchProposal.State.OPEN,
        rank=1,
        payment__match_state=Payment.MatchState.PROPOSED,
    ).values_list("payment_id", "lines")
    for payment_id, lines in rows.iterator(chunk_size=5000):
        if payment_id in run_payment_ids:
            continue
        for line in lines or ():
            invoice_id = int(line["invoice_id"])
            held[invoice_id] = held.get(invoice_id, 0) + sum(
                to_milli(Decimal(line.get(name) or 0))
                for name in ("amount", "discount_amount", "write_off_amount")
            )
    return held


def paid_rows(wanted: set[str]) -> dict[str, list]:
    """Paid invoices whose number or external reference keys are among `wanted`: key ->
    [(invoice id, customer id, label, gross in thousandths)], so a payment naming an invoice
    that is already paid is recognised as a likely duplicate rather than matched elsewhere."""
    keys = sorted(key for key in wanted if key and not key.startswith("#"))
    out: dict[str, list] = {}
    for start in range(0, len(keys), EXTRA_CUSTOMERS_PER_QUERY):
        chunk = keys[start : start + EXTRA_CUSTOMERS_PER_QUERY]
        for field_name in ("number_key", "external_reference_key"):
            rows = (
                Invoice.objects.filter(status=DocumentStatus.PAID, **{f"{field_name}__in": chunk})
                .annotate(gross_milli=raw("gross_amount"))
                .values_list(field_name, "id", "customer_id", "invoice_number", "gross_milli")
            )
            for key, invoice_id, customer_id, number, gross in rows:
                out.setdefault(key, []).append((invoice_id, customer_id, number, gross))
    return out


@dataclass
class RunInputs:
    """What a run reads before it touches the million open invoices: the payers, the invoices
    its payments' references name (hit_rows), and the plans' holds. Everything a share of the
    run (payments/services/matching_shares.py) needs besides its own customers' invoices."""

    customers: dict
    by_email: dict
    payer_map: dict
    hits: list
    held: dict
    names: object = None  # payers.NameIndex
    paid: dict = field(default_factory=dict)  # paid_rows()
    terms: dict = field(default_factory=dict)  # settlement_terms()
    dates: dict = field(default_factory=dict)  # invoice_dates(terms)

    def payer_index(self) -> "OpenItems":
        """An index with the payers only (enough for resolve_customer)."""
        return OpenItems(
            customers=self.customers,
            by_email=self.by_email,
            payer_map=self.payer_map,
            names=self.names,
            paid=self.paid,
            terms=self.terms,
            dates=self.dates,
        )


def load_run_inputs(payments) -> RunInputs:
    customers, by_email = {}, {}
    names = NameIndex()
    for customer_id, entity_id, currency, email, name, code in Customer.objects.values_list(
        "id", "entity_id", "currency", "email", "name", "code"
    ).iterator(chunk_size=20000):
        customers[customer_id] = (entity_id, currency)
        names.add(customer_id, entity_id, currency, name, code)
        if email:
            key = (entity_id, email.strip().lower())
            # two customers with one email: the email identifies nobody
            by_email[key] = 0 if key in by_email else customer_id
    payer_map = {
        (source, payer_key.strip().lower()): customer_id
        for source, payer_key, customer_id in PayerMapping.objects.values_list(
            "source", "payer_key", "customer_id"
        )
    }
    wanted = wanted_keys(payments)
    held = reserved_by_invoice()
    for invoice_id, amount in held_by_open_proposals({p.id for p in payments}).items():
        held[invoice_id] = held.get(invoice_id, 0) + amount
    hits = hit_rows(wanted)
    paid = paid_rows(wanted - {row[3] for row in hits})
    terms = settlement_terms()
    return RunInputs(
        customers, by_email, payer_map, hits, held, names, paid, terms, invoice_dates(terms)
    )


def settlement_terms() -> dict:
    """Customer id -> (percent, days) of its settlement discount terms; None -> the default."""
    terms = {}
    for customer_id, percent, days in SettlementTerms.objects.order_by("id").values_list(
        "customer_id", "percent", "days"
    ):
        terms.setdefault(customer_id, (percent, days))
    return terms


def invoice_dates(terms: dict) -> dict:
    """Open invoices' dates where settlement terms may apply (all of them when there is a
    default; none when there are no terms, as in most books)."""
    if not terms:
        return {}
    query = Invoice.objects.filter(status__in=OPEN_STATUSES, outstanding_amount__gt=0)
    if None not in terms:
        query = query.filter(customer_id__in=list(terms))
    return dict(query.values_list("id", "invoice_date").iterator(chunk_size=20000))


EXTRA_CUSTOMERS_PER_QUERY = 10_000  # under SQLite's limit of 32,766 parameters


def load_open_items(*, payments, inputs: RunInputs | None = None, scope=None) -> OpenItems:
    """The open items the run's payments can reach: every open invoice (scope None), or those
    of a share's customers (scope: (customer range, extra customer ids); see matching_shares).
    Only the reference keys the payments carry are indexed (the engine looks up nothing else).
    """
    with gc_paused():  # a million tuples in: the cyclic GC would rescan them over and over
        if inputs is None:
            inputs = load_run_inputs(payments)
        customer_range, extra_customers = scope or ((None, None), ())
        index = read_open_items(customer_range)
        add_open_items(index, extra_customers)
        return with_run_inputs(index, inputs)


def read_open_items(customer_range=(None, None)) -> OpenItems:
    """The open invoices of a range of customer ids, indexed by customer (the bulk of a run's
    reading: a split run's shares do it while the run is still planning them)."""
    index = OpenItems()
    with gc_paused():
        _index_columns(index, invoice_rows(customer_range=customer_range))
    return index


def add_open_items(index: OpenItems, customer_ids) -> None:
    """The open invoices of these customers (outside the range read) added to the index."""
    customer_ids = sorted(customer_ids)
    with gc_paused():
        for start in range(0, len(customer_ids), EXTRA_CUSTOMERS_PER_QUERY):
            chunk = customer_ids[start : start + EXTRA_CUSTOMERS_PER_QUERY]
            _index_columns(index, invoice_rows(customer_ids=chunk))


def with_run_inputs(index: OpenItems, inputs: RunInputs) -> OpenItems:
    """The index completed with the run's payers, the references its payments name (those of
    invoices in it) and the plans' holds."""
    for name in ("customers", "by_email", "payer_map", "names", "paid", "terms", "dates"):
        setattr(index, name, getattr(inputs, name))
    items, add_ref = index.items, index.add_ref
    for invoice_id, _customer_id, field_code, key in inputs.hits:
        # an invoice of another share, or closed since the hits were read: never reached
        if invoice_id in items:
            add_ref(key, invoice_id * 4 + field_code)
    for invoice_id, held in inputs.held.items():
        if invoice_id in items:
            index.hold(invoice_id, held)
    index.entity_names = dict(Entity.objects.values_list("id", "name"))
    index.cross_company = cross_company_rule()
    return index


def cross_company_rule() -> RuleSpec | None:
    """What the group's policy (GroupPolicy) lets matching do with a payment whose reference
    names another group company's invoice: None, nothing but say so; else propose a
    cross-company receipt, with this rule spec (no rule row; auto-approval as the policy
    says, and then only on the exact reference and amount: engine.cross_company)."""
    policy = (
        GroupPolicy.objects.filter(pk=1, cross_company_receipts=True)
        .values_list("cross_company_auto_approve", flat=True)
        .first()
    )
    if policy is None:
        return None
    return RuleSpec(
        id=None,
        kind=CROSS_COMPANY,
        order=0,
        name="Cross-company receipt (group policy)",
        auto_approve=policy,
    )


def _index_invoices(index: OpenItems, rows, wanted: set[str] | None) -> None:
    """Index invoice rows (grouped by customer, oldest first), normalising their reference keys
    here (an index built in memory, as tests do; a run reads the stored keys: hit_rows).

    The keys of all invoice numbers and external references are normalised in one pass each
    (ledger.references.reference_keys) and only keys in `wanted` (None = all) are indexed.
    """
    rows = list(rows)
    if not rows:
        return
    ids, numbers, externals = _index_columns(index, rows)
    number_keys = reference_keys(numbers)
    _add_refs(index, ids, number_keys, FIELD_INVOICE_NUMBER, wanted)
    _add_refs(index, ids, reference_keys(externals), FIELD_EXTERNAL_REFERENCE, wanted)
    if wanted is None or any(key.startswith("#") for key in wanted):
        _add_refs(index, ids, digits_keys(number_keys), FIELD_NUMBER_DIGITS, wanted)


def _index_columns(index: OpenItems, rows):
    """Items, per-customer lists and positions of invoice rows (grouped by customer, oldest
    first), column by column: the rows become the items themselves (dict(zip()) in C) and each
    customer's lists are slices of the columns. Rows of a customer already indexed (more rows
    later, or another currency) are appended one by one. Returns (ids, numbers, externals).
    """
    rows = list(rows)
    if not rows:
        return (), (), ()
    ids, _entities, customers, currencies, numbers, externals, opens = zip(*rows, strict=True)
    index.items.update(zip(ids, rows, strict=True))
    # rows come grouped by customer, oldest first: each customer's list is a slice
    by_customer, customer_opens = index.by_customer, index.customer_opens
    group_sizes = []  # the position index: 0..size-1 per customer, in C below
    mixed = []
    start = 0
    for customer_id, group in groupby(customers):
        end = start + len(list(group))
        group_currencies = currencies[start:end]
        currency = group_currencies[0]
        key = (customer_id, currency)
        if group_currencies.count(currency) == end - start and key not in by_customer:
            # one currency, first seen: the usual case
            by_customer[key] = array("q", ids[start:end])
            customer_opens[key] = array("q", opens[start:end])
            group_sizes.append(end - start)
        else:
            group_sizes.append(end - start)  # placeholders, set right below
            mixed.append((customer_id, start, end))
        start = end
    index.position.update(zip(ids, chain.from_iterable(map(range, group_sizes)), strict=True))
    for customer_id, start, end in mixed:  # a customer with invoices in several currencies
        for row_position in range(start, end):
            key = (customer_id, currencies[row_position])
            ids_of_key = by_customer.setdefault(key, array("q"))
            index.position[ids[row_position]] = len(ids_of_key)
            ids_of_key.append(ids[row_position])
            customer_opens.setdefault(key, array("q")).append(opens[row_position])
    return ids, numbers, externals


def _add_refs(index: OpenItems, ids, keys: list[str], field_code: int, wanted) -> None:
    # the positions whose key is wanted, picked by C routines (no Python step per invoice)
    keep = map(bool, keys) if wanted is None else map(wanted.__contains__, keys)
    add_ref = index.add_ref
    for n in compress(count(), keep):
        add_ref(keys[n], ids[n] * 4 + field_code)


def reference_texts(payment) -> list[tuple[str, str, str, list]]:
    """The texts a payment may name invoices in, each as (source, text, its whole key, the
    keys of its words and word pairs): computed once per payment when payments are loaded."""
    texts = []
    for reference in payment.references or ():
        if isinstance(reference, dict) and reference.get("value"):
            texts.append((str(reference.get("source") or "reference"), str(reference["value"])))
        elif isinstance(reference, str) and reference:
            texts.append(("reference", reference))
    if payment.description:
        texts.append(("description", payment.description))
    out = []
    for source, text in texts:
        key = reference_key(text)
        word_keys = text_keys(text, key)
        extra = typed_keys(text, {key, *(k for k, _w in word_keys)})
        out.append((source, text, key, word_keys + extra if extra else word_keys))
    return out


def payer_keys(payment) -> tuple[str, str]:
    reference, email = payment.payer_reference, payment.payer_email
    return (
        reference.strip().lower() if reference else "",
        email.strip().lower() if email else "",
    )


def payment_keys(payment) -> set[str]:
    """Every reference key the engine may look up for this payment (engine.reference_hits):
    each text's whole key, its words' and word pairs' keys, and '#' + each all-digit key."""
    keys = set()
    for _source, _text, whole, word_keys in payment.texts:
        keys.add(whole)
        keys.update(key for key, _words in word_keys)
    keys.discard("")
    keys.update(["#" + key for key in keys if key.isdigit()])
    return keys


def wanted_keys(payments) -> set[str]:
    """Every reference key the payments could look up."""
    wanted = set()
    for payment in payments:
        wanted |= payment_keys(payment)
    return wanted


def load_payments(*, payment_ids=None, fork_minimum: int | None = None) -> list[PaymentInput]:
    """Payments to match (see payment_rows), each with its reference texts' keys.

    fork_minimum: from this many payments on, half of them have their texts read in a forked
    child (core.forking; a big run's serial step, pure Python); None: all in this process."""
    payments = [PaymentInput(*row) for row in payment_rows(payment_ids=payment_ids)]
    if fork_minimum is None:
        texts = [reference_texts(payment) for payment in payments]
    else:
        texts = fork_map(reference_texts, payments, minimum=fork_minimum)
    for payment, payment_texts in zip(payments, texts, strict=True):
        payment.texts = payment_texts
        payment.payer_keys = payer_keys(payment)
    rejected = rejected_allocations(payment_ids)
    if rejected:
        for payment in payments:
            lines = rejected.get(payment.id)
            if lines:
                payment.rejected = frozenset(lines)
    return payments


def rejected_allocations(payment_ids=None) -> dict[int, list[tuple]]:
    """Per payment, the allocations of proposals a person rejected, as engine lines, so a
    later run does not propose the same thing again (a handful: people's decisions)."""
    query = MatchProposal.objects.filter(state=MatchProposal.State.REJECTED)
    if payment_ids is not None:
        query = query.filter(payment_id__in=list(payment_ids))
    else:
        query = query.filter(payment__match_state=Payment.MatchState.UNMATCHED)
    out: dict[int, list[tuple]] = {}
    for payment_id, lines in query.values_list("payment_id", "lines"):
        out.setdefault(payment_id, []).append(
            tuple(
                (
                    int(line["invoice_id"]),
                    to_milli(Decimal(line["amount"])),
                    to_milli(Decimal(line.get("discount_amount") or 0)),
                    to_milli(Decimal(line.get("write_off_amount") or 0)),
                    line.get("write_off_gl_account_code") or "",
                )
                for line in lines
            )
        )
    return out


def payment_rows(*, payment_ids=None):
    """The given payments, else every payment received (MATCHED_STATUSES) not matched yet,
    oldest first.

    Payments with a live plan are left alone: a person (or a rule) already decided them.
    """
    query = Payment.objects.all()
    if payment_ids is not None:
        query = query.filter(id__in=list(payment_ids))
    else:
        query = query.filter(match_state=Payment.MatchState.UNMATCHED, status__in=MATCHED_STATUSES)
    query = query.exclude(plans__state__in=AllocationPlan.LIVE)
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
            "payer_name",
            "payer_account",
            "received_at",
        )
        .iterator(chunk_size=20000)
    )
    return rows
