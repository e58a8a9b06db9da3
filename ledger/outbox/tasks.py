"""django-q2 entry points for the outbox. Thin: they take ids and call the runner/services.

The queue only wakes work (RELIABILITY.md): a task may be lost (Redis broker, a queued task
signed with another key), delivered twice (ORM broker lease lapse) or run out of order. None of
that matters for correctness because every task claims rows in the outbox table first; it only
changes how soon work happens, and the sweeper bounds that delay.

Tasks are coarse: one task drains due rows in batches until none are due or its time budget is
spent, so the queue's own cost (~50 tasks/s with result saving) is paid per batch, not per call.
A committed transaction wakes one drain per batch of the commands it enqueued, at most one per
worker (ledger/outbox/wake.py): enough to keep every worker busy, never a task per command.
"""

import time

from django.conf import settings

from ledger.aiq.client import AiqClient
from ledger.models import Entity
from ledger.outbox import claim as claiming
from ledger.outbox.drift import drift_check as check
from ledger.outbox.origins import outbox_origins_retry
from ledger.outbox.runner import drain as run_drain
from ledger.outbox.services import outbox_park_orphans
from ledger.outbox.wake import DRAIN, wake  # noqa: F401 - DRAIN: the task's dotted name


def drain(prefer: list[int] | None = None, entity_id: int | None = None) -> dict[str, int]:
    started = time.monotonic()
    counts = run_drain(
        budget_seconds=settings.OUTBOX_DRAIN_SECONDS,
        batch_size=settings.OUTBOX_BATCH_SIZE,
        prefer=prefer,
        entity_id=entity_id,
        workers=settings.Q_CLUSTER.get("workers", 1),
    )
    if time.monotonic() - started >= settings.OUTBOX_DRAIN_SECONDS and (
        claiming.due_commands().exists()
    ):
        # stopped for its budget with work left: hand over to a fresh task now rather than
        # leave it to the next sweep
        wake(None)
    return counts


def sweep() -> dict[str, int]:
    """Scheduled every minute: park orphans of dead dependencies, run again the origin handlers
    that raised (ledger/outbox/origins.py), then wake enough drains for the rows that are due
    (including leases that ran out)."""
    parked = outbox_park_orphans()
    followed = outbox_origins_retry()
    due = claiming.due_commands().count()
    workers = settings.Q_CLUSTER.get("workers", 1)
    # one drain per batch of due rows, at most one per worker: more would just queue up
    drains = min(workers, -(-due // settings.OUTBOX_BATCH_SIZE)) if due else 0
    for _ in range(drains):
        wake(None)
    return {"due": due, "drains": drains, "parked": parked, "origins_followed": followed}


def drift_check() -> dict[str, int]:
    """Scheduled nightly: the drift check over AIQ_DRIFT_DAYS for every entity."""
    totals: dict[str, int] = {}
    for entity in Entity.objects.order_by("pk"):
        counts = check(
            entity=entity, days=settings.AIQ_DRIFT_DAYS, client=AiqClient.for_entity(entity)
        )
        for name, n in counts.items():
            totals[name] = totals.get(name, 0) + n
    return totals
