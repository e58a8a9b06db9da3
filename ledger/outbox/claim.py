"""Claiming outbox rows, leases and backoff: the part of the state machine that is pure database.

A row is *due* when it is pending or uncertain and its next_attempt_at has passed, or when it is
in flight and its lease has run out (the worker holding it died or hung). Its dependency, if
any, must be confirmed first. Claiming sets in_flight, a lease and attempts + 1 in one committed
UPDATE *before* any call to AIQ, so a crash after the call leaves a row that the next claimer
knows to read back first.

Concurrency: on PostgreSQL candidates are picked with SELECT ... FOR UPDATE SKIP LOCKED so
workers do not queue behind each other; on SQLite the project's transactions are IMMEDIATE
(one writer at a time). On both, each row is then claimed by a conditional UPDATE that repeats
the due condition and the state we saw, and only a row count of 1 counts as ours; that is what
makes a second delivery of the same task harmless.
"""

import random
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from ledger.models import OutboxCommand

State = OutboxCommand.State
# States that can still change by themselves (the sweeper and the health figure look at these).
OPEN_STATES = (State.PENDING, State.UNCERTAIN, State.IN_FLIGHT)
# States after which the dependents of a command can never run.
DEAD_STATES = (State.FAILED, State.NEEDS_PERSON, State.CANCELLED)


@dataclass(frozen=True)
class Claim:
    """A row this worker holds. `attempt` fences every later write: a worker whose lease was
    taken over finds attempts changed and its late result is discarded (read back decides)."""

    command_id: int
    previous_state: str
    attempt: int
    lease_until: datetime
    # the row was sent to AIQ at least once (sent_at set): only then can a read-back find it
    sent: bool = True

    @property
    def must_read_back(self) -> bool:
        # uncertain: the last send may have committed; in_flight: the holder died mid-call.
        # A row never sent (its holder died before sending) has nothing to read back.
        return self.sent and self.previous_state in (State.UNCERTAIN, State.IN_FLIGHT)


def settle_delay() -> timedelta:
    """How long AIQ may still commit a write after we sent it (OUTBOX_SETTLE_SECONDS)."""
    return timedelta(seconds=settings.OUTBOX_SETTLE_SECONDS)


def due_q(now: datetime) -> Q:
    waiting = Q(state__in=[State.PENDING, State.UNCERTAIN]) & (
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    )
    # a holder that died may have sent: its write can still land until the settle period
    # after that send is over, so the row is not read back (and resent) before then
    lease_lapsed = Q(state=State.IN_FLIGHT, lease_until__lt=now) & (
        Q(sent_at__isnull=True) | Q(sent_at__lte=now - settle_delay())
    )
    dependency_ok = Q(depends_on__isnull=True) | Q(depends_on__state=State.CONFIRMED)
    return (waiting | lease_lapsed) & dependency_ok


def due_commands(now: datetime | None = None):
    return OutboxCommand.objects.filter(due_q(now or timezone.now()))


def backoff_delay(attempts: int) -> timedelta:
    """Exponential backoff with full jitter between half and all of the step."""
    base = settings.OUTBOX_BACKOFF_BASE_MS / 1000
    step = min(settings.OUTBOX_BACKOFF_MAX_SECONDS, base * (2 ** max(attempts - 1, 0)))
    return timedelta(seconds=step * random.uniform(0.5, 1.0))  # noqa: S311 - not security


def _lease_until(now: datetime) -> datetime:
    return now + timedelta(seconds=settings.OUTBOX_LEASE_SECONDS)


def claim_one(command_id: int, previous_state: str, now: datetime) -> Claim | None:
    """Conditional UPDATE of one row; None when someone else got there first."""
    lease_until = _lease_until(now)
    claimed = (
        OutboxCommand.objects.filter(pk=command_id, state=previous_state)
        .filter(due_q(now))
        .update(
            state=State.IN_FLIGHT,
            lease_until=lease_until,
            attempts=F("attempts") + 1,
            updated_at=now,
        )
    )
    if claimed != 1:
        return None
    attempt, sent_at = OutboxCommand.objects.filter(pk=command_id).values_list(
        "attempts", "sent_at"
    )[0]
    return Claim(command_id, previous_state, attempt, lease_until, sent_at is not None)


def claim_batch(
    *, limit: int, prefer: list[int] | None = None, entity_id: int | None = None
) -> list[Claim]:
    """Claim up to `limit` due rows (the preferred ids first) in one short transaction.

    A constant number of statements per batch, not two per row: one conditional UPDATE per
    state seen (it repeats that state and the due condition, like claim_one), then one read of
    which rows now carry our lease with exactly one attempt more than we saw."""
    now = timezone.now()
    lease_until = _lease_until(now)
    with transaction.atomic():
        candidates = due_commands(now)
        if entity_id is not None:
            candidates = candidates.filter(entity_id=entity_id)
        if connection.vendor == "postgresql":
            # of=self: lock the outbox rows, not the dependency rows joined in for the check
            candidates = candidates.select_for_update(skip_locked=True, of=("self",))
        fields = ("pk", "state", "attempts", "sent_at")
        rows: list[tuple[int, str, int, datetime | None]] = []
        if prefer:
            rows += list(candidates.filter(pk__in=prefer).values_list(*fields)[:limit])
        if len(rows) < limit:
            # oldest due first, so nothing starves behind a stream of new work
            rest = candidates.exclude(pk__in=[row[0] for row in rows]).order_by(
                F("next_attempt_at").asc(nulls_first=True), "pk"
            )
            rows += list(rest.values_list(*fields)[: limit - len(rows)])
        if not rows:
            return []
        for state in {row[1] for row in rows}:
            OutboxCommand.objects.filter(
                pk__in=[row[0] for row in rows if row[1] == state], state=state
            ).filter(due_q(now)).update(
                state=State.IN_FLIGHT,
                lease_until=lease_until,
                attempts=F("attempts") + 1,
                updated_at=now,
            )
        held = dict(
            OutboxCommand.objects.filter(
                pk__in=[row[0] for row in rows], state=State.IN_FLIGHT, lease_until=lease_until
            ).values_list("pk", "attempts")
        )
    return [
        Claim(pk, state, attempts + 1, lease_until, sent_at is not None)
        for pk, state, attempts, sent_at in rows
        if held.get(pk) == attempts + 1
    ]


def renew(claims: list[Claim]) -> list[Claim]:
    """Extend the leases of a batch's rows not yet run, before each command of the batch: a
    row waits its turn behind slow AIQ calls without its lease running out (it would be
    claimed again elsewhere, each time spending an attempt, and parked although never sent).

    One UPDATE: a batch's rows share one lease value, which only their holder sets. A row
    whose lease was lost meanwhile (claimed again elsewhere) no longer carries it and is left
    out of the returned claims."""
    if not claims:
        return []
    lease_until = _lease_until(timezone.now())
    held = OutboxCommand.objects.filter(
        pk__in=[claim.command_id for claim in claims],
        state=State.IN_FLIGHT,
        lease_until__in={claim.lease_until for claim in claims},
    )
    renewed = held.update(lease_until=lease_until)
    if renewed != len(claims):
        still = set(
            OutboxCommand.objects.filter(
                pk__in=[claim.command_id for claim in claims],
                state=State.IN_FLIGHT,
                lease_until=lease_until,
            ).values_list("pk", flat=True)
        )
        claims = [claim for claim in claims if claim.command_id in still]
    return [replace(claim, lease_until=lease_until) for claim in claims]


def fair_share(limit: int, workers: int, entity_id: int | None = None) -> int:
    """How many due rows one of `workers` drains should claim next: its share of what is due
    now, at most `limit`. A drain that took a full batch of the last few rows would leave the
    other workers idle while it works through them one AIQ call at a time; sharing them out
    keeps every worker busy to the end of a bulk approval (1 when nothing is visibly due, so
    the claim itself decides)."""
    if workers <= 1:
        return limit
    due = due_commands()
    if entity_id is not None:
        due = due.filter(entity_id=entity_id)
    visible = len(due.values_list("pk", flat=True)[: limit * workers])
    return max(1, min(limit, -(-visible // workers)))


def fenced(claim: Claim):
    """The row, only while this claim still holds it."""
    return OutboxCommand.objects.filter(
        pk=claim.command_id, state=State.IN_FLIGHT, attempts=claim.attempt
    )


def release_unstarted(claim: Claim) -> None:
    """Give back a row claimed but not started (time budget ran out): undo the attempt."""
    fenced(claim).update(
        state=claim.previous_state if claim.previous_state != State.IN_FLIGHT else State.UNCERTAIN,
        lease_until=None,
        attempts=F("attempts") - 1,
        next_attempt_at=timezone.now(),
    )
