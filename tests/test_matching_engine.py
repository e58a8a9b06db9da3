"""The pure parts of matching: normalisation, amounts, the bounded subset-sum and the engine
over a hand-built in-memory index (no database)."""

import itertools
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from core.money import exponent
from ledger.references import (
    digits_key,
    digits_keys,
    reference_key,
    reference_keys,
    text_keys,
)
from payments.matching.combination import find_combinations
from payments.matching.engine import match_payments, money
from payments.matching.index import OpenItems, PaymentInput, RuleSpec


def test_the_usual_spellings_of_one_invoice_number_share_a_key():
    spellings = ["INV-001043", "inv 1043", "Inv/1043", "INV1043", " inv-0001043 ", "INV.1043"]
    assert {reference_key(s) for s in spellings} == {"INV1043"}
    assert digits_key("INV-001043") == "#1043" and digits_key("1043") == ""
    assert reference_key("A0B") == "A0B" and reference_key("--") == ""


@settings(max_examples=300, deadline=None)  # a loaded CI machine: no wall-clock limit
@given(
    st.lists(
        st.text(alphabet=st.sampled_from("INVinv0123456789-/ .#_\n\tßﬁÜ"), max_size=12)
        | st.text(max_size=8),
        max_size=20,
    )
)
def test_many_keys_at_once_are_the_keys_one_by_one(texts):
    keys = reference_keys(texts)
    assert keys == [reference_key(text) for text in texts]
    assert digits_keys(keys) == [digits_key("", key) for key in keys]


@given(st.text(alphabet=st.sampled_from("INVinv0123456789-/ .#_,;:()|"), max_size=16))
def test_word_keys_are_the_same_when_the_whole_key_is_passed_in(text):
    assert text_keys(text, reference_key(text)) == text_keys(text)


def test_narratives_yield_words_and_word_pairs_with_digits():
    keys = dict(text_keys("Payment for inv 001043 - thanks"))
    assert keys["INV1043"] == "inv 001043" and "1043" in keys
    assert "PAYMENT" not in keys and "FOR" not in keys


@given(st.integers(-(10**12), 10**12), st.sampled_from(["GBP", "JPY", "KWD", "EUR"]))
def test_money_text_is_the_exact_decimal_at_the_currency_precision(milli, currency):
    value = Decimal(milli).scaleb(-3)
    rounded = value.quantize(Decimal(1).scaleb(-exponent(currency)))
    assert money(milli, currency) == str(rounded if rounded == value else value)
    assert Decimal(money(milli, currency)) == value


@settings(max_examples=300, deadline=None)  # a loaded CI machine: no wall-clock limit
@given(
    st.lists(st.integers(1, 40), max_size=10),
    st.integers(1, 120),
    st.integers(2, 5),
)
def test_combinations_are_exact_and_found_whenever_one_exists(amounts, target, max_items):
    found, exhaustive = find_combinations(
        amounts, target, max_items=max_items, budget=10**9, limit=10**9
    )
    assert exhaustive
    for combo in found:
        assert sum(amounts[i] for i in combo) == target and 2 <= len(combo) <= max_items
    exists = any(
        sum(amounts[i] for i in combo) == target
        for size in range(2, min(max_items, len(amounts)) + 1)
        for combo in itertools.combinations(range(len(amounts)), size)
    )
    assert bool(found) == exists


def test_the_smallest_then_oldest_combination_comes_first():
    found, _ = find_combinations([10, 20, 30, 40, 50], 60, max_items=3)
    assert found[0] == (0, 4)  # pairs before triples (10+20+30), oldest pair first


def _index():
    index = OpenItems()
    index.customers = {1: (1, "GBP"), 2: (1, "GBP")}
    index.by_email = {(1, "ap@one.test"): 1}
    rows = [
        (10, 1, 1, "GBP", "INV-10", "", 100_000),
        (11, 1, 1, "GBP", "INV-11", "in_abc", 50_000),
        (12, 1, 1, "GBP", "INV-12", "", 25_000),
        (20, 1, 2, "GBP", "INV-20", "", 100_000),
    ]
    for row in rows:
        index.add_invoice(row)
    return index


RULES = [
    RuleSpec(1, "reference", 10, "ref", auto_approve=True),
    RuleSpec(2, "payer_exact", 20, "exact"),
    RuleSpec(3, "payer_combination", 30, "combo"),
    RuleSpec(4, "tolerance", 40, "tol", tolerance_milli=1000),
    RuleSpec(5, "overpayment", 50, "over"),
]


def pay(n, amount, *, email="", refs=(), text="", currency="GBP"):
    refs = [{"source": "metadata.invoice", "value": r} for r in refs]
    return PaymentInput(n, 1, "stripe", currency, amount, None, email, "", text, refs)


def test_engine_is_deterministic_and_leaves_its_index_as_loaded():
    index = _index()
    payments = [pay(1, 75_000, email="ap@one.test"), pay(2, 100_000, refs=["in_abc"])]
    first = match_payments(index, RULES, payments)
    second = match_payments(index, RULES, payments)
    assert [[c.lines for c in r.candidates] for r in first] == [
        [c.lines for c in r.candidates] for r in second
    ]
    opens = {invoice_id: index.open_amount(invoice_id) for invoice_id in (10, 11, 12, 20)}
    assert opens == {10: 100_000, 11: 50_000, 12: 25_000, 20: 100_000} and not index.held


def test_external_reference_with_overpayment_goes_on_account():
    result = match_payments(_index(), RULES, [pay(1, 60_000, refs=["IN_ABC"])])[0]
    best = result.candidates[0]
    assert best.rule.kind == "overpayment" and best.lines == [(11, 50_000, 0, 0, "")]
    assert best.on_account == 10_000 and best.evidence["tokens"][0]["field"] == "external_reference"


def test_reference_to_another_customers_invoice_is_flagged_and_not_automatic():
    result = match_payments(
        _index(), RULES, [pay(1, 100_000, email="ap@one.test", refs=["INV-20"])]
    )[0]
    best = result.candidates[0]
    assert not best.auto_approve and "warning" in best.evidence


def test_lump_sum_from_a_known_payer():
    result = match_payments(_index(), RULES, [pay(1, 75_000, email="AP@one.test")])[0]
    best = result.candidates[0]
    assert best.rule.kind == "payer_combination"
    assert sorted(line[0] for line in best.lines) == [11, 12]


def test_unknown_payer_without_reference_is_not_matched():
    result = match_payments(_index(), RULES, [pay(1, 75_000, text="TRANSFER")])[0]
    assert result.candidates == [] and "Payer not recognised" in result.notes[0]


_NUMBERS = st.text(alphabet=st.sampled_from("INVinv0123456789-/ .#_ÜßﬁA"), max_size=10)


@settings(max_examples=200, deadline=None)  # a loaded CI machine: no wall-clock limit
@given(
    st.lists(st.tuples(_NUMBERS, _NUMBERS), min_size=1, max_size=25),
    st.lists(_NUMBERS, max_size=10),
    st.data(),
)
def test_indexing_only_wanted_keys_gives_the_full_index_restricted_to_them(pairs, extra, data):
    from payments.matching.index import _index_invoices

    rows = [
        (n + 1, 1, 1, "GBP", number, external, 1000) for n, (number, external) in enumerate(pairs)
    ]
    full = OpenItems()
    _index_invoices(full, rows, None)
    # wanted: some of the indexed keys, number-only keys and keys of random texts
    known = sorted(full.by_ref)
    wanted = set(data.draw(st.lists(st.sampled_from(known), max_size=8))) if known else set()
    wanted |= {reference_key(text) for text in extra} - {""}
    wanted |= {"#" + key for key in list(wanted) if key.isdigit()}
    restricted = OpenItems()
    _index_invoices(restricted, rows, wanted)
    expected = {key: sorted(full.lookup(key)) for key in full.by_ref if key in wanted}
    assert {key: sorted(restricted.lookup(key)) for key in restricted.by_ref} == expected


@settings(max_examples=200, deadline=None)  # a loaded CI machine: no wall-clock limit
@given(st.lists(st.tuples(st.integers(1, 4), st.sampled_from(["GBP", "EUR"])), max_size=40))
def test_column_built_customer_lists_equal_row_by_row_ones(owners):
    """Rows come grouped by customer from the database; the lists, amounts and each invoice's
    place in them must be what adding the rows one by one gives (mixed currencies included)."""
    from payments.matching.index import _index_invoices

    rows = sorted(
        (
            (n + 1, 1, customer, currency, f"INV-{n + 1}", "", 100 * (n + 1))
            for n, (customer, currency) in enumerate(owners)
        ),
        key=lambda row: row[2],  # grouped by customer, oldest (lowest id) first within it
    )
    by_columns, by_rows = OpenItems(), OpenItems()
    _index_invoices(by_columns, rows, None)
    for row in rows:
        by_rows.add_invoice(row)
    assert by_columns.by_customer == by_rows.by_customer
    assert by_columns.customer_opens == by_rows.customer_opens
    assert by_columns.position == by_rows.position
    for invoice_id, place in by_columns.position.items():
        item = by_columns.items[invoice_id]
        assert by_columns.by_customer[(item[2], item[3])][place] == invoice_id
