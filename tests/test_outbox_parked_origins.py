"""Issue 19: a write parked for a person moves what caused it to a state that says a person
must act, for every origin that books money: an other receipt (and its payment) and a refund,
as a plan's (tests/test_outbox_plan_state.py). Parked rows stay live: a retry that confirms
them confirms the row, a cancel fails it; a parked refund still holds its money.

Deterministic, no AIQ: the write's worker kept dying mid-send, so the next claim is past its
last attempt and the drain parks it without calling AIQ."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from ledger.models import OutboxCommand, Receipt
from ledger.outbox.origins import origin_follow
from ledger.outbox.runner import drain
from ledger.outbox.services import outbox_cancel
from payments.models import OtherReceipt, Payment, Refund
from payments.services.other_receipts import other_receipt_approve, other_receipt_create
from payments.services.refunds import payment_refundable, refund_approve, refund_request
from staff.models import AuditEntry
from tests.test_plans_factories import make_customer, make_payment, setup_books

pytestmark = pytest.mark.django_db
State = OutboxCommand.State


def _park(command: OutboxCommand) -> OutboxCommand:
    """Its workers kept dying mid-send: the next claim is past its last attempt."""
    OutboxCommand.objects.filter(pk=command.pk).update(
        state=State.IN_FLIGHT,
        attempts=command.max_attempts,
        lease_until=timezone.now() - timedelta(seconds=1),
        sent_at=timezone.now() - timedelta(hours=1),
    )
    drain(budget_seconds=5, batch_size=5, prefer=[command.pk])
    command.refresh_from_db()
    assert command.state == State.NEEDS_PERSON
    return command


@pytest.fixture
def other_receipt(entity, alice, bob):
    bank = setup_books(entity)
    payment = make_payment(entity, "80.00")
    row = other_receipt_create(
        actor=alice,
        bank_account=bank,
        description="Grant instalment",
        total_amount="80.00",
        payment=payment,
        lines=[{"gl_account_code": "7900", "net_amount": "80.00", "total_amount": "80.00"}],
    )
    if row.state == OtherReceipt.State.AWAITING_APPROVAL:
        row = other_receipt_approve(receipt=row, actor=bob)
    assert row.state == OtherReceipt.State.SENT
    return row


def _commands(origin_type: str, pk: int):
    return OutboxCommand.objects.filter(origin_type=origin_type, origin_id=pk)


def test_a_parked_other_receipt_moves_it_and_its_payment_to_needs_a_person(other_receipt, bob):
    [command] = _commands("other_receipt", other_receipt.pk)
    command = _park(command)
    other_receipt.refresh_from_db()
    assert other_receipt.state == OtherReceipt.State.NEEDS_PERSON
    assert other_receipt.get_state_display() == "Needs a person"
    payment = Payment.objects.get(pk=other_receipt.payment_id)
    assert payment.match_state == Payment.MatchState.NEEDS_PERSON
    assert AuditEntry.objects.filter(
        action="other_receipt.park", object_id=str(other_receipt.pk)
    ).exists()

    # the approver looked in AIQ and cancels it: failed, not left waiting
    outbox_cancel(command=command, actor=bob, reason="entered in AIQ by hand")
    other_receipt.refresh_from_db()
    assert other_receipt.state == OtherReceipt.State.FAILED
    assert Payment.objects.get(pk=payment.pk).match_state == Payment.MatchState.FAILED


def test_a_parked_other_receipt_confirmed_after_a_retry_is_confirmed(other_receipt):
    command = _park(_commands("other_receipt", other_receipt.pk).get())
    OutboxCommand.objects.filter(pk=command.pk).update(state=State.CONFIRMED)
    command.refresh_from_db()
    origin_follow(command)
    other_receipt.refresh_from_db()
    assert other_receipt.state == OtherReceipt.State.CONFIRMED
    payment = Payment.objects.get(pk=other_receipt.payment_id)
    assert payment.match_state == Payment.MatchState.SENT


@pytest.fixture
def sent_refund(entity, alice, bob):
    """A payment of 80.00 on account in AIQ, 30.00 of it refunded: approved, its debit journal
    and allocation queued."""
    bank = setup_books(entity)
    customer = make_customer(entity)
    receipt = Receipt.objects.create(
        entity=entity,
        customer=customer,
        bank_account=bank,
        check_reference="RCPT-PARK-1",
        aiq_transaction_id=7001,
        currency="GBP",
        payment_date=timezone.localdate(),
        amount=Decimal("80.00"),
        unallocated_amount=Decimal("80.00"),
    )
    payment = make_payment(entity, "80.00", customer=customer)
    Payment.objects.filter(pk=payment.pk).update(source="bank", receipt=receipt)
    payment.refresh_from_db()
    refund = refund_request(
        actor=alice,
        kind=Refund.Kind.REFUND_ON_ACCOUNT,
        reason="paid twice",
        payment=payment,
        amount="30.00",
    )
    refund = refund_approve(refund=refund, actor=bob)
    assert refund.state == Refund.State.SENT
    return refund


def test_a_parked_refund_step_moves_the_refund_to_needs_a_person(sent_refund, bob):
    journal = _commands("refund", sent_refund.pk).get(
        kind=OutboxCommand.Kind.POST_SALES_DEBIT_JOURNAL
    )
    journal = _park(journal)
    sent_refund.refresh_from_db()
    assert sent_refund.state == Refund.State.NEEDS_PERSON
    assert sent_refund.get_state_display() == "Needs a person"
    assert AuditEntry.objects.filter(action="refund.park", object_id=str(sent_refund.pk)).exists()
    # still live: its money is not free to be refunded a second time
    payment = Payment.objects.get(pk=sent_refund.payment_id)
    assert payment_refundable(payment) == Decimal("50.00")

    outbox_cancel(command=journal, actor=bob, reason="refund booked in AIQ by hand")
    sent_refund.refresh_from_db()
    assert sent_refund.state == Refund.State.FAILED


def test_a_parked_refund_completed_after_a_retry_is_completed(sent_refund):
    steps = _commands("refund", sent_refund.pk)
    _park(steps.get(kind=OutboxCommand.Kind.POST_SALES_DEBIT_JOURNAL))
    steps.update(state=State.CONFIRMED)
    origin_follow(steps.get(kind=OutboxCommand.Kind.ALLOCATE))
    sent_refund.refresh_from_db()
    assert sent_refund.state == Refund.State.COMPLETED
