"""Undo an allocation in AIQ (UnallocateTransactions): asked for, approved, queued.

Undo is money moving back onto a customer's account, so it follows maker-checker like a plan
(staff/maker_checker.py): above APPROVAL_THRESHOLD the clerk's undo is a request that a
different person approves (`unallocation_approve`) or rejects; at or below it, asking is
approving. The outbox command is queued in the approving transaction, and each step is audited
in it. Constraints: unallocation_approver_is_not_maker, unallocation_one_live_per_allocation,
unallocation_approved_has_command.
"""

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from core.money import format_money
from ledger.companies import approval_threshold
from ledger.models import Allocation, OutboxCommand
from ledger.outbox.services import outbox_enqueue
from payments.models import AllocationPlan, Unallocation
from payments.services.plan_lines import PlanRefused
from payments.services.provider_fx import line_fx_reverse
from staff.maker_checker import check_approver, is_maker, record_approval, record_change
from staff.models import Role
from staff.services import audit_log, user_has_role

State = Unallocation.State
LIVE = (State.REQUESTED, State.APPROVED)


def _what(allocation: Allocation) -> str:
    return f"{allocation.reference} ({format_money(allocation.amount, allocation.currency)})"


def allocation_unallocate(*, allocation: Allocation, actor, reason: str) -> Unallocation:
    """A clerk asks to undo one allocation. Above the threshold it waits for a second person;
    otherwise it is queued for AIQ now. Asking again while one is live returns that one."""
    if not user_has_role(actor, Role.CLERK):
        raise PermissionDenied("Undoing an allocation needs the clerk role.")
    reason = (reason or "").strip()
    if not reason:
        raise PlanRefused("Say why the allocation is undone.")
    with transaction.atomic():
        allocation = Allocation.objects.select_for_update().get(pk=allocation.pk)
        if allocation.state != Allocation.State.ACTIVE:
            raise PlanRefused("This allocation is already undone.")
        live = allocation.unallocations.filter(state__in=LIVE).first()
        if live is not None:
            return live
        undo = Unallocation(allocation=allocation, reason=reason[:500])
        record_change(undo, actor=actor)
        undo.full_clean()
        undo.save()
        threshold = approval_threshold(allocation.entity_id)
        if allocation.amount > threshold:
            audit_log(
                actor=actor,
                action="allocation.unallocate_request",
                obj=undo,
                summary=f"undo of {_what(allocation)} asked for: above "
                f"{threshold}, waits for a second person: {reason}",
                after={"allocation": allocation.reference, "amount": allocation.amount},
            )
            return undo
        return _queue(undo, allocation, approver=None)


def unallocation_approve(*, unallocation: Unallocation, actor) -> Unallocation:
    """A second person approves the undo: it is queued for AIQ in this transaction."""
    if not user_has_role(actor, Role.APPROVER):
        raise PermissionDenied("Approving an undo needs the approver role.")
    with transaction.atomic():
        undo = Unallocation.objects.select_for_update().get(pk=unallocation.pk)
        check_approver(undo, actor=actor, what="this undo")
        if undo.state != State.REQUESTED:
            raise PlanRefused(f"This undo is {undo.get_state_display().lower()}.")
        allocation = Allocation.objects.select_for_update().get(pk=undo.allocation_id)
        if allocation.state != Allocation.State.ACTIVE:
            raise PlanRefused("This allocation is already undone.")
        return _queue(undo, allocation, approver=actor)


def unallocation_reject(*, unallocation: Unallocation, actor, reason: str) -> Unallocation:
    """An approver rejects (or the maker withdraws) an undo that is not approved yet."""
    reason = (reason or "").strip()
    if not reason:
        raise PlanRefused("Say why the undo is rejected.")
    with transaction.atomic():
        undo = Unallocation.objects.select_for_update().get(pk=unallocation.pk)
        if not (
            user_has_role(actor, Role.APPROVER)
            or (is_maker(undo, actor) and user_has_role(actor, Role.CLERK))
        ):
            raise PermissionDenied("Rejecting an undo needs the approver role.")
        if undo.state != State.REQUESTED:
            raise PlanRefused(f"This undo is {undo.get_state_display().lower()}.")
        undo.state, undo.rejection_reason = State.REJECTED, reason
        undo.save(update_fields=["state", "rejection_reason", "updated_at"])
        audit_log(
            actor=actor,
            action="allocation.unallocate_reject",
            obj=undo,
            summary=f"undo of allocation #{undo.allocation_id} rejected: {reason}",
            before={"state": State.REQUESTED},
            after={"state": undo.state, "reason": reason},
        )
        return undo


def _queue(undo: Unallocation, allocation: Allocation, *, approver) -> Unallocation:
    """Approve (approver None: under the threshold) and queue UnallocateTransactions. If the
    allocation came from a plan, that line's cash goes back on the payment's account, so the
    plan still adds up to the payment."""
    record_approval(undo, actor=approver, what="this undo")
    source = (
        OutboxCommand.objects.filter(
            entity_id=allocation.entity_id,
            external_reference=allocation.reference,
            origin_type="allocation_plan",
        )
        .only("origin_id", "payload")
        .first()
    )
    line = None
    if source is not None and source.payload.get("invoice_id"):
        plan = AllocationPlan.objects.select_for_update().get(pk=source.origin_id)
        line = (
            plan.lines.select_for_update()
            .filter(invoice_id=source.payload["invoice_id"], unallocated_at__isnull=True)
            .first()
        )
    undo.command = outbox_enqueue(
        entity=allocation.entity,
        kind=OutboxCommand.Kind.UNALLOCATE,
        external_reference=f"UNALLOC-{allocation.pk}",
        payload={
            "transaction_ids": [allocation.transaction_id_1, allocation.transaction_id_2],
            "allocation_id": allocation.pk,
            "reason": undo.reason,
        },
        origin_type="allocation",
        origin_id=allocation.pk,
        created_by=approver or undo.maker,
    )
    undo.state = State.APPROVED
    undo.save(update_fields=["state", "command", "approver", "approved_at", "updated_at"])
    before = {"allocation": allocation.reference, "amount": allocation.amount}
    after = {"command": undo.command.external_reference, "reason": undo.reason}
    if line is not None and not allocation.reference.startswith("ALLOC-WOFF-"):
        plan = line.plan
        before["plan_on_account"] = plan.on_account_amount
        line.unallocated_at = timezone.now()
        line.unallocation_reason = undo.reason
        line.save(update_fields=["unallocated_at", "unallocation_reason"])
        plan.on_account_amount += line.amount
        plan.save(update_fields=["on_account_amount", "updated_at"])
        after["plan_on_account"] = plan.on_account_amount
        # its realised exchange gain or loss, if booked, is reversed after the undo lands
        fx = line_fx_reverse(line=line, depends_on=undo.command, reason=undo.reason)
        if fx is not None:
            after["fx_reversal"], after["fx_reversed"] = fx[0].external_reference, fx[1]
    how = f"approved by {approver}" if approver else "at or under the threshold"
    audit_log(
        actor=approver or undo.maker,
        action="allocation.unallocate",
        obj=allocation,
        summary=f"unallocate {_what(allocation)} ({how}): {undo.reason}",
        before=before,
        after={**after, "unallocation": undo.pk, "maker": str(undo.maker or "system")},
    )
    return undo
