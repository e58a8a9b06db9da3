"""Payment detail and the allocation editor."""

import json
import uuid
from types import SimpleNamespace

from django.contrib import messages
from django.db.models import Q
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from core.inputs import is_id, parse_id, parse_optional_id
from core.money import exponent, format_money
from ledger.models import Allocation, GLAccount, Invoice
from ledger.selectors import customer_exposure, open_invoices_search
from payments.evidence import evidence_sentences
from payments.forms import AllocationForm
from payments.models import CROSS_COMPANY, AllocationPlan, Payment, Unallocation
from payments.selectors import payment_later_allocations, payment_plans, payment_proposals
from payments.services.contact_allocations import receipt_open
from payments.services.cross_company import cross_company_invoices
from payments.services.plan_lines import available_amount
from payments.views import actions
from staff.forms import ReasonForm
from staff.models import AuditEntry
from staff.views import clerk_required, get_or_404


def _payment(payment_id):
    return get_or_404(
        Payment.objects.select_related("customer", "payout", "receipt", "entity"), pk=payment_id
    )


def _proposals(payment):
    proposals = list(payment.proposals.select_related("rule").order_by("rank", "id"))
    invoice_ids = {
        int(line["invoice_id"])
        for p in proposals
        for line in p.lines
        if is_id(str(line.get("invoice_id", "")))
    }
    invoices = Invoice.objects.select_related("customer").in_bulk(invoice_ids)
    for proposal in proposals:
        proposal.resolved_lines = [
            {**line, "invoice": invoices.get(int(line["invoice_id"]))}
            for line in proposal.lines
            if is_id(str(line.get("invoice_id", "")))
        ]
        proposal.evidence_items = evidence_sentences(proposal.evidence)
    return proposals


def _editor_rows(payment, plan, proposals, form=None):
    """Rows for the editor: the submitted ones, else the live plan, else the best proposal."""
    if form is not None:
        return _posted_rows(form)
    if plan is not None:
        rows = [
            {
                "invoice": line.invoice,
                "amount": line.amount,
                "discount_amount": line.discount_amount,
                "write_off_amount": line.write_off_amount,
                "write_off_gl_account_code": line.write_off_gl_account_code,
            }
            for line in plan.lines.select_related("invoice__customer").order_by("id")
        ]
        return rows
    # another group company's invoice is not allocated here: the cross-company section
    # proposes its receipt (templates/payments/_cross_company.html)
    open_proposals = [p for p in proposals if p.state == "open" and p.rule_kind != CROSS_COMPANY]
    if open_proposals:
        best = open_proposals[0]
        rows = [
            {
                "invoice": line["invoice"],
                "amount": line.get("amount", ""),
                "discount_amount": line.get("discount", line.get("discount_amount", "")),
                "write_off_amount": line.get("write_off", line.get("write_off_amount", "")),
                "write_off_gl_account_code": "",
            }
            for line in best.resolved_lines
            if line["invoice"] is not None
        ]
        return rows
    return []


def _posted_rows(form):
    """The rows exactly as they were posted, repeats included (the n-th row of an invoice
    shows the n-th value typed for it), so a refused submit shows what the person sent."""
    rows, seen = [], {}
    for invoice_id in form.data.getlist("invoice"):
        invoice = form.invoices.get(int(invoice_id)) if is_id(invoice_id) else None
        if invoice is None:
            continue
        n = seen[invoice.pk] = seen.get(invoice.pk, -1) + 1

        def nth(name, n=n, pk=invoice.pk):
            values = form.data.getlist(f"{name}_{pk}")
            return values[n] if n < len(values) else ""

        rows.append(
            {
                "invoice": invoice,
                "amount": nth("amount"),
                "discount_amount": nth("discount"),
                "write_off_amount": nth("write_off"),
                "write_off_gl_account_code": nth("write_off_account"),
                "repeat": n,  # 0 for an invoice's first row; later rows get their own ids
            }
        )
    return rows


def _text(value, currency) -> str:
    """An amount for an input box: empty for zero/blank, the currency's decimals otherwise."""
    if value in (None, ""):
        return ""
    if isinstance(value, str):
        return value  # what the user typed, shown back unchanged
    if value == 0:
        return ""
    return format_money(value, currency, with_code=False).replace(",", "")


def _decorate(rows, payment, form):
    errors = form.errors if form is not None else {}
    for row in rows:
        pk = row["invoice"].pk
        row["dom_id"] = f"{pk}-{row['repeat']}" if row.get("repeat") else str(pk)
        row["amount_text"] = _text(row["amount"], payment.currency)
        row["discount_text"] = _text(row["discount_amount"], payment.currency)
        row["write_off_text"] = _text(row["write_off_amount"], payment.currency)
        row["errors"] = {
            "amount": errors.get(f"amount_{pk}"),
            "discount": errors.get(f"discount_{pk}"),
            "write_off": errors.get(f"write_off_{pk}"),
        }
    return rows


def _history(payment, plans, proposals):
    """Every decision about this payment and its plans, newest first.

    A run's proposals are not audit entries of their own (each proposal row is its own
    immutable record); they show here with the run's actor from the run's audit entry.
    """
    plan_ids = [str(plan.pk) for plan in plans]
    run_ids = {p.run_id for p in proposals if p.run_id}
    entries = list(
        AuditEntry.objects.select_related("actor")
        .filter(
            Q(object_type="payments.payment", object_id=str(payment.pk))
            | Q(object_type="payments.allocationplan", object_id__in=plan_ids)
            | Q(object_type="matching_run", object_id__in=run_ids)
        )
        .order_by("-at", "-id")[:100]
    )
    runs = {e.object_id: e for e in entries if e.object_type == "matching_run"}
    entries = [e for e in entries if e.object_type != "matching_run"]
    for p in proposals:
        run = runs.get(p.run_id)
        entries.append(
            SimpleNamespace(
                at=p.created_at,
                actor=run.actor if run else None,
                action="matching.proposal",
                summary=f"rank {p.rank}, {p.get_rule_kind_display()}: {p.explanation} "
                f"({p.get_state_display().lower()})",
                run_id=p.run_id,
            )
        )
    return sorted(entries, key=lambda e: e.at, reverse=True)[:100]


def _open_proposal(payment, proposal_id: str = ""):
    open_ones = payment_proposals(payment)
    proposal_id = parse_optional_id(proposal_id, field="Proposal")
    if proposal_id:
        return open_ones.filter(pk=proposal_id).first()
    return open_ones.first()


def _render(request, payment, *, form=None, reject_form=None, status=200):
    plans = list(payment_plans(payment))
    live = next((p for p in plans if p.state in AllocationPlan.LIVE), None)
    proposals = _proposals(payment)
    rows = _editor_rows(payment, live, proposals, form)
    rows = _decorate(rows, payment, form)
    context = {
        "payment": payment,
        "places": exponent(payment.currency),
        "available": available_amount(payment),  # what the editor's footer splits
        "fees": payment.fees.all(),
        "proposals": proposals,
        # the proposal a plan made in the editor comes from (another company's invoice is
        # received from the cross-company section instead)
        "editor_proposal": next((p for p in proposals if p.rule_kind != CROSS_COMPANY), None),
        "plans": plans,
        "live_plan": live,
        "editable": live is None or live.state in AllocationPlan.EDITABLE,
        "rows": rows,
        "form": form,
        "submission": uuid.uuid4(),  # the form's token: one action however often it is posted
        "reject_form": reject_form or ReasonForm(),
        "gl_accounts": GLAccount.objects.filter(entity=payment.entity_id, active=True).order_by(
            "code"
        ),
        "raw_json": json.dumps(payment.raw, indent=1, sort_keys=True, default=str),
        "history": _history(payment, plans, proposals),
        # the customer's balance, open and overdue items and credit limit, beside the editor
        "exposure": customer_exposure(payment.customer) if payment.customer_id else None,
        "can_reject": live is not None and live.state in AllocationPlan.EDITABLE,
        # with no plan yet, the reject button turns down the engine's best open proposal
        "open_proposal": None if live else _open_proposal(payment),
        # money on account to allocate later (payments/_unidentified.html)
        "on_account_open": receipt_open(payment.receipt) if payment.receipt_id else None,
        # its money on account allocated later, to its customer's or a group member's invoices
        "later_allocations": payment_later_allocations(payment),
        # another group company's invoice it names: whose, and whether it can be received
        # there (payments/_cross_company.html)
        "cross_company": cross_company_invoices(payment) if not live else [],
        "cross_company_receipts": payment.cross_company_receipts.select_related(
            "invoice__entity", "maker", "approver"
        ).order_by("-id")[:5],
    }
    return render(request, "payments/detail.html", context, status=status)


@clerk_required
def detail(request, payment_id):
    return _render(request, _payment(payment_id))


@clerk_required
def invoice_search(request, payment_id):
    """htmx: open invoices of any customer of the payment's company, to add to the editor
    (another company's invoice cannot take this money: the plan would be refused)."""
    payment = _payment(payment_id)
    text = request.GET.get("q", "")[:100]
    results = (
        open_invoices_search(text=text, currency=payment.currency, entity_id=payment.entity_id)
        if text.strip()
        else []
    )
    return render(
        request,
        "payments/_invoice_results.html",
        {"payment": payment, "results": results, "q": text},
    )


@clerk_required
def editor_row(request, payment_id):
    """htmx: one editor row for an invoice picked from the search."""
    payment = _payment(payment_id)
    invoice = get_or_404(  # an invoice of the payment's company only
        Invoice.objects.select_related("customer").filter(entity_id=payment.entity_id),
        pk=parse_id(request.GET.get("invoice"), field="Invoice"),
    )
    gl_accounts = GLAccount.objects.filter(entity=payment.entity_id, active=True).order_by("code")
    row = {"invoice": invoice, "amount": "", "discount_amount": "", "write_off_amount": ""}
    _decorate([row], payment, None)
    return render(
        request,
        "payments/_alloc_row.html",
        {"payment": payment, "row": row, "gl_accounts": gl_accounts, "editable": True},
    )


@require_POST
@clerk_required
def allocate(request, payment_id):
    payment = _payment(payment_id)
    form = AllocationForm(request.POST, payment=payment)
    if not form.is_valid():
        return _render(request, payment, form=form, status=400)
    proposal_id = parse_optional_id(request.POST.get("proposal"), field="Proposal")
    proposal = payment.proposals.filter(pk=proposal_id).first() if proposal_id else None
    outcome = actions.submit_lines(
        payment=payment,
        actor=request.user,
        lines=form.lines,
        submission=request.POST.get("submission", ""),
        shown_on_account=form.shown_on_account,
        proposal=proposal,
    )
    if not outcome.ok:
        form.non_field_errors.append(outcome.message)
        return _render(request, payment, form=form, status=400)
    submitted = outcome.value
    if submitted.repeated:
        messages.info(request, "This allocation was already submitted; nothing more was done.")
    elif submitted.plan.state == AllocationPlan.State.AWAITING_APPROVAL:
        messages.success(request, "Allocation submitted: it waits for an approver.")
    else:
        messages.success(request, "Allocation approved under the threshold and queued for AIQ.")
    return redirect("payments:detail", payment_id=payment.pk)


@require_POST
@clerk_required
def reject(request, payment_id):
    """Reject (or, for its maker, withdraw) the payment's plan that is not approved yet."""
    payment = _payment(payment_id)
    form = ReasonForm(request.POST)
    if not form.is_valid():
        return _render(request, payment, reject_form=form, status=400)
    live = payment.plans.filter(state__in=AllocationPlan.EDITABLE).first()
    if live is None:
        return _reject_proposal(request, payment, form)
    outcome = actions.reject_plan(plan=live, actor=request.user, reason=form.cleaned_data["reason"])
    if not outcome.ok:
        messages.error(request, outcome.message)
        return _render(request, payment, reject_form=form, status=400)
    messages.success(request, "Plan rejected.")
    return redirect("payments:detail", payment_id=payment.pk)


def _reject_proposal(request, payment, form):
    """No plan yet: the rejection is about the engine's proposal (payments/services/proposals)."""
    proposal = _open_proposal(payment, request.POST.get("proposal", ""))
    if proposal is None:
        messages.error(request, "There is no plan or open proposal waiting to be rejected.")
        return _render(request, payment, reject_form=form, status=400)
    outcome = actions.reject_proposal(
        proposal=proposal, actor=request.user, reason=form.cleaned_data["reason"]
    )
    if not outcome.ok:
        messages.error(request, outcome.message)
        return _render(request, payment, reject_form=form, status=400)
    messages.success(request, "Proposal rejected.")
    return redirect("payments:detail", payment_id=payment.pk)


@require_POST
@clerk_required
def unallocate(request, allocation_id):
    """Undo one allocation in AIQ (a reversing command, never a delete), with a reason."""
    allocation = get_or_404(Allocation.objects.all(), pk=allocation_id)
    back = (
        redirect("ledger:invoice", invoice_id=allocation.invoice_id)
        if allocation.invoice_id
        else redirect("payments:inbox")
    )
    form = ReasonForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Say why the allocation is undone.")
        return back
    outcome = actions.unallocate(
        allocation=allocation, actor=request.user, reason=form.cleaned_data["reason"]
    )
    if outcome.ok and outcome.value.state == Unallocation.State.REQUESTED:
        messages.success(
            request, "Undo asked for: above the approval threshold, a second person approves it."
        )
    elif outcome.ok:
        messages.success(request, "The allocation will be undone in AIQ.")
    else:
        messages.error(request, f"Not undone: {outcome.message}")
    return back
