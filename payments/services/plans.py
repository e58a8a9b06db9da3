"""Allocation plans: propose, edit, submit, approve (maker-checker), reject. Undoing an
allocation is payments/services/unallocations.py.

A plan says how one payment settles invoices: lines of (invoice, cash, discount, write-off to a
GL account) and the remainder left on the customer's account. Invariants, each checked here
under row locks and backed by a named constraint where a single row can carry it:
  - cash allocated + on account = the payment (on account >= 0: plan_on_account_gte_0);
  - per invoice, what all unconfirmed live plans hold <= its outstanding amount (cross-row:
    the invoice rows are locked with select_for_update on PostgreSQL; on SQLite every
    transaction is IMMEDIATE, so writers are serialised);
  - one live plan per payment (plan_one_live_per_payment);
  - the approver is not the maker, superusers included (plan_approver_is_not_maker); the maker
    is whoever last changed the lines (staff/maker_checker.py), so an approver who edits a plan
    is its maker and needs yet another person.
Locks are always taken payment first, then invoices by id, so two services cannot deadlock.
Approval hands the plan to the outbox in the same transaction (ledger/outbox/services.py).
"""

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.bulk import insert_instance, instance_saved
from core.money import format_money
from ledger.models import OutboxCommand
from payments.models import AllocationPlan, MatchProposal, Payment
from payments.services.payer_learning import payer_aliases_learn
from payments.services.plan_lines import (
    LineInput,
    PlanRefused,
    approval_reasons,
    available_amount,
    check_lines,
    lines_need_approval,
    plan_snapshot,
    reserved_elsewhere,
    snapshot_of,
    write_lines,
)
from payments.services.plan_outbox import plan_hand_to_outbox
from staff.maker_checker import check_approver, is_maker, record_approval, record_change
from staff.models import Role
from staff.services import (
    audit_entry,
    audit_log,
    audit_log_many,
    form_submission_claim,
    form_submission_done,
    user_has_role,
)

State = AllocationPlan.State
STORED = Decimal("0.001")  # what MoneyField keeps (thousandths)
ALREADY_PLANNED = "This payment already has a plan; edit that one instead."
NOT_OPEN = "This proposal is {state}: a person decided on it since the matching run."


def _require_clerk(actor) -> None:
    if not user_has_role(actor, Role.CLERK):
        raise PermissionDenied("Working on allocation plans needs the clerk role.")


def _lock_payment(payment_id: int) -> Payment:
    return Payment.objects.select_for_update().select_related("entity").get(pk=payment_id)


def _lock_plan(plan_id: int) -> AllocationPlan:
    return AllocationPlan.objects.select_for_update().get(pk=plan_id)


def _set_match_state(payment: Payment, state: str) -> None:
    Payment.objects.filter(pk=payment.pk).update(match_state=state, updated_at=timezone.now())
    payment.match_state = state


# Audit wording shared with the set-based auto-approval (payments/services/auto_approve.py).
def propose_summary(payment: Payment, line_count: int, on_account, proposal) -> str:
    return (
        f"plan for payment {payment.external_id}: {line_count} line(s), "
        f"{format_money(on_account, payment.currency)} on account"
        + (f" (rule {proposal.rule_kind})" if proposal is not None else "")
    )


def approve_summary(how: str, command_count: int) -> str:
    return f"{how}; {command_count} AIQ command(s) queued"


def auto_approved_how(proposal) -> str:
    return f"auto-approved by rule {proposal.rule_kind}"


def auto_approve_waits_summary() -> str:
    return (
        f"auto-approve rule matched, but above {settings.APPROVAL_THRESHOLD}: waits for an approver"
    )


def plan_propose(
    *, payment: Payment, lines, actor, customer=None, proposal=None, system: bool = False
) -> AllocationPlan:
    """A draft plan for a payment. `system=True` is the auto-approve rule (no maker)."""
    if not system:
        _require_clerk(actor)
    lines = [LineInput.coerce(line) for line in lines]
    with transaction.atomic():
        payment = _lock_payment(payment.pk)
        if payment.plans.filter(state__in=AllocationPlan.LIVE).exists():
            raise PlanRefused(ALREADY_PLANNED)
        customer_id = customer.pk if customer else payment.customer_id
        if customer_id is None and proposal is not None:
            # a proposal that puts the money on account names the customer it identified
            customer_id = ((proposal.evidence or {}).get("customer") or {}).get("customer_id")
        customer_id, _invoices, on_account = check_lines(payment, lines, customer_id)
        plan = AllocationPlan(
            payment=payment,
            proposal=proposal,
            customer_id=customer_id,
            on_account_amount=on_account,
            needs_approval=lines_need_approval(payment, lines),
            state=State.DRAFT,
        )
        record_change(plan, actor=None if system else actor)
        plan.full_clean()
        try:
            with transaction.atomic():
                plan.save()
        except IntegrityError:  # a concurrent propose won the one-live-plan constraint
            raise PlanRefused(ALREADY_PLANNED) from None
        write_lines(plan, lines)
        if proposal is not None:
            payment.proposals.filter(state="open").exclude(pk=proposal.pk).update(
                state="superseded"
            )
            type(proposal).objects.filter(pk=proposal.pk).update(state="accepted")
        if payment.match_state in (Payment.MatchState.UNMATCHED, Payment.MatchState.REJECTED):
            _set_match_state(payment, Payment.MatchState.PROPOSED)
        audit_log(
            actor=None if system else actor,
            action="plan.propose",
            obj=plan,
            summary=propose_summary(payment, len(lines), on_account, proposal),
            after=plan_snapshot(plan),
        )
    return plan


def _commands_of(plan: AllocationPlan):
    return OutboxCommand.objects.filter(origin_type="allocation_plan", origin_id=plan.pk)


def plan_edit(*, plan: AllocationPlan, lines, actor) -> AllocationPlan:
    """Change a plan's lines. An approved plan loses its approval: its unsent AIQ commands are
    cancelled, it becomes void and a new draft takes its place (returned). Once any allocation
    has started towards AIQ, the plan cannot be edited: unallocate instead."""
    _require_clerk(actor)
    lines = [LineInput.coerce(line) for line in lines]
    with transaction.atomic():
        payment = _lock_payment(plan.payment_id)
        plan = _lock_plan(plan.pk)
        before = plan_snapshot(plan)
        if plan.state in (State.DRAFT, State.AWAITING_APPROVAL):
            _customer, _invoices, on_account = check_lines(
                payment, lines, plan.customer_id, plan_id=plan.pk
            )
            plan.lines.all().delete()  # draft lines: nothing in AIQ refers to them
            write_lines(plan, lines)
            plan.on_account_amount = on_account
            plan.needs_approval = lines_need_approval(payment, lines)
            plan.state = State.DRAFT  # a changed plan is submitted (and checked) again
            plan.version += 1
            record_change(plan, actor=actor)  # whoever changed the lines is the maker now
            plan.full_clean()
            plan.save()
            _set_match_state(payment, Payment.MatchState.PROPOSED)
            audit_log(
                actor=actor,
                action="plan.edit",
                obj=plan,
                summary=f"plan edited (version {plan.version}) by its new maker; back to draft",
                before=before,
                after=plan_snapshot(plan),
            )
            return plan
        if plan.state != State.SENT:
            raise PlanRefused(f"A {plan.get_state_display().lower()} plan cannot be edited.")
        # Approved and handed to the outbox: only while nothing but the receipt has been sent.
        # The receipt does not depend on the lines (the whole payment is received either way).
        allocations = _commands_of(plan).exclude(kind=OutboxCommand.Kind.POST_RECEIPT)
        ids = list(allocations.values_list("pk", flat=True))
        cancelled = OutboxCommand.objects.filter(
            pk__in=ids, state=OutboxCommand.State.PENDING, attempts=0
        ).update(state=OutboxCommand.State.CANCELLED, updated_at=timezone.now())
        if cancelled != len(ids):
            raise PlanRefused(
                "Part of this plan is already being written to AIQ; unallocate instead of editing."
            )
        plan.state = State.VOID
        plan.save(update_fields=["state", "updated_at"])
        audit_log(
            actor=actor,
            action="plan.void",
            obj=plan,
            summary=f"approval voided by an edit; {cancelled} unsent AIQ command(s) cancelled",
            before=before,
            after={"state": plan.state},
        )
        customer_id, _invoices, on_account = check_lines(payment, lines, plan.customer_id)
        successor = AllocationPlan(
            payment=payment,
            proposal=plan.proposal,
            customer_id=customer_id,
            on_account_amount=on_account,
            needs_approval=lines_need_approval(payment, lines),
            state=State.DRAFT,
            version=plan.version + 1,
        )
        record_change(successor, actor=actor)
        successor.full_clean()
        successor.save()
        write_lines(successor, lines)
        _set_match_state(payment, Payment.MatchState.PROPOSED)
        audit_log(
            actor=actor,
            action="plan.edit",
            obj=successor,
            summary=f"replaces approved plan #{plan.pk}, which is void; needs approval again",
            before=before,
            after=plan_snapshot(successor),
        )
        return successor


@dataclass(frozen=True)
class Submitted:
    """What the editor's Submit did: the plan, and whether this POST repeated an earlier one."""

    plan: AllocationPlan
    repeated: bool = False


def plan_submit_lines(
    *, payment: Payment, lines, actor, submission, shown_on_account=None, proposal=None
) -> Submitted:
    """The allocation editor's Submit as one action: the payment's plan made (or its draft
    changed) to exactly these lines, then submitted, in one transaction.

    `submission` is the form's token: the same form posted again (a double click) changes
    nothing and answers with the first submission's plan. `shown_on_account` is what the
    editor's footer showed as left on account; if the lines leave a different amount, what the
    person saw is not what would be posted, and nothing is.
    """
    _require_clerk(actor)
    lines = [LineInput.coerce(line) for line in lines]
    with transaction.atomic():
        earlier = form_submission_claim(token=submission, actor=actor, action="plan.submit_lines")
        if earlier is not None:
            return Submitted(AllocationPlan.objects.get(pk=earlier.object_id), repeated=True)
        live = payment.plans.filter(state__in=[State.DRAFT, State.AWAITING_APPROVAL]).first()
        if live is None:
            plan = plan_propose(payment=payment, lines=lines, actor=actor, proposal=proposal)
        else:
            plan = plan_edit(plan=live, lines=lines, actor=actor)
        if shown_on_account is not None and shown_on_account != plan.on_account_amount:
            raise PlanRefused(
                "The screen showed "
                f"{format_money(shown_on_account, payment.currency)} left on account, but the "
                f"rows leave {format_money(plan.on_account_amount, payment.currency)}; nothing "
                "was submitted. Check the rows and submit again."
            )
        plan = plan_submit(plan=plan, actor=actor)
        form_submission_done(token=submission, obj=plan)
    return Submitted(plan)


def _approve(
    plan: AllocationPlan, payment: Payment, actor, *, how: str, checked=None, audited_first=()
) -> AllocationPlan:
    """Shared tail of every approval: re-check amounts under lock, outbox, state, audit.
    `checked`: (lines, invoices by id) that plan_propose_submit checked a moment ago in this
    same transaction, under the same locks (neither read nor checked again), for a payment it
    saved a moment ago as approved and a plan it inserted approved and sent (its approval
    recorded before the insert, the draft it was a moment before audited as `before`);
    `audited_first`: its unsaved audit entries, written before this approval's in one
    INSERT."""
    if checked is None:
        lines = [LineInput.coerce(line) for line in plan.lines.all()]
        check_lines(payment, lines, plan.customer_id, plan_id=plan.pk)
        before = plan_snapshot(plan)
        record_approval(plan, actor=actor if how == "approved" else None, what="this plan")
        plan.state = State.SENT  # approved and handed to the outbox in this same transaction
        plan.save(update_fields=["approver", "approved_at", "state", "updated_at"])
    else:
        lines, invoices = checked
        before = _snapshot_in_hand(plan, lines, state=State.DRAFT)
    if checked is None:
        commands = plan_hand_to_outbox(plan, payment, actor)
    else:
        pairs = [(line, invoices[line.invoice_id]) for line in sorted_lines(lines)]
        commands = plan_hand_to_outbox(plan, payment, actor, pairs=pairs, new_payment=True)
    if payment.customer_id is None:
        Payment.objects.filter(pk=payment.pk).update(customer_id=plan.customer_id)
    # a person's allocation teaches the payer's keys (a rule's alone teaches nothing)
    person = plan.maker if plan.maker_id is not None else (actor if how == "approved" else None)
    payer_aliases_learn(payment=payment, customer_id=plan.customer_id, person=person)
    if checked is None:
        _set_match_state(payment, Payment.MatchState.APPROVED)
    after = plan_snapshot(plan) if checked is None else _snapshot_in_hand(plan, lines)
    approved = audit_entry(
        actor=actor if how == "approved" else None if plan.maker_id is None else plan.maker,
        action="plan.approve",
        obj=plan,
        summary=approve_summary(how, len(commands)),
        before=before,
        after={**after, "commands": [c.external_reference for c in commands]},
    )
    audit_log_many([*audited_first, approved])
    return plan


def sorted_lines(lines: list[LineInput]) -> list[LineInput]:
    return sorted(lines, key=lambda line: line.invoice_id)


def _snapshot_in_hand(plan: AllocationPlan, lines: list[LineInput], state=None) -> dict:
    """plan_snapshot without reading the lines back: the amounts as the column stores them
    (`state`: the plan's a moment before, when it was inserted in a later one)."""
    stored = [
        LineInput(
            invoice_id=line.invoice_id,
            amount=quantize_stored(line.amount),
            discount_amount=quantize_stored(line.discount_amount),
            write_off_amount=quantize_stored(line.write_off_amount),
            write_off_gl_account_code=line.write_off_gl_account_code,
        )
        for line in sorted_lines(lines)
    ]
    return snapshot_of(
        state=state or plan.state,
        version=plan.version,
        on_account=quantize_stored(plan.on_account_amount),
        lines=stored,
    )


def quantize_stored(amount):
    return amount.quantize(STORED)


def plan_propose_submit(
    *, payment: Payment, lines, actor, customer, invoices: dict | None = None
) -> AllocationPlan:
    """plan_propose then plan_submit in one pass, for a new payment (the API's receipt), not
    saved yet: the same checks, rows, audit entries (plan.propose, then plan.submit or
    plan.approve), outbox commands and match states. The lines are checked before the payment
    is saved, so it is inserted once, in the state its plan gives it; nobody else can see it
    before commit, so it is neither locked nor read again and no other plan can exist for it.
    `invoices`: the lines' invoices by id, already locked (FOR UPDATE, in id order) by the
    caller in this transaction. Call inside a transaction.atomic() whose savepoint a refusal
    rolls back (the payment row with the rest)."""
    _require_clerk(actor)
    if payment.pk is not None:
        raise ValueError("plan_propose_submit saves a new payment; this one is saved already.")
    lines = [LineInput.coerce(line) for line in lines]
    with transaction.atomic(savepoint=False):
        customer_id, invoices, on_account = check_lines(
            payment, lines, customer.pk, invoices=invoices
        )
        needs_approval = lines_need_approval(payment, lines)
        payment.match_state = (
            Payment.MatchState.AWAITING_APPROVAL if needs_approval else Payment.MatchState.APPROVED
        )
        if payment.customer_id is None:
            payment.customer_id = customer_id
        insert_instance(payment)  # as save() would; nothing listens to a payment's post_save
        plan = AllocationPlan(
            payment=payment,
            customer_id=customer_id,
            on_account_amount=on_account,
            needs_approval=needs_approval,
            state=State.DRAFT,
        )
        if customer_id == customer.pk:
            plan.customer = customer
        record_change(plan, actor=actor)
        # the foreign keys were just read and locked; the constraints are the database's
        plan.full_clean(
            exclude=["payment", "proposal", "customer", "maker", "approver"],
            validate_constraints=False,
        )
        # inserted in the state its submission gives it (no draft row updated a moment later);
        # the audit tells the steps: proposed (as a draft), then submitted or approved
        if needs_approval:
            plan.state = State.AWAITING_APPROVAL
        else:
            record_approval(plan, actor=None, what="this plan")
            plan.state = State.SENT  # approved and handed to the outbox in this transaction
        # the payment is this transaction's: no other plan can race this one; post_save (a
        # webhook event of the plan as GET shows it) once its lines are written too
        insert_instance(plan)
        write_lines(plan, lines)
        instance_saved(plan, created=True)
        proposed = audit_entry(
            actor=actor,
            action="plan.propose",
            obj=plan,
            summary=propose_summary(payment, len(lines), on_account, None),
            after=_snapshot_in_hand(plan, lines, state=State.DRAFT),
        )
        if not needs_approval:
            return _approve(
                plan,
                payment,
                actor,
                how="auto-approved under threshold",
                checked=(lines, invoices),
                audited_first=[proposed],
            )
        submitted = audit_entry(
            actor=actor,
            action="plan.submit",
            obj=plan,
            summary="submitted for approval by a second person",
            after=_snapshot_in_hand(plan, lines),
        )
        audit_log_many([proposed, submitted])
        return plan


def plan_submit(*, plan: AllocationPlan, actor) -> AllocationPlan:
    """The maker is done. At or below the threshold with no discount or write-off the
    submission approves it; otherwise it waits for a checker."""
    _require_clerk(actor)
    with transaction.atomic():
        payment = _lock_payment(plan.payment_id)
        plan = _lock_plan(plan.pk)
        if plan.state != State.DRAFT:
            raise PlanRefused(f"Only a draft can be submitted; this plan is {plan.state}.")
        if plan.needs_approval:
            plan.state = State.AWAITING_APPROVAL
            plan.save(update_fields=["state", "updated_at"])
            _set_match_state(payment, Payment.MatchState.AWAITING_APPROVAL)
            audit_log(
                actor=actor,
                action="plan.submit",
                obj=plan,
                summary="submitted for approval by a second person",
                after=plan_snapshot(plan),
            )
            return plan
        return _approve(plan, payment, actor, how="auto-approved under threshold")


def plan_approve(*, plan: AllocationPlan, actor, seen_version: int | None = None) -> AllocationPlan:
    """The checker approves: never the maker, not even a superuser. `seen_version`: the
    version the approver's screen showed; if the plan changed since, nothing is approved."""
    if not user_has_role(actor, Role.APPROVER):
        raise PermissionDenied("Approving a plan needs the approver role.")
    with transaction.atomic():
        payment = _lock_payment(plan.payment_id)
        plan = _lock_plan(plan.pk)
        check_approver(plan, actor=actor, what="this plan")
        if plan.state != State.AWAITING_APPROVAL:
            raise PlanRefused(
                f"This plan is {plan.get_state_display().lower()}, not awaiting approval."
            )
        if seen_version is not None and seen_version != plan.version:
            raise PlanRefused("This plan changed since you opened it; read it again first.")
        return _approve(plan, payment, actor, how="approved")


def plan_auto_approve(*, payment: Payment, proposal) -> AllocationPlan:
    """An auto-approve rule (exact reference + exact amount) made the plan, nobody's hand.
    Above the threshold (or with a discount/write-off) it still waits for a checker."""
    with transaction.atomic():
        payment = _lock_payment(payment.pk)  # proposal decisions lock the payment first too
        if payment.plans.filter(state__in=AllocationPlan.LIVE).exists():
            raise PlanRefused(ALREADY_PLANNED)
        proposal = MatchProposal.objects.get(pk=proposal.pk)
        if proposal.state != MatchProposal.State.OPEN:
            raise PlanRefused(NOT_OPEN.format(state=proposal.get_state_display().lower()))
        plan = plan_propose(
            payment=payment, lines=proposal.lines, actor=None, proposal=proposal, system=True
        )
        return _approve_by_system(
            plan,
            payment,
            how=auto_approved_how(proposal),
            waits=lambda _payment, _plan: auto_approve_waits_summary(),
        )


def _approve_by_system(plan, payment, *, how: str, waits) -> AllocationPlan:
    """A plan nobody's hand made: approved and sent, or, above the threshold (or with a
    discount or write-off), submitted to wait for an approver; waits(payment, plan) says why."""
    payment = _lock_payment(payment.pk)
    plan = _lock_plan(plan.pk)
    if plan.needs_approval:
        plan.state = State.AWAITING_APPROVAL
        plan.save(update_fields=["state", "updated_at"])
        _set_match_state(payment, Payment.MatchState.AWAITING_APPROVAL)
        audit_log(actor=None, action="plan.submit", obj=plan, summary=waits(payment, plan))
        return plan
    return _approve(plan, payment, None, how=how)


PAYS_INVOICE_STATUSES = (Payment.Status.SUCCEEDED, Payment.Status.PARTIALLY_REFUNDED)


def plan_for_invoice(*, payment: Payment, invoice, how: str) -> AllocationPlan | None:
    """The system that raised the invoice says this payment pays it (a Stripe invoice and the
    payment intent that paid it): the plan is made without a matching run and by nobody's
    hand, like an auto-approve rule. It settles what is open on the invoice, up to what the
    payment has; the rest goes on the customer's account. Above the threshold it waits for an
    approver. None (nothing done) when the payment has a plan already (a person or a rule
    decided first), is not money in yet, or the invoice has nothing open."""
    with transaction.atomic():
        payment = _lock_payment(payment.pk)
        if payment.status not in PAYS_INVOICE_STATUSES:
            return None
        if payment.plans.filter(state__in=AllocationPlan.LIVE).exists():
            return None
        invoice = type(invoice).objects.select_for_update().get(pk=invoice.pk)
        held = reserved_elsewhere([invoice.pk]).get(invoice.pk, Decimal(0))
        amount = min(available_amount(payment), invoice.outstanding_amount - held)
        if amount <= 0 or invoice.currency != payment.currency:
            return None
        # what a matching run proposed meanwhile is overtaken by the source's own word
        payment.proposals.filter(state=MatchProposal.State.OPEN).update(
            state=MatchProposal.State.SUPERSEDED
        )
        plan = plan_propose(
            payment=payment,
            lines=[LineInput(invoice_id=invoice.pk, amount=amount)],
            actor=None,
            customer=invoice.customer,
            system=True,
        )
        return _approve_by_system(
            plan,
            payment,
            how=how,
            waits=lambda payment, plan: (
                f"{how}; waits for an approver: "
                + "; ".join(approval_reasons(payment, plan.lines.all()))
            ),
        )


def plan_reject(*, plan: AllocationPlan, actor, reason: str) -> AllocationPlan:
    """The checker (or the maker withdrawing it) rejects a plan that is not approved yet."""
    reason = (reason or "").strip()
    if not reason:
        raise PlanRefused("Say why the plan is rejected.")
    with transaction.atomic():
        payment = _lock_payment(plan.payment_id)
        plan = _lock_plan(plan.pk)
        if not (
            user_has_role(actor, Role.APPROVER)
            or (is_maker(plan, actor) and user_has_role(actor, Role.CLERK))
        ):
            raise PermissionDenied("Rejecting a plan needs the approver role.")
        if plan.state not in (State.DRAFT, State.AWAITING_APPROVAL):
            raise PlanRefused(f"A {plan.get_state_display().lower()} plan cannot be rejected.")
        before = plan_snapshot(plan)
        plan.state = State.REJECTED
        plan.rejection_reason = reason
        plan.save(update_fields=["state", "rejection_reason", "updated_at"])
        _set_match_state(payment, Payment.MatchState.REJECTED)
        audit_log(
            actor=actor,
            action="plan.reject",
            obj=plan,
            summary=f"rejected: {reason}",
            before=before,
            after={"state": plan.state, "reason": reason},
        )
        return plan
