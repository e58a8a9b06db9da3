"""Approvals: plans waiting for a checker. Nobody approves their own plan.

The button is hidden for the maker, and the service refuses anyway (and the database has a
constraint), so a forged POST gets a refusal, not an approval.
"""

from decimal import Decimal

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from payments.models import AllocationPlan
from payments.views import actions
from staff.forms import ReasonForm
from staff.maker_checker import is_maker
from staff.views import approver_required, clerk_required, get_or_404


def _diff(plan):
    """What the maker changed compared with the engine's proposal, per invoice."""
    if plan.proposal is None:
        return []
    proposed = {
        int(line["invoice_id"]): line.get("amount", "0")
        for line in plan.proposal.lines
        if str(line.get("invoice_id", "")).isdigit()
    }
    planned = {line.invoice_id: line for line in plan.lines.all()}
    changes = []
    for invoice_id in sorted(set(proposed) | set(planned)):
        line = planned.get(invoice_id)
        before = proposed.get(invoice_id)
        after = line.amount if line else None
        if before is not None and after is not None and Decimal(str(before)) == after:
            continue
        label = line.invoice if line else f"invoice #{invoice_id}"
        changes.append({"invoice": label, "before": before, "after": after})
    if plan.on_account_amount != plan.proposal.on_account_amount:
        changes.append(
            {
                "invoice": "on account",
                "before": plan.proposal.on_account_amount,
                "after": plan.on_account_amount,
            }
        )
    return changes


@clerk_required
def approvals(request):
    plans = list(
        AllocationPlan.objects.filter(state=AllocationPlan.State.AWAITING_APPROVAL)
        .select_related("payment", "customer", "maker", "proposal")
        .prefetch_related("lines__invoice")
        .order_by("created_at", "id")[:200]
    )
    for plan in plans:
        plan.changes = _diff(plan)
        plan.allocated = sum((line.amount for line in plan.lines.all()), start=0)
        plan.is_mine = is_maker(plan, request.user)
    return render(
        request,
        "payments/approvals.html",
        {"plans": plans, "reject_form": ReasonForm()},
    )


@require_POST
@approver_required
def approve(request, plan_id):
    plan = get_or_404(AllocationPlan.objects.select_related("payment"), pk=plan_id)
    outcome = actions.approve_plan(plan=plan, actor=request.user)
    if outcome.ok:
        messages.success(request, f"Approved the plan for {plan.payment.external_id}.")
    else:
        messages.error(request, f"Not approved: {outcome.message}")
    return redirect("payments:approvals")


@require_POST
@approver_required
def reject(request, plan_id):
    plan = get_or_404(AllocationPlan.objects.select_related("payment"), pk=plan_id)
    form = ReasonForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give a reason for the rejection.")
        return redirect("payments:approvals")
    outcome = actions.reject_plan(plan=plan, actor=request.user, reason=form.cleaned_data["reason"])
    if outcome.ok:
        messages.success(request, f"Rejected the plan for {plan.payment.external_id}.")
    else:
        messages.error(request, f"Not rejected: {outcome.message}")
    return redirect("payments:approvals")
