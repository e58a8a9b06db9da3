"""The nightly drift check: what the product wrote to AIQ in the last N days, compared with what
AIQ holds now. Each confirmed write is read back the way the outbox reads back before a resend
(by its own reference; an allocation by AIQ's AllocationId): more than one hit is a duplicate,
none is a write the mirror believes in and AIQ does not hold. Both are flagged for a person on
the Sync screen (ledger/duplicates.py); nothing is changed in AIQ or the mirror.
"""

import logging
from datetime import timedelta

from django.utils import timezone

from ledger.aiq.errors import AiqError
from ledger.duplicates import duplicate_flag, duplicate_flag_extra
from ledger.models import Allocation, DuplicateWrite, OutboxCommand
from ledger.outbox.executors import EXECUTORS, PayloadError, resolve_payload

log = logging.getLogger(__name__)
Kind = OutboxCommand.Kind
# writes that stay as they were sent (an allocation may since have been undone on purpose)
CHECKED = (
    Kind.POST_RECEIPT,
    Kind.POST_WRITE_OFF,
    Kind.POST_SALES_DEBIT_JOURNAL,
    Kind.CREATE_CREDIT_NOTE,
    Kind.ALLOCATE,
    Kind.ALLOCATE_WITH_DISCOUNT,
)


def drift_check(*, entity, days: int, client) -> dict[str, int]:
    """Read back every write confirmed in the last `days` days; returns counts."""
    since = timezone.now() - timedelta(days=days)
    counts = {"checked": 0, "duplicates": 0, "missing": 0, "unreadable": 0}
    commands = OutboxCommand.objects.filter(
        entity=entity,
        state=OutboxCommand.State.CONFIRMED,
        confirmed_at__gte=since,
        kind__in=CHECKED,
    ).select_related("depends_on", "entity")
    for command in commands.order_by("pk").iterator():
        if command.kind in (Kind.ALLOCATE, Kind.ALLOCATE_WITH_DISCOUNT) and not (
            Allocation.objects.filter(
                entity=entity, reference=command.external_reference, state="active"
            ).exists()
        ):
            continue  # undone on purpose since (an unallocation): nothing to compare
        try:
            found = EXECUTORS[command.kind].read_back(client, command, resolve_payload(command))
        except (AiqError, PayloadError, KeyError, ValueError) as error:
            log.warning("drift check: %s not read back: %s", command.external_reference, error)
            counts["unreadable"] += 1
            continue
        counts["checked"] += 1
        if found.hits > 1 and found.extra_ids:
            duplicate_flag_extra(command, found.extra_ids, found_by="drift_check")
            counts["duplicates"] += 1
        elif found.hits == 0:
            duplicate_flag(
                entity=entity,
                kind=DuplicateWrite.Kind.MISSING,
                key=f"missing:{command.external_reference}",
                found_by="drift_check",
                external_reference=command.external_reference,
                command=command,
                detail=f"{command.get_kind_display()} confirmed here, not found in AIQ",
            )
            counts["missing"] += 1
    return counts
