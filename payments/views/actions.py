"""Calls into the plan services, with their refusals turned into messages for people.

The services (payments/services/plans.py) do the checking and the writing; this module only
adapts names and errors.
"""

from payments.services import plans, proposals
from staff.views import Outcome, run_service


def approve_plan(*, plan, actor) -> Outcome:
    return run_service(plans.plan_approve, plan=plan, actor=actor)


def reject_plan(*, plan, actor, reason: str) -> Outcome:
    return run_service(plans.plan_reject, plan=plan, actor=actor, reason=reason)


def propose_plan(*, payment, actor, lines, proposal=None) -> Outcome:
    """A draft plan; the remainder of the payment goes on the customer's account."""
    return run_service(
        plans.plan_propose, payment=payment, actor=actor, lines=lines, proposal=proposal
    )


def edit_plan(*, plan, actor, lines) -> Outcome:
    return run_service(plans.plan_edit, plan=plan, actor=actor, lines=lines)


def submit_plan(*, plan, actor) -> Outcome:
    return run_service(plans.plan_submit, plan=plan, actor=actor)


def unallocate(*, allocation, actor, reason: str) -> Outcome:
    return run_service(
        plans.allocation_unallocate, allocation=allocation, actor=actor, reason=reason
    )


def reject_proposal(*, proposal, actor, reason: str) -> Outcome:
    """An engine proposal rejected before any plan was made of it."""
    return run_service(
        proposals.proposal_reject,
        proposal=proposal,
        actor=actor,
        reason=reason,
    )


def accept_proposal(*, payment, actor) -> Outcome:
    """The payment's best open proposal as its plan, submitted (approved when allowed)."""
    return run_service(proposals.proposal_accept, payment=payment, actor=actor)
