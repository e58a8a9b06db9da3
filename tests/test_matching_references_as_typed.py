"""References as people type them on a bank transfer (issue 14.3), read against the payer's own
invoices: cut at 18 characters, one digit off, an order number without its prefix, the end of a
second number; and a payer name several customers share, settled by the reference or the amount.

Each scenario imports a Barclays-layout statement (the upload path), runs matching as
production does and asserts the first proposal, its explanation and how the payer was known.
A weak reading is never approved without a person, and never moves cash to another customer.
"""

import pytest

from ledger.models import Customer
from payments.models import AllocationPlan
from payments.services.matching_runs import matching_run
from tests.test_matching_identification import (
    bank_rows,
    customer,
    first_proposal,
    invoice_lines,
    notes,
)
from tests.test_plans_factories import make_invoice, setup_books

pytestmark = pytest.mark.django_db


@pytest.fixture
def books(entity):
    setup_books(entity)
    return entity


def _customer(books, code, name) -> Customer:
    return customer(books, code, name)


def test_a_reference_cut_at_18_characters_names_the_payer_invoice_it_starts(books, alice, barclays):
    chiltern = _customer(books, "CHIL001", "Chiltern Security Ltd")
    other = _customer(books, "SEVE001", "Severn Motors Ltd")
    make_invoice(chiltern, "80.00", number="INV-014007")
    meant = make_invoice(chiltern, "1398.55", number="INV-014123")
    # another customer's invoice starts the same way and has the same amount: never taken
    make_invoice(other, "1398.55", number="INV-014555")
    (payment,) = bank_rows(
        alice, barclays, [("PAYMENT OF INV-014", "1398.55", "CHILTERN SECURITY")]
    )
    matching_run(dry_run=False)
    best = first_proposal(payment)
    assert invoice_lines(best).keys() == {meant.pk}
    assert best.evidence["customer"]["customer_id"] == chiltern.pk
    # read, not named, but the payer (by name, on its own) and the exact amount agree with
    # the reading: the system makes the plan (a checker approves it above the threshold)
    assert AllocationPlan.objects.get(payment=payment).maker is None
    assert any("'INV-014' read as INV-014123" in note for note in best.evidence["notes"])


def test_a_one_digit_typo_is_read_only_when_the_payer_and_the_amount_confirm_it(
    books, alice, barclays
):
    atlantic = _customer(books, "ATLA001", "Atlantic Freight Ltd")
    stranger = _customer(books, "KERR001", "Kerry Dental Ltd")
    meant = make_invoice(atlantic, "1479.57", number="INV-010974")
    typed = make_invoice(stranger, "990.00", number="INV-020974")
    confirmed, unconfirmed = bank_rows(
        alice,
        barclays,
        [
            ("INV-020974", "1479.57", "ATLANTIC FREIGHT"),
            ("INV-020974", "500.00", "ATLANTIC FREIGHT"),
        ],
    )
    matching_run(dry_run=False)
    best = first_proposal(confirmed)
    assert invoice_lines(best).keys() == {meant.pk}
    assert AllocationPlan.objects.get(payment=confirmed).maker is None  # payer and amount agree
    assert any("one digit different" in note for note in best.evidence["notes"])
    # the amount does not confirm it: not read as the payer's invoice, and the number never
    # puts the payer's cash on the stranger's invoice either
    other = first_proposal(unconfirmed)
    assert other is None or typed.pk not in invoice_lines(other)
    assert other is None or meant.pk not in invoice_lines(other) or other.rule_kind == "overpayment"


def test_an_order_number_without_its_prefix_names_the_invoice_of_that_order(books, alice, barclays):
    summit = _customer(books, "SUMM001", "Summit Plant Hire Ltd")
    make_invoice(summit, "100.00", number="INV-013800")
    meant = make_invoice(summit, "2070.83", number="INV-013801", external="SO-83346")
    (payment,) = bank_rows(alice, barclays, [("ORDER 83346", "2070.83", "SUMMIT PLANT HIRE")])
    matching_run(dry_run=False)
    best = first_proposal(payment)
    assert invoice_lines(best).keys() == {meant.pk}
    assert any("'83346' read as INV-013801" in note for note in best.evidence["notes"])


def test_a_name_two_customers_share_is_settled_by_the_reference_read_against_each(
    books, alice, barclays
):
    """'THAMES PHARMACY' fits Thames Pharmacy Ltd and Thames Pharmacy PLC equally: the cut
    reference starts an invoice of only one of them, for the amount."""
    limited = _customer(books, "THAM001", "Thames Pharmacy Ltd")
    plc = _customer(books, "THAM002", "Thames Pharmacy PLC")
    meant = make_invoice(limited, "250.00", number="INV-016709")
    make_invoice(plc, "250.00", number="INV-022001")
    (payment,) = bank_rows(alice, barclays, [("PAYMENT FOR INV-0167", "250.00", "THAMES PHARMACY")])
    matching_run(dry_run=False)
    best = first_proposal(payment)
    assert invoice_lines(best).keys() == {meant.pk}
    who = best.evidence["customer"]
    assert who["via"] == "payer_name_and_reference" and who["customers_fitting"] == 2
    # name, reference and amount agree on one invoice of one of the two: the system makes
    # the plan (the name alone would have decided nothing)
    assert AllocationPlan.objects.get(payment=payment).maker is None


def test_a_shared_name_with_the_amount_open_at_both_is_not_guessed(books, alice, barclays):
    limited = _customer(books, "THAM001", "Thames Pharmacy Ltd")
    plc = _customer(books, "THAM002", "Thames Pharmacy PLC")
    make_invoice(limited, "250.00")
    make_invoice(plc, "250.00")
    (payment,) = bank_rows(alice, barclays, [("PAYMENT", "250.00", "THAMES PHARMACY")])
    matching_run(dry_run=False)
    assert first_proposal(payment) is None
    assert "equally well: not guessed" in notes(payment)[-1]


def test_the_end_of_a_second_number_completes_a_list_of_the_payer_invoices(books, alice, barclays):
    mersey = _customer(books, "MERS001", "Mersey Catering Ltd")
    first = make_invoice(mersey, "1362.03", number="INV-011375")
    second = make_invoice(mersey, "2258.45", number="INV-028005")
    (payment,) = bank_rows(alice, barclays, [("INV11375/8005", "3620.48", "MERSEY CATERING")])
    matching_run(dry_run=False)
    best = first_proposal(payment)
    assert invoice_lines(best).keys() == {first.pk, second.pk}
    assert {line["amount"] for line in best.lines} == {"1362.03", "2258.45"}
