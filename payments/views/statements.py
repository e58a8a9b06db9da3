"""Statement upload: a clerk uploads a bank / SmartDebit file, reads the preview, confirms.

The logic is payments/services/statements.py; this module only carries the file between the
two steps. The preview holds the uploaded bytes on the server, under the var dir, named by
the ImportBatch it created; the confirm form posts only that batch's id, never a path or the
bytes. statement_import checks the bytes' sha256 against the batch, so a held copy that was
changed or swapped is refused. Held copies go once imported, and any left from previews
nobody confirmed go after HOLD_SECONDS.
"""

import os
import time
from pathlib import Path
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from payments.models import ImportBatch
from payments.services.payments import PaymentsNotConfigured
from payments.services.statements import (
    PARTIAL_FILE_RULE,
    StatementError,
    StatementUploadForm,
    statement_import,
    statement_preview,
)
from staff.views import clerk_required, run_service

HOLD_SECONDS = 24 * 60 * 60
PREVIEW_ROWS = 200  # rows listed on the preview; the counts cover the whole file


class ConfirmForm(forms.Form):
    batch = forms.IntegerField(min_value=1)
    # Only for the inbox link afterwards (which payments to show), never for the import.
    received_from = forms.DateField(required=False)
    received_to = forms.DateField(required=False)


def _held_dir() -> Path:
    return Path(settings.VAR_DIR) / "statement-uploads"


def _held_path(batch_id: int) -> Path:
    return _held_dir() / f"{int(batch_id)}.upload"


def _hold(batch_id: int, content: bytes) -> None:
    directory = _held_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(_held_path(batch_id), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)


def _drop_stale_holds() -> None:
    directory = _held_dir()
    if not directory.is_dir():
        return
    cutoff = time.time() - HOLD_SECONDS
    for held in directory.glob("*.upload"):
        try:
            if held.stat().st_mtime < cutoff:
                held.unlink()
        except FileNotFoundError:  # another request dropped it first
            continue


@clerk_required
def statement_upload(request):
    """GET: the upload form. POST: preview the file (nothing imported yet)."""
    form = StatementUploadForm(request.POST or None, request.FILES or None)
    preview = None
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        content = upload.read()
        _drop_stale_holds()
        preview = statement_preview(
            user=request.user,
            import_format=form.cleaned_data["import_format"],
            filename=upload.name,
            content=content,
        )
        if preview.ok:
            _hold(preview.batch.pk, content)
    context = {"form": form, "preview": preview, "rule": PARTIAL_FILE_RULE}
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
    status = 400 if request.method == "POST" and (form.errors or not preview.ok) else 200
    return render(request, "payments/statement_upload.html", context, status=status)


@require_POST
@clerk_required
def statement_confirm(request):
    """Import the file the same user previewed, from the copy the preview held."""
    form = ConfirmForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Upload the file and preview it first.")
        return redirect("payments:statement_upload")
    batch = (
        ImportBatch.objects.filter(pk=form.cleaned_data["batch"], uploaded_by=request.user)
        .select_related("import_format")
        .first()
    )
    held = _held_path(form.cleaned_data["batch"])
    if batch is None or not held.is_file():
        messages.error(
            request, "That preview is no longer available (or not yours); upload the file again."
        )
        return redirect("payments:statement_upload")
    outcome = run_service(
        statement_import,
        refusals=(StatementError, PaymentsNotConfigured),
        user=request.user,
        batch=batch,
        content=held.read_bytes(),
    )
    if not outcome.ok:
        messages.error(request, f"Nothing imported: {outcome.message}")
        return redirect("payments:statement_upload")
    held.unlink(missing_ok=True)  # imported: the copy is no longer needed
    imported = outcome.value
    messages.success(
        request,
        f"Imported {imported.filename}: {imported.imported_count} payment(s), "
        f"{imported.duplicate_count} duplicate(s) skipped (batch {imported.pk}).",
    )
    return redirect(_inbox_link(imported, form.cleaned_data))


def _inbox_link(batch: ImportBatch, cleaned: dict) -> str:
    """The inbox showing this file's payments: its source and date range, every state."""
    query = {"tab": "all", "source": batch.import_format.source}
    if cleaned.get("received_from") and cleaned.get("received_to"):
        query["received_from"] = cleaned["received_from"].isoformat()
        query["received_to"] = cleaned["received_to"].isoformat()
    return reverse("payments:inbox") + "?" + urlencode(query)
