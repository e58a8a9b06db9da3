"""Mirror updates for refund commands, in the transaction that confirms them (see mirror.py).

- create_credit_note: the draft credit note row gets AIQ's ids and number, and is open for its
  gross amount until it is allocated.
- stripe_refund: the Refund row learns its Stripe id; the payment's refunded total is set to what
  Stripe reported (an absolute figure, so a webhook arriving before or after agrees with it).
- any command of a refund: ids that only this confirmation knows are written into the refund's
  waiting commands ("fill" in their payload, see payments/services/refund_steps.py); the refund
  is completed when all of its commands are, and fails when one of them does.
"""

from django.utils import timezone

from ledger.models import (
    Allocation,
    CreditNote,
    DocumentStatus,
    Invoice,
    Journal,
    OutboxCommand,
)
from ledger.outbox.executors import decimal
from staff.services import audit_log

Kind = OutboxCommand.Kind
ORIGIN = "refund"


def refund_mirror_apply(command: OutboxCommand, payload: dict, result: dict, notes: list) -> None:
    if command.kind == Kind.CREATE_CREDIT_NOTE:
        _credit_note(command, result, notes)
    elif command.kind == Kind.STRIPE_REFUND:
        _stripe_refund(payload, result, notes)


def _credit_note(command: OutboxCommand, result: dict, notes: list) -> None:
    note = (
        CreditNote.objects.select_for_update()
        .filter(entity_id=command.entity_id, external_reference=command.external_reference)
        .first()
    )
    if note is None:
        notes.append("credit note not in the mirror; the next sync adds it")
        return
    if note.aiq_transaction_id is not None and note.aiq_credit_note_id is not None:
        return  # already applied (a repeated confirmation)
    if note.aiq_transaction_id is not None and note.status != DocumentStatus.DRAFT:
        # a pull adopted the draft meanwhile (AIQ's figures): only AIQ's ids are missing
        note.aiq_credit_note_id = result.get("credit_note_id")
        note.credit_note_number = result.get("credit_note_number") or note.credit_note_number
        note.save(update_fields=["aiq_credit_note_id", "credit_note_number", "updated_at"])
        return
    note.aiq_transaction_id = result["transaction_id"]
    note.aiq_credit_note_id = result.get("credit_note_id")
    note.credit_note_number = result.get("credit_note_number") or note.credit_note_number
    note.status = DocumentStatus.POSTED
    note.outstanding_amount = note.gross_amount
    note.last_synced_at = timezone.now()
    note.save()


def _stripe_refund(payload: dict, result: dict, notes: list) -> None:
    from core.stripe_money import stripe_from_minor as from_minor
    from payments.models import Payment, Refund

    refund = Refund.objects.select_for_update().filter(pk=payload.get("refund_id")).first()
    if refund is None:
        notes.append(f"refund {payload.get('refund_id')} not found")
        return
    if not refund.stripe_refund_id:
        refund.stripe_refund_id = result["stripe_refund_id"]
        refund.save(update_fields=["stripe_refund_id", "updated_at"])
    payment = Payment.objects.select_for_update().filter(pk=refund.payment_id).first()
    if payment is None or "amount_refunded_minor" not in result:
        return
    total = min(from_minor(int(result["amount_refunded_minor"]), payment.currency), payment.amount)
    if total > payment.amount_refunded:
        payment.amount_refunded = total
        if payment.status in (Payment.Status.SUCCEEDED, Payment.Status.PARTIALLY_REFUNDED):
            payment.status = (
                Payment.Status.REFUNDED
                if total >= payment.amount
                else Payment.Status.PARTIALLY_REFUNDED
            )
        payment.save(update_fields=["amount_refunded", "status", "updated_at"])


def _fill_dependents(command: OutboxCommand) -> None:
    """Write this command's AIQ transaction id into its siblings that wait for it by name."""
    transaction_id = (command.result or {}).get("transaction_id")
    if not transaction_id:
        return
    waiting = OutboxCommand.objects.select_for_update().filter(
        origin_type=ORIGIN,
        origin_id=command.origin_id,
        state__in=[OutboxCommand.State.PENDING, OutboxCommand.State.UNCERTAIN],
    )
    for other in waiting:
        fill = other.payload.get("fill") or {}
        changed = False
        for key, ref in fill.items():
            if ref == command.external_reference and other.payload.get(key) in (None, ""):
                other.payload[key] = int(transaction_id)
                changed = True
        if changed:
            other.save(update_fields=["payload", "updated_at"])


def _journal_side(command: OutboxCommand, payload: dict, notes: list) -> None:
    """The shared allocation mirror knows receipts, credit notes and invoices; a refund's
    allocation settles a debit journal, whose open amount is brought down here."""
    settled = payload.get("settled_transaction_id")
    journal = (
        Journal.objects.select_for_update()
        .filter(entity_id=command.entity_id, aiq_transaction_id=settled)
        .first()
    )
    allocation = Allocation.objects.filter(
        entity_id=command.entity_id, reference=command.external_reference
    ).first()
    if journal is None or allocation is None or allocation.journal_id:
        return
    allocation.journal = journal
    allocation.save(update_fields=["journal", "updated_at"])
    journal.outstanding_amount = max(journal.outstanding_amount - decimal(payload["amount"]), 0)
    journal.save(update_fields=["outstanding_amount", "updated_at"])


def _credited(payload: dict) -> None:
    """An invoice settled only by credit notes was cancelled, not paid."""
    invoice = Invoice.objects.filter(pk=payload.get("invoice_id")).first()
    if invoice is None or invoice.outstanding_amount != 0 or not payload.get("credit_note_id"):
        return
    paid = invoice.allocations.filter(state=Allocation.State.ACTIVE, receipt__isnull=False)
    if not paid.exists():
        Invoice.objects.filter(pk=invoice.pk).update(
            status=DocumentStatus.CREDITED, updated_at=timezone.now()
        )


def refund_progress(command: OutboxCommand, payload: dict, notes: list) -> None:
    """After any confirmed command of a refund (mirror.py calls this for origin "refund")."""
    if command.origin_type != ORIGIN or command.origin_id is None:
        return
    from payments.models import Refund

    _fill_dependents(command)
    if command.kind == Kind.ALLOCATE:
        _journal_side(command, payload, notes)
        _credited(payload)
    siblings = OutboxCommand.objects.filter(origin_type=ORIGIN, origin_id=command.origin_id)
    if siblings.exclude(state=OutboxCommand.State.CONFIRMED).exists():
        return
    refund = Refund.objects.select_for_update().filter(pk=command.origin_id).first()
    if refund is None or refund.state != Refund.State.SENT:
        return
    refund.state = Refund.State.COMPLETED
    refund.save(update_fields=["state", "updated_at"])
    audit_log(
        actor=None,
        action="refund.complete",
        obj=refund,
        summary="every step of the refund is confirmed"
        + (f" (Stripe refund {refund.stripe_refund_id})" if refund.stripe_refund_id else ""),
        before={"state": Refund.State.SENT},
        after={"state": refund.state},
    )


def refund_failed(command: OutboxCommand) -> None:
    """A step was refused for good: the refund is failed (its later steps wait for a person)."""
    if command.origin_type != ORIGIN or command.origin_id is None:
        return
    from payments.models import Refund

    refund = Refund.objects.select_for_update().filter(pk=command.origin_id).first()
    if refund is None or refund.state != Refund.State.SENT:
        return
    refund.state = Refund.State.FAILED
    refund.save(update_fields=["state", "updated_at"])
    audit_log(
        actor=None,
        action="refund.fail",
        obj=refund,
        summary=f"{command.kind} {command.external_reference} refused: "
        f"{command.last_error_message}"[:500],
        before={"state": Refund.State.SENT},
        after={"state": refund.state},
    )
