"""A plan's AIQ outcome shows on its payment: the inbox's "Approved / in AIQ" and "Failed" tabs."""

import pytest

from ledger.models import OutboxCommand
from ledger.outbox.origins import origin_follow
from payments.models import AllocationPlan, Payment
from payments.services.plans import plan_propose, plan_submit
from tests.test_plans_factories import D, make_customer, make_invoice, make_payment, setup_books

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent_plan(entity, alice):
    setup_books(entity)
    customer = make_customer(entity)
    invoice = make_invoice(customer, D("80.00"))
    payment = make_payment(entity, D("80.00"), customer=customer)
    plan = plan_propose(
        payment=payment, actor=alice, lines=[{"invoice_id": invoice.pk, "amount": D("80.00")}]
    )
    plan = plan_submit(plan=plan, actor=alice)  # under the threshold: approved and queued
    assert plan.state == AllocationPlan.State.SENT
    return plan


def _commands(plan):
    return OutboxCommand.objects.filter(origin_type="allocation_plan", origin_id=plan.pk)


def test_a_fully_confirmed_plan_marks_its_payment_sent(sent_plan):
    _commands(sent_plan).update(state=OutboxCommand.State.CONFIRMED)
    origin_follow(_commands(sent_plan).first())
    sent_plan.refresh_from_db()
    assert sent_plan.state == AllocationPlan.State.CONFIRMED
    assert Payment.objects.get(pk=sent_plan.payment_id).match_state == Payment.MatchState.SENT


def test_a_plan_aiq_refused_marks_its_payment_failed(sent_plan):
    command = _commands(sent_plan).first()
    command.state = OutboxCommand.State.FAILED
    command.save()
    origin_follow(command)
    sent_plan.refresh_from_db()
    assert sent_plan.state == AllocationPlan.State.FAILED
    assert Payment.objects.get(pk=sent_plan.payment_id).match_state == Payment.MatchState.FAILED


def test_a_parked_receipt_moves_its_plan_and_payment_to_needs_a_person(sent_plan, bob):
    """Issue 19: a plan whose receipt was parked stayed "sent" and its payment "approved"."""
    from datetime import timedelta

    from django.utils import timezone

    from ledger.outbox.runner import drain
    from ledger.outbox.services import outbox_cancel

    receipt = _commands(sent_plan).get(kind="post_receipt")
    # its workers kept dying mid-send: the next claim is past its last attempt
    _commands(sent_plan).filter(pk=receipt.pk).update(
        state=OutboxCommand.State.IN_FLIGHT,
        attempts=receipt.max_attempts,
        lease_until=timezone.now() - timedelta(seconds=1),
        sent_at=timezone.now() - timedelta(hours=1),
    )
    drain(budget_seconds=5, batch_size=5, prefer=[receipt.pk])
    receipt.refresh_from_db()
    sent_plan.refresh_from_db()
    assert receipt.state == OutboxCommand.State.NEEDS_PERSON
    assert sent_plan.state == AllocationPlan.State.NEEDS_PERSON
    payment = Payment.objects.get(pk=sent_plan.payment_id)
    assert payment.match_state == Payment.MatchState.NEEDS_PERSON
    assert payment.get_match_state_display() == "Needs a person"

    # the approver looked in AIQ and cancels it: the plan is failed, not left waiting
    outbox_cancel(command=receipt, actor=bob, reason="receipt entered in AIQ by hand")
    sent_plan.refresh_from_db()
    assert sent_plan.state == AllocationPlan.State.FAILED
    assert Payment.objects.get(pk=sent_plan.payment_id).match_state == Payment.MatchState.FAILED


def test_a_parked_plan_confirmed_after_a_retry_is_confirmed(sent_plan):
    command = _commands(sent_plan).first()
    origin_follow(command, verdict=OutboxCommand.State.NEEDS_PERSON)
    sent_plan.refresh_from_db()
    assert sent_plan.state == AllocationPlan.State.NEEDS_PERSON
    _commands(sent_plan).update(state=OutboxCommand.State.CONFIRMED)
    origin_follow(_commands(sent_plan).first())
    sent_plan.refresh_from_db()
    assert sent_plan.state == AllocationPlan.State.CONFIRMED
