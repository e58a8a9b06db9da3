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
