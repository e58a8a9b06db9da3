"""Rejecting an engine proposal before any plan exists: service and the payment page's button."""

from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from payments.models import MatchProposal, Payment
from payments.services.plan_lines import LineInput
from payments.services.plans import plan_propose
from payments.services.proposals import proposal_reject
from staff.models import AuditEntry
from tests.test_plans_factories import make_customer, make_invoice, make_payment, setup_books

pytestmark = pytest.mark.django_db
Open, Rejected = MatchProposal.State.OPEN, MatchProposal.State.REJECTED


def propose(payment, invoice, rank, explanation):
    return MatchProposal.objects.create(
        payment=payment,
        rule_kind="reference",
        rank=rank,
        confidence=Decimal("0.900"),
        explanation=explanation,
        lines=[{"invoice_id": invoice.pk, "amount": str(invoice.gross_amount)}],
    )


@pytest.fixture
def world(entity):
    setup_books(entity)
    customer = make_customer(entity)
    first, second = make_invoice(customer, "120.00"), make_invoice(customer, "120.00")
    payment = make_payment(entity, "120.00", customer=customer)
    Payment.objects.filter(pk=payment.pk).update(match_state=Payment.MatchState.PROPOSED)
    payment.refresh_from_db()
    best = propose(payment, first, 1, f"{first.invoice_number} found in metadata.invoice")
    runner_up = propose(payment, second, 2, "same amount")
    return payment, best, runner_up


def test_rejecting_the_best_proposal_leaves_the_next_one_and_is_audited(world, alice):
    payment, best, runner_up = world
    proposal_reject(proposal=best, actor=alice, reason="wrong customer")
    best.refresh_from_db()
    payment.refresh_from_db()
    assert best.state == Rejected and payment.match_state == Payment.MatchState.PROPOSED
    entry = AuditEntry.objects.get(action="proposal.reject")
    assert entry.actor == alice and entry.object_id == str(payment.pk)
    assert "wrong customer" in entry.summary
    assert entry.after["next_proposal"] == runner_up.pk


def test_rejecting_the_last_open_proposal_sends_the_payment_back_to_unmatched(world, alice):
    payment, best, runner_up = world
    proposal_reject(proposal=best, actor=alice, reason="no")
    proposal_reject(proposal=runner_up, actor=alice, reason="not this either")
    payment.refresh_from_db()
    assert payment.match_state == Payment.MatchState.UNMATCHED
    assert set(payment.proposals.values_list("state", flat=True)) == {Rejected}


def test_refusals_change_nothing(world, alice, mallory):
    payment, best, _ = world
    with pytest.raises(PermissionDenied):
        proposal_reject(proposal=best, actor=mallory, reason="x")
    with pytest.raises(ValidationError, match="Say why"):
        proposal_reject(proposal=best, actor=alice, reason="   ")
    proposal_reject(proposal=best, actor=alice, reason="once")
    with pytest.raises(ValidationError, match="already rejected"):
        proposal_reject(proposal=best, actor=alice, reason="twice")
    assert AuditEntry.objects.filter(action="proposal.reject").count() == 1


def test_a_payment_with_a_plan_must_have_the_plan_rejected_instead(world, alice):
    payment, best, runner_up = world
    invoice = payment.proposals.get(pk=runner_up.pk).lines[0]["invoice_id"]

    plan_propose(
        payment=payment,
        actor=alice,
        lines=[LineInput(invoice_id=invoice, amount=Decimal("120.00"))],
        proposal=runner_up,
    )
    # the plan superseded the other proposals; one left open (e.g. written by a matching run
    # racing the plan) must still not be rejected past the plan
    MatchProposal.objects.filter(pk=best.pk).update(state=Open)
    with pytest.raises(ValidationError, match="reject or edit the plan"):
        proposal_reject(proposal=best, actor=alice, reason="x")
    best.refresh_from_db()
    assert best.state == Open


def test_the_reject_button_on_a_payment_without_a_plan_rejects_its_best_proposal(
    client, world, alice
):
    payment, best, runner_up = world
    client.force_login(alice)
    page = client.get(f"/payments/{payment.pk}/")
    assert b"Reject the proposal" in page.content
    response = client.post(
        f"/payments/{payment.pk}/reject", {"reason": "paid by the parent company"}
    )
    assert response.status_code == 302
    best.refresh_from_db()
    runner_up.refresh_from_db()
    assert (best.state, runner_up.state) == (Rejected, Open)
    page = client.get(f"/payments/{payment.pk}/")
    assert b"proposal.reject" in page.content  # in the payment's history
    assert b"same amount" in page.content  # the next proposal is offered for rejection now


def test_the_reject_button_without_a_reason_or_anything_to_reject_says_so(client, world, alice):
    payment, best, runner_up = world
    client.force_login(alice)
    assert client.post(f"/payments/{payment.pk}/reject", {"reason": ""}).status_code == 400
    MatchProposal.objects.update(state=MatchProposal.State.SUPERSEDED)
    response = client.post(f"/payments/{payment.pk}/reject", {"reason": "x"})
    assert response.status_code == 400
    assert b"no plan or open proposal" in response.content
