"""Waking drains: enqueue a django-q2 task that drains due outbox rows (ledger/outbox/tasks.py).

Enqueueing names the task by its dotted path, so the services that wake workers need nothing
of the task module (which calls those services).
"""

import logging
import os
import threading

from django.conf import settings
from django_q.brokers import get_broker
from django_q.brokers.redis_broker import Redis
from django_q.conf import Conf
from django_q.tasks import async_task

log = logging.getLogger(__name__)

DRAIN = "ledger.outbox.tasks.drain"
# (process id, broker settings) -> its Redis broker (None: not Redis)
_brokers: dict[tuple[int, str], Redis | None] = {}
_brokers_lock = threading.Lock()


def _broker():
    """This process's Redis broker, made once: django-q2 makes a broker per task otherwise,
    i.e. a new Redis connection (connect and two CLIENT SETINFO) for every wake. Its
    connection pool is thread-safe; a forked process makes its own, and a change of django-q2's
    broker settings (tests switch to the ORM broker) makes a new one. None (django-q2 picks its
    broker per task) with the ORM broker or a synchronous configuration."""
    names = ("BROKER_CLASS", "ORM", "REDIS", "DJANGO_REDIS")
    key = (os.getpid(), repr([getattr(Conf, name, None) for name in names]))
    if key not in _brokers:
        with _brokers_lock:
            if key not in _brokers:
                broker = get_broker()
                _brokers.clear()
                _brokers[key] = broker if isinstance(broker, Redis) else None
    return _brokers[key]


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
            broker=_broker(),
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
                broker=_broker(),
            )
        except Exception:  # noqa: BLE001 - the rows are committed; the sweeper will find them
            log.exception("outbox: could not enqueue a drain for %s", command_ids[:10])
            return
