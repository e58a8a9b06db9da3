"""Screens for what the selling systems sent besides invoices: credit notes (a cancelled
order, a Stripe credit note or voided invoice) and customer changes. Lists with the company,
one name per state, amounts with their currency; a record with its AIQ commands; retry and
cancel for approvers, as on the invoice batch page."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from ledger.models import OutboxCommand
from sales.models import CustomerUpdate, SalesCreditNote
from sales.services import credit_notes, customers
from staff.company_scope import company_scope, visible_scope
from staff.views import approver_required, clerk_required, get_or_404, run_service

SHOWN = 500


def _state_filter(request, choices) -> str:
    state = request.GET.get("state", "")
    return state if state in dict(choices) else ""


@clerk_required
def credit_note_list(request):
    state = _state_filter(request, SalesCreditNote.State.choices)
    rows = company_scope(SalesCreditNote.objects.all(), request).select_related(
        "entity", "invoice", "source"
    )
    if state:
        rows = rows.filter(state=state)
    return render(
        request,
        "sales/credit_notes.html",
        {
            "rows": rows.order_by("-created_at", "-pk")[:SHOWN],
            "states": SalesCreditNote.State.choices,
            "state": state,
            "shown": SHOWN,
        },
    )


@clerk_required
def credit_note_detail(request, note_id):
    note = get_or_404(
        visible_scope(SalesCreditNote.objects.all(), request).select_related(
            "entity", "invoice", "source", "command", "allocate_command"
        ),
        pk=note_id,
    )
    commands = [c for c in (note.command, note.allocate_command) if c is not None]
    return render(
        request,
        "sales/credit_note_detail.html",
        {
            "note": note,
            "commands": commands,
            "can_retry": note.state == SalesCreditNote.State.FAILED,
            "can_cancel": note.state
            in (SalesCreditNote.State.FAILED, SalesCreditNote.State.WAITING)
            and not note.aiq_transaction_id,
        },
    )


def _act(request, queryset, pk, service, kwarg: str, done: str, back: str):
    row = get_or_404(visible_scope(queryset, request), pk=pk)
    outcome = run_service(service, actor=request.user, **{kwarg: row})
    if outcome.ok:
        messages.success(request, done)
    else:
        messages.error(request, outcome.message)
    return redirect(back, row.pk)


@require_POST
@approver_required
def credit_note_retry(request, note_id):
    return _act(
        request, SalesCreditNote.objects.all(), note_id, credit_notes.sales_credit_note_retry,
        "note", "Sent to AIQ again.", "sales:credit_note",
    )  # fmt: skip


@require_POST
@approver_required
def credit_note_cancel(request, note_id):
    return _act(
        request, SalesCreditNote.objects.all(), note_id, credit_notes.sales_credit_note_cancel,
        "note", "Credit note cancelled: nothing of it goes to AIQ.", "sales:credit_note",
    )  # fmt: skip


@clerk_required
def customer_update_list(request):
    state = _state_filter(request, CustomerUpdate.State.choices)
    rows = company_scope(CustomerUpdate.objects.all(), request).select_related("entity")
    if state:
        rows = rows.filter(state=state)
    rows = list(rows.order_by("-created_at", "-pk")[:SHOWN])
    for row in rows:
        row.fields = ", ".join(sorted(row.details))
    return render(
        request,
        "sales/customer_updates.html",
        {
            "rows": rows,
            "states": CustomerUpdate.State.choices,
            "state": state,
            "shown": SHOWN,
        },
    )


@clerk_required
def customer_update_detail(request, update_id):
    update = get_or_404(
        visible_scope(CustomerUpdate.objects.all(), request).select_related("entity", "command"),
        pk=update_id,
    )
    changes = [
        {"field": name, "before": update.previous.get(name, ""), "after": value}
        for name, value in sorted(update.details.items())
    ]
    failed = update.state == CustomerUpdate.State.FAILED
    return render(
        request,
        "sales/customer_update_detail.html",
        {
            "update": update,
            "changes": changes,
            "can_retry": failed
            and update.command is not None
            and update.command.state != OutboxCommand.State.CONFIRMED,
            "can_cancel": failed,
        },
    )


@require_POST
@approver_required
def customer_update_retry(request, update_id):
    return _act(
        request, CustomerUpdate.objects.all(), update_id, customers.customer_update_retry,
        "update", "Sent to AIQ again.", "sales:customer_update",
    )  # fmt: skip


@require_POST
@approver_required
def customer_update_cancel(request, update_id):
    return _act(
        request, CustomerUpdate.objects.all(), update_id, customers.customer_update_cancel,
        "update", "Change cancelled: AIQ keeps the customer as it is.", "sales:customer_update",
    )  # fmt: skip
