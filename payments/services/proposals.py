"""Decisions on the matching engine's proposals that do not go through a plan.

A proposal is a suggestion; rejecting it before anyone turned it into a plan leaves nothing to
undo in AIQ, so any clerk may do it (a plan, once made, is rejected with plan_reject). The
payment then shows the next open proposal, or goes back to unmatched when there is none.
"""

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from ledger.models import Invoice
from payments.models import CROSS_COMPANY, AllocationPlan, MatchProposal, Payment
from payments.services.cross_company import cross_company_receipt_propose
from payments.services.plan_lines import PlanRefused
from payments.services.plans import plan_propose, plan_submit
from staff.models import Role
from staff.services import audit_log, user_has_role

# Payment states a proposal decision may move (not one that is sent, ignored, ...).
FOLLOWS_PROPOSALS = (
    Payment.MatchState.UNMATCHED,
    Payment.MatchState.PROPOSED,
    Payment.MatchState.REJECTED,
)


def proposal_reject(*, proposal: MatchProposal, actor, reason: str) -> MatchProposal:
    """Mark an open proposal rejected, with the reason, and move the payment on."""
    if not user_has_role(actor, Role.CLERK):
        raise PermissionDenied("Rejecting a proposal needs the clerk role.")
    reason = (reason or "").strip()
    if not reason:
        raise PlanRefused("Say why the proposal is rejected.")
    with transaction.atomic():
        # payment first, like the plan services: two decisions on one payment queue up here
        payment = Payment.objects.select_for_update().get(pk=proposal.payment_id)
        proposal = MatchProposal.objects.select_for_update().get(pk=proposal.pk)
        if proposal.state != MatchProposal.State.OPEN:
            raise PlanRefused(f"This proposal is already {proposal.get_state_display().lower()}.")
        # a plan on its way is the decision about the payment: reject that instead
        if payment.plans.filter(state__in=AllocationPlan.RESERVING).exists():
            raise PlanRefused("This payment has a plan; reject or edit the plan instead.")
        proposal.state = MatchProposal.State.REJECTED
        proposal.save(update_fields=["state"])
        following = (
            payment.proposals.filter(state=MatchProposal.State.OPEN).order_by("rank", "id").first()
        )
        before_state = payment.match_state
        if payment.match_state in FOLLOWS_PROPOSALS:
            payment.match_state = (
                Payment.MatchState.PROPOSED if following else Payment.MatchState.UNMATCHED
            )
            Payment.objects.filter(pk=payment.pk).update(
                match_state=payment.match_state, updated_at=timezone.now()
            )
        audit_log(
            actor=actor,
            action="proposal.reject",
            obj=payment,  # the payment's history lists it (payments/views/detail.py)
            summary=f"rejected proposal #{proposal.pk} ({proposal.rule_kind}: "
            f"{proposal.explanation}): {reason}",
            before={"proposal": proposal.pk, "proposal_state": "open", "match_state": before_state},
            after={
                "proposal_state": proposal.state,
                "reason": reason,
                "match_state": payment.match_state,
                "next_proposal": following.pk if following else None,
            },
        )
    return proposal


def proposal_accept(*, payment: Payment, actor):
    """Make the payment's best open proposal its plan and submit it, all or nothing.

    Under the approval threshold (no discount or write-off) the submission approves it;
    otherwise it waits for another approver, the actor being its maker. A refused submission
    (an invoice not posted in AIQ yet, no bank to receive into) leaves no draft behind.
    A proposal naming another group company's invoice becomes a cross-company receipt
    instead, which always waits for a second person (services/cross_company.py).
    """
    with transaction.atomic():
        proposal = (
            payment.proposals.filter(state=MatchProposal.State.OPEN).order_by("rank", "id").first()
        )
        if proposal is None:
            raise PlanRefused("no open proposal")
        if proposal.rule_kind == CROSS_COMPANY:
            invoice = Invoice.objects.get(pk=int(proposal.lines[0]["invoice_id"]))
            return cross_company_receipt_propose(actor=actor, payment=payment, invoice=invoice)
        plan = plan_propose(payment=payment, actor=actor, lines=proposal.lines, proposal=proposal)
        return plan_submit(plan=plan, actor=actor)
