"""Repair of duplicates in AIQ (ledger/duplicates.py flags them): reversed by an approver.

Repair goes through the outbox and never deletes (posted transactions cannot be deleted in AIQ):
- an extra receipt, sales credit journal (write-off) or credit note is reversed by a sales
  debit journal of the same amount (a credit note's: its net to its sales accounts, its tax to
  AIQ_VAT_GL_ACCOUNT_CODE), an extra sales debit journal by a sales credit journal, and the two
  are then allocated against each other so neither stays open on the customer's account;
- an extra allocation is undone with AIQ's allocation removal (UnallocateTransactions, which
  removes every allocation of the transaction it is given): the side with fewer allocations is
  unallocated, and every allocation of it but the extra is made again, each depending on the
  unallocation. The unallocation is only sent while AIQ lists exactly the allocations the
  approver saw (else it fails and the flag is open again).
One action by an approver, audited in the same transaction as the commands it queues.
"""

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ledger.models import Allocation, BankAccount, DuplicateWrite, OutboxCommand
from ledger.outbox.executors import resolve_payload
from staff.models import Role
from staff.services import audit_log, user_has_role

Kind = OutboxCommand.Kind
State = DuplicateWrite.State

# what reverses an extra of each kind: (outbox kind of the reversing journal, its description)
REVERSAL = {
    Kind.POST_RECEIPT: (Kind.POST_SALES_DEBIT_JOURNAL, "Reverses duplicate receipt"),
    Kind.POST_WRITE_OFF: (Kind.POST_SALES_DEBIT_JOURNAL, "Reverses duplicate write-off"),
    Kind.POST_SALES_DEBIT_JOURNAL: (Kind.POST_WRITE_OFF, "Reverses duplicate debit journal"),
    Kind.CREATE_CREDIT_NOTE: (Kind.POST_SALES_DEBIT_JOURNAL, "Reverses duplicate credit note"),
}
# extras that are credits on the customer's account (they pay the reversing debit journal)
CREDITS = (Kind.POST_RECEIPT, Kind.POST_WRITE_OFF, Kind.CREATE_CREDIT_NOTE)


def reversible(flag: DuplicateWrite) -> str:
    """Why this flag cannot be reversed with one action ("" when it can)."""
    if flag.state != State.OPEN:
        return f"it is {flag.get_state_display().lower()}"
    if flag.command is None or flag.kind not in (
        DuplicateWrite.Kind.TRANSACTION,
        DuplicateWrite.Kind.ALLOCATION,
    ):
        return "only duplicates of our own writes are reversed here; correct it in AIQ"
    if len(flag.extra_aiq_ids) != 1:
        return "reverse one extra at a time (several are listed)"
    if flag.kind == DuplicateWrite.Kind.ALLOCATION:
        if flag.command.kind != Kind.ALLOCATE:
            return "a duplicate allocation with a discount is corrected in AIQ"
        return ""
    if flag.command.kind not in REVERSAL:
        return f"a duplicate {flag.command.get_kind_display().lower()} is corrected in AIQ"
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


def _journal_lines(original: OutboxCommand) -> tuple[str, list[dict] | None]:
    """The reversing journal's amount and, for a credit note, its lines (net per sales
    account, tax to the VAT account), so the reversal undoes the note's VAT too."""
    payload = original.payload
    if original.kind != Kind.CREATE_CREDIT_NOTE:
        return str(payload["amount"]), None
    by_account: dict[str, object] = {}
    tax = 0
    for line in payload.get("lines") or ():
        code = line["gl_account_code"]
        by_account[code] = by_account.get(code, 0) + _decimal(line["net_amount"])
        tax += _decimal(line.get("tax_amount") or 0)
    lines = [{"gl_account_code": code, "amount": str(net)} for code, net in by_account.items()]
    if tax:
        lines.append({"gl_account_code": settings.AIQ_VAT_GL_ACCOUNT_CODE, "amount": str(tax)})
    total = sum(_decimal(line["amount"]) for line in lines)
    if total != _decimal(payload["gross_amount"]):
        raise ValidationError(
            "The credit note's lines do not add up to its gross; correct it in AIQ."
        )
    return str(total), lines


def _decimal(value):
    from decimal import Decimal

    return Decimal(str(value))


def _reverse_transaction(flag: DuplicateWrite, actor) -> tuple[OutboxCommand, str, str]:
    # local: ledger.outbox.services imports the runner, which imports this module
    from ledger.outbox.services import outbox_enqueue

    original = flag.command
    payload = original.payload
    extra = flag.extra_aiq_ids[0]
    kind, description = REVERSAL[original.kind]
    reference = f"REV-{extra}"
    amount, lines = _journal_lines(original)
    journal_payload = {
        "customer_code": payload["customer_code"],
        "gl_account_code": lines[0]["gl_account_code"] if lines else _gl_code(original),
        "amount": amount,
        "currency": payload.get("currency") or "",
        "journal_date": timezone.localdate().isoformat(),
        "description": f"{description} {original.external_reference} (AIQ {extra})",
    }
    if lines:
        journal_payload["lines"] = lines
    journal = outbox_enqueue(
        entity=original.entity,
        kind=kind,
        payload=journal_payload,
        external_reference=reference,
        origin_type="duplicate",
        origin_id=flag.pk,
        created_by=actor,
    )
    # the extra and its reversal settle each other: a credit (receipt, credit journal, credit
    # note) pays the debit (debit journal); the reversal's transaction id comes from its result
    paying_is_extra = original.kind in CREDITS
    outbox_enqueue(
        entity=original.entity,
        kind=Kind.ALLOCATE,
        payload={
            "paying_transaction_id": extra if paying_is_extra else None,
            "settled_transaction_id": None if paying_is_extra else extra,
            "invoice_id": None,
            "credit_note_id": None,
            "amount": amount,
            "allocation_date": timezone.localdate().isoformat(),
            "currency": payload.get("currency") or "",
        },
        external_reference=f"{reference}-ALC",
        depends_on=journal,
        origin_type="duplicate",
        origin_id=flag.pk,
        created_by=actor,
    )
    return journal, reference, amount


def _reverse_allocation(flag: DuplicateWrite, actor) -> tuple[OutboxCommand, str, str]:
    """Unallocate the side of the pair with fewer allocations and make again all of its
    allocations but the extra one (the mirror, as the pull that flagged it left it, says which;
    the unallocation checks AIQ still lists exactly those before it is sent)."""
    # local: ledger.outbox.services imports the runner, which imports this module
    from ledger.outbox.services import outbox_enqueue

    original = flag.command
    payload = resolve_payload(original)
    extra = flag.extra_aiq_ids[0]
    active = Allocation.objects.filter(entity_id=original.entity_id, state=Allocation.State.ACTIVE)
    sides = {
        side: list(active.filter(Q(transaction_id_1=side) | Q(transaction_id_2=side)))
        for side in (payload["paying_transaction_id"], payload["settled_transaction_id"])
    }
    side, rows = min(sides.items(), key=lambda item: len(item[1]))
    if extra not in {row.aiq_allocation_id for row in rows} or any(
        row.aiq_allocation_id is None for row in rows
    ):
        raise ValidationError("The mirror does not know these allocations yet; sync first.")
    if any(row.discount_amount for row in rows):
        raise ValidationError("An allocation with a discount would be undone; correct it in AIQ.")
    reference = f"REV-A{extra}"
    unallocation = outbox_enqueue(
        entity=original.entity,
        kind=Kind.UNALLOCATE,
        payload={
            "transaction_ids": [side],
            "expect_allocation_ids": sorted(row.aiq_allocation_id for row in rows),
            "allocation_id": None,
            "reason": f"duplicate allocation {extra} of {original.external_reference}",
        },
        external_reference=reference,
        origin_type="duplicate",
        origin_id=flag.pk,
        created_by=actor,
    )
    today = timezone.localdate().isoformat()
    remade = [row for row in rows if row.aiq_allocation_id != extra]
    for n, row in enumerate(sorted(remade, key=lambda r: r.aiq_allocation_id), start=1):
        outbox_enqueue(
            entity=original.entity,
            kind=Kind.ALLOCATE,
            payload={
                "paying_transaction_id": row.transaction_id_1,
                "settled_transaction_id": row.transaction_id_2,
                "invoice_id": row.invoice_id,
                "credit_note_id": row.credit_note_id,
                "amount": str(row.amount),
                "allocation_date": today,
                "currency": row.currency,
            },
            external_reference=f"{reference}-{n}",
            depends_on=unallocation,
            origin_type="duplicate",
            origin_id=flag.pk,
            created_by=actor,
        )
    return unallocation, reference, str(payload["amount"])


def duplicate_reverse(*, flag: DuplicateWrite, actor) -> DuplicateWrite:
    """Queue what reverses the extra entry (module docstring); audited in the same
    transaction. The extra itself stays in AIQ (nothing is deleted there)."""
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
        extra = flag.extra_aiq_ids[0]
        if flag.kind == DuplicateWrite.Kind.ALLOCATION:
            first, reference, amount = _reverse_allocation(flag, actor)
        else:
            first, reference, amount = _reverse_transaction(flag, actor)
        before = flag.state
        flag.state = State.REVERSING
        flag.reversal = first
        flag.resolved_by = actor
        flag.save(update_fields=["state", "reversal", "resolved_by", "updated_at"])
        audit_log(
            actor=actor,
            action="duplicate.reverse",
            obj=flag,
            summary=f"reverse AIQ {extra} ({original.external_reference}) with {reference}",
            before={"state": before},
            after={"state": flag.state, "reversal": reference, "amount": amount},
        )
    return flag


def duplicate_reversal_stopped(command: OutboxCommand) -> None:
    """A step of a reversal failed or was parked: the duplicate is open again, saying why (its
    step is listed on the Sync screen too)."""
    flag = DuplicateWrite.objects.select_for_update().filter(pk=command.origin_id).first()
    if flag is None or flag.state != State.REVERSING:
        return
    flag.state = State.OPEN
    flag.detail = f"reversal {command.external_reference} stopped: {command.last_error_message}"[
        :500
    ]
    flag.save(update_fields=["state", "detail", "updated_at"])
    audit_log(
        actor=None,
        action="duplicate.reversal_stopped",
        obj=flag,
        summary=f"{flag}: {command.external_reference} {command.state}"[:500],
        before={"state": State.REVERSING},
        after={"state": flag.state},
    )


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


def duplicate_reversal_done(command: OutboxCommand, payload=None, notes=None) -> None:
    """The "duplicate" origin's confirmed handler: a duplicate whose reversal steps are all
    confirmed is reversed."""
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
