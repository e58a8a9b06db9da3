"""The payer is not the customer it was taken for (issue 16.5): a person changes the customer of
a payment.

Allowed only while nothing about the payment is in AIQ or on its way there: a plan in any live
state (draft, awaiting approval, approved, on its way, confirmed) or a receipt already names the
old customer, and changing our row would leave AIQ saying something else. The open proposals
made for the old customer are superseded and matching is woken for the payment, which then
matches against the new customer's invoices (the engine takes Payment.customer first).

No payer alias is learned here: a correction says who paid this once, not what the payer's
name or account means; aliases are learned when a plan is confirmed (payer_learning.py).
"""

from django.db import transaction
from django.utils import timezone

from ledger.models import Customer
from payments.models import AllocationPlan, MatchProposal, Payment
from payments.services.auto_match import auto_match_soon
from payments.services.later import LaterRefused, require_clerk, require_customer_fits
from staff.services import audit_log

# Payment states that follow proposals: after the change it is unmatched until matching runs.
REMATCHED_STATES = (
    Payment.MatchState.UNMATCHED,
    Payment.MatchState.PROPOSED,
    Payment.MatchState.REJECTED,
)


def payment_customer_change(*, payment: Payment, customer: Customer, actor, reason: str) -> Payment:
    """Make `customer` the payment's customer, audited with the before and after customer."""
    require_clerk(actor, "Changing a payment's customer")
    reason = (reason or "").strip()
    if not reason:
        raise LaterRefused("Say why the payment is from another customer.", "reason")
    with transaction.atomic():
        payment = Payment.objects.select_for_update().select_related("customer").get(pk=payment.pk)
        require_customer_fits(customer, payment)
        if payment.customer_id == customer.pk:
            raise LaterRefused(f"The payment is already from {customer.code}.", "customer")
        if payment.match_state == Payment.MatchState.IGNORED:
            raise LaterRefused(
                "This payment is marked Not for AIQ: put it back in the inbox first."
            )
        live = payment.plans.filter(state__in=AllocationPlan.LIVE).first()
        if live is not None:
            if live.state in AllocationPlan.EDITABLE:
                todo = "reject the plan first, then change the customer."
            elif live.state == AllocationPlan.State.CONFIRMED:
                todo = (
                    "undo its allocations (or refund it) and post it again on the right customer."
                )
            else:
                todo = "wait until AIQ has confirmed it, then undo its allocations."
            raise LaterRefused(
                f"This payment has a plan for {live.customer.code} "
                f"({live.get_state_display().lower()}): {todo}"
            )
        if payment.receipt_id is not None:
            raise LaterRefused(
                "This payment is already a receipt in AIQ on its customer's account: undo its "
                "allocations (or refund it) and post it again on the right customer."
            )
        before = payment.customer
        superseded = MatchProposal.objects.filter(
            payment=payment, state=MatchProposal.State.OPEN
        ).update(state=MatchProposal.State.SUPERSEDED)
        before_state = payment.match_state
        if payment.match_state in REMATCHED_STATES:
            payment.match_state = Payment.MatchState.UNMATCHED
        payment.customer = customer
        payment.match_notes = {}
        payment.updated_at = timezone.now()
        Payment.objects.filter(pk=payment.pk).update(
            customer=customer,
            match_state=payment.match_state,
            match_notes={},
            updated_at=payment.updated_at,
        )
        audit_log(
            actor=actor,
            action="payment.customer_change",
            obj=payment,
            summary=f"payment is from {customer.code}, not "
            f"{before.code if before else 'an unknown customer'}: {reason}",
            before={
                "customer": before.code if before else None,
                "match_state": before_state,
            },
            after={
                "customer": customer.code,
                "match_state": payment.match_state,
                "proposals_superseded": superseded,
                "reason": reason,
            },
        )
        auto_match_soon(payment_ids=[payment.pk])
    return payment
