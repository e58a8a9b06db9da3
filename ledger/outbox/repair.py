"""Repair of duplicates in AIQ (ledger/duplicates.py flags them): reversed by an approver.

Repair is a reversing entry through the outbox, never a delete (posted transactions cannot be
deleted in AIQ): an extra receipt or sales credit journal is reversed by a sales debit journal
of the same amount, an extra sales debit journal by a sales credit journal, and the two are
then allocated against each other so neither stays open on the customer's account.
"""

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from ledger.models import BankAccount, DuplicateWrite, OutboxCommand
from staff.models import Role
from staff.services import audit_log, user_has_role

Kind = OutboxCommand.Kind
State = DuplicateWrite.State

# what reverses an extra of each kind: (outbox kind of the reversing journal, its description)
REVERSAL = {
    Kind.POST_RECEIPT: (Kind.POST_SALES_DEBIT_JOURNAL, "Reverses duplicate receipt"),
    Kind.POST_WRITE_OFF: (Kind.POST_SALES_DEBIT_JOURNAL, "Reverses duplicate write-off"),
    Kind.POST_SALES_DEBIT_JOURNAL: (Kind.POST_WRITE_OFF, "Reverses duplicate debit journal"),
}


def reversible(flag: DuplicateWrite) -> str:
    """Why this flag cannot be reversed with one action ("" when it can)."""
    if flag.state != State.OPEN:
        return f"it is {flag.get_state_display().lower()}"
    if flag.kind != DuplicateWrite.Kind.TRANSACTION or flag.command is None:
        return "only duplicate receipts and journals are reversed here; correct it in AIQ"
    if flag.command.kind not in REVERSAL:
        return f"a duplicate {flag.command.get_kind_display().lower()} is corrected in AIQ"
    if len(flag.extra_aiq_ids) != 1:
        return "reverse one extra at a time (several are listed)"
    return ""


def _gl_code(command: OutboxCommand) -> str:
    payload = command.payload
    if command.kind == Kind.POST_RECEIPT:
        bank = BankAccount.objects.filter(
            entity_id=command.entity_id, bank_account_code=payload.get("bank_account_code")
        ).first()
        if bank is None or not bank.bank_code:
            raise ValidationError("The receipt's bank account is not in the mirror; sync first.")
        return bank.bank_code
    return payload["gl_account_code"]


def duplicate_reverse(*, flag: DuplicateWrite, actor) -> DuplicateWrite:
    """Queue the reversing journal for the extra entry and its allocation against it; audited
    in the same transaction. The extra itself stays in AIQ (nothing is deleted there)."""
    # local: ledger.outbox.services imports the runner, which imports this module
    from ledger.outbox.services import outbox_enqueue

    if not user_has_role(actor, Role.APPROVER):
        raise PermissionDenied("Only an approver can reverse a duplicate in AIQ.")
    with transaction.atomic():
        flag = (
            DuplicateWrite.objects.select_for_update(of=("self",))
            .select_related("command")
            .get(pk=flag.pk)
        )
        why_not = reversible(flag)
        if why_not:
            raise ValidationError(f"This duplicate cannot be reversed: {why_not}.")
        original = flag.command
        payload = original.payload
        extra = flag.extra_aiq_ids[0]
        kind, description = REVERSAL[original.kind]
        reference = f"REV-{extra}"
        journal = outbox_enqueue(
            entity=original.entity,
            kind=kind,
            payload={
                "customer_code": payload["customer_code"],
                "gl_account_code": _gl_code(original),
                "amount": str(payload["amount"]),
                "currency": payload.get("currency") or "",
                "journal_date": timezone.localdate().isoformat(),
                "description": f"{description} {original.external_reference} (AIQ {extra})",
            },
            external_reference=reference,
            origin_type="duplicate",
            origin_id=flag.pk,
            created_by=actor,
        )
        # the extra and its reversal settle each other: credit (receipt, credit journal) pays
        # the debit (debit journal); the reversal's transaction id comes from its result
        paying_is_extra = original.kind in (Kind.POST_RECEIPT, Kind.POST_WRITE_OFF)
        outbox_enqueue(
            entity=original.entity,
            kind=Kind.ALLOCATE,
            payload={
                "paying_transaction_id": extra if paying_is_extra else None,
                "settled_transaction_id": None if paying_is_extra else extra,
                "invoice_id": None,
                "credit_note_id": None,
                "amount": str(payload["amount"]),
                "allocation_date": timezone.localdate().isoformat(),
                "currency": payload.get("currency") or "",
            },
            external_reference=f"{reference}-ALC",
            depends_on=journal,
            origin_type="duplicate",
            origin_id=flag.pk,
            created_by=actor,
        )
        before = flag.state
        flag.state = State.REVERSING
        flag.reversal = journal
        flag.resolved_by = actor
        flag.save(update_fields=["state", "reversal", "resolved_by", "updated_at"])
        audit_log(
            actor=actor,
            action="duplicate.reverse",
            obj=flag,
            summary=f"reverse AIQ {extra} ({original.external_reference}) with {reference}",
            before={"state": before},
            after={"state": flag.state, "reversal": reference, "amount": str(payload["amount"])},
        )
    return flag


def duplicate_dismiss(*, flag: DuplicateWrite, actor, reason: str) -> DuplicateWrite:
    """An approver says the flag needs no reversal (e.g. corrected in AIQ by hand)."""
    if not user_has_role(actor, Role.APPROVER):
        raise PermissionDenied("Only an approver can dismiss a duplicate.")
    if not reason.strip():
        raise ValidationError("Say why this duplicate needs no reversal.")
    with transaction.atomic():
        flag = DuplicateWrite.objects.select_for_update().get(pk=flag.pk)
        if flag.state != State.OPEN:
            raise ValidationError(f"This duplicate is {flag.get_state_display().lower()}.")
        flag.state = State.DISMISSED
        flag.resolved_by = actor
        flag.save(update_fields=["state", "resolved_by", "updated_at"])
        audit_log(
            actor=actor,
            action="duplicate.dismiss",
            obj=flag,
            summary=f"dismissed {flag}: {reason}"[:500],
            before={"state": State.OPEN},
            after={"state": flag.state},
        )
    return flag


def duplicate_reversal_done(command: OutboxCommand) -> None:
    """Called when a command is confirmed: a duplicate whose reversal and its allocation are
    both confirmed is reversed."""
    if command.origin_type != "duplicate" or command.origin_id is None:
        return
    steps = OutboxCommand.objects.filter(origin_type="duplicate", origin_id=command.origin_id)
    if steps.exclude(state=OutboxCommand.State.CONFIRMED).exists():
        return
    flag = DuplicateWrite.objects.select_for_update().filter(pk=command.origin_id).first()
    if flag is None or flag.state != State.REVERSING:
        return
    flag.state = State.REVERSED
    flag.save(update_fields=["state", "updated_at"])
    audit_log(
        actor=None,
        action="duplicate.reversed",
        obj=flag,
        summary=f"{flag}: reversal confirmed in AIQ",
        before={"state": State.REVERSING},
        after={"state": flag.state},
    )
