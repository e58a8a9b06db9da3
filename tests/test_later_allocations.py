"""Money already in AIQ allocated later (issue 16.3, Sage contact_allocations), and a credit
note's open amount refunded (16.10, Sage CUSTOMER_REFUND against a sales credit note): worked
scenarios against the AIQ sandbox over HTTP, the outbox drained in-process, AIQ's books checked."""

from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from ledger.models import OutboxCommand
from payments.models import ContactAllocation, Payment, Refund
from payments.services.contact_allocations import (
    FULLY_PAID,
    contact_allocation_approve,
    contact_allocation_create,
    contact_allocation_reject,
)
from payments.services.later import LaterRefused
from payments.services.refunds import RefundRefused, refund_approve, refund_request
from staff.models import AuditEntry
from tests.later_support import credit_note_in_aiq, receipt_in_aiq
from tests.refunds_support import (
    account_balance,
    aiq_types,
    allocate,
    drain_all,
    make_invoice,
    seed_roles_without_matching,
    setup_books,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _seeded(transactional_db):
    seed_roles_without_matching()


@pytest.fixture
def books(aiq_sandbox, entity, audit_flushable):
    setup_books(entity)
    return aiq_sandbox


def _invoice(entity, code="ACME", net="33.32"):
    return make_invoice(entity, code, [("Support hours", "4010", net, "T0")])  # no VAT


def test_money_on_account_from_aiq_goes_to_three_invoices_later(books, entity, alice):
    """Sage's example: a payment on account of 99.96 allocated 33.32 x 3."""
    receipt = receipt_in_aiq(entity, "ACME", "99.96")
    assert receipt.unallocated_amount == Decimal("99.96")
    invoices = [_invoice(entity) for _ in range(3)]
    before = account_balance(books, "ACME")

    allocation = contact_allocation_create(
        actor=alice, receipt=receipt, lines=[(inv, "33.32") for inv in invoices]
    )
    assert (allocation.state, allocation.amount) == ("sent", Decimal("99.96"))  # under threshold
    drain_all()

    allocation.refresh_from_db()
    receipt.refresh_from_db()
    assert allocation.state == "confirmed"
    assert books.state.outstanding(receipt.aiq_transaction_id) == 0
    for invoice in invoices:
        invoice.refresh_from_db()
        assert books.state.outstanding(invoice.aiq_transaction_id) == 0
        assert (invoice.status, invoice.outstanding_amount) == ("paid", 0)
    assert receipt.unallocated_amount == 0
    assert account_balance(books, "ACME") == before  # money moved between items, not added
    assert [a["reference"] for a in books.state.allocations(receipt.aiq_transaction_id)] == [
        f"CALLOC-{allocation.pk}-{inv.pk}" for inv in invoices
    ]
    actions = AuditEntry.objects.filter(object_id=str(allocation.pk)).values_list(
        "action", flat=True
    )
    assert {"contact_allocation.create", "contact_allocation.confirm"} <= set(actions)


def test_either_side_fully_paid_is_refused_with_sages_words(books, entity, alice):
    receipt = receipt_in_aiq(entity, "ACME", "10.00")
    paid, open_invoice = _invoice(entity, net="10.00"), _invoice(entity, net="10.00")
    contact_allocation_create(actor=alice, receipt=receipt, lines=[(paid, "10.00")])
    drain_all()

    with pytest.raises(LaterRefused, match=FULLY_PAID):  # the receipt has nothing left
        contact_allocation_create(actor=alice, receipt=receipt, lines=[(open_invoice, "1.00")])
    other = receipt_in_aiq(entity, "ACME", "5.00")
    with pytest.raises(LaterRefused, match=FULLY_PAID):  # the invoice is paid
        contact_allocation_create(actor=alice, receipt=other, lines=[(paid, "1.00")])
    with pytest.raises(LaterRefused, match="only 5.00"):  # more than the receipt has
        contact_allocation_create(actor=alice, receipt=other, lines=[(open_invoice, "6.00")])
    assert books.state.outstanding(other.aiq_transaction_id) == Decimal("-5.00")


def test_a_plans_on_account_remainder_is_allocated_to_another_invoice_later(
    books, entity, alice, bob
):
    """Sage's partial example (77.77 of 99.99, 22.22 on account), then the 22.22 later."""
    first = _invoice(entity, net="77.77")
    second = _invoice(entity, net="22.22")
    payment = Payment.objects.create(
        entity=entity,
        source="bank",
        external_id="BANK-9999",
        amount=Decimal("99.99"),
        currency="GBP",
        received_at="2026-12-01T10:00:00Z",
        customer=first.customer,
    )
    allocate(payment, [(first, "77.77")], alice, bob)
    receipt = payment.receipt
    assert receipt.unallocated_amount == Decimal("22.22")

    contact_allocation_create(actor=alice, receipt=receipt, lines=[(second, "22.22")])
    drain_all()
    receipt.refresh_from_db()
    second.refresh_from_db()
    assert books.state.outstanding(receipt.aiq_transaction_id) == 0
    assert books.state.outstanding(second.aiq_transaction_id) == 0
    assert (receipt.unallocated_amount, second.status) == (0, "paid")


def test_above_the_threshold_a_second_person_approves(books, entity, alice, bob, settings):
    settings.APPROVAL_THRESHOLD = Decimal("50.00")
    receipt = receipt_in_aiq(entity, "ACME", "60.00")
    invoice = _invoice(entity, net="60.00")
    allocation = contact_allocation_create(actor=alice, receipt=receipt, lines=[(invoice, "60")])
    assert allocation.state == "awaiting_approval"
    assert not OutboxCommand.objects.exists()
    with pytest.raises(PermissionDenied):  # a clerk cannot approve
        contact_allocation_approve(allocation=allocation, actor=alice)
    bob.groups.add(*alice.groups.all())  # bob is clerk and approver, but did not make it
    contact_allocation_approve(allocation=allocation, actor=bob)
    drain_all()
    allocation.refresh_from_db()
    assert (allocation.state, allocation.approver) == ("confirmed", bob)
    assert books.state.outstanding(invoice.aiq_transaction_id) == 0


def test_the_maker_cannot_approve_even_as_approver(books, entity, alice, bob, settings):
    settings.APPROVAL_THRESHOLD = Decimal("1.00")
    receipt = receipt_in_aiq(entity, "ACME", "5.00")
    invoice = _invoice(entity, net="5.00")
    bob.groups.add(*alice.groups.all())
    allocation = contact_allocation_create(actor=bob, receipt=receipt, lines=[(invoice, "5")])
    with pytest.raises(ValidationError, match="different person"):
        contact_allocation_approve(allocation=allocation, actor=bob)
    contact_allocation_reject(allocation=allocation, actor=bob, reason="wrong invoice")
    assert ContactAllocation.objects.get().state == "rejected"
    # a rejected allocation holds nothing: the receipt can be allocated again
    again = contact_allocation_create(actor=alice, receipt=receipt, lines=[(invoice, "5")])
    assert again.state == "awaiting_approval"


def test_a_credit_note_from_aiq_is_allocated_then_its_rest_refunded(books, entity, alice, bob):
    note = credit_note_in_aiq(entity, "BRIGHT", "50.00")
    assert (note.outstanding_amount, note.status) == (Decimal("50.00"), "posted")
    invoice = _invoice(entity, code="BRIGHT", net="20.00")
    contact_allocation_create(actor=alice, credit_note=note, lines=[(invoice, "20.00")])
    drain_all()
    note.refresh_from_db()
    assert books.state.outstanding(note.aiq_transaction_id) == Decimal("-30.00")
    assert books.state.outstanding(invoice.aiq_transaction_id) == 0
    assert note.outstanding_amount == Decimal("30.00")
    before = account_balance(books, "BRIGHT")

    with pytest.raises(RefundRefused, match="more than credit note"):
        refund_request(
            actor=alice, kind="refund_credit_note", credit_note=note, amount="30.01", reason="x"
        )
    refund = refund_request(
        actor=alice, kind="refund_credit_note", credit_note=note, reason="Customer asked"
    )
    assert refund.amount == Decimal("30.00")
    refund_approve(refund=refund, actor=bob)
    drain_all()

    refund.refresh_from_db()
    note.refresh_from_db()
    assert refund.state == Refund.State.COMPLETED
    assert aiq_types(books, f"REF-{refund.pk}-DJ") == ["SalesDebitJournal"]
    assert books.state.outstanding(note.aiq_transaction_id) == 0
    assert note.outstanding_amount == 0
    assert account_balance(books, "BRIGHT") == before + Decimal("30.00")  # credit paid out
    with pytest.raises(RefundRefused, match="nothing open"):
        refund_request(actor=alice, kind="refund_credit_note", credit_note=note, reason="again")
