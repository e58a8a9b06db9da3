"""Run claimed outbox rows against AIQ: read back when unsure, send, and record the outcome.

Outcomes (each written by one fenced UPDATE, so a worker that lost its lease writes nothing;
a drain writes them on a second thread while it calls AIQ for the next row, see OutcomeWriter):
- confirmed: the write is in AIQ; the mirror is updated in the same transaction.
- pending + backoff: AIQ said no for a reason that passes (not committed), try again later.
- uncertain + backoff: the write may have committed (timeout, dropped answer); the next
  attempt reads back before sending.
- failed: AIQ refused permanently (ErrorCode/ErrorMessage kept); dependents need a person.
- needs_person: attempts exhausted, several hits on read back, a bad payload, or no executor.
"""

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta

from django.conf import settings
from django.db import connections, transaction
from django.utils import timezone

from ledger.aiq import errors
from ledger.aiq.client import AiqClient
from ledger.duplicates import duplicate_flag_extra
from ledger.models import OutboxCommand
from ledger.outbox import claim as claiming
from ledger.outbox.executors import EXECUTORS, PayloadError, resolve_payload
from ledger.outbox.mirror import mirror_apply
from ledger.outbox.origins import origin_follow
from ledger.outbox.steps import StepRefused, StepUncertain
from staff.services import audit_log

log = logging.getLogger(__name__)
State = OutboxCommand.State


def default_client_factory(entity):
    return AiqClient.for_entity(entity)


def _audit(command: OutboxCommand, action: str, summary: str, before: str, after: str, **extra):
    audit_log(
        actor=None,
        action=action,
        obj=command,
        summary=f"{command.kind} {command.external_reference}: {summary}"[:500],
        before={"state": before},
        after={"state": after, **extra},
    )


def park_dependents(command: OutboxCommand, reason: str) -> int:
    """Commands waiting on a command that will never be confirmed can only be resolved by a
    person; park them (and theirs) now instead of letting them wait for ever."""
    parked = 0
    waiting = list(
        OutboxCommand.objects.select_for_update().filter(
            depends_on=command, state__in=[State.PENDING, State.UNCERTAIN]
        )
    )
    for dependent in waiting:
        before = dependent.state
        dependent.state = State.NEEDS_PERSON
        dependent.lease_until = None
        dependent.last_error_code = "DEPENDENCY"
        dependent.last_error_message = reason[:2000]
        dependent.save(
            update_fields=[
                "state",
                "lease_until",
                "last_error_code",
                "last_error_message",
                "updated_at",
            ]
        )
        _audit(dependent, "outbox.park", reason, before, dependent.state)
        parked += 1 + park_dependents(dependent, f"depends on {dependent.external_reference}")
    return parked


def _finish(
    claim: claiming.Claim,
    command: OutboxCommand,
    state: str,
    *,
    code="",
    message="",
    result=None,
    payload=None,
    extra_ids=(),
):
    """Write one outcome under the claim's fence; False if the lease was lost meanwhile.

    One conditional UPDATE (fenced: still in flight with our attempt) rather than a locking
    read and a save: the row lock it takes on PostgreSQL, or the write lock on SQLite, is held
    until the mirror and audit rows of the same transaction are written."""
    now = timezone.now()
    changes = {
        "state": state,
        "lease_until": None,
        "last_error_code": code[:100],
        "last_error_message": message[:4000],
        "updated_at": now,
    }
    if state in (State.PENDING, State.UNCERTAIN):
        changes["next_attempt_at"] = now + claiming.backoff_delay(claim.attempt)
    if state == State.UNCERTAIN and command.sent_at is not None:
        # AIQ may still commit the last send: no read-back (and resend) before it has settled
        changes["next_attempt_at"] = max(
            changes["next_attempt_at"], command.sent_at + claiming.settle_delay()
        )
    if state == State.CONFIRMED:
        changes.update(result=result or {}, confirmed_at=now)
    with transaction.atomic():
        if claiming.fenced(claim).update(**changes) != 1:
            log.warning("outbox %s: lease lost before recording %s", claim.command_id, state)
            if state == State.CONFIRMED:
                late_answer(command, result or {})
            return False
        for name, value in changes.items():
            setattr(command, name, value)
        if state == State.CONFIRMED:
            try:
                with transaction.atomic():  # a mirror problem must not undo the confirmation
                    notes = mirror_apply(command, payload or command.payload, command.result)
            except Exception as exc:  # noqa: BLE001 - recorded, and the next sync corrects it
                log.exception("outbox %s: mirror update failed", command.pk)
                notes = [f"mirror update failed: {exc.__class__.__name__}: {exc}"]
            _audit(
                command,
                "outbox.confirm",
                "; ".join(notes) or "confirmed in AIQ",
                claim.previous_state,
                state,
                result=command.result,
            )
            if extra_ids:
                duplicate_flag_extra(command, extra_ids, found_by="read_back")
            unpark_dependents(command)
        elif state in (State.FAILED, State.NEEDS_PERSON):
            _audit(
                command,
                f"outbox.{'fail' if state == State.FAILED else 'park'}",
                f"{code} {message}",
                claim.previous_state,
                state,
            )
            park_dependents(command, f"depends on {command.external_reference} ({state})")
            origin_follow(command)  # the plan, refund... that caused it (its app decides)
    return True


def _retry_later(
    record: Callable, claim: claiming.Claim, command: OutboxCommand, state: str, code: str, msg: str
):
    if claim.attempt >= command.max_attempts:
        record(
            claim,
            command,
            State.NEEDS_PERSON,
            code=code,
            message=f"gave up after {claim.attempt} attempts: {msg}",
        )
    else:
        record(claim, command, state, code=code, message=msg)


class OutcomeWriter:
    """Writes a drain's outcomes (_finish) on a second thread while it calls AIQ for the next row.

    Recording a confirmation takes a handful of statements (the fence, the mirror, the audit
    row, the commit); written inline, their round trips add to every command's time, here they
    overlap the next command's AIQ call, which is mostly waiting for the network. Nothing else
    changes: every row was claimed (committed in flight) before its AIQ call, each outcome is
    still one fenced transaction, and at most one outcome is outstanding at a time.

    The drain calls flush() before it claims again, so a dependent of a command confirmed in
    the last batch is due for the next claim, and check() before each command, so an error
    writing an outcome stops the drain (its rows stay in flight until their leases run out
    and are read back) instead of being taken for the next command's error.

    With overlap=False (the caller holds a transaction, which another connection could not
    see) it writes inline, as run_claim does on its own."""

    def __init__(self, overlap: bool) -> None:
        self._pool = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox-outcomes")
            if overlap
            else None
        )
        self._pending: Future | None = None
        self._error: BaseException | None = None

    def __call__(self, *args, **kwargs) -> None:
        if self._pool is None:
            _finish(*args, **kwargs)
            return
        self._wait()
        self._pending = self._pool.submit(_finish, *args, **kwargs)

    def _wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            self._error = self._error or pending.exception()

    def check(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def flush(self) -> None:
        self._wait()
        self.check()

    def close(self) -> None:
        """Wait for the last outcome and close the thread's database connection (an error
        writing that outcome is kept for check())."""
        if self._pool is None:
            return
        try:
            self._wait()
            self._pool.submit(connections.close_all).result()
        finally:
            self._pool.shutdown()


def load_claimed(claims: list[claiming.Claim]) -> dict[int, OutboxCommand]:
    """The claimed rows in one query. Safe to read ahead: while a claim holds a row nobody
    else writes it (cancel and retry refuse in-flight rows), and its dependency was confirmed
    (final) when it was claimed; a lease lost meanwhile is caught by the fence in _finish."""
    return OutboxCommand.objects.select_related("depends_on", "entity").in_bulk(
        [claim.command_id for claim in claims]
    )


def _before_send(claim: claiming.Claim, command: OutboxCommand, evidence: dict | None) -> bool:
    """Record, under the claim's fence and committed before the call, that a send starts now
    (sent_at: the settle period runs from here) with what AIQ held before it (evidence), and
    renew the row's lease for the send. False (send nothing) if the lease was lost."""
    now = timezone.now()
    changes = {
        "sent_at": now,
        "lease_until": now + timedelta(seconds=settings.OUTBOX_LEASE_SECONDS),
        "updated_at": now,
    }
    if evidence is not None:
        changes["evidence"] = {**command.evidence, **evidence}
    if claiming.fenced(claim).update(**changes) != 1:
        return False
    command.sent_at = now
    if evidence is not None:
        command.evidence = changes["evidence"]
    return True


def late_answer(command: OutboxCommand, result: dict) -> None:
    """AIQ answered a send after its lease had run out (the row went on without it). The answer
    is kept on the row; if the row was meanwhile confirmed with another AIQ transaction, both
    are in AIQ: the later one is listed for repair."""
    with transaction.atomic():
        row = OutboxCommand.objects.select_for_update().filter(pk=command.pk).first()
        if row is None:
            return
        answers = list(row.evidence.get("late_answers", []))
        answers.append({"at": timezone.now().isoformat(), "result": result})
        row.evidence = {**row.evidence, "late_answers": answers}
        row.save(update_fields=["evidence", "updated_at"])
        mine, theirs = result.get("transaction_id"), row.result.get("transaction_id")
        if row.state == State.CONFIRMED and mine and theirs and int(mine) != int(theirs):
            duplicate_flag_extra(row, [int(mine)], found_by="late_answer")


def unpark_dependents(command: OutboxCommand) -> int:
    """Commands parked only because this one was not confirmed become due again by themselves
    once it is (e.g. after an approver retried it); a dependent that was sent before being
    parked reads back first."""
    waiting = OutboxCommand.objects.filter(
        depends_on=command, state=State.NEEDS_PERSON, last_error_code="DEPENDENCY"
    )
    count = 0
    for dependent in waiting.select_for_update():
        before = dependent.state
        dependent.state = State.UNCERTAIN if dependent.sent_at else State.PENDING
        dependent.attempts = 0
        dependent.next_attempt_at = timezone.now()
        dependent.last_error_code = ""
        dependent.last_error_message = ""
        dependent.save(
            update_fields=[
                "state",
                "attempts",
                "next_attempt_at",
                "last_error_code",
                "last_error_message",
                "updated_at",
            ]
        )
        _audit(
            dependent,
            "outbox.unpark",
            f"{command.external_reference} is confirmed",
            before,
            dependent.state,
        )
        count += 1
    return count


def run_claim(
    claim: claiming.Claim,
    client_factory: Callable = default_client_factory,
    command: OutboxCommand | None = None,
    record: Callable | None = None,
) -> str:
    """Take one claimed row to its next state; returns that state (for counting).

    `record` writes the outcome (an OutcomeWriter of the drain; by default _finish, inline)."""
    record = record or _finish
    if command is None:
        command = load_claimed([claim])[claim.command_id]
    if claim.attempt > command.max_attempts:
        # e.g. a command whose previous attempts killed their worker: never reached a verdict
        record(
            claim,
            command,
            State.NEEDS_PERSON,
            code="ATTEMPTS",
            message=f"{command.max_attempts} attempts did not reach AIQ's answer",
        )
        return State.NEEDS_PERSON
    executor = EXECUTORS.get(command.kind)
    if executor is None:
        record(
            claim,
            command,
            State.NEEDS_PERSON,
            code="NO_EXECUTOR",
            message=f"no executor for {command.kind} yet; do it in AIQ by hand",
        )
        return State.NEEDS_PERSON
    try:
        payload = resolve_payload(command)
    except PayloadError as exc:
        record(claim, command, State.NEEDS_PERSON, code="PAYLOAD", message=str(exc))
        return State.NEEDS_PERSON

    sending = False
    reading_back = claim.must_read_back
    evidence = None
    try:
        client = client_factory(command.entity)
        if reading_back:
            found = executor.read_back(client, command, payload)
            if found.hits >= 1 and (found.hits == 1 or found.result):
                # several hits: the command keeps the earliest, the others are listed for repair
                record(
                    claim,
                    command,
                    State.CONFIRMED,
                    result=found.result,
                    payload=payload,
                    extra_ids=found.extra_ids,
                )
                return State.CONFIRMED
            if found.hits > 1:
                record(
                    claim,
                    command,
                    State.NEEDS_PERSON,
                    code="DUPLICATE",
                    message=f"{found.hits} transactions in AIQ carry this reference",
                )
                return State.NEEDS_PERSON
            reading_back = False
            evidence = found.evidence
        if evidence is None and executor.prepare is not None:
            evidence = executor.prepare(client, command, payload)
        if not _before_send(claim, command, evidence):
            # our lease ran out (someone else may hold the row now): send nothing
            return State.UNCERTAIN
        sending = True
        result = executor.send(client, command, payload)
    except (errors.AiqPermanentError, StepRefused) as exc:
        code = getattr(exc, "error_code", "") or exc.__class__.__name__
        record(
            claim,
            command,
            State.FAILED,
            code=str(code),
            message=str(getattr(exc, "error_message", "") or exc),
        )
        return State.FAILED
    except (errors.AiqAmbiguousError, StepUncertain) as exc:
        _retry_later(record, claim, command, State.UNCERTAIN, "AMBIGUOUS", str(exc))
        return State.UNCERTAIN
    except errors.AiqTemporaryError as exc:
        # not committed: unless we still owe a read back, a plain resend is safe
        state = State.UNCERTAIN if reading_back else State.PENDING
        _retry_later(record, claim, command, state, "TEMPORARY", str(exc))
        return state
    except PayloadError as exc:
        record(claim, command, State.NEEDS_PERSON, code="PAYLOAD", message=str(exc))
        return State.NEEDS_PERSON
    except Exception as exc:  # noqa: BLE001 - a bug must not lose the row or hide the failure
        log.exception("outbox %s: unexpected error", command.pk)
        state = State.UNCERTAIN if sending or reading_back else State.PENDING
        _retry_later(record, claim, command, state, "INTERNAL", f"{exc.__class__.__name__}: {exc}")
        return state
    record(claim, command, State.CONFIRMED, result=result, payload=payload)
    return State.CONFIRMED


def drain(
    *,
    budget_seconds: float,
    batch_size: int,
    prefer: list[int] | None = None,
    entity_id: int | None = None,
    client_factory: Callable = default_client_factory,
    limit: int | None = None,
    workers: int = 1,
) -> dict[str, int]:
    """Claim and run due rows in batches until none are due or the time budget is spent.

    `workers`: how many drains may run at once (the cluster's workers); each claims only its
    share of the due rows (claim.fair_share), so none sits idle while another holds a batch."""
    deadline = time.monotonic() + budget_seconds
    counts: dict[str, int] = {}
    done = 0
    # one client per entity for the whole drain: building a zeep client costs more than a call
    clients: dict[int, object] = {}
    make_client = client_factory

    def client_factory(entity):
        if entity.pk not in clients:
            clients[entity.pk] = make_client(entity)
        return clients[entity.pk]

    record = OutcomeWriter(overlap=not transaction.get_connection().in_atomic_block)
    try:
        while time.monotonic() < deadline and (limit is None or done < limit):
            record.flush()
            size = claiming.fair_share(batch_size, workers, entity_id)
            if limit is not None:
                size = min(size, limit - done)
            claims = claiming.claim_batch(limit=size, prefer=prefer, entity_id=entity_id)
            prefer = None
            if not claims:
                break
            commands = load_claimed(claims)
            while claims:
                record.check()
                if time.monotonic() >= deadline:
                    for unstarted in claims:
                        claiming.release_unstarted(unstarted)
                    break
                # the rows still waiting keep their lease while this one runs (per-row leases)
                first = claims[0].command_id
                claims = claiming.renew(claims)
                if not claims or claims[0].command_id != first:
                    continue  # its lease was lost while it waited: someone else has it
                claim, claims = claims[0], claims[1:]
                state = run_claim(claim, client_factory, commands[claim.command_id], record)
                counts[state] = counts.get(state, 0) + 1
                done += 1
    finally:
        record.close()
    record.check()
    return counts
