"""Approvals: plans waiting for a checker. Nobody approves their own plan.

The button is hidden for the maker, and the service refuses anyway (and the database has a
constraint), so a forged POST gets a refusal, not an approval.
"""

from decimal import Decimal

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from core.inputs import is_id
from payments.models import AllocationPlan, Unallocation
from payments.selectors import plans_awaiting_approval, unallocations_awaiting_approval
from payments.services.plan_lines import approval_reasons
from payments.views import actions
from staff.company_scope import company_scope
from staff.forms import ReasonForm
from staff.maker_checker import is_maker
from staff.views import approver_required, clerk_required, get_or_404

PARTS = (("amount", "amount"), ("discount", "discount_amount"), ("write-off", "write_off_amount"))


def _proposed_parts(line: dict) -> dict:
    """A proposal line's amounts by editor name (proposals store discount/write_off)."""
    return {
        "amount": Decimal(str(line.get("amount") or 0)),
        "discount_amount": Decimal(str(line.get("discount", line.get("discount_amount")) or 0)),
        "write_off_amount": Decimal(str(line.get("write_off", line.get("write_off_amount")) or 0)),
    }


def _diff(plan):
    """What the maker changed compared with the engine's proposal: per invoice, each of
    amount, discount and write-off that differs, as a sentence's parts."""
    if plan.proposal is None:
        return []
    proposed = {
        int(line["invoice_id"]): _proposed_parts(line)
        for line in plan.proposal.lines
        if is_id(str(line.get("invoice_id", "")))
    }
    planned = {line.invoice_id: line for line in plan.lines.all()}
    changes = []
    for invoice_id in sorted(set(proposed) | set(planned)):
        line = planned.get(invoice_id)
        label = line.invoice if line else f"invoice #{invoice_id}"
        if line is None:
            changes.append(
                {
                    "invoice": label,
                    "what": "",
                    "before": proposed[invoice_id]["amount"],
                    "after": None,
                }
            )
            continue
        before = proposed.get(invoice_id, {})
        for what, field in PARTS:
            old, new = before.get(field), getattr(line, field)
            if (old or 0) != new:
                changes.append(
                    {"invoice": label, "what": what, "before": old or None, "after": new or None}
                )
    if plan.on_account_amount != plan.proposal.on_account_amount:
        changes.append(
            {
                "invoice": "on account",
                "what": "",
                "before": plan.proposal.on_account_amount,
                "after": plan.on_account_amount,
            }
        )
    return changes


@clerk_required
def approvals(request):
    plans = company_scope(plans_awaiting_approval(), request, "payment__entity_id")
    plans = list(plans[:200])
    for plan in plans:
        plan.changes = _diff(plan)
        plan.reasons = approval_reasons(
            plan.payment,
            plan.lines.all(),
            invoices={line.invoice_id: line.invoice for line in plan.lines.all()},
        )
        plan.allocated = sum((line.amount for line in plan.lines.all()), start=0)
        plan.is_mine = is_maker(plan, request.user)
    undos = company_scope(unallocations_awaiting_approval(), request, "allocation__entity_id")
    undos = list(undos[:200])
    for undo in undos:
        undo.is_mine = is_maker(undo, request.user)
    return render(
        request,
        "payments/approvals.html",
        {"plans": plans, "undos": undos, "reject_form": ReasonForm()},
    )


@require_POST
@approver_required
def approve(request, plan_id):
    plan = get_or_404(AllocationPlan.objects.select_related("payment"), pk=plan_id)
    seen = request.POST.get("version", "")  # the version the page showed (ASCII digits only)
    seen_version = int(seen) if seen.isascii() and seen.isdigit() and len(seen) < 10 else None
    outcome = actions.approve_plan(plan=plan, actor=request.user, seen_version=seen_version)
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


@require_POST
@approver_required
def approve_undo(request, unallocation_id):
    undo = get_or_404(Unallocation.objects.select_related("allocation"), pk=unallocation_id)
    outcome = actions.approve_unallocation(unallocation=undo, actor=request.user)
    if outcome.ok:
        messages.success(request, f"Approved: {undo.allocation.reference} will be undone in AIQ.")
    else:
        messages.error(request, f"Not approved: {outcome.message}")
    return redirect("payments:approvals")


@require_POST
@clerk_required
def reject_undo(request, unallocation_id):
    """An approver rejects, or the clerk who asked withdraws, an undo (the service decides)."""
    undo = get_or_404(Unallocation.objects.select_related("allocation"), pk=unallocation_id)
    form = ReasonForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give a reason for the rejection.")
        return redirect("payments:approvals")
    outcome = actions.reject_unallocation(
        unallocation=undo, actor=request.user, reason=form.cleaned_data["reason"]
    )
    if outcome.ok:
        messages.success(request, f"Rejected the undo of {undo.allocation.reference}.")
    else:
        messages.error(request, f"Not rejected: {outcome.message}")
    return redirect("payments:approvals")
