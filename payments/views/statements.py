"""Statement upload: a clerk uploads a bank / SmartDebit file, reads the preview, confirms.

The logic is payments/services/statements.py, including keeping the uploaded bytes on the
ImportBatch the preview created (in the database, so the confirm may be served by any web
host) until they are imported or the preview goes stale. The confirm form posts only that
batch's id, never the bytes; statement_import checks the bytes' sha256 against the batch, so
content that was changed is refused.
"""

from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from payments.models import ImportBatch
from payments.selectors import layouts_described
from payments.services.payments import PaymentsNotConfigured
from payments.services.statements import (
    PARTIAL_FILE_RULE,
    StatementError,
    StatementUploadForm,
    statement_import,
    statement_preview,
    statement_previews_forget_stale,
)
from payments.sources.bank_files import SUPPORTED_FORMATS
from staff.company_scope import company_ids
from staff.views import clerk_required, run_service

PREVIEW_ROWS = 200  # rows listed on the preview; the counts cover the whole file


class ConfirmForm(forms.Form):
    batch = forms.IntegerField(min_value=1)
    # Only for the inbox link afterwards (which payments to show), never for the import.
    received_from = forms.DateField(required=False)
    received_to = forms.DateField(required=False)


@clerk_required
def statement_upload(request):
    """GET: the upload form. POST: preview the file (nothing imported yet)."""
    posted = request.method == "POST"
    form = StatementUploadForm(
        request.POST if posted else None,
        request.FILES or None,
        company_ids=company_ids(request),  # the companies on screen: their accounts, layouts
    )
    preview = None
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        content = upload.read()
        statement_previews_forget_stale()
        preview = statement_preview(
            user=request.user,
            import_format=form.cleaned_data.get("import_format"),
            statement_account=form.cleaned_data.get("statement_account"),
            filename=upload.name,
            content=content,
        )
    context = {
        "form": form,
        "preview": preview,
        "rule": PARTIAL_FILE_RULE,
        "supported_formats": SUPPORTED_FORMATS,
        "layouts": layouts_described(company_ids(request)),
    }
    if preview and preview.ok:
        # the inbox filters on the local date, so the link's range is in local dates too
        dates = [timezone.localdate(item.received_at) for item in preview.new_items]
        context.update(
            shown_items=preview.new_items[:PREVIEW_ROWS],
            received_from=min(dates, default=None),
            received_to=max(dates, default=None),
        )
    elif preview and preview.parsed:
        context["row_errors"] = preview.parsed.errors
    status = 400 if posted and (form.errors or not (preview and preview.ok)) else 200
    return render(request, "payments/statement_upload.html", context, status=status)


@require_POST
@clerk_required
def statement_confirm(request):
    """Import the file the same user previewed, from the bytes kept on its batch."""
    form = ConfirmForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Upload the file and preview it first.")
        return redirect("payments:statement_upload")
    batch = (
        ImportBatch.objects.filter(pk=form.cleaned_data["batch"], uploaded_by=request.user)
        .select_related("import_format")
        .first()
    )
    if batch is None or not batch.content:
        messages.error(
            request, "That preview is no longer available (or not yours); upload the file again."
        )
        return redirect("payments:statement_upload")
    outcome = run_service(
        statement_import,
        refusals=(StatementError, PaymentsNotConfigured),
        user=request.user,
        batch=batch,
        content=bytes(batch.content),
    )
    if not outcome.ok:
        messages.error(request, f"Nothing imported: {outcome.message}")
        return redirect("payments:statement_upload")
    imported = outcome.value
    messages.success(
        request,
        f"Imported {imported.filename}: {imported.imported_count} payment(s), "
        f"{imported.duplicate_count} duplicate(s) skipped (batch {imported.pk}).",
    )
    return redirect(_inbox_link(imported, form.cleaned_data))


def _inbox_link(batch: ImportBatch, cleaned: dict) -> str:
    """The inbox showing this file's payments: its source and date range, every state."""
    source = batch.import_format.source if batch.import_format else "bank"
    query = {"tab": "all", "source": source}
    if cleaned.get("received_from") and cleaned.get("received_to"):
        query["received_from"] = cleaned["received_from"].isoformat()
        query["received_to"] = cleaned["received_to"].isoformat()
    return reverse("payments:inbox") + "?" + urlencode(query)
