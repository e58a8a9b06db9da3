"""Sync: last pull per object type, "sync now", outbox counts; retry/cancel of a command (its
list, with customers and payments, is payments/views/outbox.py)."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from core.inputs import parse_id, parse_next
from ledger import selectors
from ledger.models import DuplicateWrite, Entity, OutboxCommand
from ledger.outbox import repair
from ledger.outbox import services as outbox_services
from ledger.sync import services as sync_services
from staff.forms import ReasonForm
from staff.views import (
    approver_required,
    clerk_required,
    get_or_404,
    run_service,
)


@clerk_required
def sync_overview(request):
    counts = selectors.outbox_state_counts()
    sync_states = list(selectors.sync_states())
    context = {
        "states": [
            (value, label, counts.get(value, 0)) for value, label in OutboxCommand.State.choices
        ],
        "sync_states": sync_states,
        "running": any(state.running for state in sync_states),
        "entities": Entity.objects.order_by("name"),
        "origin_pending": selectors.outbox_origin_pending(),
        "duplicates": [
            (flag, repair.reversible(flag)) for flag in selectors.duplicates_to_repair()
        ],
    }
    return render(request, "ledger/sync.html", context)


@require_POST
@approver_required
def duplicate_reverse(request, flag_id):
    flag = get_or_404(DuplicateWrite.objects.select_related("command"), pk=flag_id)
    outcome = run_service(repair.duplicate_reverse, flag=flag, actor=request.user)
    if outcome.ok:
        messages.success(request, f"A reversing entry for {flag} is on its way to AIQ.")
    else:
        messages.error(request, f"Not reversed: {outcome.message}")
    return redirect("ledger:sync")


@require_POST
@approver_required
def duplicate_dismiss(request, flag_id):
    flag = get_or_404(DuplicateWrite.objects.all(), pk=flag_id)
    form = ReasonForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Say why this duplicate needs no reversal.")
        return redirect("ledger:sync")
    outcome = run_service(
        repair.duplicate_dismiss, flag=flag, actor=request.user, reason=form.cleaned_data["reason"]
    )
    if outcome.ok:
        messages.success(request, f"{flag} was dismissed.")
    else:
        messages.error(request, f"Not dismissed: {outcome.message}")
    return redirect("ledger:sync")


def _back(request):
    """Back to the list the action was taken from (its filters kept), else the Sync screen."""
    target = parse_next(request.POST.get("next"), request)
    return redirect(target) if target else redirect("ledger:sync")


@require_POST
@approver_required
def command_retry(request, command_id):
    command = get_or_404(OutboxCommand.objects.all(), pk=command_id)
    outcome = run_service(outbox_services.outbox_retry, command=command, actor=request.user)
    if outcome.ok:
        messages.success(request, f"{command.external_reference} will be sent again.")
    else:
        messages.error(request, f"Not retried: {outcome.message}")
    return _back(request)


@require_POST
@approver_required
def command_cancel(request, command_id):
    command = get_or_404(OutboxCommand.objects.all(), pk=command_id)
    form = ReasonForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give a reason for cancelling.")
        return _back(request)
    outcome = run_service(
        outbox_services.outbox_cancel,
        command=command,
        actor=request.user,
        reason=form.cleaned_data["reason"],
    )
    if outcome.ok:
        messages.success(request, f"{command.external_reference} was cancelled.")
    else:
        messages.error(request, f"Not cancelled: {outcome.message}")
    return _back(request)


@require_POST
@clerk_required
def sync_now(request):
    entity = get_or_404(
        Entity.objects.all(), pk=parse_id(request.POST.get("entity"), field="Entity")
    )
    outcome = run_service(
        sync_services.sync_start,
        entity=entity,
        actor=request.user,
        refusals=(sync_services.SyncAlreadyRunning,),
    )
    if not outcome.ok:
        reason = outcome.message
        if reason == "SyncAlreadyRunning":
            reason = "a pull from AIQ is already running for this entity."
        messages.error(request, f"Sync not started: {reason}")
        return redirect("ledger:sync")
    if request.htmx:
        return sync_progress(request)
    messages.success(request, f"Sync of {entity.name} started.")
    return redirect("ledger:sync")


@clerk_required
def sync_progress(request):
    """htmx partial: the progress bars; it keeps polling while any pull is running."""
    states = list(selectors.sync_states())
    running = any(s.running for s in states)
    return render(
        request, "ledger/_sync_progress.html", {"sync_states": states, "running": running}
    )
