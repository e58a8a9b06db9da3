"""Flags for writes of ours that AIQ holds more than once (or allocations beyond what an
invoice owes): the one place that records them, used by the outbox (a read-back that finds
several hits, a late answer) and by the pull (a second transaction or allocation of ours).

AIQ has no idempotency keys. The outbox reads back before any resend and waits for a send to
settle first, but a write that AIQ commits later than the settle period (or one made twice by a
person) can still leave two entries with one reference of ours. Those are never hidden: they
are listed on the sync screen until an approver reverses the extra one (ledger/outbox/repair.py)
or dismisses the flag with a reason.
"""

from decimal import Decimal

from django.db import transaction

from ledger.models import DuplicateWrite, OutboxCommand
from staff.services import audit_log

Kind = OutboxCommand.Kind
State = DuplicateWrite.State


def duplicate_flag(
    *,
    entity,
    kind: str,
    key: str,
    found_by: str,
    external_reference: str = "",
    command: OutboxCommand | None = None,
    kept_aiq_id: int | None = None,
    extra_aiq_ids=(),
    amount: Decimal | None = None,
    currency: str = "",
    detail: str = "",
) -> DuplicateWrite:
    """Record (or refresh) one flag; audited when it is new or finds more extras."""
    with transaction.atomic():
        flag, created = DuplicateWrite.objects.select_for_update().get_or_create(
            entity=entity,
            key=key[:140],
            defaults={
                "kind": kind,
                "external_reference": external_reference[:100],
                "command": command,
                "kept_aiq_id": kept_aiq_id,
                "extra_aiq_ids": sorted({int(i) for i in extra_aiq_ids}),
                "amount": amount,
                "currency": currency,
                "detail": detail[:500],
                "found_by": found_by,
            },
        )
        extras = sorted({*flag.extra_aiq_ids, *(int(i) for i in extra_aiq_ids)})
        if not created and extras == flag.extra_aiq_ids:
            return flag
        if not created:
            flag.extra_aiq_ids = extras
            flag.detail = (detail or flag.detail)[:500]
            if flag.state == State.DISMISSED:
                flag.state = State.OPEN  # something new turned up since it was dismissed
            flag.save(update_fields=["extra_aiq_ids", "detail", "state", "updated_at"])
        audit_log(
            actor=None,
            action="duplicate.flag",
            obj=flag,
            summary=f"{flag.get_kind_display()}: {external_reference or key} ({found_by})"[:500],
            after={"kept": kept_aiq_id, "extra": extras, "detail": detail[:200]},
        )
    return flag


def duplicate_flag_extra(command: OutboxCommand, extra_ids, *, found_by: str) -> DuplicateWrite:
    """A command of ours found more than once in AIQ: it keeps its own result, the rest are
    extras."""
    allocation = command.kind in (Kind.ALLOCATE, Kind.ALLOCATE_WITH_DISCOUNT)
    kept = command.result.get("allocation_id" if allocation else "transaction_id")
    payload = command.payload
    return duplicate_flag(
        entity=command.entity,
        kind=DuplicateWrite.Kind.ALLOCATION if allocation else DuplicateWrite.Kind.TRANSACTION,
        key=f"{'alloc' if allocation else 'txn'}:{command.external_reference}",
        found_by=found_by,
        external_reference=command.external_reference,
        command=command,
        kept_aiq_id=int(kept) if kept else None,
        extra_aiq_ids=extra_ids,
        amount=Decimal(str(payload.get("amount") or payload.get("gross_amount") or 0)) or None,
        currency=payload.get("currency") or "",
        detail=f"{command.get_kind_display()} is in AIQ {1 + len(list(extra_ids))} times",
    )
