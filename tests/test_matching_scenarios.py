"""Worked matching scenarios, end to end through matching_run and the plan services."""

from datetime import date
from decimal import Decimal

import pytest
from django.utils import timezone

from ledger.models import OutboxCommand
from payments.models import AllocationPlan, MatchProposal, MatchRule, Payment
from payments.services.matching_runs import matching_run
from payments.services.payments import payer_mapping_confirm
from payments.services.plan_lines import PlanRefused
from payments.services.plans import plan_approve
from staff.models import AuditEntry
from tests.test_plans_factories import (
    D,
    make_customer,
    make_invoice,
    make_payment,
    setup_books,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def books(entity):
    setup_books(entity)
    return entity


def proposals(payment):
    return list(
        MatchProposal.objects.filter(payment=payment).exclude(state="superseded").order_by("rank")
    )


def test_exact_reference_is_matched_and_auto_approved_into_the_outbox(books):
    acme = make_customer(books)
    make_invoice(acme, "80.00")
    invoice = make_invoice(acme, "120.00", number="INV-001043")
    payment = make_payment(books, "120.00", text="Payment inv 1043 thank you")

    report = matching_run(dry_run=False)

    best = proposals(payment)[0]
    assert best.rule_kind == MatchRule.Kind.REFERENCE
    assert best.confidence == Decimal("0.990")
    assert best.lines[0]["invoice_id"] == invoice.pk and best.lines[0]["amount"] == "120.00"
    token = best.evidence["tokens"][0]
    assert token["field"] == "invoice_number" and token["token"] == "inv 1043"
    assert report.auto_approved == 1
    plan = AllocationPlan.objects.get(payment=payment)
    assert plan.state == AllocationPlan.State.SENT and plan.maker is None
    assert plan.approver is None and not plan.needs_approval
    kinds = sorted(OutboxCommand.objects.values_list("kind", "external_reference"))
    assert kinds == [
        ("allocate", f"ALLOC-{plan.pk}-{invoice.pk}"),
        ("post_receipt", f"RCPT-{payment.pk}"),
    ]
    payment.refresh_from_db()
    assert payment.match_state == Payment.MatchState.APPROVED
    assert AuditEntry.objects.filter(action="plan.approve", object_id=str(plan.pk)).exists()


def test_auto_approve_above_threshold_waits_for_an_approver(books, settings):
    settings.APPROVAL_THRESHOLD = D("100.00")
    acme = make_customer(books)
    invoice = make_invoice(acme, "120.00")
    payment = make_payment(books, "120.00", refs=[invoice.invoice_number])
    matching_run(dry_run=False)
    plan = AllocationPlan.objects.get(payment=payment)
    assert plan.state == AllocationPlan.State.AWAITING_APPROVAL
    assert not OutboxCommand.objects.exists()


def test_lump_sum_of_three_invoices_found_by_combination(books, alice, bob):
    acme = make_customer(books, email="ap@acme.test")
    amounts = ["110.00", "245.50", "99.99", "310.00", "87.25", "500.00"]
    invoices = [make_invoice(acme, a) for a in amounts]
    payment = make_payment(books, "455.49", email="AP@acme.test", text="statement")

    matching_run(dry_run=False)

    best = proposals(payment)[0]
    assert best.rule_kind == MatchRule.Kind.PAYER_COMBINATION
    assert {line["invoice_id"] for line in best.lines} == {
        invoices[0].pk,
        invoices[1].pk,
        invoices[2].pk,
    }
    assert best.evidence["customer"]["via"] == "customer_email"
    assert sum(D(s["open"]) for s in best.evidence["amounts"]["summed"]) == D("455.49")
    assert best.on_account_amount == 0


def test_underpayment_within_tolerance_becomes_a_discount_needing_approval(books, alice, bob):
    acme = make_customer(books)
    invoice = make_invoice(acme, "200.00")
    payment = make_payment(books, "199.40", refs=[invoice.invoice_number])

    matching_run(dry_run=False)

    best = proposals(payment)[0]
    assert best.rule_kind == MatchRule.Kind.TOLERANCE
    assert best.lines[0]["amount"] == "199.40" and best.lines[0]["discount_amount"] == "0.60"
    # named by its reference, a small share short: the system makes the plan, and (every
    # discount needs a checker) it waits for a person to approve it
    plan = AllocationPlan.objects.get(payment=payment)
    assert plan.maker is None
    assert plan.state == AllocationPlan.State.AWAITING_APPROVAL
    plan_approve(plan=plan, actor=bob)
    command = OutboxCommand.objects.get(kind="allocate_discount")
    assert command.payload["amount"] == "199.40" and command.payload["discount_amount"] == "0.60"
    assert command.depends_on.kind == "post_receipt"


def test_overpayment_settles_the_invoice_and_leaves_the_rest_on_account(books):
    acme = make_customer(books)
    invoice = make_invoice(acme, "100.00")
    payment = make_payment(books, "150.00", refs=[invoice.invoice_number])
    matching_run(dry_run=False)
    best = proposals(payment)[0]
    assert best.rule_kind == MatchRule.Kind.OVERPAYMENT
    assert best.lines == [
        {
            "invoice_id": invoice.pk,
            "amount": "100.00",
            "discount_amount": "0.00",
            "write_off_amount": "0.00",
            "write_off_gl_account_code": "",
        }
    ]
    assert best.on_account_amount == D("50.00")
    # the run writes with executemany: what the ORM reads back is what the fields would store
    assert best.run_id and best.state == "open"
    assert abs(timezone.now() - best.created_at) < timezone.timedelta(minutes=5)


def test_underpayment_outside_tolerance_is_a_partial_allocation(books):
    acme = make_customer(books)
    invoice = make_invoice(acme, "100.00")
    payment = make_payment(books, "60.00", refs=[invoice.invoice_number])
    matching_run(dry_run=False)
    best = proposals(payment)[0]
    assert best.rule_kind == MatchRule.Kind.OVERPAYMENT
    assert best.lines[0]["amount"] == "60.00" and best.on_account_amount == 0
    assert "part-paid" in best.explanation


def test_wrong_currency_is_no_match(books):
    acme = make_customer(books)
    invoice = make_invoice(acme, "100.00")
    payment = make_payment(
        books, "100.00", currency="EUR", customer=acme, refs=[invoice.invoice_number]
    )
    report = matching_run(dry_run=False)
    assert proposals(payment) == []
    assert report.unmatched == 1
    assert any("currencies must match" in note for note in report.results[0].notes)
    payment.refresh_from_db()
    assert payment.match_state == Payment.MatchState.UNMATCHED


def test_reference_matching_two_invoices_needs_review_and_shows_both(books):
    acme = make_customer(books)
    first = make_invoice(acme, "100.00", number="INV-1043")
    second = make_invoice(acme, "100.00", number="SO-1043")
    payment = make_payment(books, "100.00", text="Invoice 1043")
    matching_run(dry_run=False)
    shown = proposals(payment)
    assert {p.lines[0]["invoice_id"] for p in shown} == {first.pk, second.pk}
    assert all(p.confidence <= Decimal("0.5") for p in shown)
    assert shown[0].evidence["needs_review"] is True
    assert not AllocationPlan.objects.exists()
    payment.refresh_from_db()
    assert payment.match_state == Payment.MatchState.PROPOSED  # waits for a person


def test_dry_run_shows_the_run_and_changes_nothing(books):
    acme = make_customer(books)
    invoice = make_invoice(acme, "120.00")
    payment = make_payment(books, "120.00", refs=[invoice.invoice_number])
    audit_before = AuditEntry.objects.count()
    report = matching_run(dry_run=True)
    assert report.proposed == 1 and report.results[0].candidates[0].auto_approve
    assert not MatchProposal.objects.exists() and not AllocationPlan.objects.exists()
    assert not OutboxCommand.objects.exists() and AuditEntry.objects.count() == audit_before
    payment.refresh_from_db()
    assert payment.match_state == Payment.MatchState.UNMATCHED


def test_confirmed_payer_mapping_is_used_by_later_runs(books, alice):
    acme = make_customer(books)
    invoice = make_invoice(acme, "75.00")
    payment = make_payment(books, "75.00")
    Payment.objects.filter(pk=payment.pk).update(payer_reference="cus_ABC")
    assert matching_run(dry_run=True).proposed == 0  # nobody knows who cus_ABC is yet

    payer_mapping_confirm(user=alice, source="stripe", payer_key="cus_ABC", customer=acme)
    Payment.objects.filter(pk=payment.pk).update(customer=None)  # learnt mapping, not the copy
    report = matching_run(dry_run=False)

    best = proposals(payment)[0]
    assert best.rule_kind == MatchRule.Kind.PAYER_EXACT
    assert best.evidence["customer"]["via"] == "payer_mapping"
    assert best.lines[0]["invoice_id"] == invoice.pk
    assert report.by_rule == {"payer_exact": 1}


def test_two_payments_of_one_amount_do_not_both_claim_one_invoice(books):
    acme = make_customer(books, email="a@acme.test")
    # explicit dates: the factory's default date cycles with a counter shared by all tests
    older = make_invoice(acme, "50.00", day=date(2026, 3, 1))
    newer = make_invoice(acme, "50.00", day=date(2026, 3, 2))
    first = make_payment(books, "50.00", email="a@acme.test")
    second = make_payment(books, "50.00", email="a@acme.test")
    matching_run(dry_run=False)
    assert proposals(first)[0].lines[0]["invoice_id"] == older.pk
    assert proposals(second)[0].lines[0]["invoice_id"] == newer.pk


def test_a_rejected_allocation_is_not_proposed_again_by_later_runs(books, alice):
    from payments.services.proposals import proposal_reject

    acme = make_customer(books, email="ap@acme.test")
    older = make_invoice(acme, "50.00", number="INV-7001", day=date(2026, 3, 1))
    newer = make_invoice(acme, "50.00", number="INV-7002", day=date(2026, 3, 2))
    payment = make_payment(books, "50.00", email="ap@acme.test")
    matching_run(dry_run=False, auto_approve=False)
    first = proposals(payment)
    assert [p.lines[0]["invoice_id"] for p in first] == [older.pk, newer.pk]
    for proposal in first:
        proposal_reject(proposal=proposal, actor=alice, reason="paid another invoice by phone")
    payment.refresh_from_db()
    assert payment.match_state == Payment.MatchState.UNMATCHED

    report = matching_run(dry_run=False, auto_approve=False)

    # both allocations were turned down: nothing new is proposed, and the run says why
    assert MatchProposal.objects.filter(payment=payment, state="open").count() == 0
    assert "rejected before" in report.results[0].notes[-1]
    payment.refresh_from_db()
    assert payment.match_state == Payment.MatchState.UNMATCHED


def test_a_rejected_allocation_leaves_room_for_the_next_rules(books, alice):
    from payments.services.proposals import proposal_reject

    acme = make_customer(books, email="ap@acme.test")
    invoice = make_invoice(acme, "80.00", number="INV-7101")
    payment = make_payment(books, "80.00", email="ap@acme.test")
    matching_run(dry_run=False, auto_approve=False)
    for proposal in proposals(payment):
        assert [line["invoice_id"] for line in proposal.lines] == [invoice.pk]
        proposal_reject(proposal=proposal, actor=alice, reason="not this one")
    smaller = [make_invoice(acme, "30.00"), make_invoice(acme, "50.00")]

    matching_run(dry_run=False, auto_approve=False)

    # the exact-amount rule would name INV-7101 again (with a confidence that used to end the
    # search); left out, the lump sum of the two new invoices is proposed
    again = [p for p in proposals(payment) if p.state == MatchProposal.State.OPEN]
    assert again[0].rule_kind == MatchRule.Kind.PAYER_COMBINATION
    assert sorted(line["invoice_id"] for line in again[0].lines) == [i.pk for i in smaller]
    assert all([line["invoice_id"] for line in p.lines] != [invoice.pk] for p in again)


def test_a_proposal_rejected_before_auto_approval_is_not_approved(books, alice):
    from payments.services.auto_approve import plans_auto_approve_many
    from payments.services.plans import plan_auto_approve
    from payments.services.proposals import proposal_reject

    acme = make_customer(books)
    invoice = make_invoice(acme, "120.00")
    payment = make_payment(books, "120.00", refs=[invoice.invoice_number])
    matching_run(dry_run=False, auto_approve=False)
    proposal = proposals(payment)[0]
    proposal_reject(proposal=proposal, actor=alice, reason="customer asked to hold it")

    outcome = plans_auto_approve_many(proposal_ids=[proposal.pk])
    assert outcome.refused and "rejected" in outcome.refused[0].reason
    with pytest.raises(PlanRefused, match="rejected"):
        plan_auto_approve(payment=payment, proposal=proposal)
    assert not AllocationPlan.objects.filter(payment=payment).exists()


def test_a_failed_write_leaves_nothing_half_written(books, monkeypatch):
    """The database refusing the proposal rows rolls back the whole run: no proposals, no
    state change, no audit entry."""
    from django.db import DatabaseError, connection

    from payments.services import matching_runs

    acme = make_customer(books)
    invoice = make_invoice(acme, "120.00")
    payment = make_payment(books, "120.00", refs=[invoice.invoice_number])

    def insert_refused(rows):
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO no_such_table (x) VALUES (%s)", [len(rows)])

    monkeypatch.setattr(matching_runs, "_insert", insert_refused)

    with pytest.raises(DatabaseError):
        matching_run(dry_run=False)

    payment.refresh_from_db()
    assert payment.match_state == Payment.MatchState.UNMATCHED
    assert not MatchProposal.objects.exists()
    assert not AuditEntry.objects.filter(action="matching.run").exists()


def test_accepting_a_proposal_that_cannot_be_submitted_leaves_nothing_behind(books, alice):
    """proposal_accept makes the plan and submits it in one transaction: a refused submission
    (here an invoice AIQ has not posted yet) leaves no draft plan and the proposal open."""
    from payments.services.proposals import proposal_accept

    acme = make_customer(books)
    invoice = make_invoice(acme, "40.00")
    payment = make_payment(books, "40.00", refs=[invoice.invoice_number])
    matching_run(dry_run=False, auto_approve=False)
    type(invoice).objects.filter(pk=invoice.pk).update(aiq_transaction_id=None)

    with pytest.raises(PlanRefused, match="not posted in AIQ"):
        proposal_accept(payment=payment, actor=alice)

    assert not AllocationPlan.objects.filter(payment=payment).exists()
    assert proposals(payment)[0].state == MatchProposal.State.OPEN


def test_an_unmatched_payment_says_why_on_its_page_until_a_run_proposes(books, alice, client):
    acme = make_customer(books)
    invoice = make_invoice(acme, "100.00")
    payment = make_payment(
        books, "100.00", currency="EUR", customer=acme, refs=[invoice.invoice_number]
    )
    report = matching_run(dry_run=False)
    payment.refresh_from_db()
    assert payment.match_notes["run_id"] == report.run_id
    assert any("currencies must match" in note for note in payment.match_notes["notes"])
    client.force_login(alice)
    page = client.get(f"/payments/{payment.pk}/").content.decode()
    assert f'The last matching run (<a href="/payments/runs/{report.run_id}/proposals">' in page
    assert "currencies must match" in page

    # the payment is corrected to the invoice's currency: the next run proposes, notes go
    Payment.objects.filter(pk=payment.pk).update(currency="GBP")
    matching_run(dry_run=False)
    payment.refresh_from_db()
    assert proposals(payment) and payment.match_notes == {}
    assert "proposed nothing" not in client.get(f"/payments/{payment.pk}/").content.decode()


def test_the_inbox_shows_why_an_unmatched_payment_got_no_proposal(books, alice, client):
    make_payment(books, "12.34", email="nobody@example.test")
    matching_run(dry_run=False)
    client.force_login(alice)
    page = client.get("/payments/?tab=unmatched").content.decode()
    assert (
        "Payer not recognised: no customer, payer mapping, account code, email or name matched."
        in page
    )
