"""References read against the payer's own invoices: typed wrong, cut short, or not an invoice
number at all.

A reference that names no invoice exactly may still say which invoice it means once we know
(or nearly know) who paid: "PAYMENT OF INV-014" (the bank cut it at 18 characters) starts one
of the payer's invoice numbers; "INV-020974" differs by one digit from the payer's INV-010974;
"ORDER 83346" is the order number (CRM external reference SO-83346) of one of the payer's
invoices; "INV11375/8005" lists the end of the second number only. Each of these is read only
against the invoices of the customers the payer evidence allows (one identified customer, or the
few a payer name fits equally well), never against everyone's: a typo must not move cash to a
stranger. And the amount has to agree before a weak reading is used (the only exception: a
reference cut short, an order number or the number alone, naming exactly one invoice of a payer
identified on its own; the other rules then judge the amount).

Each inferred hit is (invoice id, FIELD_INFERRED, the words typed, "<source>: <how>", item), the
shape of engine.reference_hits', so the rules and the evidence treat it like any other hit, as
"number only" strength: proposed, never approved without a person.
"""

import re
import string

from ledger.references import reference_key
from payments.matching.index import ITEM_CURRENCY, ITEM_EXTERNAL, ITEM_NUMBER, label

FIELD_INFERRED = 3
MAX_INVOICES = 300  # of one customer, oldest first: enough for any payer a person pays by
MAX_PICK = 6  # invoices one inferred reading may settle together
CUT_LENGTH = 17  # a text this long may have been cut by the bank (18 characters, less a space)
_WORD = re.compile(r"[^\s,;:/|()\[\]+&]+")
_TRAILING_DIGITS = re.compile(r"([0-9]+)$")

HOW = {
    "cut": "cut short, the start of this invoice's number",
    "typo": "one digit different from this invoice's number",
    "end": "the end of this invoice's number",
    "number": "this invoice's number without its prefix",
    "order": "this invoice's order (external) reference without its prefix",
}
WEAK = frozenset(("typo", "end"))  # never used unless the amount agrees
_WEAK_SAYS = tuple(f"({HOW[how]})" for how in WEAK)


def weak_reading(hit) -> bool:
    """Is this hit a weak reading (one digit off, the end of a number)?"""
    return hit[1] == FIELD_INFERRED and hit[3].endswith(_WEAK_SAYS)


_DELETE = str.maketrans("", "", string.punctuation + string.whitespace)


def _plain(text: str) -> str:
    """Letters and digits, upper case ('inv-014' -> 'INV014'; leading zeros kept)."""
    plain = text.upper().translate(_DELETE)
    return plain if plain.isalnum() else "".join(c for c in plain if c.isalnum())


def tokens(payment) -> list[tuple[str, str, str, bool, str]]:
    """(word as typed, its letters and digits, its trailing digits, may be cut, source) for
    each word with a digit in the payment's texts."""
    out = []
    for source, text, _whole, _keys in payment.texts or ():
        stripped = text.rstrip()
        words = list(_WORD.finditer(stripped))
        for position, match in enumerate(words):
            word = match.group()
            plain = _plain(word)
            digits = _TRAILING_DIGITS.search(plain)
            if digits is None:
                continue
            cut = position == len(words) - 1 and len(stripped) >= CUT_LENGTH
            out.append((word, plain, digits.group(1), cut, source))
    return out


def _differs_by_one(a: str, b: str) -> bool:
    """Same length, one digit changed or two neighbours swapped."""
    if len(a) != len(b):
        return False
    diffs = [i for i in range(len(a)) if a[i] != b[i]]
    if len(diffs) == 1:
        return True
    return len(diffs) == 2 and diffs[1] == diffs[0] + 1 and a[diffs[0]] == b[diffs[1]]


def _reading(token, number_plain: str, number_digits: str, external_digits: str) -> str | None:
    """How a typed word may mean an invoice (a HOW key), or None."""
    _word, plain, digits, cut, _source = token
    letters = plain[: len(plain) - len(digits)]
    bare = digits.lstrip("0")
    if len(digits) >= 3 and bare:
        if external_digits and bare == external_digits.lstrip("0"):
            return "order"
        if bare == number_digits.lstrip("0") and plain != number_plain:
            return "number"
    if cut and len(digits) >= 2:
        if (letters and number_plain.startswith(plain) and plain != number_plain) or (
            not letters and number_digits.startswith(digits) and digits != number_digits
        ):
            return "cut"
    if not letters and 3 <= len(digits) < len(number_digits) and number_digits.endswith(digits):
        return "end"
    if len(digits) >= 4 and _differs_by_one(digits, number_digits):
        return "typo"
    return None


def _readings(ctx, payment, customer_id, words) -> dict[int, tuple]:
    """Invoice id -> (how, token, open) for the customer's open invoices some word may mean."""
    found: dict[int, tuple] = {}
    items = ctx.items
    for invoice_id, open_amount in ctx.customer_open(customer_id, payment.currency, MAX_INVOICES):
        item = items[invoice_id]
        number = item[ITEM_NUMBER] or ""
        number_plain = _plain(number)
        match = _TRAILING_DIGITS.search(number_plain)
        number_digits = match.group(1) if match else ""
        external = _TRAILING_DIGITS.search(_plain(item[ITEM_EXTERNAL] or ""))
        external_digits = external.group(1) if external else ""
        if not number_digits and not external_digits:
            continue
        for token in words:
            how = _reading(token, number_plain, number_digits, external_digits)
            if how is not None:
                found[invoice_id] = (how, token, open_amount)
                break
    return found


def _choose(readings: dict, known: dict, amount: int, alone: bool) -> list[int]:
    """The invoices the readings (with the invoices named exactly, `known`: id -> open) settle:
    all of them when they add up to the amount; else the one open for exactly the amount;
    else, for a payer identified on its own (`alone`), the one strong reading there is."""
    if not readings:
        return []
    together = {i: r[2] for i, r in readings.items()} | known
    if len(together) <= MAX_PICK and sum(together.values()) == amount:
        return sorted(together)
    exact = [i for i, r in readings.items() if r[2] == amount]
    if len(exact) == 1 and not known:
        return exact
    if alone and not known and len(readings) == 1:
        ((invoice_id, (how, _t, _o)),) = readings.items()
        if how not in WEAK:
            return [invoice_id]
    return []


def inferred_hits(ctx, payment, customer_ids, known_hits: dict, alone: bool):
    """(customer id, hits) of the one customer among `customer_ids` whose invoices the
    payment's words mean (see the module's doc), or (None, {}) when none or several do.

    known_hits: the exact hits already found (of that customer), completed by the readings
    when together they add up to the amount."""
    words = tokens(payment)
    paid = ctx.index.paid
    if paid:  # a word naming a paid invoice exactly means that one (a duplicate), not another
        words = [token for token in words if reference_key(token[0]) not in paid]
    if not words:
        return None, {}
    known: dict[int, int] = {}
    exact_words = set()
    for group in known_hits.values():
        for hit in group:
            known[hit[0]] = ctx.open_amounts.of(hit[0], hit[4])
            exact_words.update(_plain(part) for part in _WORD.findall(hit[2]))
    if known:
        # words that named an invoice exactly are not read again
        words = [token for token in words if token[1] not in exact_words]
        if not words:
            return None, {}
    chosen_customer, chosen = None, []
    for customer_id in customer_ids:
        readings = _readings(ctx, payment, customer_id, words)
        picked = _choose(readings, known, payment.amount_milli, alone)
        if not picked:
            continue
        if chosen_customer is not None:
            return None, {}  # two customers' invoices fit: the words decide nothing
        chosen_customer, chosen = customer_id, [(i, readings.get(i)) for i in picked]
    if chosen_customer is None:
        return None, {}
    hits = dict(known_hits)
    items = ctx.items
    for invoice_id, reading in chosen:
        if reading is None:
            continue  # named exactly: already among known_hits
        how, (word, _plain_word, _digits, _cut, source), _open = reading
        item = items[invoice_id]
        if item[ITEM_CURRENCY] != payment.currency:
            return None, {}
        hits["~" + _plain(word) + ":" + str(invoice_id)] = [
            (invoice_id, FIELD_INFERRED, word, f"{source} ({HOW[how]})", item)
        ]
    return chosen_customer, hits


def inferred_note(hits: dict) -> str:
    parts = [
        f"'{hit[2]}' read as {label(hit[4])} ({hit[3].split(' (', 1)[-1].rstrip(')')})"
        for group in hits.values()
        for hit in group
        if hit[1] == FIELD_INFERRED
    ]
    return "; ".join(parts) + "." if parts else ""
