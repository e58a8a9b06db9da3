"""Sales invoicing screens: uploads (preview, import), batches with their rows, one invoice.

Between preview and import the file waits in the cache under its sha256 (an hour): the import
form names it, so a large file is not posted twice; a lost cache entry asks for the file again.
"""

from django import forms
from django.contrib import messages
from django.core.cache import cache
from django.db.models import Count, Min, Q, Sum
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from ledger.models import Invoice
from sales.models import (
    DeferredRelease,
    DeferredRevenueSchedule,
    InvoiceSource,
    SalesBatch,
    SalesInvoice,
)
from sales.services import deferred, uploads
from sales.services import invoices as invoice_services
from sales.services.paid_orders import paid_order_context
from staff.company_scope import company_scope, visible_scope
from staff.views import approver_required, clerk_required, get_or_404, run_service

CACHE_SECONDS = 3600
SCHEDULES_SHOWN = 500
S = SalesInvoice.State


class UploadForm(forms.Form):
    source = forms.ModelChoiceField(queryset=InvoiceSource.objects.order_by("name"))
    file = forms.FileField(help_text="CSV or Excel (.xlsx): one row per invoice line")


class ImportForm(forms.Form):
    source = forms.ModelChoiceField(queryset=InvoiceSource.objects.all())
    sha256 = forms.RegexField(regex=r"^[0-9a-f]{64}$")
    filename = forms.CharField(max_length=255)


def _cache_key(sha256: str) -> str:
    return f"sales-upload:{sha256}"


@clerk_required
def batch_list(request):
    scoped = company_scope(SalesBatch.objects.all(), request)
    batches = (
        scoped.select_related("source", "created_by", "approved_by", "entity")
        .annotate(
            in_aiq=Count("invoices", filter=Q(invoices__state__in=SalesInvoice.IN_AIQ)),
            held=Count("invoices", filter=Q(invoices__state__in=[S.HELD_CREDIT, S.HELD_CUSTOMER])),
            failed=Count("invoices", filter=Q(invoices__state=S.FAILED)),
            currencies=Count("invoices__currency", distinct=True),
            currency=Min("invoices__currency"),
        )
        .order_by("-created_at")[:200]
    )
    held = company_scope(
        SalesInvoice.objects.filter(state__in=[S.HELD_CREDIT, S.HELD_CUSTOMER]), request
    ).count()
    # the invoices of these batches, a total per currency (a group's companies, and a file,
    # may sell in more than one)
    totals = list(
        company_scope(SalesInvoice.objects.filter(batch__isnull=False), request)
        .order_by("currency")
        .values("currency")
        .annotate(n=Count("id"), gross=Sum("gross_amount"))
    )
    return render(
        request,
        "sales/batches.html",
        {
            "batches": batches,
            "form": UploadForm(),
            "held": held,
            "totals": totals,
            "batch_count": scoped.count(),
        },
    )


@require_POST
@clerk_required
def upload_preview(request):
    form = UploadForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, "Choose a source and a file.")
        return redirect("sales:batches")
    upload = form.cleaned_data["file"]
    if upload.size > uploads.MAX_UPLOAD_BYTES:
        messages.error(request, "The file is larger than 20 MB.")
        return redirect("sales:batches")
    content = upload.read()
    outcome = run_service(
        uploads.sales_upload_preview,
        source=form.cleaned_data["source"],
        filename=upload.name,
        content=content,
        actor=request.user,
    )
    if not outcome.ok:
        messages.error(request, outcome.message)
        return redirect("sales:batches")
    preview = outcome.value
    if preview.ok:
        cache.set(_cache_key(preview.sha256), content, CACHE_SECONDS)
    return render(
        request,
        "sales/preview.html",
        {"preview": preview, "rule": uploads.PARTIAL_FILE_RULE},
    )


@require_POST
@clerk_required
def upload_import(request):
    form = ImportForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The import form was incomplete: upload the file again.")
        return redirect("sales:batches")
    content = cache.get(_cache_key(form.cleaned_data["sha256"]))
    if content is None:
        messages.error(request, "The previewed file is no longer held: upload it again.")
        return redirect("sales:batches")
    outcome = run_service(
        uploads.sales_upload_import,
        source=form.cleaned_data["source"],
        filename=form.cleaned_data["filename"],
        content=content,
        actor=request.user,
    )
    if not outcome.ok:
        messages.error(request, f"Nothing was imported: {outcome.message}")
        return redirect("sales:batches")
    cache.delete(_cache_key(form.cleaned_data["sha256"]))
    batch = outcome.value
    messages.success(
        request, f"{batch.invoice_count} invoice(s) imported: {batch.get_state_display()}."
    )
    return redirect("sales:batch", batch_id=batch.pk)


@clerk_required
def batch_detail(request, batch_id):
    batch = get_or_404(SalesBatch.objects.select_related("source", "entity"), pk=batch_id)
    rows = batch.invoices.select_related("command").order_by("id")
    # grouped by state alone (the rows' order_by("id") would group by each row)
    counts = dict(
        batch.invoices.order_by()
        .values_list("state")
        .annotate(n=Count("id"))
        .values_list("state", "n")
    )
    total = sum(counts.values())
    done = sum(counts.get(s, 0) for s in (*SalesInvoice.IN_AIQ, S.FAILED, S.REFUSED, S.CANCELLED))
    states = [
        (value, label, counts.get(value, 0)) for value, label in S.choices if counts.get(value)
    ]
    # the batch's gross per currency (a file may hold invoices in more than one)
    grosses = rows.order_by("currency").values("currency").annotate(gross=Sum("gross_amount"))
    refused = rows.filter(state=S.FAILED)
    failed_grosses = list(
        refused.order_by("currency").values("currency").annotate(gross=Sum("gross_amount"))
    )
    failed = (
        {"n": counts.get(S.FAILED, 0), "grosses": failed_grosses} if counts.get(S.FAILED) else None
    )
    return render(
        request,
        "sales/batch_detail.html",
        {
            "batch": batch,
            "rows": rows[:1000],
            "states": states,
            "total": total,
            "done": done,
            "percent": round(100 * done / total) if total else 100,
            "grosses": list(grosses),
            "failed": failed,
        },
    )


@clerk_required
def invoice_detail(request, invoice_id):
    invoice = get_or_404(
        visible_scope(SalesInvoice.objects.all(), request).select_related(
            "source", "batch", "command", "entity"
        ),
        pk=invoice_id,
    )
    mirror = None
    if invoice.aiq_transaction_id:
        mirror = Invoice.objects.filter(
            entity=invoice.entity_id, aiq_transaction_id=invoice.aiq_transaction_id
        ).first()
    return render(
        request,
        "sales/invoice_detail.html",
        {
            "invoice": invoice,
            "lines": invoice.lines.order_by("line_number"),
            "mirror": mirror,
            "attachments": mirror.attachments.all() if mirror else [],
            "credit_notes": invoice.credit_notes.order_by("credit_date", "pk"),
            **paid_order_context(invoice),
        },
    )


def _act(request, service, invoice_id, done: str, **kwargs):
    invoice = get_or_404(visible_scope(SalesInvoice.objects.all(), request), pk=invoice_id)
    outcome = run_service(service, invoice=invoice, actor=request.user, **kwargs)
    if outcome.ok:
        messages.success(request, f"{invoice.external_reference}: {done}.")
    else:
        messages.error(request, f"{invoice.external_reference}: {outcome.message}")
    return redirect("sales:invoice", invoice_id=invoice.pk)


@require_POST
@approver_required
def invoice_release(request, invoice_id):
    return _act(request, invoice_services.sales_invoice_release, invoice_id, "released to AIQ")


@require_POST
@approver_required
def invoice_retry(request, invoice_id):
    return _act(request, invoice_services.sales_invoice_retry, invoice_id, "sent again")


@require_POST
@approver_required
def invoice_cancel(request, invoice_id):
    return _act(request, invoice_services.sales_invoice_cancel, invoice_id, "cancelled")


@require_POST
@approver_required
def batch_approve(request, batch_id):
    batch = get_or_404(SalesBatch.objects.all(), pk=batch_id)
    outcome = run_service(uploads.sales_batch_approve, batch=batch, actor=request.user)
    if outcome.ok:
        messages.success(request, "Batch approved: its invoices are on their way to AIQ.")
    else:
        messages.error(request, outcome.message)
    return redirect("sales:batch", batch_id=batch.pk)


@require_POST
@approver_required
def batch_retry_failed(request, batch_id):
    batch = get_or_404(visible_scope(SalesBatch.objects.all(), request), pk=batch_id)
    outcome = run_service(uploads.sales_batch_retry_failed, batch=batch, actor=request.user)
    if outcome.ok:
        messages.success(
            request,
            f"{outcome.value} refused invoice(s) sent to AIQ again, each checked there first.",
        )
    else:
        messages.error(request, outcome.message)
    return redirect("sales:batch", batch_id=batch.pk)


@require_POST
@approver_required
def batch_cancel(request, batch_id):
    batch = get_or_404(SalesBatch.objects.all(), pk=batch_id)
    outcome = run_service(uploads.sales_batch_cancel, batch=batch, actor=request.user)
    if outcome.ok:
        messages.success(request, "Batch cancelled.")
    else:
        messages.error(request, outcome.message)
    return redirect("sales:batch", batch_id=batch.pk)


@clerk_required
def deferred_list(request):
    today = timezone.localdate()
    schedules = list(
        company_scope(DeferredRevenueSchedule.objects.all(), request)
        .select_related("invoice", "line", "entity")
        .prefetch_related("releases")
        .order_by("-start_date", "-pk")[:SCHEDULES_SHOWN]
    )
    for schedule in schedules:
        schedule.figures = deferred.schedule_figures(schedule, today)
    return render(
        request,
        "sales/deferred.html",
        {"schedules": schedules, "today": today, "shown": SCHEDULES_SHOWN},
    )


@clerk_required
def deferred_detail(request, schedule_id):
    schedule = get_or_404(
        visible_scope(DeferredRevenueSchedule.objects.all(), request).select_related(
            "invoice", "line", "entity"
        ),
        pk=schedule_id,
    )
    today = timezone.localdate()
    return render(
        request,
        "sales/deferred_detail.html",
        {
            "schedule": schedule,
            "figures": deferred.schedule_figures(schedule, today),
            "releases": schedule.releases.select_related("command").order_by("release_date", "pk"),
            "today": today,
        },
    )


@require_POST
@approver_required
def deferred_release_retry(request, release_id):
    release = get_or_404(
        visible_scope(DeferredRelease.objects.all(), request, "schedule__entity_id"),
        pk=release_id,
    )
    outcome = run_service(deferred.deferred_release_retry, release=release, actor=request.user)
    if outcome.ok:
        messages.success(request, f"Sent to AIQ again as {outcome.value.external_reference}.")
    else:
        messages.error(request, outcome.message)
    return redirect("sales:deferred_schedule", schedule_id=release.schedule_id)
