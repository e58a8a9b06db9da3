"""Documents services: attach a CSV/Excel breakdown to an invoice in AIQ (AttachDocument).

The upload is checked here (the form checks too, but other callers reach the service directly),
stored in ledger.Attachment, and an `attach_document` outbox command is queued in the same
transaction; the worker sends it (ledger/outbox/executors_documents.py).
"""

import hashlib
from pathlib import PurePath

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from ledger.aiq.client import AiqClient
from ledger.aiq.errors import AiqPermanentError
from ledger.models import MAX_ATTACHMENT_BYTES, Attachment, Document, Invoice, OutboxCommand
from ledger.outbox.services import outbox_enqueue
from staff.models import Role
from staff.services import audit_log, user_has_role

# Filename suffix -> kind, and the first bytes a real file of that kind starts with.
SUFFIXES = {".csv": Attachment.Kind.CSV, ".xlsx": Attachment.Kind.XLSX}
XLSX_MAGIC = b"PK\x03\x04"  # an .xlsx is a zip archive


def _read(upload) -> bytes:
    """The whole upload, refusing to read more than the limit (a lying .size cannot fill RAM)."""
    if hasattr(upload, "seek"):
        upload.seek(0)
    data = upload.read(MAX_ATTACHMENT_BYTES + 1)
    if isinstance(data, str):
        data = data.encode()
    return data


def _clean_name(name: str) -> str:
    # browsers may send a path; control characters and quotes have no place in a file name
    base = PurePath(str(name).replace("\\", "/")).name
    cleaned = "".join(c for c in base if c.isprintable() and c not in '"<>|:*?/').strip()
    return cleaned[:150]


def attachment_check(*, filename: str, content: bytes) -> str:
    """The attachment kind, or a ValidationError naming what is wrong with the file."""
    suffix = PurePath(filename.lower()).suffix
    kind = SUFFIXES.get(suffix)
    if kind is None:
        raise ValidationError({"file": "Attach a .csv or .xlsx file."})
    if not content:
        raise ValidationError({"file": "The file is empty."})
    if len(content) > MAX_ATTACHMENT_BYTES:
        raise ValidationError({"file": "The file is larger than 5 MB."})
    if kind == Attachment.Kind.XLSX and not content.startswith(XLSX_MAGIC):
        raise ValidationError({"file": "This is not an Excel (.xlsx) file."})
    if kind == Attachment.Kind.CSV:
        if b"\x00" in content[:4096]:
            raise ValidationError({"file": "This does not look like a CSV text file."})
        try:
            content.decode("utf-8-sig")
        except UnicodeDecodeError:
            try:
                content.decode("cp1252")  # Excel's "CSV" on Windows
            except UnicodeDecodeError:
                raise ValidationError(
                    {"file": "This CSV is neither UTF-8 nor Windows text."}
                ) from None
    return kind


def document_attach(
    *,
    invoice: Invoice,
    actor,
    upload=None,
    filename: str = "",
    content: bytes = b"",
    description: str = "",
) -> Attachment:
    """Keep the file and queue it to be attached to the invoice's transaction in AIQ.

    Takes an uploaded file (`upload`), or its name and bytes (as the invoice page sends them).
    """
    if not user_has_role(actor, Role.CLERK):
        raise PermissionDenied("Only staff can attach documents to invoices.")
    if upload is not None:
        filename, content = getattr(upload, "name", "") or "", _read(upload)
    filename = _clean_name(filename or "")
    if not filename:
        raise ValidationError({"file": "The file has no name."})
    content = bytes(content or b"")
    kind = attachment_check(filename=filename, content=content)
    description = (description or "").strip()[:200]
    with transaction.atomic():
        invoice = Invoice.objects.select_related("entity").get(pk=invoice.pk)
        if not invoice.aiq_transaction_id:
            raise ValidationError(
                "This invoice is not posted in AIQ yet, so nothing can be attached to it."
            )
        attachment = Attachment(
            entity=invoice.entity,
            invoice=invoice,
            kind=kind,
            filename=filename,
            description=description,
            content=content,
            size=len(content),
            sha256=hashlib.sha256(content).hexdigest(),
            created_by=actor,
        )
        attachment.full_clean(exclude=["content"])
        attachment.save()
        # The name AIQ stores carries our reference: AIQ's AttachDocument answers without a
        # document id, and its list (GetAttachedDocumentList) gives names, so this is how the
        # worker recognises its own upload after a lost answer.
        path = PurePath(filename)
        attachment.aiq_filename = (
            f"{path.stem[:120]} [{attachment.external_reference}]{path.suffix}"
        )
        attachment.save(update_fields=["aiq_filename"])
        command = outbox_enqueue(
            entity=invoice.entity,
            kind=OutboxCommand.Kind.ATTACH_DOCUMENT,
            external_reference=attachment.external_reference,
            payload={
                "attachment_id": attachment.pk,
                "invoice_id": invoice.pk,
                "transaction_id": invoice.aiq_transaction_id,
                "filename": attachment.aiq_filename,
                "sha256": attachment.sha256,
                "comments": description,
            },
            origin_type="attachment",
            origin_id=attachment.pk,
            created_by=actor,
        )
        audit_log(
            actor=actor,
            action="document.attach",
            obj=invoice,
            summary=f"queued {filename} ({len(content)} bytes) for AIQ as {command.external_reference}",
            after={
                "attachment_id": attachment.pk,
                "filename": filename,
                "size": len(content),
                "sha256": attachment.sha256,
                "outbox_id": command.pk,
            },
        )
    return attachment


def document_pdf(*, entity, kind: str, transaction_id: int, filename: str) -> Document:
    """The PDF of an AIQ transaction: the cached copy, else fetched from AIQ and kept.

    AIQ keeps a credit note as an invoice of Type CreditNote, so the invoice PDF operation takes
    its transaction id too (there is no credit-note PDF operation in 1.1 or 2.0). The cache is a
    copy of what AIQ holds, not a decision, so it is not audited; a concurrent download of the
    same PDF overwrites the same row (unique on entity, kind, transaction).
    """
    cached = Document.objects.filter(
        entity=entity, kind=kind, aiq_transaction_id=transaction_id
    ).first()
    if cached is not None:
        return cached

    client = AiqClient.for_entity(entity)
    if kind in (Document.Kind.INVOICE_PDF, Document.Kind.CREDIT_NOTE_PDF):
        content = client.get_invoice_pdf(transaction_id)
    else:
        content = client.get_sales_receipt_pdf(transaction_id)
    if not content or not bytes(content).startswith(b"%PDF"):
        raise AiqPermanentError("AIQ returned no PDF for this transaction.")
    document, _ = Document.objects.update_or_create(
        entity=entity,
        kind=kind,
        aiq_transaction_id=transaction_id,
        defaults={"filename": filename, "content": bytes(content)},
    )
    return document
