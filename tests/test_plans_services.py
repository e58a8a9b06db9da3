"""Allocation plan services: limits, maker-checker, outbox hand-off, edit, reject, unallocate."""

import pytest
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone

from ledger.models import Allocation, OutboxCommand
from payments.models import AllocationPlan, Payment
from payments.selectors import plans_awaiting_approval
from payments.services.plans import (
    PlanRefused,
    plan_approve,
    plan_edit,
    plan_propose,
    plan_reject,
    plan_submit,
)
from payments.services.unallocations import allocation_unallocate
from staff.maker_checker import SelfApproval
from staff.models import AuditEntry
from tests.test_plans_factories import D, make_customer, make_invoice, make_payment, setup_books

pytestmark = pytest.mark.django_db
State = AllocationPlan.State


@pytest.fixture
def acme(entity):
    setup_books(entity)
    return make_customer(entity)


def line(invoice, amount, **extra):
    return {"invoice_id": invoice.pk, "amount": amount, **extra}


def test_a_plan_never_allocates_more_than_the_payment(entity, acme, alice):
    a, b = make_invoice(acme, "70.00"), make_invoice(acme, "70.00")
    payment = make_payment(entity, "100.00", customer=acme)
    with pytest.raises(PlanRefused, match="more than the payment"):
        plan_propose(payment=payment, lines=[line(a, "70.00"), line(b, "30.01")], actor=alice)
    assert not AllocationPlan.objects.exists()


def test_a_plan_never_allocates_more_than_is_open_including_other_plans(entity, acme, alice):
    invoice = make_invoice(acme, "100.00")
    first = make_payment(entity, "60.00", customer=acme)
    second = make_payment(entity, "60.00", customer=acme)
    plan_propose(payment=first, lines=[line(invoice, "60.00")], actor=alice)
    with pytest.raises(PlanRefused, match="60.00 GBP held by other plans"):
        plan_propose(payment=second, lines=[line(invoice, "40.01")], actor=alice)
    plan = plan_propose(payment=second, lines=[line(invoice, "40.00")], actor=alice)
    assert plan.on_account_amount == D("20.00")


def test_bad_lines_get_a_clear_refusal(entity, acme, alice):
    invoice = make_invoice(acme, "100.00")
    other = make_customer(entity, code="OTHER")
    foreign = make_invoice(other, "10.00")
    payment = make_payment(entity, "100.00", customer=acme)
    cases = [
        ([line(invoice, "10.001")], "more decimal places"),
        ([line(invoice, "-1.00")], "negative"),
        ([line(invoice, "10.00"), line(invoice, "5.00")], "appears twice"),
        ([line(foreign, "10.00")], "another customer"),
        ([line(invoice, "0", write_off_amount="5.00")], "needs a GL account"),
        ([line(invoice, "0", write_off_amount="5.00", write_off_gl_account_code="9999")], "9999"),
        ([{"invoice_id": "x"}], "Not a valid plan line"),
        ([{"invoice_id": 999999, "amount": "1"}], "does not exist"),
    ]
    for lines, message in cases:
        with pytest.raises(PlanRefused, match=message):
            plan_propose(payment=payment, lines=lines, actor=alice)
    assert not AllocationPlan.objects.exists()


def test_people_without_the_clerk_role_cannot_make_plans(entity, acme, mallory):
    payment = make_payment(entity, "10.00", customer=acme)
    with pytest.raises(PermissionDenied):
        plan_propose(payment=payment, lines=[], actor=mallory)


def test_submit_under_threshold_approves_and_queues_receipt_then_allocation(entity, acme, alice):
    invoice = make_invoice(acme, "100.00")
    payment = make_payment(entity, "150.00", customer=acme)
    plan = plan_propose(payment=payment, lines=[line(invoice, "100.00")], actor=alice)
    assert plan.on_account_amount == D("50.00") and not plan.needs_approval
    plan = plan_submit(plan=plan, actor=alice)
    assert plan.state == State.SENT and plan.approver is None
    receipt = OutboxCommand.objects.get(kind="post_receipt")
    allocate = OutboxCommand.objects.get(kind="allocate")
    assert receipt.payload["amount"] == "150.00" and receipt.payload["customer_code"] == "ACME"
    assert receipt.payload["bank_account_code"] == "BANK1"
    assert allocate.depends_on == receipt and allocate.payload["amount"] == "100.00"
    assert allocate.payload["settled_transaction_id"] == invoice.aiq_transaction_id
    assert {c.origin_id for c in (receipt, allocate)} == {plan.pk}
    audit = AuditEntry.objects.get(action="plan.approve")
    assert "auto-approved under threshold" in audit.summary and audit.actor == alice


def test_above_threshold_needs_a_different_approver(entity, acme, alice, bob, settings):
    settings.APPROVAL_THRESHOLD = D("100.00")
    invoice = make_invoice(acme, "150.00")
    payment = make_payment(entity, "150.00", customer=acme)
    plan = plan_submit(
        plan=plan_propose(payment=payment, lines=[line(invoice, "150.00")], actor=alice),
        actor=alice,
    )
    assert plan.state == State.AWAITING_APPROVAL and not OutboxCommand.objects.exists()
    assert list(plans_awaiting_approval(checker=bob)) == [plan]
    assert list(plans_awaiting_approval(checker=alice)) == []  # never shown one's own
    with pytest.raises(PermissionDenied):
        plan_approve(plan=plan, actor=alice)  # a clerk is not an approver
    plan = plan_approve(plan=plan, actor=bob)
    assert plan.state == State.SENT and plan.approver == bob
    assert OutboxCommand.objects.count() == 2
    payment.refresh_from_db()
    assert payment.match_state == Payment.MatchState.APPROVED


def test_nobody_approves_their_own_plan_not_even_a_superuser(entity, acme, carol, settings):
    settings.APPROVAL_THRESHOLD = D("1.00")
    invoice = make_invoice(acme, "50.00")
    payment = make_payment(entity, "50.00", customer=acme)
    plan = plan_submit(
        plan=plan_propose(payment=payment, lines=[line(invoice, "50.00")], actor=carol),
        actor=carol,
    )
    with pytest.raises(SelfApproval, match="different person"):
        plan_approve(plan=plan, actor=carol)
    # and the database refuses it too, whatever code path tries
    with pytest.raises(IntegrityError, match="plan_approver_is_not_maker|CHECK"):
        with transaction.atomic():
            AllocationPlan.objects.filter(pk=plan.pk).update(approver=carol)
    plan.refresh_from_db()
    assert plan.state == State.AWAITING_APPROVAL and not OutboxCommand.objects.exists()


def test_approval_and_outbox_rows_are_one_transaction(entity, acme, alice, bob, settings):
    settings.APPROVAL_THRESHOLD = D("1.00")
    invoice = make_invoice(acme, "50.00")
    payment = make_payment(entity, "50.00", customer=acme)
    plan = plan_submit(
        plan=plan_propose(payment=payment, lines=[line(invoice, "50.00")], actor=alice),
        actor=alice,
    )
    # the invoice turns out not to be in AIQ: the hand-off fails half way through
    type(invoice).objects.filter(pk=invoice.pk).update(aiq_transaction_id=None)
    with pytest.raises(PlanRefused, match="not posted in AIQ"):
        plan_approve(plan=plan, actor=bob)
    plan.refresh_from_db()
    assert plan.state == State.AWAITING_APPROVAL and plan.approver is None
    assert not OutboxCommand.objects.exists()  # not even the receipt queued before the failure
    assert not AuditEntry.objects.filter(action="plan.approve").exists()


def test_discount_and_write_off_always_need_approval(entity, acme, alice, bob):
    invoice = make_invoice(acme, "100.00")
    payment = make_payment(entity, "98.00", customer=acme)
    plan = plan_propose(
        payment=payment,
        lines=[line(invoice, "98.00", write_off_amount="2.00", write_off_gl_account_code="7900")],
        actor=alice,
    )
    assert plan.needs_approval
    plan = plan_approve(plan=plan_submit(plan=plan, actor=alice), actor=bob)
    journal = OutboxCommand.objects.get(kind="post_write_off")
    assert journal.payload["gl_account_code"] == "7900" and journal.payload["amount"] == "2.00"
    allocations = OutboxCommand.objects.filter(kind="allocate").order_by("external_reference")
    assert [(c.payload["amount"], c.depends_on.kind) for c in allocations] == [
        ("98.00", "post_receipt"),
        ("2.00", "post_write_off"),
    ]


def test_editing_an_approved_plan_voids_the_approval(entity, acme, alice, bob, settings):
    settings.APPROVAL_THRESHOLD = D("1.00")
    a, b = make_invoice(acme, "60.00"), make_invoice(acme, "40.00")
    payment = make_payment(entity, "100.00", customer=acme)
    plan = plan_submit(
        plan=plan_propose(payment=payment, lines=[line(a, "60.00")], actor=alice), actor=alice
    )
    plan = plan_approve(plan=plan, actor=bob)
    successor = plan_edit(plan=plan, lines=[line(a, "60.00"), line(b, "40.00")], actor=alice)
    plan.refresh_from_db()
    assert plan.state == State.VOID
    assert successor.state == State.DRAFT and successor.approver is None
    assert successor.on_account_amount == 0 and successor.version == 2
    old = OutboxCommand.objects.get(external_reference=f"ALLOC-{plan.pk}-{a.pk}")
    assert old.state == OutboxCommand.State.CANCELLED
    assert OutboxCommand.objects.get(kind="post_receipt").state == OutboxCommand.State.PENDING
    successor = plan_approve(plan=plan_submit(plan=successor, actor=alice), actor=bob)
    assert OutboxCommand.objects.filter(origin_id=successor.pk, kind="allocate").count() == 2


def test_a_plan_already_being_written_cannot_be_edited(entity, acme, alice):
    invoice = make_invoice(acme, "60.00")
    payment = make_payment(entity, "100.00", customer=acme)
    plan = plan_submit(
        plan=plan_propose(payment=payment, lines=[line(invoice, "60.00")], actor=alice),
        actor=alice,
    )
    OutboxCommand.objects.filter(kind="allocate").update(attempts=1)
    with pytest.raises(PlanRefused, match="unallocate instead"):
        plan_edit(plan=plan, lines=[line(invoice, "50.00")], actor=alice)
    plan.refresh_from_db()
    assert plan.state == State.SENT


def test_reject_needs_a_reason_and_frees_the_invoice(entity, acme, alice, bob, settings):
    settings.APPROVAL_THRESHOLD = D("1.00")
    invoice = make_invoice(acme, "60.00")
    payment = make_payment(entity, "60.00", customer=acme)
    plan = plan_submit(
        plan=plan_propose(payment=payment, lines=[line(invoice, "60.00")], actor=alice),
        actor=alice,
    )
    with pytest.raises(PlanRefused, match="why"):
        plan_reject(plan=plan, actor=bob, reason=" ")
    plan = plan_reject(plan=plan, actor=bob, reason="wrong customer")
    assert plan.state == State.REJECTED
    other = make_payment(entity, "60.00", customer=acme)
    assert plan_propose(payment=other, lines=[line(invoice, "60.00")], actor=alice)


def test_unallocate_queues_the_undo_and_puts_the_cash_back_on_account(entity, acme, alice):
    invoice = make_invoice(acme, "60.00")
    payment = make_payment(entity, "100.00", customer=acme)
    plan = plan_submit(
        plan=plan_propose(payment=payment, lines=[line(invoice, "60.00")], actor=alice),
        actor=alice,
    )
    # what the outbox mirror records once AIQ confirmed the allocation
    allocation = Allocation.objects.create(
        entity=entity,
        transaction_id_1=90001,
        transaction_id_2=invoice.aiq_transaction_id,
        invoice=invoice,
        amount=D("60.00"),
        currency="GBP",
        allocation_date=timezone.localdate(),
        reference=f"ALLOC-{plan.pk}-{invoice.pk}",
    )
    with pytest.raises(PlanRefused, match="why"):
        allocation_unallocate(allocation=allocation, actor=alice, reason="")
    undo = allocation_unallocate(allocation=allocation, actor=alice, reason="paid twice")
    command = undo.command  # 60.00 is under the threshold: asking is approving
    assert (undo.state, undo.maker, undo.approver) == ("approved", alice, None)
    assert command.kind == "unallocate"
    assert command.payload == {
        "transaction_ids": [90001, invoice.aiq_transaction_id],
        "allocation_id": allocation.pk,
        "reason": "paid twice",
    }
    plan.refresh_from_db()
    assert plan.on_account_amount == D("100.00")
    assert plan.lines.get().unallocated_at is not None
    entry = AuditEntry.objects.get(action="allocation.unallocate")
    assert entry.actor == alice and "paid twice" in entry.summary
    # asking twice queues nothing new
    assert allocation_unallocate(allocation=allocation, actor=alice, reason="again") == undo
