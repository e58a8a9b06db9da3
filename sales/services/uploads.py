"""Invoice uploads: preview (every row error named, what is new, what is there already), then
import. A file with any error imports nothing; the same file cannot be imported twice for a
source (sha256, a database constraint); an invoice already known (another file, the API) is
linked to, not sent again. Above the entity's batch total, an approver approves the batch.
"""

import hashlib
from dataclasses import dataclass, field
from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.money import format_money
from ledger.models import Entity
from sales.models import InvoiceSource, SalesBatch, SalesInvoice
from sales.services.invoices import (
    _require_approver,
    _require_clerk,
    content_hash,
    sales_invoices_queue,
    sales_invoices_retry,
    sales_invoices_submit,
    settings_for,
)
from sales.services.paid_orders import paid_order_problems
from sales.upload import ParsedFile, parse_invoices
from staff.services import audit_log

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
PARTIAL_FILE_RULE = (
    "A file with any invalid row is rejected as a whole, with every row error listed; nothing "
    "from it is imported until it is fixed and uploaded again."
)


@dataclass
class UploadPreview:
    source: InvoiceSource
    filename: str
    sha256: str
    parsed: ParsedFile
    earlier: SalesBatch | None = None  # the same file, imported before
    known: list[str] = field(default_factory=list)  # references we already have (same content)
    changed: list[str] = field(default_factory=list)  # references we have with other content
    gross_total: Decimal = Decimal(0)
    needs_approval: bool = False

    @property
    def errors(self) -> list[str]:
        errors = list(self.parsed.errors)
        if self.earlier is not None:
            errors.insert(
                0,
                f"This file was imported already on {self.earlier.created_at:%d/%m/%Y %H:%M} "
                f"({self.earlier.invoice_count} invoices): it is not imported twice.",
            )
        return errors

    @property
    def ok(self) -> bool:
        return not self.errors


def sales_upload_preview(
    *, source: InvoiceSource, filename: str, content: bytes, actor=None
) -> UploadPreview:
    _require_clerk(actor)
    digest = hashlib.sha256(content).hexdigest()
    if len(content) > MAX_UPLOAD_BYTES:
        parsed = ParsedFile(errors=[f"the file is larger than {MAX_UPLOAD_BYTES // 2**20} MB"])
    else:
        bank = source.entity.default_bank_account
        parsed = parse_invoices(
            content,
            filename,
            column_map=source.column_map,
            date_format=source.date_format,
            default_bank=bank.bank_account_code if bank else "",
        )
    parsed.errors += paid_order_problems(source.entity_id, parsed.invoices)
    preview = UploadPreview(source=source, filename=filename, sha256=digest, parsed=parsed)
    preview.earlier = SalesBatch.objects.filter(source=source, sha256=digest).first()
    hashes = dict(
        SalesInvoice.objects.filter(
            entity=source.entity,
            external_reference__in=[i.external_reference for i in parsed.invoices],
        ).values_list("external_reference", "content_hash")
    )
    for invoice in parsed.invoices:
        if invoice.external_reference in hashes:
            if hashes[invoice.external_reference] == content_hash(invoice):
                preview.known.append(invoice.external_reference)
            else:
                preview.changed.append(invoice.external_reference)
        else:
            preview.gross_total += invoice.gross_amount
    preview.needs_approval = preview.gross_total > settings_for(source.entity).batch_approval_total
    return preview


def sales_upload_import(
    *, source: InvoiceSource, filename: str, content: bytes, actor
) -> SalesBatch:
    """Import a previewed file: ValidationError (every error) and nothing stored when it has
    any; the batch (awaiting approval above the entity's total) otherwise."""
    preview = sales_upload_preview(source=source, filename=filename, content=content, actor=actor)
    if not preview.ok:
        raise ValidationError(preview.errors)
    entity: Entity = source.entity
    new = [i for i in preview.parsed.invoices if i.external_reference not in preview.known]
    try:
        with transaction.atomic():
            batch = SalesBatch.objects.create(
                entity=entity,
                source=source,
                filename=filename[:255],
                sha256=preview.sha256,
                content=content,
                state=(
                    SalesBatch.State.AWAITING_APPROVAL
                    if preview.needs_approval
                    else SalesBatch.State.QUEUED
                ),
                invoice_count=len(new),
                gross_total=preview.gross_total,
                created_by=actor,
            )
            audit_log(
                actor=actor,
                action="sales_batch.import",
                obj=batch,
                summary=f"{filename}: {len(new)} invoice(s), {preview.gross_total} gross, "
                f"{len(preview.known)} already known; {batch.get_state_display()}",
                after={"state": batch.state, "invoices": len(new)},
            )
            sales_invoices_submit(
                entity=entity, source=source, invoices=new, actor=actor, batch=batch
            )
    except IntegrityError:
        raise ValidationError(
            f"{filename} was imported already: it is not imported twice."
        ) from None
    return batch


def sales_batch_approve(*, batch: SalesBatch, actor) -> SalesBatch:
    """A second person approves a batch above the entity's total: its waiting invoices go."""
    with transaction.atomic():
        batch = SalesBatch.objects.select_for_update().get(pk=batch.pk)
        _require_approver(actor, batch.created_by_id)
        if batch.state != SalesBatch.State.AWAITING_APPROVAL:
            raise ValidationError(f"The batch is {batch.get_state_display().lower()}.")
        batch.state = SalesBatch.State.QUEUED
        batch.approved_by = actor
        batch.approved_at = timezone.now()
        batch.save(update_fields=["state", "approved_by", "approved_at"])
        rows = list(batch.invoices.filter(state=SalesInvoice.State.AWAITING_BATCH))
        audit_log(
            actor=actor,
            action="sales_batch.approve",
            obj=batch,
            summary=f"{batch.filename}: approved {len(rows)} invoice(s), {batch.gross_total} gross",
            before={"state": SalesBatch.State.AWAITING_APPROVAL},
            after={"state": batch.state},
        )
        for row in rows:
            row.state = SalesInvoice.State.QUEUED
        sales_invoices_queue(rows, None, actor)
    return batch


def sales_batch_retry_failed(*, batch: SalesBatch, actor) -> int:
    """An approver sends every invoice of the batch that AIQ refused again (each after its
    duplicate check, as a single retry does); the same rule as approving the batch: not the
    person who imported it. How many went; a second click finds none left (ValidationError)."""
    with transaction.atomic():
        batch = SalesBatch.objects.select_for_update().get(pk=batch.pk)
        _require_approver(actor, batch.created_by_id)
        rows = list(
            batch.invoices.select_for_update()
            .select_related("entity")
            .filter(state=SalesInvoice.State.FAILED)
            .order_by("pk")
        )
        if not rows:
            raise ValidationError("No invoice of this batch is refused by AIQ: nothing to retry.")
        gross: dict[str, Decimal] = {}
        for row in rows:
            gross[row.currency] = gross.get(row.currency, Decimal(0)) + row.gross_amount
        sales_invoices_retry(rows, actor)
        audit_log(
            actor=actor,
            action="sales_batch.retry_failed",
            obj=batch,
            summary=f"{batch.filename}: {len(rows)} refused invoice(s) sent again, "
            + ", ".join(
                format_money(amount, currency) for currency, amount in sorted(gross.items())
            ),
            after={"invoices": [row.external_reference for row in rows][:200]},
        )
    return len(rows)


def sales_batch_cancel(*, batch: SalesBatch, actor) -> SalesBatch:
    with transaction.atomic():
        batch = SalesBatch.objects.select_for_update().get(pk=batch.pk)
        _require_approver(actor, None)
        if batch.state != SalesBatch.State.AWAITING_APPROVAL:
            raise PermissionDenied("Only a batch waiting for approval can be cancelled whole.")
        batch.state = SalesBatch.State.CANCELLED
        batch.save(update_fields=["state"])
        count = batch.invoices.exclude(state__in=SalesInvoice.IN_AIQ).update(
            state=SalesInvoice.State.CANCELLED
        )
        audit_log(
            actor=actor,
            action="sales_batch.cancel",
            obj=batch,
            summary=f"{batch.filename}: cancelled, {count} invoice(s)",
            after={"state": batch.state},
        )
    return batch
