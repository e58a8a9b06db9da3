"""Services for the pull from AIQ: start one (on demand or scheduled) and run it with progress.

Progress lives in SyncState(object_type="all") for the UI's progress bar (progress_done of
progress_total steps, the running step's name and rows read so far, running, last_error); each
incremental object type keeps its own cursor row. A second start while one runs is refused, so
two pulls never race on the same rows.
"""

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone
from django_q.tasks import async_task

from ledger.aiq.client import AiqClient
from ledger.models import Customer, CustomerStatement, Entity, SyncState
from ledger.sync import intercompany, pull, statements
from staff.models import Role
from staff.services import audit_log, user_has_role

log = logging.getLogger(__name__)

ALL = "all"
LISTS = [
    ("banks", pull.sync_banks),
    ("gl_accounts", pull.sync_gl_accounts),
    ("tax_codes", pull.sync_tax_codes),
    ("departments", pull.sync_departments),
    ("customers", pull.sync_customers),
    ("suppliers", pull.sync_suppliers),
    ("intercompany", intercompany.sync_intercompany_connections),
]
STEPS = [name for name, _ in LISTS] + ["transactions", "allocations", "balances", "statements"]
# rows read are written to SyncState at most this often (the end of a step always is)
ROWS_EVERY_SECONDS = 0.5


class SyncAlreadyRunning(Exception):
    pass


def _state(entity, object_type) -> SyncState:
    state, _ = SyncState.objects.get_or_create(entity=entity, object_type=object_type)
    return state


def sync_claim(*, entity: Entity, actor=None) -> SyncState:
    """Mark a pull as running (refusing if one already is) and audit who asked for it."""
    with transaction.atomic():
        _state(entity, ALL)
        state = SyncState.objects.select_for_update().get(entity=entity, object_type=ALL)
        now = timezone.now()
        if state.running and not claim_expired(state, now):
            raise SyncAlreadyRunning(f"A pull from AIQ for {entity.name} is already running.")
        state.running = True
        state.last_started_at = now
        state.heartbeat_at = now
        state.progress_done = 0
        state.progress_total = len(STEPS)
        state.progress_step = ""
        state.progress_rows = 0
        state.last_error = ""
        state.save()
        audit_log(
            actor=actor,
            action="sync.start",
            obj=entity,
            summary=f"pull from AIQ for {entity.name}",
        )
    return state


def stale_after() -> timedelta:
    """A pull's task is killed by django-q2 at Q_TIMEOUT_SECONDS; a claim whose heartbeat
    (written with every progress update) is older than that belongs to a pull that is dead."""
    return timedelta(seconds=settings.Q_TIMEOUT_SECONDS)


def claim_expired(state: SyncState, now) -> bool:
    last_sign = max(filter(None, [state.last_started_at, state.heartbeat_at]), default=None)
    return last_sign is None or now - last_sign >= stale_after()


def sync_start(*, entity: Entity, actor=None) -> SyncState:
    """On demand (UI) or scheduled: claim, then run in a worker after commit."""
    state = sync_claim(entity=entity, actor=actor)
    transaction.on_commit(lambda: _enqueue_run(entity.pk))
    return state


def _enqueue_run(entity_id: int) -> None:
    """The run in a worker: the task is named by its dotted path (ledger/sync/tasks.py)."""
    async_task(
        "ledger.sync.tasks.run", entity_id, group="aiq-sync", task_name=f"aiq-sync-{entity_id}"
    )


def _progress(entity, **fields) -> None:
    SyncState.objects.filter(entity=entity, object_type=ALL).update(
        heartbeat_at=timezone.now(), **fields
    )


class _RowsReporter:
    """What a step calls with its rows read so far. Writes them to SyncState at most every
    ROWS_EVERY_SECONDS, so a page of rows never waits on a progress write."""

    def __init__(self, entity, step: str):
        self.entity = entity
        self.rows: int | None = None
        self._written_at = time.monotonic()
        _progress(entity, progress_step=step, progress_rows=0)

    def __call__(self, rows: int) -> None:
        self.rows = rows
        if time.monotonic() - self._written_at >= ROWS_EVERY_SECONDS:
            self._written_at = time.monotonic()
            _progress(self.entity, progress_rows=rows)


def sync_run(*, entity: Entity, client=None) -> dict[str, int]:
    """Run every step; one failing step is recorded and the others still run."""
    counts: dict[str, int] = {}
    errors: list[str] = []
    done = 0
    if client is None:
        try:
            client = AiqClient.for_entity(entity)
        except Exception as exc:  # noqa: BLE001 - e.g. missing credentials: recorded, run ends
            errors.append(f"connect: {exc}")

    def step(name, fn):
        """fn(progress) -> its count for the run's summary."""
        nonlocal done
        reporter = _RowsReporter(entity, name)
        try:
            if client is None:
                raise RuntimeError("not connected to AIQ")
            counts[name] = fn(reporter)
            if reporter.rows is None:  # a one-call step: its count is its rows
                reporter.rows = counts[name]
        except Exception as exc:  # noqa: BLE001 - reported in SyncState, next steps still run
            log.exception("sync %s %s failed", entity.pk, name)
            errors.append(f"{name}: {exc}")
        done += 1
        _progress(entity, progress_done=done, progress_rows=reporter.rows or 0)

    for name, fn in LISTS:
        step(name, lambda progress, fn=fn: fn(client, entity))
    paying_ids: set[int] = set()

    def transactions(progress):
        cursor = _state(entity, "transactions")
        until = timezone.now()
        since = pull.window(cursor.last_modified_cursor, until)
        result = pull.sync_transactions(client, entity, since, until, paying_ids, progress)
        # the cursor moves only after the whole window was read
        SyncState.objects.filter(pk=cursor.pk).update(
            last_started_at=until,
            last_modified_cursor=until,
            last_finished_at=timezone.now(),
        )
        return result

    step("transactions", transactions)
    step(
        "allocations", lambda progress: pull.sync_allocations(client, entity, paying_ids, progress)
    )
    step("balances", lambda progress: pull.sync_balances(client, entity))
    # last: it picks its customers from what the steps above read (statements_due)
    step(
        "statements",
        lambda progress: statements.sync_statements(
            client, entity, statements.statements_due(entity), progress
        ),
    )

    now = timezone.now()
    with transaction.atomic():
        SyncState.objects.filter(entity=entity, object_type=ALL).update(
            running=False,
            last_finished_at=now,
            progress_done=len(STEPS),
            last_error="; ".join(errors)[:4000],
        )
        if not errors:
            Entity.objects.filter(pk=entity.pk).update(last_synced_at=now)
        audit_log(
            actor=None,
            action="sync.finish" if not errors else "sync.fail",
            obj=entity,
            summary=("; ".join(errors) or f"pulled {counts}")[:500],
        )
    return counts


def sync_progress(*, entity: Entity) -> SyncState:
    """For the UI's progress bar."""
    return _state(entity, ALL)


def statement_refresh(*, customer: Customer, actor, client=None) -> CustomerStatement:
    """Pull one customer's statement from AIQ now (the customer page's "Refresh from AIQ").
    AIQ's errors (ledger.aiq.errors.AiqError) reach the caller; the stored statement is then
    left as it was."""
    if not user_has_role(actor, Role.CLERK):
        raise PermissionDenied("Only staff can refresh a statement from AIQ.")
    if client is None:
        client = AiqClient.for_entity(customer.entity)
    statements.pull_statements(client, customer.entity, [customer.code], requested_by=actor)
    return CustomerStatement.objects.get(customer=customer)
