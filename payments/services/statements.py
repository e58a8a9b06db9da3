"""Statement files (bank CSV/Excel, SmartDebit reports): preview, then import.

Partial-file rule: a file with any invalid row is rejected as a whole and every row error is
listed, so a statement is never half in the app; fix the file (or the format) and upload again.
Duplicates across uploads: the same file (sha256) cannot be imported twice, and each row's
external id (the bank's id, or a hash of its date, amount, reference and content) makes rows
already imported from an overlapping statement count as duplicates, not new payments.

Between preview and import the file is kept on its ImportBatch (in the database, so the
import may be confirmed from any web host): statement_preview stores it, statement_import
empties it, and statement_previews_forget_stale empties those of previews nobody confirmed.
"""

import hashlib
from dataclasses import dataclass, field
from datetime import timedelta

from django import forms
from django.db import transaction
from django.utils import timezone

from payments.models import ImportBatch, ImportFormat, Payment
from payments.services.auto_match import auto_match_soon
from payments.services.payments import payments_upsert
from payments.sources.bank_csv import (
    MAX_BYTES,
    ParsedStatement,
    StatementError,
    parse_statement,
    read_table,
)
from staff.services import audit_log

PARTIAL_FILE_RULE = (
    "A file with any invalid row is rejected as a whole, with every row error listed; "
    "nothing from it is imported until the file is fixed and uploaded again."
)
STALE_PREVIEW = timedelta(days=1)


@dataclass
class Preview:
    batch: ImportBatch
    parsed: ParsedStatement | None
    new_items: list = field(default_factory=list)
    duplicate_ids: set = field(default_factory=set)
    file_error: str = ""

    @property
    def ok(self) -> bool:
        return not self.file_error and self.parsed is not None and not self.parsed.errors


def _parse(import_format: ImportFormat, filename: str, content: bytes) -> ParsedStatement:
    return parse_statement(
        read_table(content, filename),
        source=import_format.source,
        column_map=import_format.column_map,
        date_format=import_format.date_format,
        decimal_comma=import_format.decimal_comma,
        currency=import_format.currency or "GBP",
    )


def statement_preview(*, user, import_format: ImportFormat, filename: str, content: bytes):
    """Read and check a file; nothing is imported. Records the attempt as an ImportBatch.

    A file without errors is kept on the batch, created with it, so a previewed batch never
    exists without the bytes to confirm it; a rejected file can never be imported, so it is
    not kept.
    """
    sha256 = hashlib.sha256(content).hexdigest()
    parsed, file_error = None, ""
    earlier = ImportBatch.objects.filter(sha256=sha256, state=ImportBatch.State.IMPORTED).first()
    if earlier:
        file_error = (
            f"This file was already imported on {earlier.created_at:%d/%m/%Y %H:%M} "
            f"(batch {earlier.pk})."
        )
    else:
        try:
            parsed = _parse(import_format, filename, content)
        except StatementError as error:
            file_error = str(error)
    new_items, duplicates = [], set()
    if parsed:
        ids = [i.external_id for i in parsed.items]
        for start in range(0, len(ids), 500):
            duplicates.update(
                Payment.objects.filter(
                    source=import_format.source, external_id__in=ids[start : start + 500]
                ).values_list("external_id", flat=True)
            )
        new_items = [i for i in parsed.items if i.external_id not in duplicates]
    errors = (
        [{"row": 0, "field": "file", "message": file_error}]
        if file_error
        else [e.as_dict() for e in parsed.errors]
    )
    with transaction.atomic():
        batch = ImportBatch.objects.create(
            import_format=import_format,
            filename=filename[:255],
            sha256=sha256,
            uploaded_by=user,
            state=ImportBatch.State.REJECTED if errors else ImportBatch.State.PREVIEWED,
            row_count=parsed.row_count if parsed else 0,
            duplicate_count=len(duplicates),
            errors=errors[:1000],
            content=b"" if errors else content,
        )
        audit_log(
            actor=user,
            action="statement.preview",
            obj=batch,
            summary=f"{filename}: {len(new_items)} new, {len(duplicates)} duplicate, "
            f"{len(errors)} error(s)",
        )
    return Preview(
        batch=batch,
        parsed=parsed,
        new_items=new_items,
        duplicate_ids=duplicates,
        file_error=file_error,
    )


def statement_import(*, user, batch: ImportBatch, content: bytes) -> ImportBatch:
    """Import a previewed file (the same bytes). All rows or none.

    The bytes kept on the batch are emptied in the transaction that stores the payments from
    them, so the table does not keep the file once it is imported.
    """
    if hashlib.sha256(content).hexdigest() != batch.sha256:
        raise StatementError("This is not the file that was previewed; preview it again.")
    if batch.state != ImportBatch.State.PREVIEWED:
        raise StatementError(
            f"Batch {batch.pk} is {batch.get_state_display().lower()}; "
            "only a previewed file without errors can be imported."
        )
    parsed = _parse(batch.import_format, batch.filename, content)
    if parsed.errors:
        raise StatementError(PARTIAL_FILE_RULE)
    with transaction.atomic():
        # the caller already holds the bytes; the lock need not read them again
        locked = ImportBatch.objects.select_for_update().defer("content").get(pk=batch.pk)
        if locked.state != ImportBatch.State.PREVIEWED:
            raise StatementError(f"Batch {batch.pk} was imported meanwhile.")
        if ImportBatch.objects.filter(sha256=batch.sha256, state="imported").exists():
            raise StatementError("This file was already imported.")
        result = payments_upsert(items=_only_new(parsed), origin="statement.import", actor=user)
        auto_match_soon(payment_ids=list(result.ids.values()))
        locked.state = ImportBatch.State.IMPORTED
        locked.imported_count = result.created
        locked.duplicate_count = len(parsed.items) - result.created
        locked.content = b""
        locked.save(update_fields=["state", "imported_count", "duplicate_count", "content"])
        audit_log(
            actor=user,
            action="statement.import",
            obj=locked,
            summary=f"{locked.filename}: {result.created} payment(s) imported, "
            f"{locked.duplicate_count} duplicate(s) skipped",
        )
    return locked


def statement_previews_forget_stale() -> None:
    """Empty the content of previews nobody confirmed within STALE_PREVIEW.

    Called on each upload rather than by a schedule: uploads are what add content, so the
    table stays bounded by one day of previews without another periodic task to deploy.
    The batch itself stays as the record of the attempt; its confirm asks for a new upload.
    """
    ImportBatch.objects.filter(
        state=ImportBatch.State.PREVIEWED, created_at__lt=timezone.now() - STALE_PREVIEW
    ).exclude(content=b"").update(content=b"")


def _only_new(parsed: ParsedStatement):
    """Rows already imported (overlapping statements) are left exactly as they are."""
    ids = [i.external_id for i in parsed.items]
    source = parsed.items[0].source if parsed.items else ""
    existing = set()
    for start in range(0, len(ids), 500):
        existing.update(
            Payment.objects.filter(
                source=source, external_id__in=ids[start : start + 500]
            ).values_list("external_id", flat=True)
        )
    return [i for i in parsed.items if i.external_id not in existing]


class StatementUploadForm(forms.Form):
    """For the staff UI: choose the format, upload the file, then show statement_preview."""

    import_format = forms.ModelChoiceField(
        queryset=ImportFormat.objects.order_by("name"), label="Bank / format"
    )
    file = forms.FileField(help_text="CSV or Excel (.xlsx). " + PARTIAL_FILE_RULE)

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_BYTES:
            raise forms.ValidationError("The file is larger than 20 MB.")
        if not upload.name.lower().endswith((".csv", ".txt", ".xlsx", ".xlsm")):
            raise forms.ValidationError("Upload a .csv or .xlsx file.")
        return upload
