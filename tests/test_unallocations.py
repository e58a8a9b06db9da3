"""Undo above the threshold needs a second person (payments/services/unallocations.py).

The worked scenario runs against the AIQ sandbox over HTTP with the outbox drained in-process:
the books in AIQ move only once a different approver has approved the undo."""

from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone

from ledger.models import Allocation, OutboxCommand
from payments.models import AllocationPlan, Payment, Unallocation
from payments.services.plan_lines import PlanRefused
from payments.services.unallocations import (
    allocation_unallocate,
    unallocation_approve,
    unallocation_reject,
)
from staff.maker_checker import SelfApproval
from staff.models import AuditEntry
from tests.refunds_support import (
    allocate,
    drain_all,
    make_invoice,
    seed_roles_without_matching,
    setup_books,
)

LINES = [("Onboarding workshop", "4010", "650.00", "T1"), ("Card reader", "4020", "39.99", "T1")]


def _paid_invoice(entity, alice, bob):
    """ACME's 827.99 invoice, paid by a bank transfer allocated through an approved plan."""
    invoice = make_invoice(entity, "ACME", LINES)
    payment = Payment.objects.create(
        entity=entity,
        source="bank",
        external_id="bank-row-1",
        amount=invoice.gross_amount,
        currency="GBP",
        received_at=timezone.now(),
        customer=invoice.customer,
    )
    allocate(payment, [(invoice, "827.99")], alice, bob)
    return invoice, payment


@pytest.mark.django_db(transaction=True)
def test_undo_above_the_threshold_moves_aiq_only_after_a_second_person_approves(
    aiq_sandbox, entity, alice, bob, carol, audit_flushable, settings
):
    seed_roles_without_matching()
    setup_books(entity)
    settings.APPROVAL_THRESHOLD = Decimal("500.00")
    invoice, payment = _paid_invoice(entity, alice, bob)
    assert aiq_sandbox.state.outstanding(invoice.aiq_transaction_id) == 0
    allocation = Allocation.objects.get(invoice=invoice, state="active")

    undo = allocation_unallocate(allocation=allocation, actor=bob, reason="paid twice")
    assert (undo.state, undo.maker, undo.command) == ("requested", bob, None)
    drain_all()
    assert not OutboxCommand.objects.filter(kind="unallocate").exists()
    assert aiq_sandbox.state.outstanding(invoice.aiq_transaction_id) == 0  # AIQ untouched

    with pytest.raises(SelfApproval):
        unallocation_approve(unallocation=undo, actor=bob)  # asked for it: not the checker
    with pytest.raises(PermissionDenied):
        unallocation_approve(unallocation=undo, actor=alice)  # a clerk approves nothing
    undo = unallocation_approve(unallocation=undo, actor=carol)
    assert (undo.state, undo.approver) == ("approved", carol)
    drain_all()

    assert aiq_sandbox.state.outstanding(invoice.aiq_transaction_id) == Decimal("827.99")
    assert Allocation.objects.get(pk=allocation.pk).state == "unallocated"
    plan = AllocationPlan.objects.get(payment=payment, state="confirmed")
    assert plan.on_account_amount == Decimal("827.99")  # the cash is back on account
    actions = list(
        AuditEntry.objects.filter(action__startswith="allocation.unallocate")
        .order_by("id")
        .values_list("action", "actor__username")
    )
    assert actions == [
        ("allocation.unallocate_request", "bob"),
        ("allocation.unallocate", "carol"),
    ]


@pytest.fixture
def allocation(entity, alice):
    from tests.test_plans_factories import make_customer, make_invoice, setup_books

    setup_books(entity)
    invoice = make_invoice(make_customer(entity), "1500.00")
    return Allocation.objects.create(
        entity=entity,
        transaction_id_1=90001,
        transaction_id_2=invoice.aiq_transaction_id,
        invoice=invoice,
        amount=Decimal("1500.00"),
        currency="GBP",
        allocation_date=timezone.localdate(),
        reference="ALLOC-EXT-1",
    )


@pytest.mark.django_db
def test_an_undo_is_withdrawn_or_rejected_and_then_never_approved(
    allocation, alice, bob, carol, mallory
):
    undo = allocation_unallocate(allocation=allocation, actor=alice, reason="wrong invoice")
    assert undo.state == "requested"  # 1,500.00 is above the default 1,000.00
    # asking twice gives the same request
    assert allocation_unallocate(allocation=allocation, actor=bob, reason="again") == undo
    with pytest.raises(PermissionDenied):
        unallocation_reject(unallocation=undo, actor=mallory, reason="no")  # no role
    unallocation_reject(unallocation=undo, actor=alice, reason="asked by mistake")  # withdrawn
    with pytest.raises(PlanRefused, match="rejected"):
        unallocation_approve(unallocation=undo, actor=bob)
    again = allocation_unallocate(allocation=allocation, actor=alice, reason="really wrong")
    assert again.pk != undo.pk
    unallocation_reject(unallocation=again, actor=carol, reason="it was right")
    assert not OutboxCommand.objects.exists()
    assert [
        e.action for e in AuditEntry.objects.filter(action__startswith="allocation.").order_by("id")
    ] == [
        "allocation.unallocate_request",
        "allocation.unallocate_reject",
        "allocation.unallocate_request",
        "allocation.unallocate_reject",
    ]


@pytest.mark.django_db
def test_the_database_refuses_an_undo_approved_by_its_maker(allocation, bob):
    undo = allocation_unallocate(allocation=allocation, actor=bob, reason="paid twice")
    with pytest.raises(IntegrityError), transaction.atomic():
        Unallocation.objects.filter(pk=undo.pk).update(approver=bob)
    with pytest.raises(IntegrityError), transaction.atomic():  # approved = handed to the outbox
        Unallocation.objects.filter(pk=undo.pk).update(state="approved")


@pytest.mark.django_db
def test_the_approvals_screen_offers_the_undo_to_another_approver_only(
    client, allocation, alice, bob
):
    undo = allocation_unallocate(allocation=allocation, actor=bob, reason="paid twice")
    client.force_login(bob)
    page = client.get("/approvals/").content.decode()
    assert "ALLOC-EXT-1" in page and "Another approver must decide." in page
    response = client.post(f"/approvals/undo/{undo.pk}/approve", follow=True)
    assert "a different person must approve it" in response.content.decode()
    assert Unallocation.objects.get(pk=undo.pk).state == "requested"

    client.force_login(alice)  # a clerk sees it but cannot approve
    assert client.post(f"/approvals/undo/{undo.pk}/approve").status_code == 403
