"""Credit notes from the selling system (a cancelled order, a Stripe credit note, a voided
invoice): posted in AIQ once and allocated to the invoice they credit.

    sales_credit_note_submit(entity=..., source=..., note=NormalisedCreditNote, actor=...)

The chain is the one refunds use: create_credit_note (GetNewSalesCreditNote ->
SaveCreditNoteGetBackCreditNoteID -> PostCreditNotesGetBackTransactionIDs, looked up by
external reference first: never saved twice) then allocate (the note against the invoice's
transaction; the note's transaction id comes from its command's result).

Exactly once: one SalesCreditNote per (entity, source reference), a repeat returns it; the
outbox commands are idempotent on the same reference. Never more than the invoice: the credit
notes of an invoice add up to at most its gross (checked under the invoice's row lock). A note
for an invoice not in AIQ yet waits, and is queued when the invoice is posted or linked
(sales_credit_notes_release, from the invoice's verdict).
"""

from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Sum

from ledger.departments import department_problems
from ledger.models import Entity, OutboxCommand
from ledger.outbox.services import (
    CANCELLABLE,
    RETRYABLE,
    NewCommand,
    outbox_cancel,
    outbox_enqueue_many,
    outbox_retry,
)
from sales.models import InvoiceSource, SalesCreditNote, SalesInvoice
from sales.normalised import NormalisedCreditNote
from sales.services.deferred import deferred_credits_apply
from staff.models import Role
from staff.services import audit_log, user_has_role

C = OutboxCommand.State

State = SalesCreditNote.State
ORIGIN = "sales_credit_note"
# credits nothing (a corrected one may follow): refused by AIQ, or dropped by an approver
NOT_CREDITING = (State.FAILED, State.CANCELLED)
# the invoice is gone for good: nothing to credit in AIQ
NOT_IN_AIQ = (
    SalesInvoice.State.CANCELLED,
    SalesInvoice.State.REFUSED,
    SalesInvoice.State.FAILED,
)


def sales_credit_note_submit(
    *,
    entity: Entity,
    source: InvoiceSource,
    note: NormalisedCreditNote,
    actor=None,
    refunds: list[str] | None = None,
) -> SalesCreditNote:
    """Store the credit note and queue it (or let it wait for its invoice); the same
    reference again returns the row it made. ValidationError naming what is wrong.
    `refunds`: the source paid it back through these refunds of the customer's payment: the
    refund books it in AIQ (payments' refunds, credit note and money out), so it is stored
    as refunded and sent nowhere (one credit, not two)."""
    existing = SalesCreditNote.objects.filter(
        entity=entity, external_reference=note.external_reference
    ).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            return _submit(entity, source, note, actor, refunds or [])
    except IntegrityError:  # the same note, stored meanwhile by a concurrent delivery
        return SalesCreditNote.objects.get(
            entity=entity, external_reference=note.external_reference
        )


def _submit(entity, source, note: NormalisedCreditNote, actor, refunds) -> SalesCreditNote:
    invoice = (
        SalesInvoice.objects.select_for_update()
        .filter(entity=entity, external_reference=note.invoice_reference)
        .first()
    )
    if invoice is None:
        raise ValidationError(
            f"Credit note {note.external_reference}: no invoice {note.invoice_reference} "
            "came from the selling system."
        )
    problems = note.check(invoice.currency)
    if invoice.state in NOT_IN_AIQ:
        problems.append(
            f"invoice {invoice.external_reference} is not in AIQ "
            f"({invoice.get_state_display().lower()}): there is nothing to credit"
        )
    credited = credited_total(invoice)
    gross = note.net_amount + note.tax_amount
    if not problems and credited + gross > invoice.gross_amount:
        problems.append(
            f"{credited} {invoice.currency} of invoice {invoice.external_reference} "
            f"({invoice.gross_amount}) is credited already: {gross} more is too much"
        )
    credited_lines = _credited_lines(invoice, note)
    refused = department_problems(entity, {line.department for line in credited_lines})
    problems += [
        f"line {number}: {refused[line.department]}"
        for number, line in enumerate(credited_lines, start=1)
        if line.department in refused
    ]
    if problems:
        raise ValidationError([f"Credit note {note.external_reference}: {p}" for p in problems])
    row = SalesCreditNote.objects.create(
        entity=entity,
        source=source,
        invoice=invoice,
        external_reference=note.external_reference,
        credit_date=note.credit_date,
        reason=note.reason[:300],
        currency=invoice.currency,
        net_amount=note.net_amount,
        tax_amount=note.tax_amount,
        gross_amount=gross,
        lines=[
            {
                "description": line.description[:250],
                "tax_code": line.tax_code,
                "net_amount": str(line.net_amount),
                "tax_amount": str(line.tax_amount),
                # a deferred invoice line was posted to the deferred revenue account: its
                # credit goes there too (sales/services/deferred.py says what happens next)
                "gl_account_code": (
                    credited.deferred_gl_account_code
                    if credited and credited.deferred_months
                    else ""
                )
                or line.gl_account_code
                or source.default_gl_account_code,
                "department_id": line.department,
                "invoice_line_id": credited.pk if credited else None,
            }
            for line, credited in zip(credited_lines, _invoice_lines_of(invoice, note), strict=True)
        ],
        created_by=actor,
        refund_references=", ".join(refunds)[:200],
        state=State.REFUNDED if refunds else State.WAITING,
    )
    if invoice.state in SalesInvoice.IN_AIQ and not refunds:
        _queue(row, invoice, actor)
    audit_log(
        actor=actor,
        action="sales_credit_note.submit",
        obj=row,
        summary=f"{row.external_reference} against {invoice.external_reference} from "
        f"{source.code}: {gross} {row.currency}, {row.get_state_display()}"
        + (f" ({row.refund_references})" if refunds else ""),
        after={
            "state": row.state,
            "gross": str(gross),
            "invoice": invoice.external_reference,
            "refunds": refunds,
        },
    )
    return row


def credited_total(invoice: SalesInvoice) -> Decimal:
    """What the source's credit notes take off the invoice: every one but those AIQ refused or
    an approver cancelled (a corrected one may follow them)."""
    notes = invoice.credit_notes.exclude(state__in=NOT_CREDITING)
    return notes.aggregate(total=Sum("gross_amount"))["total"] or Decimal(0)


def invoice_remainder(invoice: SalesInvoice) -> list[tuple]:
    """(invoice line, net, VAT) of each line not credited yet: the invoice's lines less what
    its credit notes credited line by line; a credit no line claims is taken off the last
    lines first. Lines credited in full are left out."""
    lines = list(invoice.lines.order_by("line_number"))
    net = {line.pk: line.net_amount for line in lines}
    tax = {line.pk: line.tax_amount for line in lines}
    loose_net = loose_tax = Decimal(0)
    for note in invoice.credit_notes.exclude(state__in=NOT_CREDITING):
        for credit in note.lines:
            pk = credit.get("invoice_line_id")
            if pk in net:
                net[pk] -= Decimal(credit["net_amount"])
                tax[pk] -= Decimal(credit["tax_amount"])
            else:
                loose_net += Decimal(credit["net_amount"])
                loose_tax += Decimal(credit["tax_amount"])
    for line in reversed(lines):
        take_net, take_tax = (
            min(loose_net, max(net[line.pk], 0)),
            min(loose_tax, max(tax[line.pk], 0)),
        )
        net[line.pk] -= take_net
        tax[line.pk] -= take_tax
        loose_net -= take_net
        loose_tax -= take_tax
    return [
        (line, net[line.pk], tax[line.pk]) for line in lines if net[line.pk] > 0 or tax[line.pk] > 0
    ]


def _invoice_lines_of(invoice: SalesInvoice, note: NormalisedCreditNote) -> list:
    """The invoice line each credit note line credits: the one the note names, else the one
    with its line number (the selling system credits its own invoice line by line), None past
    the invoice's last."""
    lines = {line.line_number: line for line in invoice.lines.all()}
    numbers = note.invoice_line_numbers or range(1, len(note.lines) + 1)
    return [lines.get(number) for number in numbers]


def _credited_lines(invoice: SalesInvoice, note: NormalisedCreditNote) -> list:
    """The credit note's lines, each with its BI code: its own, else the one of the invoice
    line it credits (a credit note reports revenue back where the invoice reported it)."""
    for line, credited in zip(note.lines, _invoice_lines_of(invoice, note), strict=True):
        if not line.department and credited is not None:
            line.department = credited.department
    return note.lines


def _queue(row: SalesCreditNote, invoice: SalesInvoice, actor) -> None:
    """create_credit_note, then allocate it to the invoice (its id from the note's command)."""
    note = NewCommand(
        entity=row.entity,
        kind=OutboxCommand.Kind.CREATE_CREDIT_NOTE,
        external_reference=row.external_reference,
        payload={
            "customer_code": invoice.customer_code,
            "credit_date": row.credit_date.isoformat(),
            "currency": row.currency,
            "invoice_number": invoice.aiq_number or invoice.external_reference,
            "notes": row.reason,
            "gross_amount": str(row.gross_amount),
            "lines": [
                {
                    "description": line["description"],
                    "tax_code": line["tax_code"],
                    "gl_account_code": line["gl_account_code"],
                    "department_id": line.get("department_id", ""),
                    "quantity": "1",
                    "unit_price": line["net_amount"],
                    "net_amount": line["net_amount"],
                    "tax_amount": line["tax_amount"],
                }
                for line in row.lines
            ],
        },
        origin_type=ORIGIN,
        origin_id=row.pk,
        created_by=actor,
    )
    allocate = NewCommand(
        entity=row.entity,
        kind=OutboxCommand.Kind.ALLOCATE,
        external_reference=f"{row.external_reference}-ALLOC"[:100],
        payload={
            "amount": str(row.gross_amount),
            "allocation_date": row.credit_date.isoformat(),
            "paying_transaction_id": None,  # the credit note's, from its command's result
            "settled_transaction_id": invoice.aiq_transaction_id,
            "currency": row.currency,
        },
        depends_on=note,
        origin_type=ORIGIN,
        origin_id=row.pk,
        created_by=actor,
    )
    note_id, allocate_id = outbox_enqueue_many([note, allocate])
    row.command_id, row.allocate_command_id = note_id, allocate_id
    row.state = State.QUEUED
    row.save(update_fields=["command", "allocate_command", "state", "updated_at"])


def sales_credit_notes_release(invoices: list[SalesInvoice]) -> None:
    """The invoices are in AIQ now: their waiting credit notes are queued (inside the
    invoices' verdict transaction)."""
    by_pk = {row.pk: row for row in invoices}
    waiting = SalesCreditNote.objects.select_for_update().filter(
        invoice_id__in=list(by_pk), state=State.WAITING
    )
    for row in waiting:
        _queue(row, by_pk[row.invoice_id], None)
        audit_log(
            actor=None,
            action="sales_credit_note.release",
            obj=row,
            summary=f"{row.external_reference}: its invoice is in AIQ, queued",
            after={"state": row.state},
        )


# --- verdicts from the outbox (origin "sales_credit_note") ------------------------------------


def sales_credit_note_settle(
    *, command: OutboxCommand, payload: dict | None = None, failed_message: str = ""
) -> None:
    row = SalesCreditNote.objects.select_for_update().filter(pk=command.origin_id).first()
    if row is None or row.state in (State.POSTED, State.FAILED, State.CANCELLED):
        return
    if failed_message:
        row.state, row.error = State.FAILED, failed_message
        row.save(update_fields=["state", "error", "updated_at"])
    elif command.kind == OutboxCommand.Kind.CREATE_CREDIT_NOTE:
        row.aiq_transaction_id = int(command.result["transaction_id"])
        row.save(update_fields=["aiq_transaction_id", "updated_at"])
        credited: dict[int, Decimal] = {}
        for line in row.lines:
            if line.get("invoice_line_id"):
                pk = line["invoice_line_id"]
                credited[pk] = credited.get(pk, Decimal(0)) + Decimal(line["net_amount"])
        deferred_credits_apply(
            credited, key=f"S{row.pk}", credit_date=row.credit_date, label=row.external_reference
        )
        return  # posted; allocated when the allocation is confirmed
    else:
        row.state = State.POSTED
        # the allocation's paying side is the note (filled from the note's command)
        row.aiq_transaction_id = row.aiq_transaction_id or int(
            (payload or {}).get("paying_transaction_id") or 0
        )
        row.save(update_fields=["state", "aiq_transaction_id", "updated_at"])
    audit_log(
        actor=None,
        action=f"sales_credit_note.{row.state}",
        obj=row,
        summary=f"{row.external_reference}: {row.get_state_display()}"
        + (f", transaction {row.aiq_transaction_id}" if row.aiq_transaction_id else "")
        + (f" ({failed_message})" if failed_message else ""),
        after={"state": row.state, "transaction_id": row.aiq_transaction_id},
    )


# --- an approver's retry or cancel -------------------------------------------------------------


def _commands(row: SalesCreditNote) -> list[OutboxCommand]:
    """The note's commands, the credit note's first, then its allocation's."""
    ids = [pk for pk in (row.command_id, row.allocate_command_id) if pk]
    by_pk = OutboxCommand.objects.select_for_update().in_bulk(ids)
    return [by_pk[pk] for pk in ids]


def sales_credit_note_retry(*, note: SalesCreditNote, actor) -> SalesCreditNote:
    """An approver sends a credit note AIQ refused again: each of its commands not confirmed
    yet is retried (the outbox reads back first: never a second credit note in AIQ)."""
    if not user_has_role(actor, Role.APPROVER):
        raise PermissionDenied("Only an approver can send a credit note again.")
    with transaction.atomic():
        row = SalesCreditNote.objects.select_for_update().get(pk=note.pk)
        if row.state != State.FAILED:
            raise ValidationError(f"{row.external_reference} was not refused by AIQ.")
        retried = [
            outbox_retry(command=command, actor=actor)
            for command in _commands(row)
            if command.state in RETRYABLE
        ]
        if not retried:
            raise ValidationError(
                f"{row.external_reference}: none of its AIQ commands can be sent again."
            )
        before, row.state, row.error = row.error, State.QUEUED, ""
        row.save(update_fields=["state", "error", "updated_at"])
        audit_log(
            actor=actor,
            action="sales_credit_note.retry",
            obj=row,
            summary=f"{row.external_reference} sent again after: {before}"[:500],
            before={"state": State.FAILED},
            after={"state": row.state, "commands": [c.external_reference for c in retried]},
        )
    return row


def sales_credit_note_cancel(*, note: SalesCreditNote, actor) -> SalesCreditNote:
    """An approver drops a credit note AIQ does not have: refused, or waiting for an invoice
    that will not come. One whose credit note AIQ took (only its allocation failed) is not
    cancelled here: it is in the books."""
    if not user_has_role(actor, Role.APPROVER):
        raise PermissionDenied("Only an approver can cancel a credit note.")
    with transaction.atomic():
        row = SalesCreditNote.objects.select_for_update().get(pk=note.pk)
        if row.state not in (State.FAILED, State.WAITING):
            raise ValidationError(
                f"{row.external_reference} is {row.get_state_display().lower()}: "
                "only a refused or waiting credit note can be cancelled."
            )
        commands = _commands(row)
        if row.aiq_transaction_id or any(
            c.kind == OutboxCommand.Kind.CREATE_CREDIT_NOTE and c.state == C.CONFIRMED
            for c in commands
        ):
            raise ValidationError(
                f"AIQ has credit note {row.external_reference}: allocate it in AIQ or send it "
                "again; it cannot be cancelled here."
            )
        before = row.state
        for command in commands:
            if command.state in CANCELLABLE:
                outbox_cancel(command=command, actor=actor, reason="credit note cancelled")
        row.state = State.CANCELLED
        row.save(update_fields=["state", "updated_at"])
        audit_log(
            actor=actor,
            action="sales_credit_note.cancel",
            obj=row,
            summary=f"{row.external_reference} cancelled ({row.gross_amount} {row.currency})",
            before={"state": before},
            after={"state": row.state},
        )
    return row
