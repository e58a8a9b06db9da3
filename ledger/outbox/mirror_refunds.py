"""Mirror updates for refund commands, in the transaction that confirms them (see mirror.py).

- create_credit_note: the draft credit note row gets AIQ's ids and number, and is open for its
  gross amount until it is allocated.
- any command with an origin: ids that only this confirmation knows are written into its
  siblings' waiting payloads ("fill", see payments/services/refund_steps.py).

What a refund itself does (Stripe's figures, completion, failure) is payments' business:
payments/services/outbox_origins.py.
"""

from django.utils import timezone

from ledger.models import (
    CreditNote,
    DocumentStatus,
    OutboxCommand,
)


def credit_note_mirror_apply(command: OutboxCommand, result: dict, notes: list) -> None:
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


def fill_dependents(command: OutboxCommand) -> None:
    """Write this command's AIQ transaction id into its siblings (same origin) that wait for
    it by name ("fill" in their payload, e.g. payments/services/refund_steps.py)."""
    transaction_id = (command.result or {}).get("transaction_id")
    if not transaction_id or not command.origin_type or command.origin_id is None:
        return
    waiting = OutboxCommand.objects.select_for_update().filter(
        origin_type=command.origin_type,
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
