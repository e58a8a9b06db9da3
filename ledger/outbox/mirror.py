"""Mirror updates made in the same transaction that confirms a command; then the handlers of
the row that caused it (ledger/outbox/origins.py: e.g. payments' plans and refunds).

The pull sync leaves rows alone while a command touching them is still open (see
ledger/sync/pull.py), so these local updates are what the staff see until AIQ is read again.
If the mirror disagrees with what we know AIQ did (e.g. a row is missing because it was never
synced), the difference is written in the audit entry and the next sync corrects it; the
confirmation itself never fails for a mirror problem.
"""

import logging
from decimal import Decimal

from django.db.models import Subquery
from django.utils import timezone

from ledger.aiq.results import as_decimal
from ledger.models import (
    Allocation,
    BankAccount,
    CreditNote,
    Customer,
    DocumentStatus,
    Invoice,
    Journal,
    OutboxCommand,
    Receipt,
)
from ledger.outbox.executors import MIRRORS
from ledger.outbox.mirror_refunds import credit_note_mirror_apply, fill_dependents
from ledger.outbox.origins import origin_follow

log = logging.getLogger(__name__)
Kind = OutboxCommand.Kind


def _invoice_status(invoice: Invoice) -> str:
    if invoice.outstanding_amount == 0:
        return DocumentStatus.PAID
    if invoice.outstanding_amount < invoice.gross_amount:
        return DocumentStatus.PART_PAID
    return DocumentStatus.POSTED


def _reduce(row, field: str, by: Decimal, notes: list[str]) -> None:
    current = getattr(row, field)
    new = current - by
    if new < 0:
        notes.append(f"{row._meta.model_name} #{row.pk} {field} {current} < {by}; set to 0")
        new = Decimal(0)
    setattr(row, field, new)


def _raise(row, field: str, by: Decimal, ceiling: Decimal, notes: list[str]) -> None:
    new = getattr(row, field) + by
    if new > ceiling:
        notes.append(f"{row._meta.model_name} #{row.pk} {field} above {ceiling}; capped")
        new = ceiling
    setattr(row, field, new)


def _receipt(command: OutboxCommand, payload: dict, result: dict, notes: list[str]) -> None:
    # customer and bank in one query, the receipt in one upsert: this runs once per confirmed
    # receipt, and each statement here was a measurable part of the outbox's overhead per call
    found = (
        Customer.objects.filter(
            entity_id=command.entity_id, code=str(payload.get("customer_code", "")).upper()
        )
        .annotate(
            bank_id=Subquery(
                BankAccount.objects.filter(
                    entity_id=command.entity_id,
                    bank_account_code=payload.get("bank_account_code"),
                ).values("pk")[:1]
            )
        )
        .values("pk", "currency", "bank_id")
        .first()
    )
    if found is None or found["bank_id"] is None:
        notes.append("customer or bank account not in the mirror; receipt row left to sync")
        return
    amount = as_decimal(payload["amount"])
    # Inserted, or (synced earlier under our reference) given AIQ's transaction id; the rest of
    # a synced row is AIQ's own data and stays as it is.
    Receipt.objects.bulk_create(
        [
            Receipt(
                entity_id=command.entity_id,
                check_reference=command.external_reference,
                customer_id=found["pk"],
                bank_account_id=found["bank_id"],
                aiq_transaction_id=result["transaction_id"],
                currency=payload.get("currency") or found["currency"],
                payment_date=payload["payment_date"],
                amount=amount,
                unallocated_amount=amount,
                description=(payload.get("description") or "")[:500],
                last_synced_at=timezone.now(),
            )
        ],
        update_conflicts=True,
        unique_fields=["entity", "check_reference"],
        update_fields=["aiq_transaction_id", "updated_at"],
    )


def _journal(command: OutboxCommand, payload: dict, result: dict, notes: list[str]) -> None:
    if command.kind != Kind.POST_SALES_DEBIT_JOURNAL:
        return  # a write-off (sales credit journal) has no mirror kind; sync lists it
    customer = Customer.objects.filter(
        entity_id=command.entity_id, code=str(payload.get("customer_code", "")).upper()
    ).first()
    amount = as_decimal(payload["amount"])
    Journal.objects.get_or_create(
        entity_id=command.entity_id,
        reference=command.external_reference,
        defaults={
            "kind": Journal.Kind.SALES_DEBIT,
            "customer": customer,
            "aiq_transaction_id": result["transaction_id"],
            "currency": payload.get("currency") or "",
            "journal_date": payload["journal_date"],
            "amount": amount,
            "outstanding_amount": amount,
            "description": (payload.get("description") or "")[:500],
        },
    )


def _pulled_meanwhile(command, paying, settled, amount, allocation_id) -> Allocation | None:
    """The pull's row for the allocation this command made, if the pull got there first: by
    AIQ's AllocationId when the read-back told it, else one of the pair and amount that was
    not in AIQ before the command sent (evidence)."""
    rows = Allocation.objects.filter(
        entity_id=command.entity_id,
        state=Allocation.State.ACTIVE,
        reference__startswith="AIQ-",
        transaction_id_1=paying,
        transaction_id_2=settled,
        amount=amount,
    )
    if allocation_id:
        return rows.filter(aiq_allocation_id=allocation_id).first()
    before = command.evidence.get("allocations_before")
    if before is None:
        return None
    return rows.exclude(aiq_allocation_id__in=before).order_by("aiq_allocation_id").first()


def _allocate(command: OutboxCommand, payload: dict, notes: list[str]) -> None:
    entity_id = command.entity_id
    paying, settled = payload["paying_transaction_id"], payload["settled_transaction_id"]
    amount = as_decimal(payload["amount"])
    discount = as_decimal(payload.get("discount_amount") or 0)
    receipt = Receipt.objects.filter(entity_id=entity_id, aiq_transaction_id=paying).first()
    credit_note = None
    if payload.get("credit_note_id"):
        credit_note = CreditNote.objects.filter(pk=payload["credit_note_id"]).first()
    credit_note = (
        credit_note
        or CreditNote.objects.filter(entity_id=entity_id, aiq_transaction_id=paying).first()
    )
    invoice = None
    if payload.get("invoice_id"):
        invoice = Invoice.objects.filter(pk=payload["invoice_id"]).first()
    invoice = (
        invoice or Invoice.objects.filter(entity_id=entity_id, aiq_transaction_id=settled).first()
    )
    journal = Journal.objects.filter(entity_id=entity_id, aiq_transaction_id=paying).first()
    if Allocation.objects.filter(
        entity_id=entity_id, reference=command.external_reference, state=Allocation.State.ACTIVE
    ).exists():
        notes.append("allocation already in the mirror; amounts left as they are")
        return
    allocation_id = (command.result or {}).get("allocation_id")
    pulled = _pulled_meanwhile(command, paying, settled, amount, allocation_id)
    if pulled is not None:
        # a pull stored this very allocation (AIQ-<id>) while the command was open; the rows it
        # settles were protected from that pull, so their amounts below are still to be applied
        pulled.reference = command.external_reference
        pulled.aiq_allocation_id = pulled.aiq_allocation_id or allocation_id
        pulled.discount_amount = discount
        pulled.save(
            update_fields=["reference", "aiq_allocation_id", "discount_amount", "updated_at"]
        )
        notes.append(f"allocation {pulled.aiq_allocation_id} pulled meanwhile: now ours")
    else:
        Allocation.objects.create(
            entity_id=entity_id,
            transaction_id_1=paying,
            transaction_id_2=settled,
            receipt=receipt,
            credit_note=credit_note,
            invoice=invoice,
            journal=journal,
            amount=amount,
            discount_amount=discount,
            currency=payload.get("currency") or (invoice.currency if invoice else ""),
            allocation_date=payload.get("allocation_date") or timezone.localdate(),
            reference=command.external_reference,
            aiq_allocation_id=allocation_id,
            last_synced_at=timezone.now(),
        )
    if invoice is not None:
        _reduce(invoice, "outstanding_amount", amount + discount, notes)
        invoice.status = _invoice_status(invoice)
        invoice.save(update_fields=["outstanding_amount", "status", "updated_at"])
    else:
        notes.append(f"invoice with transaction {settled} not in the mirror")
    for paying_row in (receipt, credit_note):
        if paying_row is None:
            continue
        field = "unallocated_amount" if paying_row is receipt else "outstanding_amount"
        _reduce(paying_row, field, amount, notes)
        paying_row.save(update_fields=[field, "updated_at"])


def _unallocate(command: OutboxCommand, payload: dict, notes: list[str]) -> None:
    if payload.get("expect_allocation_ids") is not None:
        # a duplicate's repair: every allocation AIQ listed for the transaction is undone
        removed = command.evidence.get("unallocating") or payload["expect_allocation_ids"]
        for allocation in Allocation.objects.filter(
            entity_id=command.entity_id,
            aiq_allocation_id__in=removed,
            state=Allocation.State.ACTIVE,
        ):
            _unallocate_row(allocation, payload, notes)
        return
    allocation = Allocation.objects.filter(
        pk=payload.get("allocation_id"), state=Allocation.State.ACTIVE
    ).first()
    if allocation is None:
        notes.append("allocation not active in the mirror")
        return
    _unallocate_row(allocation, payload, notes)


def _unallocate_row(allocation: Allocation, payload: dict, notes: list[str]) -> None:
    allocation.state = Allocation.State.UNALLOCATED
    allocation.unallocated_at = timezone.now()
    allocation.unallocation_reason = payload.get("reason", "")
    allocation.save(update_fields=["state", "unallocated_at", "unallocation_reason", "updated_at"])
    if allocation.invoice_id:
        invoice = allocation.invoice
        total = allocation.amount + allocation.discount_amount
        _raise(invoice, "outstanding_amount", total, invoice.gross_amount, notes)
        invoice.status = _invoice_status(invoice)
        invoice.save(update_fields=["outstanding_amount", "status", "updated_at"])
    if allocation.receipt_id:
        receipt = allocation.receipt
        _raise(receipt, "unallocated_amount", allocation.amount, receipt.amount, notes)
        receipt.save(update_fields=["unallocated_amount", "updated_at"])


def mirror_apply(command: OutboxCommand, payload: dict, result: dict) -> list[str]:
    """Update the mirror for a confirmed command; returns notes on anything not applied."""
    notes: list[str] = []
    if command.kind == Kind.POST_RECEIPT:
        _receipt(command, payload, result, notes)
    elif command.kind in (Kind.POST_WRITE_OFF, Kind.POST_SALES_DEBIT_JOURNAL):
        _journal(command, payload, result, notes)
    elif command.kind in (Kind.ALLOCATE, Kind.ALLOCATE_WITH_DISCOUNT):
        _allocate(command, payload, notes)
    elif command.kind == Kind.UNALLOCATE:
        _unallocate(command, payload, notes)
    elif command.kind == Kind.CREATE_CREDIT_NOTE:
        credit_note_mirror_apply(command, result, notes)
    elif command.kind in MIRRORS:  # kinds whose executor module brings its own mirror update
        MIRRORS[command.kind](command, payload, result, notes)
    fill_dependents(command)
    # then the row that caused it (a plan, a refund...): its app's handlers, which never undo
    # the confirmation (ledger/outbox/origins.py)
    origin_follow(command, payload, notes, verdict=OutboxCommand.State.CONFIRMED)
    for note in notes:
        log.warning("outbox %s mirror: %s", command.pk, note)
    return notes
