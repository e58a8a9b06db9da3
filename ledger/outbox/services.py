"""Outbox services: the only way work toward AIQ is queued.

Each kind's payload is a dataclass, checked here when it is enqueued (ledger/outbox/steps.py:
payload_check): ledger's kinds in ledger/outbox/payloads.py, another app's next to its executor.
Amounts are decimal strings, dates ISO "YYYY-MM-DD"; never secrets.

Commands with origin_type "allocation_plan" move their plan from sent to confirmed when all of
them are confirmed, and to failed when one fails permanently (ledger/outbox/mirror.py).

States (see ledger/outbox/runner.py): pending -> in_flight -> confirmed | pending (temporary
error, backoff) | uncertain (may have committed: read back first) | failed (AIQ refused) |
needs_person (attempts used up, duplicates found, bad payload); pending/uncertain/failed/
needs_person -> cancelled (outbox_cancel); failed/needs_person/uncertain -> pending
(outbox_retry).
"""

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.bulk import insert_rows
from ledger.models import Entity, OutboxCommand
from ledger.outbox.claim import DEAD_STATES
from ledger.outbox.origins import origin_follow
from ledger.outbox.runner import park_dependents
from ledger.outbox.steps import payload_check
from ledger.outbox.wake import wake_for
from staff.models import Role
from staff.services import audit_log, user_has_role

State = OutboxCommand.State


def outbox_enqueue(
    *,
    entity: Entity,
    kind: str,
    payload: dict,
    external_reference: str,
    depends_on: OutboxCommand | None = None,
    origin_type: str = "",
    origin_id: int | None = None,
    created_by=None,
) -> OutboxCommand:
    """Queue one AIQ write; idempotent on (entity, external_reference).

    Call inside the transaction of the decision that causes the write, so the command exists
    if and only if the decision was committed. The worker is woken after commit.
    """
    payload_check(kind, payload)
    existing = OutboxCommand.objects.filter(
        entity=entity, external_reference=external_reference
    ).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            command = OutboxCommand.objects.create(
                entity=entity,
                kind=kind,
                payload=payload,
                external_reference=external_reference,
                depends_on=depends_on,
                origin_type=origin_type,
                origin_id=origin_id,
                created_by=created_by,
            )
    except IntegrityError:
        return OutboxCommand.objects.get(entity=entity, external_reference=external_reference)
    _wake_after_commit(command.pk)
    return command


@dataclass(eq=False)
class NewCommand:
    """outbox_enqueue's arguments, for outbox_enqueue_many. depends_on may be another
    NewCommand of the same call (its row is inserted first) or a row already saved."""

    entity: Entity
    kind: str
    payload: dict
    external_reference: str
    depends_on: "NewCommand | OutboxCommand | None" = None
    origin_type: str = ""
    origin_id: int | None = None
    created_by: object = None

    @property
    def key(self) -> tuple[int, str]:
        return (self.entity.pk, self.external_reference)


# references per existence look-up (stays under SQLite's 999-variable builds)
_LOOKUP_BATCH = 900


def outbox_enqueue_many(commands: list[NewCommand], *, new_references: bool = False) -> list[int]:
    """outbox_enqueue for many commands: the same rows; their ids in the commands' order.

    Idempotent on (entity, external_reference) like outbox_enqueue: a reference already queued,
    or given twice, yields the existing row. Rows are inserted dependencies first, one
    multi-row INSERT per level (core.bulk.insert_rows) that skips a reference already there
    (ON CONFLICT DO NOTHING on the unique constraint: no savepoint, and a concurrent enqueue of
    the same reference is waited for); the rows it skipped are then read (the winner's).
    `new_references`: the caller made the references from rows of its own transaction (a
    payment just inserted), so nothing can hold them yet and the up-front look-up is skipped;
    a conflict would still be found by the INSERT. Call inside the decision's transaction;
    workers wake once after commit."""
    for command in commands:
        payload_check(command.kind, command.payload)
    done = {} if new_references else _already_queued(commands)
    created: list[int] = []
    todo = commands
    while todo:
        level: dict[tuple[int, str], NewCommand] = {}
        later = []
        for command in todo:
            if command.key in done or command.key in level:
                continue
            if isinstance(command.depends_on, NewCommand) and command.depends_on.key not in done:
                later.append(command)
            else:
                level[command.key] = command
        if not level and later:
            raise ValueError(
                f"{later[0].external_reference} depends on a command that is not enqueued "
                "by this call."
            )
        rows = insert_rows(
            OutboxCommand,
            _ENQUEUED,
            [
                (
                    c.entity.pk,
                    c.kind,
                    c.payload,
                    c.external_reference,
                    _saved(c.depends_on, done),
                    c.origin_type,
                    c.origin_id,
                    getattr(c.created_by, "pk", None),
                )
                for c in level.values()
            ],
            returning=("entity", "external_reference", "id"),
            skip_conflicts_on=("entity", "external_reference"),
        )
        for entity_id, reference, pk in rows:
            done[(entity_id, reference)] = pk
            created.append(pk)
        skipped = [c for key, c in level.items() if key not in done]
        if skipped:  # queued meanwhile by another transaction: theirs stands
            done.update(_already_queued(skipped))
        todo = later
    _wake_after_commit_many(created)
    return [done[command.key] for command in commands]


_ENQUEUED = (
    "entity",
    "kind",
    "payload",
    "external_reference",
    "depends_on",
    "origin_type",
    "origin_id",
    "created_by",
)


def _already_queued(commands: list[NewCommand]) -> dict[tuple[int, str], int]:
    """(entity id, external reference) -> id of the rows already queued."""
    done = {}
    refs_by_entity: dict[int, set[str]] = {}
    for command in commands:
        refs_by_entity.setdefault(command.entity.pk, set()).add(command.external_reference)
    for entity_id, refs in refs_by_entity.items():
        refs = sorted(refs)
        for start in range(0, len(refs), _LOOKUP_BATCH):
            found = OutboxCommand.objects.filter(
                entity_id=entity_id, external_reference__in=refs[start : start + _LOOKUP_BATCH]
            ).values_list("external_reference", "id")
            done.update(((entity_id, reference), pk) for reference, pk in found)
    return done


def _saved(depends_on, done) -> int | None:
    """The id of the row a command depends on."""
    if isinstance(depends_on, NewCommand):
        return done[depends_on.key]
    return None if depends_on is None else depends_on.pk


class _Wake:
    """The one on-commit wake of a transaction, with every command it enqueued."""

    def __init__(self) -> None:
        self.command_ids: list[int] = []

    def __call__(self) -> None:
        _wake_workers(self.command_ids)


def _wake_after_commit(command_id: int) -> None:
    _wake_after_commit_many([command_id])


def _wake_after_commit_many(command_ids: list[int]) -> None:
    """Wake workers once per transaction, not once per command: a bulk approval enqueues
    hundreds of commands, and a queued task per command cost more than the work it woke.

    Django keeps a transaction's hooks in connection.run_on_commit and drops those of a
    savepoint that rolls back; a hook still listed was registered in this transaction outside
    any rolled-back savepoint, so adding our ids to it wakes exactly when our rows commit."""
    if not command_ids:
        return
    connection = transaction.get_connection()
    for _savepoints, hook, _robust in connection.run_on_commit:
        if isinstance(hook, _Wake):
            hook.command_ids.extend(command_ids)
            return
    hook = _Wake()
    hook.command_ids.extend(command_ids)
    transaction.on_commit(hook)


def _wake_workers(command_ids: list[int]) -> None:
    """Nudge workers; if this is lost the sweeper finds the rows anyway."""
    wake_for(command_ids)


# States a person may retry from: the command never reached a verdict in AIQ, or it was refused
# for a reason that has since been fixed (e.g. a missing customer created in AIQ).
RETRYABLE = (State.FAILED, State.NEEDS_PERSON, State.UNCERTAIN, State.PENDING)
# Cancel only what has not been confirmed and is not being sent right now.
CANCELLABLE = (State.PENDING, State.UNCERTAIN, State.FAILED, State.NEEDS_PERSON)


def _require_approver(actor) -> None:
    if not user_has_role(actor, Role.APPROVER):
        raise PermissionDenied("Only an approver can retry or cancel work sent to AIQ.")


def outbox_retry(*, command: OutboxCommand, actor) -> OutboxCommand:
    """Send again now with fresh attempts. A command that may have reached AIQ stays
    uncertain, so the retry reads back before sending: a retry never doubles a write."""
    _require_approver(actor)
    with transaction.atomic():
        command = OutboxCommand.objects.select_for_update().get(pk=command.pk)
        if command.state not in RETRYABLE:
            raise ValidationError(
                f"A {command.get_state_display().lower()} command cannot be retried."
            )
        before = command.state
        # needs_person/failed rows may have been sent ambiguously before they were parked
        command.state = State.UNCERTAIN if command.attempts else State.PENDING
        command.attempts = 0
        command.next_attempt_at = timezone.now()
        command.lease_until = None
        command.save(
            update_fields=["state", "attempts", "next_attempt_at", "lease_until", "updated_at"]
        )
        audit_log(
            actor=actor,
            action="outbox.retry",
            obj=command,
            summary=f"retry {command.kind} {command.external_reference}",
            before={"state": before, "error": command.last_error_message[:200]},
            after={"state": command.state},
        )
        _wake_after_commit(command.pk)
    return command


def outbox_cancel(*, command: OutboxCommand, actor, reason: str = "") -> OutboxCommand:
    """Stop a command that was not confirmed. It may still have reached AIQ earlier (uncertain),
    so the audit entry says so; dependents are parked for a person."""
    _require_approver(actor)

    with transaction.atomic():
        command = OutboxCommand.objects.select_for_update().get(pk=command.pk)
        if command.state not in CANCELLABLE:
            raise ValidationError(
                f"A {command.get_state_display().lower()} command cannot be cancelled"
                + (
                    " (it is in AIQ: reverse it instead)."
                    if command.state == State.CONFIRMED
                    else " (it is being sent right now; try again in a minute)."
                )
            )
        before = command.state
        command.state = State.CANCELLED
        command.lease_until = None
        command.save(update_fields=["state", "lease_until", "updated_at"])
        audit_log(
            actor=actor,
            action="outbox.cancel",
            obj=command,
            summary=(
                f"cancelled {command.kind} {command.external_reference}"
                + (" (it may have reached AIQ: check there)" if before == State.UNCERTAIN else "")
                + (f": {reason}" if reason else "")
            ),
            before={"state": before},
            after={"state": command.state},
        )
        park_dependents(command, f"depends on {command.external_reference} (cancelled)")
        # what caused it (a plan, a refund) will not be completed: failed, never left "sent"
        origin_follow(command, verdict=State.FAILED)
    return command


def outbox_park_orphans() -> int:
    """Safety net for the sweeper: rows whose dependency is dead are parked for a person."""

    parked = 0
    dead = OutboxCommand.objects.filter(
        state__in=DEAD_STATES,
        dependents__state__in=[State.PENDING, State.UNCERTAIN],
    ).distinct()
    for command in dead:
        with transaction.atomic():
            parked += park_dependents(
                command, f"depends on {command.external_reference} ({command.state})"
            )
    return parked
