"""The matching engine: a pure function from (open items, rules, payments) to ranked proposals.

No database access here (see index.py for the loading), so a dry run and a real run compute
exactly the same thing, and tests can call it directly. Rules are tried in the admin's order;
each can add candidates, every candidate carries the rule, evidence and a confidence, and the
best becomes rank 1 with the others as alternatives. Payments are matched in the order they
were received and rank-1 proposals claim their invoices' open amounts for the rest of the run,
so two payments of the same amount from one payer are not both pointed at the same invoice.
Amounts are integer thousandths here (exact; see index.py); confidences are per mille.

Speed (bench/bench_matching.py): the explanation text and evidence dict of a candidate are
rendered on first access (when proposals are written or shown), from the facts captured when
the candidate was made; most candidates' text used to cost more than deciding on them, and
alternatives beyond the first five are never rendered at all.
"""

import re
from dataclasses import dataclass, field
from itertools import compress
from operator import attrgetter

from core.gcpause import gc_paused
from core.money import MoneyError, exponent
from ledger.references import reference_key, reference_keys
from payments.matching.combination import find_combinations
from payments.matching.index import (
    FIELD_NAMES,
    FIELD_NUMBER_DIGITS,
    ITEM_CURRENCY,
    ITEM_CUSTOMER,
    ITEM_ENTITY,
    ITEM_NUMBER,
    ITEM_OPEN,
    OpenItems,
    PaymentInput,
    RuleSpec,
    label,
    payer_keys,
    reference_texts,
    rules_for,
)
from payments.matching.near import inferred_hits, inferred_note
from payments.matching.payers import NAME_ACCEPT, identify, narrative_name, payer_confirmed
from payments.matching.rules import HANDLERS
from payments.models import MatchRule

Kind = MatchRule.Kind
# What a rule needs to have anything to say: invoices the payment names (the reference rule),
# or those or a known payer (every other rule returns at once without either).
NEEDS_HITS, NEEDS_PAYER = 1, 2
STRONG = 900
_CONFIDENCE_OF = attrgetter("confidence")
_ORDER_OF = attrgetter("order")
_ZERO_BELOW = (
    0
).__lt__  # _ZERO_BELOW(x) is 0 < x  # a candidate this sure ends the rule loop (Odoo-style: first sure rule wins)
REVIEW_BELOW = 500  # rank 1 below this confidence is flagged for a person
# No proposal below this is approved without a person, whatever its rule says. Calibrated on
# bench/bench_match_quality.py: every first proposal at or above it was right there (its
# table by confidence band), and the rules only make candidates eligible on evidence that
# stands on its own (an exact reference and amount; a payer known by a person's mapping, its
# account code or email, with exactly one invoice open for the amount).
AUTO_APPROVE_MIN = 900

MAX_PROPOSALS = 5
CONFLICT_WARNING = "reference belongs to another customer than the payer"

_QUANTUM: dict[str, tuple[int, int]] = {}
# money() text by currency and amount: a proposal names the same few amounts several times
# (payment, open, sum, line), so a run formats each amount once; bounded, cleared when full.
_MONEY_TEXT: dict[str, dict[int, str]] = {}
_MONEY_TEXT_LIMIT = 200_000


def money(milli: int, currency: str) -> str:
    """Thousandths -> '12.34' at the currency's precision (exact: amounts come from MoneyFields)."""
    texts = _MONEY_TEXT.get(currency)
    if texts is None:
        texts = _MONEY_TEXT[currency] = {}
    text = texts.get(milli)
    if text is None:
        if len(texts) >= _MONEY_TEXT_LIMIT:
            texts.clear()
        text = texts[milli] = _format_money(milli, currency)
    return text


def _format_money(milli: int, currency: str) -> str:
    known = _QUANTUM.get(currency)
    if known is None:
        try:
            quantum = 10 ** (3 - exponent(currency))
        except MoneyError:
            quantum = 1
        known = _QUANTUM[currency] = (quantum, 3 - len(str(quantum)) + 1)
    quantum, digits = known
    if milli < 0:
        sign, milli = "-", -milli
    else:
        sign = ""
    whole, fraction = divmod(milli, 1000)
    if fraction % quantum:  # finer than the currency allows: show all three places
        return f"{sign}{whole}.{fraction:03d}"
    if quantum == 1000:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{fraction // quantum:0{digits}d}"


class Facts:
    """What the evidence of one payment's candidates is rendered from (fixed once matched).

    hits: reference key -> [(invoice id, field code, words, text source, invoice row)].
    Holds no candidate and no index, so results keep neither a cycle nor the million rows alive.
    """

    __slots__ = (
        "payment",
        "hits",
        "customer_id",
        "customer_via",
        "conflict",
        "_customer",
        "_tokens",
    )

    def __init__(self, payment, hits, customer_id, customer_via, conflict):
        self.payment = payment
        self.hits = hits
        self.customer_id = customer_id
        self.customer_via = customer_via
        self.conflict = conflict
        self._customer = self._tokens = None

    def m(self, milli: int) -> str:
        return money(milli, self.payment.currency)

    def customer_evidence(self) -> dict:
        """Who paid and how we know: the same for all of one payment's candidates (made once;
        the evidence dicts share it, and nothing changes it after)."""
        if self._customer is None:
            self._customer = {"customer_id": self.customer_id, **self.customer_via}
        return self._customer

    def token_evidence(self, invoice_ids=None):
        if invoice_ids is None:
            if self._tokens is None:
                self._tokens = self._token_evidence(None)
            return self._tokens  # shared like customer_evidence()
        return self._token_evidence(invoice_ids)

    def _token_evidence(self, invoice_ids):
        return [
            {
                "token": words,
                "source": source,
                "key": key,
                "invoice_id": invoice_id,
                "invoice": label(item),
                "field": FIELD_NAMES[field_code],
            }
            for key, group in self.hits.items()
            for invoice_id, field_code, words, source, item in group
            if invoice_ids is None or invoice_id in invoice_ids
        ]


class Candidate:
    """One way to allocate a payment: rule, confidence, lines, remainder on account.

    lines: [(invoice_id, amount, discount, write_off, write_off_gl_account_code)].
    `explanation` and `evidence` are built on first access by render(facts, *args) -> (text,
    evidence dict); the values captured in args are those of match time, so rendering later
    gives exactly what rendering at once would have.
    """

    __slots__ = (
        "rule",
        "confidence",
        "lines",
        "on_account",
        "auto_approve",
        "eligible",
        "_facts",
        "_render",
        "_explanation",
        "_evidence",
    )

    def __init__(self, rule, confidence, lines, on_account, facts, render, eligible=False):
        self.rule = rule
        self.confidence = confidence
        self.lines = lines
        self.on_account = on_account
        # safe enough to approve without a person (calibrated: AUTO_APPROVE_MIN); approved so
        # only where its rule says so, recorded as "would have" where its rule monitors
        self.eligible = eligible
        self.auto_approve = eligible and rule.auto_approve
        self._facts = facts
        self._render = render
        self._explanation = self._evidence = None

    def _materialise(self) -> None:
        facts = self._facts
        render = self._render
        explanation, body = render[0](facts, *render[1:])
        evidence = {"customer": facts.customer_evidence()}
        evidence.update(body)
        if facts.conflict:
            evidence["warning"] = CONFLICT_WARNING
        if self.rule.monitor and not self.rule.auto_approve:
            evidence["would_auto_approve"] = self.eligible
        self._explanation, self._evidence = explanation, evidence
        self._facts = self._render = None

    @property
    def explanation(self) -> str:
        if self._render is not None:
            self._materialise()
        return self._explanation

    @property
    def evidence(self) -> dict:
        if self._render is not None:
            self._materialise()
        return self._evidence

    def __repr__(self) -> str:
        return f"Candidate({self.rule.kind}, {self.confidence}, {self.lines!r})"


@dataclass(slots=True)
class PaymentResult:
    payment: PaymentInput
    customer_id: int | None
    candidates: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    needs_review: bool = False


class _OpenAmounts(dict):
    """Invoice id -> open amount in this run: the amounts claimed or held so far are entries,
    every other invoice reads its loaded row (no copy of a million amounts per run)."""

    __slots__ = ("items",)

    def __init__(self, index: OpenItems):
        super().__init__(index.held)
        self.items = index.items

    def __missing__(self, invoice_id: int) -> int:
        return self.items[invoice_id][ITEM_OPEN]

    def of(self, invoice_id: int, item) -> int:
        """The open amount of an invoice whose row the caller holds already (no second look-up
        of the row, no Python-level __missing__ call: the hot paths use this)."""
        current = self.get(invoice_id)
        return item[ITEM_OPEN] if current is None else current


class _Context:
    """One run's working copy of the open amounts, which rank-1 proposals claim as it goes.

    open_amounts is by invoice; a payer's open amounts in age order are read from the index's
    per-customer list until one of the payer's invoices is claimed, and from this run's copy
    of that list (kept in step by claim()) after.
    """

    def __init__(self, index: OpenItems):
        self.index = index
        self.items = index.items
        self.position = index.position
        self.open_amounts = _OpenAmounts(index)  # the index itself is left as loaded
        self.claimed_opens: dict[tuple, list] = {}
        self._by_number = None
        # the current payment's hits on other group companies' invoices (_note_other_company)
        self.foreign: list = []

    def by_number(self) -> dict:
        """Reference key of each open invoice's number -> its id (made on first use: only a
        suspected typo needs it, and the run's keys index only what its payments name)."""
        if self._by_number is None:
            items = self.items
            self._by_number = dict(
                zip(
                    reference_keys([item[ITEM_NUMBER] or "" for item in items.values()]),
                    items,
                    strict=True,
                )
            )
        return self._by_number

    def claim(self, invoice_id: int, amount: int) -> None:
        item = self.items[invoice_id]
        open_amounts = self.open_amounts
        open_amounts[invoice_id] = open_amounts.of(invoice_id, item) - amount
        key = (item[ITEM_CUSTOMER], item[ITEM_CURRENCY])
        opens = self.claimed_opens.get(key)
        if opens is None:
            opens = self.claimed_opens[key] = self.index.customer_opens[key][:]
        opens[self.position[invoice_id]] -= amount

    def label(self, invoice_id: int) -> str:
        return label(self.index.items[invoice_id])

    def customer_arrays(self, customer_id: int, currency: str):
        key = (customer_id, currency)
        ids = self.index.by_customer.get(key)
        if ids is None:
            return (), ()
        return ids, self.claimed_opens.get(key) or self.index.customer_opens[key]

    def customer_open(self, customer_id: int, currency: str, limit: int | None = None):
        """(invoice id, open) of a customer's open invoices in the currency, oldest first."""
        key = (customer_id, currency)
        ids = self.index.by_customer.get(key)
        if ids is None:
            return []
        opens = self.claimed_opens.get(key) or self.index.customer_opens[key]
        # the pairs whose amount is above 0, picked by C routines
        out = list(compress(zip(ids, opens, strict=True), map(_ZERO_BELOW, opens)))
        return out if limit is None else out[:limit]


def resolve_customer(index: OpenItems, payment: PaymentInput) -> tuple[int | None, dict]:
    """Payment.customer, else a confirmed payer mapping, else a unique customer email, else
    what the payer name and remittance text identify (payers.identify). (None, {why}) when
    nobody is identified: `why` holds the closest names that were not good enough."""
    if payment.customer_id:
        return payment.customer_id, {"via": "payment.customer"}
    reference, email = payment.payer_keys or payer_keys(payment)
    payer_map = index.payer_map
    if payer_map:
        if reference:
            customer_id = payer_map.get((payment.source, reference))
            if customer_id:
                return customer_id, {"via": "payer_mapping", "payer_key": reference}
        if email:
            customer_id = payer_map.get((payment.source, email))
            if customer_id:
                return customer_id, {"via": "payer_mapping", "payer_key": email}
    if email:
        customer_id = index.by_email.get((payment.entity_id, email))
        if customer_id:
            return customer_id, {"via": "customer_email", "email": email}
    return identify(index, payment)


def reference_hits(ctx: _Context, payment: PaymentInput, notes: list) -> dict[str, list]:
    """Invoices the payment's texts name, grouped by the key that named them.

    Number-only hits ("Invoice 1043" -> INV-1043) count only when no full reference matched.
    Invoices of another company are never proposed (a payment belongs to the company of the
    account it arrived through): one named while the payment's own company has no invoice of
    that key is noted; another currency or nothing left open is noted.
    A hit is (invoice id, field code, words, text source, invoice row).
    """
    by_ref = ctx.index.by_ref
    full: dict[str, list] = {}
    digits: dict[str, list] = {}
    seen_keys: set[str] = set()
    texts = payment.texts
    if texts is None:
        texts = reference_texts(payment)
    if len(texts) == 1:
        # the usual payment: one reference field naming one invoice (no bookkeeping needed)
        source, text, whole, word_keys = texts[0]
        if source != "description":
            entry = by_ref.get(whole)
            if entry is not None:
                if entry.__class__ is int:  # one invoice has this key: the usual case
                    item = ctx.items[entry >> 2]
                    if (
                        item[ITEM_ENTITY] == payment.entity_id
                        and item[ITEM_CURRENCY] == payment.currency
                        and ctx.open_amounts.of(entry >> 2, item) > 0
                    ):
                        return {whole: [(entry >> 2, entry & 3, text, source, item)]}
                _collect(ctx, payment, notes, entry, whole, text, source, full)
                if not full and whole.isdigit():
                    entry = by_ref.get("#" + whole)
                    if entry is not None:
                        _collect(ctx, payment, notes, entry, whole, text, source, digits)
                return full or digits
    for source, text, whole, word_keys in texts:
        if source != "description" and whole in by_ref:
            keys = ((whole, text),)  # a reference field holding exactly one reference: done
        elif whole and len(word_keys) != 1:
            keys = [*word_keys, (whole, text)]
        else:
            keys = word_keys
        for key, words in keys:
            if key in seen_keys:
                continue
            seen_keys.add(key)
            entry = by_ref.get(key)
            if entry is not None:
                _collect(ctx, payment, notes, entry, key, words, source, full)
            if key.isdigit():
                entry = by_ref.get("#" + key)
                if entry is not None:
                    _collect(ctx, payment, notes, entry, key, words, source, digits)
    return full or digits


def _collect(ctx, payment, notes, entry, key, words, source, bucket) -> None:
    items = ctx.index.items
    entries = entry if isinstance(entry, list) else (entry,)
    for packed in entries:
        invoice_id = packed >> 2
        item = items[invoice_id]
        if item[ITEM_ENTITY] != payment.entity_id:
            _note_other_company(ctx, payment, notes, entries, (packed, words, source))
            continue
        if item[ITEM_CURRENCY] != payment.currency:
            notes.append(
                f"'{words}' names invoice {label(item)} in {item[ITEM_CURRENCY]}; "
                f"the payment is in {payment.currency}: currencies must match."
            )
            continue
        if ctx.open_amounts.of(invoice_id, item) <= 0:
            notes.append(
                f"'{words}' names invoice {label(item)}, which has "
                "nothing left open (paid or held by another plan)."
            )
            continue
        target = bucket.get(key)
        if target is None:
            bucket[key] = [(invoice_id, packed & 3, words, source, item)]
        elif all(hit[0] != invoice_id for hit in target):
            target.append((invoice_id, packed & 3, words, source, item))


def _note_other_company(ctx, payment, notes, entries, hit) -> None:
    """A reference naming another group company's invoice, when the payment's own company has
    no invoice of that key: say whose it is, and keep it (ctx.foreign) for a cross-company
    receipt where the group allows them (cross_company). Never matched as the company's own:
    a cross-company receipt makes both companies' entries through AIQ's intercompany accounts
    (payments/services/cross_company.py)."""
    items = ctx.index.items
    if any(items[packed >> 2][ITEM_ENTITY] == payment.entity_id for packed in entries):
        return
    packed, words, source = hit
    invoice_id = packed >> 2
    item = items[invoice_id]
    names = ctx.index.entity_names
    other = names.get(item[ITEM_ENTITY]) or f"company #{item[ITEM_ENTITY]}"
    own = names.get(payment.entity_id) or f"company #{payment.entity_id}"
    note = (
        f"'{words}' names invoice {label(item)}, which belongs to {other}; this payment "
        f"arrived for {own} and is matched only with {own}'s invoices"
    )
    if ctx.index.cross_company is None:
        note += ": the group does not allow cross-company receipts (Group policy)."
    else:
        note += ", or received for it as a cross-company receipt (the group allows them)."
        if all(found[0] != invoice_id for found in ctx.foreign):
            ctx.foreign.append((invoice_id, packed & 3, words, source, item))
    if note not in notes:
        notes.append(note)


# A payment naming another group company's invoice, where the group allows cross-company
# receipts: the exact reference (number or external reference) for exactly the open amount is
# as sure as the reference rule's own match, and the only evidence ever approved without a
# person (and then only where the group's policy says so); the number alone, part of the
# amount, or several companies' invoices of one reference are proposed for a person.
CROSS_EXACT, CROSS_PART, CROSS_DIGITS, CROSS_DIGITS_PART, CROSS_SEVERAL = 950, 700, 800, 550, 400


def cross_company(state, rule, foreign, notes) -> None:
    """Candidates receiving the whole payment for another group company's invoice it names
    (a cross-company receipt takes the whole payment: at most the invoice's open amount)."""
    payment = state.payment
    amount = payment.amount_milli
    ctx = state.ctx
    names = ctx.index.entity_names
    usable = []
    for hit in foreign:
        invoice_id, _field, words, _source, item = hit
        other = names.get(item[ITEM_ENTITY]) or f"company #{item[ITEM_ENTITY]}"
        if item[ITEM_CURRENCY] != payment.currency:
            notes.append(
                f"{label(item)} of {other} is in {item[ITEM_CURRENCY]} and the payment in "
                f"{payment.currency}: currencies must match, so no cross-company receipt."
            )
            continue
        open_amount = ctx.open_amounts.of(invoice_id, item)
        if open_amount <= 0:
            notes.append(
                f"{label(item)} of {other} has nothing left open (paid or held by another "
                "plan): no cross-company receipt."
            )
            continue
        if amount > open_amount:
            notes.append(
                f"The payment ({money(amount, payment.currency)}) is more than {label(item)} of "
                f"{other} has open ({money(open_amount, payment.currency)}): a cross-company "
                "receipt takes the whole payment, so none is proposed."
            )
            continue
        usable.append((hit, open_amount, other))
    several = len(usable) > 1
    for hit, open_amount, other in usable:
        exact_reference = hit[1] < FIELD_NUMBER_DIGITS
        exact_amount = open_amount == amount
        if several:
            confidence = CROSS_SEVERAL
        elif exact_reference:
            confidence = CROSS_EXACT if exact_amount else CROSS_PART
        else:
            confidence = CROSS_DIGITS if exact_amount else CROSS_DIGITS_PART
        state.add(
            rule,
            confidence,
            [(hit[0], amount, 0, 0, "")],
            (_render_cross_company, hit, other, amount, open_amount, len(usable)),
            auto=exact_reference and exact_amount and not several,
        )


def _render_cross_company(facts, hit, other, amount, open_amount, count):
    invoice_id, field_code, words, _source, item = hit
    m = facts.m
    how = "equals" if amount == open_amount else "is part of"
    text = (
        f"'{words}' names {label(item)} of {other}; the group allows cross-company receipts. "
        f"{m(amount)} {how} its open amount {m(open_amount)}"
    )
    if field_code >= FIELD_NUMBER_DIGITS:
        text += " (named by its number only)"
    if count > 1:
        text += f"; {count} group companies' invoices fit this reference: needs review"
    return (
        text + ".",
        {
            "tokens": facts.token_evidence(),
            "cross_company": {
                "invoice_id": invoice_id,
                "invoice": label(item),
                "company": other,
                "entity_id": item[ITEM_ENTITY],
                "field": FIELD_NAMES[field_code],
                "words": words,
            },
            "amounts": {"payment": m(amount), "open": m(open_amount)},
        },
    )


DUPLICATE_CONFIDENCE = 600


def names_invoice(payment, by_ref) -> bool:
    """Does a text of the payment hold a full key of an indexed invoice?"""
    texts = payment.texts
    if texts is None:
        texts = payment.texts = reference_texts(payment)
    for _source, _text, whole, word_keys in texts:
        if whole in by_ref:
            return True
        for key, _words in word_keys:
            if key in by_ref:
                return True
    return False


def paid_named(index, payment, customer_id):
    """(invoice id, customer id, number, gross) of a paid invoice the payment's reference
    names for exactly its amount, of the identified payer (or of anyone when nobody is
    identified); None otherwise."""
    paid = index.paid
    for _source, _text, whole, word_keys in payment.texts or ():
        for key in (whole, *(k for k, _w in word_keys)):
            for row in paid.get(key, ()):
                if row[3] == payment.amount_milli and customer_id in (None, row[1]):
                    if index.customers.get(row[1], (None, None))[0] == payment.entity_id:
                        return row
    return None


def _render_duplicate(facts, invoice_id, number, gross):
    m = facts.m
    return (
        f"{number} is already paid ({m(gross)}); this payment of the same amount looks like a "
        "duplicate: held on the customer's account for a person to refund or allocate.",
        {
            "duplicate_of": {"invoice_id": invoice_id, "invoice": number, "gross": m(gross)},
            "amounts": {"payment": m(facts.payment.amount_milli), "on_account": m(gross)},
        },
    )


def _hit_label(hit) -> str:
    return f"'{hit[2]}' names {label(hit[4])}"


def supported_hits(ctx, payment, hits: dict, customer_id, notes: list) -> dict:
    """The hits the payer supports. With a payer identified, its own invoices' hits only;
    another customer's invoice only when the reference is a full one and the amount is
    exactly what those invoices have open (the reference alone never moves cash across
    customers). With no payer, a hit on the number alone ("4512") counts only when the amount
    agrees too (a PO or order number often equals some invoice's digits)."""
    if customer_id is not None:
        own, other = {}, {}
        for key, group in hits.items():
            mine = [hit for hit in group if hit[4][ITEM_CUSTOMER] == customer_id]
            if mine:
                own[key] = mine
            else:
                other[key] = group
        if not other:
            return hits
        if own:
            for group in other.values():
                notes.append(_hit_label(group[0]) + " of another customer: left out.")
            return own
        weak = any(hit[1] == FIELD_NUMBER_DIGITS for group in other.values() for hit in group)
    else:
        owners = {hit[4][ITEM_CUSTOMER] for group in hits.values() for hit in group}
        weak = (
            len(owners) == 1
            and all(hit[1] == FIELD_NUMBER_DIGITS for group in hits.values() for hit in group)
            and not _says_invoice(payment)
        )
        if not weak and not _payer_unlike(ctx.index, payment, owners):
            mistyped = _typo_of_another(ctx, payment, hits)
            if mistyped is None:
                return hits
            notes.append(mistyped)
            return {}
        other = hits
    if any(len(group) > 1 for group in other.values()):
        # one reference, several invoices: shown to a person as ambiguous (rules.reference),
        # never moved across customers without that person
        if customer_id is None:
            return hits
    elif not weak or customer_id is None:
        opens = ctx.open_amounts
        named = {group[0][0]: group[0][4] for group in other.values()}
        if sum(opens.of(i, item) for i, item in named.items()) == payment.amount_milli:
            return hits  # the amount agrees: proposed (with the conflict shown, if any)
    first = next(iter(other.values()))[0]
    if customer_id is not None:
        notes.append(
            _hit_label(first) + ", another customer's than the payer identified, and the "
            "amount does not settle it: not proposed."
        )
    elif weak:
        notes.append(
            _hit_label(first) + " by its number only and the amount does not agree: not "
            "proposed (a PO or order number may look like an invoice number)."
        )
    else:
        notes.append(
            _hit_label(first) + ", but the payer is not like that "
            "invoice's customer and the amount does not agree: not proposed (a mistyped "
            "number names someone else's invoice)."
        )
    return {}


def _typo_of_another(ctx, payment, hits) -> str | None:
    """A payer nobody identified names one invoice whose open amount is not the payment's,
    and a number one digit different (or two neighbours swapped) is another invoice open for
    exactly the amount: the reference is most likely mistyped, and the reference alone cannot
    say which customer paid. Then why nothing is proposed (a note); None otherwise."""
    if len(hits) != 1:
        return None
    ((_key, group),) = hits.items()
    if len(group) != 1:
        return None
    invoice_id, _field, words, _source, item = group[0]
    amount = payment.amount_milli
    if amount % 1000 == 0 or ctx.open_amounts.of(invoice_id, item) == amount:
        # a round amount is open on too many invoices for a neighbour having it to say
        # anything (a dense book has ~50 numbers one digit away from each)
        return None
    number = item[ITEM_NUMBER] or ""
    digits = _TRAILING_DIGITS.search(number)
    if digits is None or len(digits.group(1)) < 4:
        return None
    head, digits = number[: digits.start(1)], digits.group(1)
    by_number, items, opens = ctx.by_number(), ctx.items, ctx.open_amounts
    found = set()
    for variant in one_off(digits):
        other = by_number.get(reference_key(head + variant))
        if other is None or other == invoice_id:
            continue
        row = items[other]
        if (
            row[ITEM_ENTITY] == payment.entity_id
            and row[ITEM_CURRENCY] == payment.currency
            and opens.of(other, row) == amount
        ):
            found.add(other)
    if len(found) != 1:
        return None
    other = items[found.pop()]
    return (
        f"'{words}' names {label(item)}, which is not open for {money(amount, payment.currency)}; "
        f"{label(other)}, one digit different, is: the number looks mistyped and the payer is "
        "not identified, so neither is proposed."
    )


_TRAILING_DIGITS = re.compile(r"([0-9]+)$")


def one_off(digits: str):
    """Every string one digit different from `digits`, or with two neighbours swapped."""
    for position, digit in enumerate(digits):
        for other in "0123456789":
            if other != digit:
                yield digits[:position] + other + digits[position + 1 :]
        if position + 1 < len(digits) and digits[position + 1] != digit:
            yield digits[:position] + digits[position + 1] + digit + digits[position + 2 :]


UNLIKE_BELOW = 60  # a payer name this unlike the invoice's customer is someone else
_INVOICE_WORD = re.compile(r"\bINV(?:OICES?)?\b|\bINV(?=[ .#:/-]*[0-9])", re.IGNORECASE)
_OTHER_NUMBER_WORD = re.compile(r"\b(?:P\.?O|ORDER|ORD|ACC|ACCOUNT|CUST)\b", re.IGNORECASE)


def _says_invoice(payment) -> bool:
    """The text calls its number an invoice ("Invoice 4321", "inv 4321"), not a PO, order or
    account number: then a number alone may name the invoice."""
    for _source, text, _whole, _keys in payment.texts or ():
        if _INVOICE_WORD.search(text) and not _OTHER_NUMBER_WORD.search(text):
            return True
    return False


def _payer_unlike(index, payment, owners) -> bool:
    """The statement names a payer, and it is plainly not the customer the reference points
    at (a typo in the number lands on another customer's invoice)."""
    names = index.names
    payer = payment.payer_name
    if not payer and payment.texts:  # the payer's words at the head of a narrative
        payer = narrative_name(payment.texts[0][1])
    if names is None or not payer or len(owners) != 1:
        return False
    owner = next(iter(owners))
    if names.initials_fit(owner, payer):
        return False  # 'RCS LTD' for Royal Castle Security Ltd: the bank shows initials
    likeness = names.likeness(owner, payer)
    return likeness is not None and likeness < UNLIKE_BELOW


def _one_owner(ctx, payment, hits, notes):
    """(hits, owner) for a payer nobody identified: the hits of one customer only. The
    invoices the reference names belong to several customers and do not add up to the
    amount: those of the customer the text names first are kept (cash never goes to two
    customers on the reference alone). owner: (customer id,), or None when the hits are
    ambiguous (one key, several invoices: a person decides)."""
    owners = {}
    total = 0
    opens = ctx.open_amounts
    for group in hits.values():
        if len(group) > 1:
            return hits, None
        hit = group[0]
        owners.setdefault(hit[4][ITEM_CUSTOMER], []).append(hit)
        total += opens.of(hit[0], hit[4])
    first = next(iter(owners))
    if len(owners) == 1 or total == payment.amount_milli:
        return hits, (first,) if len(owners) == 1 else None
    kept = {key: group for key, group in hits.items() if group[0][4][ITEM_CUSTOMER] == first}
    for key, group in hits.items():
        if key not in kept:
            notes.append(
                _hit_label(group[0]) + ", another customer's than the first named: left out."
            )
    return kept, (first,)


def _worth_reading(ctx, payment, hits, customer_id) -> bool:
    """Is the reference worth reading against the payer's own invoices? When it named none
    exactly, or (payer known) named some that do not add up to the amount."""
    if not hits:
        return True
    total = 0
    opens = ctx.open_amounts
    for group in hits.values():
        if len(group) > 1:
            return False  # ambiguous: a person decides
        total += opens.of(group[0][0], group[0][4])
    return total != payment.amount_milli


# confidence at most, by how the payer was chosen among the customers its name fits
CHOSEN_CAP = {"payer_name_and_reference": 850, "payer_name_and_amount": 700}


def _chosen_via(why: dict, by: str) -> dict:
    """How a payer was chosen among the few customers its name fits (or whose initials it
    is): by the reference read against their invoices, or by the amount only one has open."""
    candidates = why.get("candidates") or {}
    tie = why.get("name_tie") or {}
    return {
        "via": f"payer_name_and_{by}",
        "payer_name": tie.get("payer_name") or candidates.get("payer_name", ""),
        "fits": candidates.get("how", ""),
        "customers_fitting": len(candidates.get("customer_ids") or ()),
    }


def _one_with_amount(ctx, payment, pool) -> int | None:
    """The one customer of `pool` with an invoice open for exactly the amount (else the one
    whose oldest open invoices add up to it); None when none or several have."""
    amount = payment.amount_milli
    having = []
    for customer_id in pool:
        _ids, opens = ctx.customer_arrays(customer_id, payment.currency)
        if amount in opens:
            having.append(customer_id)
    if not having:
        for customer_id in pool:
            opens = [o for _i, o in ctx.customer_open(customer_id, payment.currency, 40)]
            if len(opens) >= 2:
                combos, _exhaustive = find_combinations(opens, amount, max_items=6, budget=400)
                if combos:
                    having.append(customer_id)
    return having[0] if len(having) == 1 else None


def not_recognised(why: dict | None) -> str:
    """Why no payer was identified, in a clerk's words (the closest name when there was one)."""
    text = "Payer not recognised: no customer, payer mapping, account code, email or name matched."
    if why:
        tie = why.get("name_tie")
        rejected = why.get("name_rejected")
        if tie:
            runner = tie.get("runner_up") or {}
            text += (
                f" '{tie['payer_name']}' fits {tie['compared_with']} ({tie['score']}) and "
                f"{runner.get('name')} ({runner.get('score')}) equally well: not guessed."
            )
        elif rejected:
            text += (
                f" Closest name to '{rejected['payer_name']}': {rejected['compared_with']} "
                f"({rejected['score']} of 100, needs {NAME_ACCEPT})."
            )
    return text


class Matcher:
    """Matches payments one after another against one index with one rule list."""

    def __init__(self, index: OpenItems, rules: list[RuleSpec]):
        self.ctx = _Context(index)
        self.rules = rules
        self._per_company = {}  # entity id -> (steps, on-account rule): rules_for()
        self.steps, self.on_account_rule = self._steps(rules)

    @staticmethod
    def _steps(rules):
        # unknown kinds do nothing: leave them out of the per-payment loop
        steps = [
            (HANDLERS[rule.kind], rule, NEEDS_HITS if rule.kind == Kind.REFERENCE else NEEDS_PAYER)
            for rule in sorted(rules, key=_ORDER_OF)  # stable: equal orders keep theirs
            if rule.kind in HANDLERS
        ]
        return steps, next((r for r in rules if r.kind == Kind.OVERPAYMENT), None)

    def use_company(self, entity_id) -> None:
        """The steps of this company's rules (its own and the shared ones: rules_for)."""
        if not any(rule.entity_id is not None for rule in self.rules):
            return  # no company has rules of its own: the one list serves every payment
        found = self._per_company.get(entity_id)
        if found is None:
            found = self._per_company[entity_id] = self._steps(rules_for(self.rules, entity_id))
        self.steps, self.on_account_rule = found

    def run(self, payments) -> list[PaymentResult]:
        """Payments whose text names an open invoice by a full reference claim first, then
        the rest, each group in the order received: a payer-only guess for one payment never
        takes the invoice a later payment names exactly. Results keep the payments' order."""
        match = self.match
        by_ref = self.ctx.index.by_ref
        first, later = [], []
        for position, payment in enumerate(payments):
            (first if names_invoice(payment, by_ref) else later).append(position)
        if not later or not first:
            return [match(payment) for payment in payments]
        results = [None] * len(payments)
        for position in first + later:
            results[position] = match(payments[position])
        return results

    def duplicate(self, payment, customer_id, customer_via, paid, notes) -> PaymentResult:
        """The reference names an invoice that is already paid, with its amount: most likely
        the customer paid it twice. Nothing is put on another invoice; the money is proposed
        on the customer's account for a person to refund or allocate."""
        invoice_id, owner, number, gross = paid
        if customer_id is None:
            customer_id, customer_via = owner, {"via": "paid_invoice_reference"}
        notes.append(
            f"The reference names {number}, already paid; {money(gross, payment.currency)} "
            "again looks like a duplicate payment: held on account, not put on another invoice."
        )
        rule = self.on_account_rule
        if rule is None:
            return PaymentResult(payment, customer_id, [], notes)
        facts = Facts(payment, {}, customer_id, customer_via, False)
        candidate = Candidate(
            rule,
            DUPLICATE_CONFIDENCE,
            [],
            payment.amount_milli,
            facts,
            (_render_duplicate, invoice_id, number, gross),
        )
        return PaymentResult(payment, customer_id, [candidate], notes, True)

    def match(self, payment: PaymentInput) -> PaymentResult:
        ctx = self.ctx
        notes: list[str] = []
        if ctx.foreign:
            ctx.foreign = []
        self.use_company(payment.entity_id)
        customer_id, customer_via = payment.resolved or resolve_customer(ctx.index, payment)
        if payment.amount_milli <= 0:
            notes.append("Nothing to allocate (amount is zero or fully refunded).")
            return PaymentResult(payment, customer_id, [], notes)
        if customer_id:
            customer_currency = ctx.index.customers.get(customer_id, (None, None))[1]
            if customer_currency not in (None, payment.currency):
                # AIQ keeps one currency per customer account: the receipt could not be posted
                notes.append(
                    f"The payer's customer account is in {customer_currency}, the payment in "
                    f"{payment.currency}: currencies must match."
                )
                customer_id, customer_via = None, {}
        hits = reference_hits(ctx, payment, notes)
        if hits:
            hits = supported_hits(ctx, payment, hits, customer_id, notes)
        why_not = None
        if customer_id is None:
            why_not, customer_via = customer_via, {}
        if not hits and ctx.index.paid:
            duplicate = paid_named(ctx.index, payment, customer_id)
            if duplicate is not None:
                return self.duplicate(payment, customer_id, customer_via, duplicate, notes)
        pool = None
        if customer_id is None and not hits and why_not:
            pool = (why_not.get("candidates") or {}).get("customer_ids")
        elif customer_id is None and hits:
            hits, pool = _one_owner(ctx, payment, hits, notes)
        pool_by_invoices = bool(pool) and bool(hits)  # the invoices' owner: _State says so
        if (customer_id is not None or pool) and _worth_reading(ctx, payment, hits, customer_id):
            # the payer (or the few customers its name fits) known: read the reference
            # against their own invoices (cut short, one digit off, an order number, ...)
            chosen, inferred = inferred_hits(
                ctx, payment, pool or (customer_id,), hits, customer_id is not None
            )
            if chosen is not None:
                hits = inferred
                notes.append(inferred_note(hits))
                if customer_id is None and not pool_by_invoices:
                    customer_id, customer_via = chosen, _chosen_via(why_not, "reference")
        if customer_id is None and pool and not hits and not pool_by_invoices:
            chosen = _one_with_amount(ctx, payment, pool)
            if chosen is not None:
                customer_id, customer_via = chosen, _chosen_via(why_not, "amount")
        state = _State(payment, customer_id, customer_via, hits, ctx)
        if hits and state.facts.conflict:
            notes.append("The reference names another customer's invoice than the payer's.")
        if customer_id is None and state.customer_id is None:
            notes.append(not_recognised(why_not))
        # a rule that has nothing to go on is not called (most payments skip most rules)
        known = state.target or state.customer_id is not None
        for handler, rule, needs in self.steps:
            if state.best >= STRONG:
                break  # a match this sure ends the search (later rules are costlier guesses)
            if hits if needs == NEEDS_HITS else known:
                handler(state, rule)
        if ctx.foreign:  # only kept where the group allows cross-company receipts
            cross_company(state, ctx.index.cross_company, ctx.foreign, notes)
        if state.rejected_again:
            notes.append(
                f"{state.rejected_again} allocation(s) a person rejected before for this "
                "payment are not proposed again."
            )
        candidates = state.candidates
        if not candidates:
            return PaymentResult(payment, state.customer_id, candidates, notes)
        ranked = candidates if len(candidates) == 1 else _rank(candidates)
        best = ranked[0]
        for invoice_id, amount, discount, write_off, _gl in best.lines:
            ctx.claim(invoice_id, amount + discount + write_off)
        return PaymentResult(
            payment,
            state.customer_id,
            ranked,
            notes,
            # a payer chosen among several its name fits: a person looks, whatever the rule
            state.ambiguous
            or best.confidence < REVIEW_BELOW
            or (state.cap is not None and not best.eligible),
        )


class _State:
    """What one payment's rules share: who paid, which invoices it names, candidates so far."""

    __slots__ = (
        "payment",
        "ctx",
        "candidates",
        "best",
        "ambiguous",
        "hits",
        "target",
        "target_items",
        "customer_id",
        "digits_only",
        "facts",
        "rejected_again",
        "cap",
        "payer_confirmed",
        "_customer_items",
    )

    def __init__(self, payment, customer_id, customer_via, hits, ctx: _Context):
        self.payment = payment
        self.ctx = ctx
        self.candidates: list[Candidate] = []
        self.best = 0
        self.hits = hits
        self.target: list[int] = []  # invoices the reference names unambiguously
        self.target_items: dict = {}  # their rows
        self._customer_items = None
        self.rejected_again = 0
        conflict = ambiguous = digits_only = False
        if hits:
            # one pass over the hits (usually one): loops, not generators, on this hot path
            named = {}
            digits_only = True
            for group in hits.values():
                if len(group) > 1:
                    ambiguous = True
                for hit in group:
                    if hit[1] < FIELD_NUMBER_DIGITS:  # digits alone, or read as typed
                        digits_only = False
                hit = group[0]
                named[hit[0]] = hit[4]
            if not ambiguous:
                self.target_items = named
                self.target = sorted(named) if len(named) > 1 else list(named)
                owners = {item[ITEM_CUSTOMER] for item in named.values()}
                if customer_id is not None and owners != {customer_id}:
                    conflict = True
                elif customer_id is None and len(owners) == 1:
                    customer_id = owners.pop()
                    customer_via = {"via": "invoice_reference"}
        self.ambiguous = ambiguous
        self.digits_only = digits_only
        self.customer_id = customer_id
        self.facts = Facts(payment, hits, customer_id, customer_via, conflict)
        self.cap = CHOSEN_CAP.get(customer_via.get("via")) if customer_via else None
        # the payer was identified on its own, not by these invoices (payers.payer_confirmed)
        self.payer_confirmed = bool(customer_via) and payer_confirmed(customer_via)

    @property
    def conflict(self) -> bool:
        return self.facts.conflict

    def add(self, rule, confidence, lines, render, auto=False):
        """A candidate; render = (function(facts, *args) -> (explanation, evidence), *args).

        An allocation a person rejected for this payment before is left out (and counted), so
        the rules after it still run."""
        rejected = self.payment.rejected
        if rejected and tuple(lines) in rejected:
            self.rejected_again += 1
            return
        allocated = 0
        for line in lines:
            allocated += line[1]
        if self.facts.conflict:
            confidence -= 300
            if confidence < 0:
                confidence = 0
        cap = self.cap
        if cap is not None and confidence > cap and not auto:
            # a payer chosen among a few its name fits: capped, unless the rule found the
            # reference and amount agreeing on its own (rules._read_among_few)
            confidence = cap
        self.candidates.append(
            Candidate(
                rule,
                confidence,
                lines,
                self.payment.amount_milli - allocated,
                self.facts,
                render,
                auto and confidence >= AUTO_APPROVE_MIN,
            )
        )
        if confidence > self.best:
            self.best = confidence

    def label(self, invoice_id: int) -> str:
        return self.ctx.label(invoice_id)

    def customer_amounts(self):
        """(invoice ids, open amounts): the payer's arrays, position by position, oldest first
        (amounts of 0 or less included; see _Context.customer_open for the open ones only)."""
        return self.ctx.customer_arrays(self.customer_id, self.payment.currency)

    def customer_items(self, limit=None):
        """The payer's open invoices, oldest first; read once per payment (every rule after
        the first reuses the list instead of walking the million-entry amounts again)."""
        if self._customer_items is None:
            self._customer_items = self.ctx.customer_open(self.customer_id, self.payment.currency)
        return self._customer_items if limit is None else self._customer_items[:limit]

    def open_items(self, limit=None):
        if self.target:
            opens = self.ctx.open_amounts
            named = self.target_items  # their rows
            return [(i, opens.of(i, named[i])) for i in self.target]
        if self.customer_id is None:
            return []
        return self.customer_items(limit)


def _rank(candidates: list[Candidate]) -> list[Candidate]:
    """Most confident first (rule order breaks ties); the same allocation only once."""
    # candidates come in rule order (Matcher sorts its steps by it), so a stable sort on the
    # confidence alone keeps rule order, then the order they were made in, among equals
    ordered = sorted(candidates, key=_CONFIDENCE_OF, reverse=True)
    seen = set()
    ranked = []
    for candidate in ordered:
        key = tuple(candidate.lines)
        if key in seen:
            continue
        seen.add(key)
        ranked.append(candidate)
        if len(ranked) >= MAX_PROPOSALS:
            break
    if ranked and ranked[0].eligible and len(ranked) > 1:
        # an alternative as plausible as the first means a person should look
        if ranked[1].confidence >= ranked[0].confidence - 100:
            ranked[0].auto_approve = ranked[0].eligible = False
    return ranked


def match_payments(index: OpenItems, rules: list[RuleSpec], payments) -> list[PaymentResult]:
    """The whole engine: pure, deterministic for the same inputs in the same order."""
    with gc_paused():
        return Matcher(index, rules).run(payments)
