"""Waking drains: enqueue a django-q2 task that drains due outbox rows (ledger/outbox/tasks.py).

Enqueueing names the task by its dotted path, so the services that wake workers need nothing
of the task module (which calls those services).
"""

import logging

from django.conf import settings
from django_q.tasks import async_task

log = logging.getLogger(__name__)

DRAIN = "ledger.outbox.tasks.drain"


def wake(command_id: int | None = None) -> None:
    """Enqueue a drain that starts with this row. Losing it only delays the row (sweeper)."""
    try:
        async_task(
            DRAIN,
            prefer=[command_id] if command_id else None,
            task_name=f"outbox-drain-{command_id or 'any'}",
            group="outbox",
            # results of successful drains are not worth a row each; failures still are saved
            save=False,
        )
    except Exception:  # noqa: BLE001 - the row is committed; the sweeper will find it
        log.exception("outbox: could not enqueue a drain for %s", command_id)


def wake_for(command_ids: list[int]) -> None:
    """Wake drains for commands just committed: one per OUTBOX_BATCH_SIZE of them, at most
    one per worker (a drain keeps claiming until nothing is due, so more would only queue)."""
    batch = settings.OUTBOX_BATCH_SIZE
    drains = max(1, min(settings.Q_CLUSTER.get("workers", 1), -(-len(command_ids) // batch)))
    for n in range(drains):
        try:
            async_task(
                DRAIN,
                prefer=command_ids[n * batch : (n + 1) * batch] or None,
                task_name="outbox-drain",
                group="outbox",
                save=False,
            )
        except Exception:  # noqa: BLE001 - the rows are committed; the sweeper will find them
            log.exception("outbox: could not enqueue a drain for %s", command_ids[:10])
            return
