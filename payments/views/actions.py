"""Calls into the plan services, with their refusals turned into messages for people.

The services (payments/services/plans.py) do the checking and the writing; this module only
adapts names and errors.
"""

from payments.services import plans, proposals, unallocations
from staff.views import Outcome, run_service


def approve_plan(*, plan, actor, seen_version: int | None = None) -> Outcome:
    return run_service(plans.plan_approve, plan=plan, actor=actor, seen_version=seen_version)


def reject_plan(*, plan, actor, reason: str) -> Outcome:
    return run_service(plans.plan_reject, plan=plan, actor=actor, reason=reason)


def submit_lines(*, payment, actor, lines, submission, shown_on_account, proposal) -> Outcome:
    """The editor's Submit: the plan made or changed to these lines and submitted, once."""
    return run_service(
        plans.plan_submit_lines,
        payment=payment,
        actor=actor,
        lines=lines,
        submission=submission,
        shown_on_account=shown_on_account,
        proposal=proposal,
    )


def unallocate(*, allocation, actor, reason: str) -> Outcome:
    return run_service(
        unallocations.allocation_unallocate, allocation=allocation, actor=actor, reason=reason
    )


def approve_unallocation(*, unallocation, actor) -> Outcome:
    return run_service(unallocations.unallocation_approve, unallocation=unallocation, actor=actor)


def reject_unallocation(*, unallocation, actor, reason: str) -> Outcome:
    return run_service(
        unallocations.unallocation_reject, unallocation=unallocation, actor=actor, reason=reason
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
