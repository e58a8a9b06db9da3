"""Payer is not the customer (issue 16.5): a bank payment taken for Acme was really Castle
Joinery's. A clerk changes its customer (audited in the same transaction), the proposal made for
Acme goes, and Castle's invoice is then paid in the AIQ sandbox. Once the payment has a plan the
change is refused with what to do instead."""

from decimal import Decimal

import pytest
from django.urls import reverse

from ledger.models import Customer
from payments.models import MatchProposal, PayerMapping, Payment
from payments.services import payer_change
from payments.services.later import LaterRefused
from payments.services.payer_change import payment_customer_change
from payments.services.plans import plan_approve, plan_propose, plan_submit
from staff.models import AuditEntry
from tests.refunds_support import drain_all, make_invoice, seed_roles_without_matching, setup_books

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _seeded(transactional_db):
    seed_roles_without_matching()


@pytest.fixture
def books(aiq_sandbox, entity, audit_flushable):
    setup_books(entity)
    return aiq_sandbox


def _taken_for_acme(entity, external_id="BANK-PC-1"):
    """120.00 from 'CASTLE JOINERY' that an earlier run took for Acme, with Acme's invoice
    proposed."""
    acme = Customer.objects.get(entity=entity, code="ACME")
    acme_invoice = make_invoice(entity, "ACME", [("Widgets", "4010", "120.00", "T0")])
    payment = Payment.objects.create(
        entity=entity,
        source="bank",
        external_id=external_id,
        amount=Decimal("120.00"),
        currency="GBP",
        received_at="2026-12-01T10:00:00Z",
        payer_name="CASTLE JOINERY",
        customer=acme,
        match_state=Payment.MatchState.PROPOSED,
    )
    proposal = MatchProposal.objects.create(
        payment=payment,
        rule_kind="exact_amount",
        confidence=Decimal("0.900"),
        explanation="same amount as an open Acme invoice",
        lines=[{"invoice_id": acme_invoice.pk, "amount": "120.00", "discount": "0.00"}],
    )
    return payment, proposal


def test_a_payment_taken_for_acme_pays_castles_invoice_after_the_change(books, entity, alice, bob):
    payment, proposal = _taken_for_acme(entity)
    castle = Customer.objects.get(entity=entity, code="CASTLE")
    castle_invoice = make_invoice(entity, "CASTLE", [("Joinery", "4010", "120.00", "T0")])

    with pytest.raises(LaterRefused, match="Say why"):
        payment_customer_change(payment=payment, customer=castle, actor=alice, reason=" ")
    payment = payment_customer_change(
        payment=payment, customer=castle, actor=alice, reason="Castle's remittance came by post"
    )

    payment.refresh_from_db()
    proposal.refresh_from_db()
    assert (payment.customer, payment.match_state) == (castle, "unmatched")
    assert proposal.state == "superseded"
    entry = AuditEntry.objects.get(action="payment.customer_change", object_id=str(payment.pk))
    assert entry.actor == alice
    assert entry.before == {"customer": "ACME", "match_state": "proposed"}
    assert entry.after["customer"] == "CASTLE"
    assert entry.after["proposals_superseded"] == 1
    assert not PayerMapping.objects.exists()  # a correction teaches no payer alias

    # Castle's invoice now takes the payment; AIQ's books show the receipt on Castle's account
    plan = plan_propose(
        payment=payment,
        actor=alice,
        lines=[{"invoice_id": castle_invoice.pk, "amount": "120.00", "discount": "0.00"}],
    )
    plan = plan_submit(plan=plan, actor=alice)
    if plan.state == "awaiting_approval":
        plan_approve(plan=plan, actor=bob)
    drain_all()
    (receipt,) = books.state.transactions(f"RCPT-{payment.pk}")
    (invoice,) = books.state.transactions(castle_invoice.external_reference)
    assert receipt["account_id"] == invoice["account_id"]
    assert invoice["outstanding"] == Decimal("0.00")

    # with a plan in AIQ the customer can no longer be changed here
    acme = Customer.objects.get(entity=entity, code="ACME")
    with pytest.raises(LaterRefused, match="has a plan for CASTLE .*undo its allocations"):
        payment_customer_change(payment=payment, customer=acme, actor=alice, reason="back")
    payment.refresh_from_db()
    assert payment.customer == castle


def test_a_draft_plan_must_be_rejected_first_and_other_currencies_are_refused(books, entity, alice):
    payment, _proposal = _taken_for_acme(entity, "BANK-PC-2")
    castle = Customer.objects.get(entity=entity, code="CASTLE")
    Customer.objects.filter(pk=castle.pk).update(currency="EUR")
    castle.refresh_from_db()
    with pytest.raises(LaterRefused, match="billed in EUR"):
        payment_customer_change(payment=payment, customer=castle, actor=alice, reason="x")
    Customer.objects.filter(pk=castle.pk).update(currency="GBP")
    castle.refresh_from_db()
    plan_propose(payment=payment, actor=alice, lines=[])  # all on Acme's account, a draft
    with pytest.raises(LaterRefused, match="reject the plan first"):
        payment_customer_change(payment=payment, customer=castle, actor=alice, reason="x")
    assert not AuditEntry.objects.filter(action="payment.customer_change").exists()


def test_the_change_and_its_audit_entry_are_one_transaction(books, entity, alice, monkeypatch):
    payment, proposal = _taken_for_acme(entity, "BANK-PC-3")
    castle = Customer.objects.get(entity=entity, code="CASTLE")

    def audit_fails(**_kwargs):
        raise RuntimeError("audit table unavailable")

    monkeypatch.setattr(payer_change, "audit_log", audit_fails)
    with pytest.raises(RuntimeError):
        payment_customer_change(payment=payment, customer=castle, actor=alice, reason="post")
    payment.refresh_from_db()
    proposal.refresh_from_db()
    assert payment.customer.code == "ACME"
    assert (payment.match_state, proposal.state) == ("proposed", "open")


def test_the_clerk_changes_the_customer_on_the_payment_page(books, entity, alice, client):
    payment, _proposal = _taken_for_acme(entity, "BANK-PC-4")
    client.force_login(alice)
    page = client.get(reverse("payments:detail", args=[payment.pk]))
    assert b"This payment is from another customer" in page.content
    url = reverse("payments:change_customer", args=[payment.pk])

    refused = client.post(url, {"customer": "NOBODY", "reason": "x"}, follow=True)
    assert b"No customer matches" in refused.content
    payment.refresh_from_db()
    assert payment.customer.code == "ACME"

    done = client.post(url, {"customer": "castle joinery", "reason": "remittance"}, follow=True)
    assert done.status_code == 200
    assert b"Customer changed" in done.content
    payment.refresh_from_db()
    assert payment.customer.code == "CASTLE"
    assert AuditEntry.objects.filter(
        action="payment.customer_change", object_id=str(payment.pk), actor=alice
    ).exists()
