"""Allocate money already in AIQ to invoices later (Sage `contact_allocations`, issue 16.3).

The credit side is a receipt with money on account (one the app posted, after an Undo, or one
pulled from AIQ) or a credit note with an open amount; the debit side is one or more invoices
of the same customer and currency. What each side has open is what AIQ's mirror says less what
live requests already hold: later allocations waiting or sent, allocation plans not yet
confirmed, refunds asked for. Either side fully paid is refused with Sage's words ("You can
only pay unpaid or part-paid invoices."). Rows are locked credit side first, then invoices by
id (plans lock payment then invoices: no cycle).

Each invoice is one AIQ `AllocateTransactions` (credit side's transaction, invoice's
transaction, allocationReference CALLOC-<allocation id>-<invoice id>), queued on approval and
read back before any resend (ledger/outbox/executors.py); the mirror's receipt/credit note and
invoice amounts move when each is confirmed (ledger/outbox/mirror.py).
"""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db import transaction
from django.db.models import BigIntegerField, F, Sum
from django.utils import timezone

from core.money import format_money
from ledger.models import CreditNote, DocumentStatus, Invoice, OutboxCommand, Receipt
from ledger.outbox.services import NewCommand
from payments.models import Refund
from payments.models_money_later import (
    HOLDING_STATES,
    ContactAllocation,
    ContactAllocationLine,
)
from payments.services.later import (
    ORIGINS,
    LaterRefused,
    later_approve,
    later_money,
    later_reject,
    needs_approval,
    open_or_send,
    require_clerk,
)
from staff.maker_checker import record_change

ZERO = Decimal(0)
ORIGIN = "contact_allocation"
FULLY_PAID = "You can only pay unpaid or part-paid invoices."


def _thousandths(value) -> Decimal:
    return Decimal(int(value or 0)).scaleb(-3)


def held_on_receipts(receipt_ids) -> dict[int, Decimal]:
    rows = (
        ContactAllocation.objects.filter(receipt_id__in=receipt_ids, state__in=HOLDING_STATES)
        .values("receipt_id")
        .annotate(held=Sum("amount", output_field=BigIntegerField()))
    )
    return {r["receipt_id"]: _thousandths(r["held"]) for r in rows}


def held_on_invoices(invoice_ids) -> dict[int, Decimal]:
    """What later allocations waiting or sent hold on these invoices (plans count it too:
    payments/services/plan_lines.py reserved_elsewhere)."""
    rows = (
        ContactAllocationLine.objects.filter(
            invoice_id__in=invoice_ids, allocation__state__in=HOLDING_STATES
        )
        .values("invoice_id")
        .annotate(held=Sum(F("amount"), output_field=BigIntegerField()))
    )
    return {r["invoice_id"]: _thousandths(r["held"]) for r in rows}


def receipt_open(receipt: Receipt) -> Decimal:
    """Money on account that can still be allocated or refunded (less live refunds and later
    allocations holding it)."""
    # local: payments.services.refunds imports this module (holdings on receipts/notes)
    from payments.services.refunds import receipt_refundable

    return receipt_refundable(receipt)


def credit_note_open(note: CreditNote) -> Decimal:
    """A posted credit note's open amount, less what later allocations and refunds hold."""
    # local: payments.services.refunds imports this module (holdings on receipts/notes)
    from payments.services.refunds import LIVE

    if note.aiq_transaction_id is None or note.status == DocumentStatus.DRAFT:
        return ZERO
    held = ContactAllocation.objects.filter(credit_note=note, state__in=HOLDING_STATES)
    refunds = note.refunds.filter(kind=Refund.Kind.REFUND_CREDIT_NOTE, state__in=LIVE)
    taken = sum((r.amount for r in held), ZERO) + sum((r.amount for r in refunds), ZERO)
    return max(note.outstanding_amount - taken, ZERO)


def invoice_open(invoice: Invoice) -> Decimal:
    """An invoice's outstanding amount less plans, credits and later allocations holding it
    (invoice_creditable counts plans and credits; reserved_elsewhere counts ours)."""
    # local: payments.services.refunds imports this module (holdings on receipts/notes)
    from payments.services.refunds import invoice_creditable

    return invoice_creditable(invoice)


@dataclass
class Line:
    invoice: Invoice
    amount: Decimal


def _lock_credit_side(receipt, credit_note):
    if (receipt is None) == (credit_note is None):
        raise LaterRefused(
            "Give exactly one credit: a payment on account or a credit note.", "allocated_artefacts"
        )
    if receipt is not None:
        return Receipt.objects.select_for_update().select_related("customer").get(pk=receipt.pk)
    return CreditNote.objects.select_for_update().select_related("customer").get(pk=credit_note.pk)


def contact_allocation_create(
    *,
    actor,
    lines: list[tuple[Invoice, object]],
    receipt: Receipt | None = None,
    credit_note: CreditNote | None = None,
    allocation_date: date | None = None,
) -> ContactAllocation:
    """Allocate a receipt's money on account, or a credit note's open amount, to invoices.
    `lines` are (invoice, amount); the credit side gives their total."""
    require_clerk(actor, "Allocating money on account")
    if not lines:
        raise LaterRefused("Choose at least one invoice to allocate to.", "allocated_artefacts")
    with transaction.atomic():
        credit = _lock_credit_side(receipt, credit_note)
        currency, customer = credit.currency, credit.customer
        if credit.aiq_transaction_id is None:
            raise LaterRefused(f"{credit} is not in AIQ yet; it cannot be allocated.")
        ids = sorted({invoice.pk for invoice, _ in lines})
        if len(ids) != len(lines):
            raise LaterRefused("An invoice is listed twice.", "allocated_artefacts")
        invoices = {
            i.pk: i for i in Invoice.objects.select_for_update().filter(pk__in=ids).order_by("pk")
        }
        available = (
            receipt_open(credit) if isinstance(credit, Receipt) else credit_note_open(credit)
        )
        if available <= 0:
            raise LaterRefused(FULLY_PAID, "allocated_artefacts")
        parsed, total = [], ZERO
        for number, (given, value) in enumerate(lines, start=1):
            invoice = invoices[given.pk]
            field = f"allocated_artefacts[{number}].amount"
            amount = later_money(value, currency, field)
            if invoice.customer_id != customer.pk:
                raise LaterRefused(
                    f"Invoice {invoice} belongs to {invoice.customer.code}, not {customer.code}.",
                    "contact_id",
                )
            if invoice.currency != currency:
                raise LaterRefused(
                    f"Invoice {invoice} is in {invoice.currency}; the credit is in {currency}.",
                    field,
                )
            if invoice.aiq_transaction_id is None:
                raise LaterRefused(f"Invoice {invoice} is not posted in AIQ yet.", field)
            open_amount = invoice_open(invoice)
            if invoice.outstanding_amount <= 0 or open_amount <= 0:
                raise LaterRefused(FULLY_PAID, field)
            if amount > open_amount:
                raise LaterRefused(
                    f"{format_money(amount, currency)} is more than invoice {invoice} has open "
                    f"({format_money(open_amount, currency)}).",
                    field,
                )
            parsed.append(Line(invoice, amount))
            total += amount
        if total > available:
            raise LaterRefused(
                f"The invoices take {format_money(total, currency)}; {credit} has only "
                f"{format_money(available, currency)} open.",
                "allocated_artefacts",
            )
        allocation = ContactAllocation(
            entity_id=credit.entity_id,
            customer=customer,
            receipt=credit if isinstance(credit, Receipt) else None,
            credit_note=credit if isinstance(credit, CreditNote) else None,
            amount=total,
            currency=currency,
            allocation_date=allocation_date or timezone.localdate(),
            needs_approval=needs_approval(total),
        )
        allocation.state = (
            ContactAllocation.State.AWAITING_APPROVAL
            if allocation.needs_approval
            else ContactAllocation.State.SENT
        )
        record_change(allocation, actor=actor)
        allocation.full_clean()
        allocation.save()
        ContactAllocationLine.objects.bulk_create(
            [
                ContactAllocationLine(
                    allocation=allocation, invoice=line.invoice, amount=line.amount
                )
                for line in parsed
            ]
        )
        open_or_send(allocation, actor=actor, snapshot=snapshot(allocation))
    return allocation


def snapshot(allocation: ContactAllocation) -> dict:
    credit = allocation.credit_side
    return {
        "state": allocation.state,
        "customer": allocation.customer.code,
        "credit": str(credit),
        "amount": allocation.amount,
        "currency": allocation.currency,
        "lines": [
            {"invoice": str(line.invoice), "amount": line.amount}
            for line in allocation.lines.select_related("invoice")
        ],
    }


def contact_allocation_approve(*, allocation: ContactAllocation, actor) -> ContactAllocation:
    return later_approve(row=allocation, actor=actor, snapshot=snapshot)


def contact_allocation_reject(*, allocation: ContactAllocation, actor, reason: str):
    return later_reject(row=allocation, actor=actor, reason=reason, snapshot=snapshot)


def reference(allocation: ContactAllocation, invoice_id: int) -> str:
    return f"CALLOC-{allocation.pk}-{invoice_id}"


def _commands(allocation: ContactAllocation, actor) -> list[NewCommand]:
    credit = allocation.credit_side
    entity = allocation.entity
    return [
        NewCommand(
            entity=entity,
            kind=OutboxCommand.Kind.ALLOCATE,
            external_reference=reference(allocation, line.invoice_id),
            payload={
                "paying_transaction_id": credit.aiq_transaction_id,
                "settled_transaction_id": line.invoice.aiq_transaction_id,
                "invoice_id": line.invoice_id,
                "credit_note_id": allocation.credit_note_id,
                "amount": str(line.amount),
                "allocation_date": allocation.allocation_date.isoformat(),
                "currency": allocation.currency,
            },
            origin_type=ORIGIN,
            origin_id=allocation.pk,
            created_by=actor,
        )
        for line in allocation.lines.select_related("invoice").order_by("invoice_id")
    ]


ORIGINS[ORIGIN] = (ContactAllocation, "contact_allocation", _commands)
