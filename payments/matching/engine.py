"""The matching engine: a pure function from (open items, rules, payments) to ranked proposals.

No database access here (see index.py for the loading), so a dry run and a real run compute
exactly the same thing, and tests can call it directly. Rules are tried in the admin's order;
each can add candidates, every candidate carries the rule, evidence and a confidence, and the
best becomes rank 1 with the others as alternatives. Payments are matched in the order they
were received and rank-1 proposals claim their invoices' open amounts for the rest of the run,
so two payments of the same amount from one payer are not both pointed at the same invoice.
Amounts are integer thousandths here (exact; see index.py); confidences are per mille.
"""

import gc
from bisect import insort
from contextlib import contextmanager
from dataclasses import dataclass, field

from payments.matching.index import (
    FIELD_NAMES,
    FIELD_NUMBER_DIGITS,
    ITEM_CURRENCY,
    ITEM_CUSTOMER,
    ITEM_ENTITY,
    ITEM_EXTERNAL,
    ITEM_NUMBER,
    OpenItems,
    PaymentInput,
    RuleSpec,
)
from payments.matching.normalise import reference_key, text_keys
from payments.matching.rules import HANDLERS
from payments.models import MatchRule

Kind = MatchRule.Kind
STRONG = 900  # a candidate this sure ends the rule loop (Odoo-style: first sure rule wins)
REVIEW_BELOW = 500  # rank 1 below this confidence is flagged for a person
MAX_PROPOSALS = 5

_QUANTUM: dict[str, int] = {}


def money(milli: int, currency: str) -> str:
    """Thousandths -> '12.34' at the currency's precision (exact: amounts come from MoneyFields).

    Integer formatting, not Decimal: this runs for every amount in every proposal's evidence.
    """
    quantum = _QUANTUM.get(currency)
    if quantum is None:
        from ledger.money import MoneyError, exponent

        try:
            quantum = _QUANTUM[currency] = 10 ** (3 - exponent(currency))
        except MoneyError:
            quantum = _QUANTUM[currency] = 1
    sign = "-" if milli < 0 else ""
    whole, fraction = divmod(abs(milli), 1000)
    if fraction % quantum:  # finer than the currency allows: show all three places
        return f"{sign}{whole}.{fraction:03d}"
    if quantum == 1000:
        return f"{sign}{whole}"
    digits = 3 - len(str(quantum)) + 1
    return f"{sign}{whole}.{fraction // quantum:0{digits}d}"


@dataclass(slots=True)
class Candidate:
    rule: RuleSpec
    confidence: int
    explanation: str
    lines: list  # (invoice_id, amount, discount, write_off, write_off_gl_account_code)
    on_account: int
    evidence: dict
    auto_approve: bool = False


@dataclass(slots=True)
class PaymentResult:
    payment: PaymentInput
    customer_id: int | None
    candidates: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    needs_review: bool = False


@dataclass(slots=True)
class _Hit:
    invoice_id: int
    field: int
    text: str
    source: str


class _Context:
    """One run's working copy of the open amounts, which rank-1 proposals claim as it goes.

    An amount -> invoices map per (customer, currency) is built on first use and kept up to
    date on each claim, so "which of this payer's invoices is open for exactly X" is one look-up.
    """

    def __init__(self, index: OpenItems):
        self.index = index
        self.open_amounts = dict(index.open)  # the index itself is left as loaded
        self._by_amount: dict[tuple, dict] = {}

    def open(self, invoice_id: int) -> int:
        return self.open_amounts[invoice_id]

    def label(self, invoice_id: int) -> str:
        item = self.index.items[invoice_id]
        return item[ITEM_NUMBER] or item[ITEM_EXTERNAL] or f"#{invoice_id}"

    def claim(self, invoice_id: int, amount: int) -> None:
        before = self.open_amounts[invoice_id]
        after = self.open_amounts[invoice_id] = before - amount
        item = self.index.items[invoice_id]
        key = (item[ITEM_CUSTOMER], item[ITEM_CURRENCY])
        amounts = self._by_amount.get(key)
        if amounts is not None:
            same = amounts.get(before)
            if same and invoice_id in same:
                same.remove(invoice_id)
            if after > 0:  # part-claimed: keep it, oldest first among equal amounts
                age = self.index.by_customer[key].index
                insort(amounts.setdefault(after, []), invoice_id, key=age)

    def customer_open(self, customer_id: int, currency: str, limit: int | None = None):
        """(invoice id, open) of a customer's open invoices in the currency, oldest first."""
        opens = self.open_amounts
        out = [
            (i, opens[i])
            for i in self.index.by_customer.get((customer_id, currency), ())
            if opens[i] > 0
        ]
        return out if limit is None else out[:limit]

    def customer_amounts(self, customer_id: int, currency: str) -> dict:
        """open amount -> invoice ids oldest first, for one customer and currency."""
        key = (customer_id, currency)
        amounts = self._by_amount.get(key)
        if amounts is None:
            amounts = {}
            opens = self.open_amounts
            for invoice_id in self.index.by_customer.get(key, ()):
                left = opens[invoice_id]
                if left > 0:
                    amounts.setdefault(left, []).append(invoice_id)
            self._by_amount[key] = amounts
        return amounts


def resolve_customer(index: OpenItems, payment: PaymentInput) -> tuple[int | None, dict]:
    """Payment.customer, else a confirmed payer mapping, else a unique customer email."""
    if payment.customer_id:
        return payment.customer_id, {"via": "payment.customer"}
    for key in (payment.payer_reference, payment.payer_email):
        key = (key or "").strip().lower()
        if key:
            customer_id = index.payer_map.get((payment.source, key))
            if customer_id:
                return customer_id, {"via": "payer_mapping", "payer_key": key}
    email = (payment.payer_email or "").strip().lower()
    if email:
        customer_id = index.by_email.get((payment.entity_id, email))
        if customer_id:
            return customer_id, {"via": "customer_email", "email": email}
    return None, {}


def _reference_texts(payment: PaymentInput):
    for reference in payment.references or ():
        if isinstance(reference, dict) and reference.get("value"):
            yield str(reference.get("source") or "reference"), str(reference["value"])
        elif isinstance(reference, str) and reference:
            yield "reference", reference
    if payment.description:
        yield "description", payment.description


def reference_hits(ctx: _Context, payment: PaymentInput, notes: list) -> dict[str, list[_Hit]]:
    """Invoices the payment's texts name, grouped by the key that named them.

    Number-only hits ("Invoice 1043" -> INV-1043) count only when no full reference matched.
    Invoices of another entity are invisible; another currency or nothing left open is noted.
    """
    index = ctx.index
    full: dict[str, list[_Hit]] = {}
    digits: dict[str, list[_Hit]] = {}
    seen_keys: set[str] = set()
    for source, text in _reference_texts(payment):
        whole = reference_key(text)
        if source != "description" and whole in index.by_ref:
            keys = [(whole, text)]  # a reference field holding exactly one reference: done
        else:
            keys = text_keys(text)
            if whole and len(keys) != 1:
                keys.append((whole, text))
        for key, words in keys:
            if key in seen_keys:
                continue
            seen_keys.add(key)
            lookups = [(key, full)]
            if key.isdigit():
                lookups.append(("#" + key, digits))
            for lookup_key, bucket in lookups:
                for packed in index.lookup(lookup_key):
                    invoice_id, field_code = divmod(packed, 4)
                    item = index.items[invoice_id]
                    if item[ITEM_ENTITY] != payment.entity_id:
                        continue
                    if item[ITEM_CURRENCY] != payment.currency:
                        notes.append(
                            f"'{words}' names invoice {ctx.label(invoice_id)} in {item[ITEM_CURRENCY]}; "
                            f"the payment is in {payment.currency}: currencies must match."
                        )
                        continue
                    if ctx.open(invoice_id) <= 0:
                        notes.append(
                            f"'{words}' names invoice {ctx.label(invoice_id)}, which has "
                            "nothing left open (paid or held by another plan)."
                        )
                        continue
                    target = bucket.setdefault(key, [])
                    if all(h.invoice_id != invoice_id for h in target):
                        target.append(_Hit(invoice_id, field_code, words, source))
    return full or digits


class Matcher:
    """Matches payments one after another against one index with one rule list."""

    def __init__(self, index: OpenItems, rules: list[RuleSpec]):
        self.ctx = _Context(index)
        self.rules = rules

    def run(self, payments) -> list[PaymentResult]:
        return [self.match(payment) for payment in payments]

    def match(self, payment: PaymentInput) -> PaymentResult:
        ctx = self.ctx
        notes: list[str] = []
        customer_id, customer_evidence = resolve_customer(ctx.index, payment)
        result = PaymentResult(payment=payment, customer_id=customer_id, notes=notes)
        if payment.amount_milli <= 0:
            notes.append("Nothing to allocate (amount is zero or fully refunded).")
            return result
        customer_currency = ctx.index.customers.get(customer_id, (None, None))[1]
        if customer_id and customer_currency not in (None, payment.currency):
            # AIQ keeps one currency per customer account: the receipt could not be posted
            notes.append(
                f"The payer's customer account is in {customer_currency}, the payment in "
                f"{payment.currency}: currencies must match."
            )
            customer_id, customer_evidence = None, {}
        hits = reference_hits(ctx, payment, notes)
        state = _State(payment, customer_id, customer_evidence, hits, ctx)
        if hits and state.conflict:
            notes.append("The reference names another customer's invoice than the payer's.")
        if customer_id is None and state.customer_id is None:
            notes.append("Payer not recognised: no customer, payer mapping or email matched.")
        for rule in self.rules:
            if state.best >= STRONG:
                break  # a match this sure ends the search (later rules are costlier guesses)
            handler = HANDLERS.get(rule.kind)
            if handler is not None:
                handler(state, rule)
        ranked = _rank(state.candidates)
        result.customer_id = state.customer_id
        result.candidates = ranked
        if ranked:
            result.needs_review = state.ambiguous or ranked[0].confidence < REVIEW_BELOW
            for invoice_id, amount, discount, write_off, _gl in ranked[0].lines:
                ctx.claim(invoice_id, amount + discount + write_off)
        return result


class _State:
    """What one payment's rules share: who paid, which invoices it names, candidates so far."""

    def __init__(self, payment, customer_id, customer_evidence, hits, ctx: _Context):
        self.payment = payment
        self.ctx = ctx
        self.candidates: list[Candidate] = []
        self.best = 0
        self.ambiguous = any(len(group) > 1 for group in hits.values())
        self.hits = hits
        self.target: list[int] = []  # invoices the reference names unambiguously
        self.conflict = False
        if hits and not self.ambiguous:
            self.target = sorted({group[0].invoice_id for group in hits.values()})
            owners = {ctx.index.items[i][ITEM_CUSTOMER] for i in self.target}
            if customer_id is not None and owners != {customer_id}:
                self.conflict = True
            elif customer_id is None and len(owners) == 1:
                customer_id = owners.pop()
                customer_evidence = {"via": "invoice_reference"}
        self.customer_id = customer_id
        self._customer_items = None
        self.customer_evidence = {"customer_id": customer_id, **customer_evidence}
        self.digits_only = bool(hits) and all(
            h.field == FIELD_NUMBER_DIGITS for group in hits.values() for h in group
        )

    def m(self, milli: int) -> str:
        return money(milli, self.payment.currency)

    def add(self, rule, confidence, explanation, lines, evidence, auto=False):
        allocated = sum(line[1] for line in lines)
        on_account = self.payment.amount_milli - allocated
        evidence = {"customer": self.customer_evidence, **evidence}
        if self.conflict:
            confidence -= 300
            evidence["warning"] = "reference belongs to another customer than the payer"
        confidence = max(0, min(1000, confidence))
        self.candidates.append(
            Candidate(rule, confidence, explanation, lines, on_account, evidence, auto)
        )
        self.best = max(self.best, confidence)

    def token_evidence(self, invoice_ids=None):
        return [
            {
                "token": hit.text,
                "source": hit.source,
                "key": key,
                "invoice_id": hit.invoice_id,
                "invoice": self.ctx.label(hit.invoice_id),
                "field": FIELD_NAMES[hit.field],
            }
            for key, group in self.hits.items()
            for hit in group
            if invoice_ids is None or hit.invoice_id in invoice_ids
        ]

    def customer_items(self, limit=None):
        """The payer's open invoices, oldest first; read once per payment (every rule after
        the first reuses the list instead of walking the million-entry amounts again)."""
        if self._customer_items is None:
            self._customer_items = self.ctx.customer_open(self.customer_id, self.payment.currency)
        return self._customer_items if limit is None else self._customer_items[:limit]

    def open_items(self, limit=None):
        if self.target:
            return [(i, self.ctx.open(i)) for i in self.target]
        if self.customer_id is None:
            return []
        return self.customer_items(limit)


def _rank(candidates: list[Candidate]) -> list[Candidate]:
    """Most confident first (rule order breaks ties); the same allocation only once."""
    ordered = sorted(
        enumerate(candidates), key=lambda pair: (-pair[1].confidence, pair[1].rule.order, pair[0])
    )
    seen = set()
    ranked = []
    for _position, candidate in ordered:
        key = tuple(candidate.lines)
        if key in seen:
            continue
        seen.add(key)
        ranked.append(candidate)
        if len(ranked) >= MAX_PROPOSALS:
            break
    if ranked and ranked[0].auto_approve and len(ranked) > 1:
        # an alternative as plausible as the first means a person should look
        if ranked[1].confidence >= ranked[0].confidence - 100:
            ranked[0].auto_approve = False
    return ranked


def match_payments(index: OpenItems, rules: list[RuleSpec], payments) -> list[PaymentResult]:
    """The whole engine: pure, deterministic for the same inputs in the same order."""
    with gc_paused():
        return Matcher(index, rules).run(payments)


@contextmanager
def gc_paused():
    """The cyclic GC would walk the whole million-item index again and again while the run
    allocates (measured: most of the engine's time); the run makes no reference cycles."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
