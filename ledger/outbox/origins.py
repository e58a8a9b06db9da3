"""Origins own their outcome: what happens to the row that caused a command (a plan, a refund...)
when the command reaches a verdict in AIQ.

The outbox knows commands, not the apps that enqueue them. Each app registers, in its
AppConfig.ready(), the handlers of the origins it owns (`origin_register("refund", Origin(...))`),
and the outbox calls them in the transaction that records the verdict:

    confirmed(command, payload, notes)   the command is in AIQ (after the mirror update)
    failed(command)                      AIQ refused it for good
    parked(command)                      it waits for a person

An app may also follow every confirmed command of a kind, whatever its origin
(`on_confirmed(kind, fn)`: e.g. payments links a confirmed receipt to the payment it names).

A handler that raises does not undo the verdict and is not swallowed: its savepoint is rolled
back, the command keeps `origin_pending` with the error (`origin_error`), the sweeper runs the
handler again (outbox_origins_retry) and the sync screen lists it until it goes through.
Handlers therefore must be idempotent (a state machine that only moves forward is).
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction

from ledger.models import OutboxCommand

log = logging.getLogger(__name__)
State = OutboxCommand.State


def _nothing(command: OutboxCommand) -> None:
    pass


@dataclass(frozen=True)
class Origin:
    confirmed: Callable[[OutboxCommand, dict, list[str]], None]
    failed: Callable[[OutboxCommand], None] = _nothing
    parked: Callable[[OutboxCommand], None] = _nothing


ORIGINS: dict[str, Origin] = {}
# kind -> handlers(command, payload, notes) run on every confirmed command of that kind
KIND_CONFIRMED: dict[str, list[Callable[[OutboxCommand, dict, list[str]], None]]] = {}


def origin_register(name: str, origin: Origin) -> None:
    """Called from an app's AppConfig.ready(); one owner per origin name."""
    if ORIGINS.get(name, origin) != origin:
        raise RuntimeError(f"origin {name!r} is registered twice")
    ORIGINS[name] = origin


def on_confirmed(kind: str, handler: Callable[[OutboxCommand, dict, list[str]], None]) -> None:
    """Called from an app's AppConfig.ready(): follow every confirmed command of `kind`."""
    handlers = KIND_CONFIRMED.setdefault(kind, [])
    if handler not in handlers:
        handlers.append(handler)


def _handlers(command: OutboxCommand, verdict: str, payload: dict, notes: list[str]) -> list:
    origin = ORIGINS.get(command.origin_type)
    if verdict == State.CONFIRMED:
        run = [lambda h=h: h(command, payload, notes) for h in KIND_CONFIRMED.get(command.kind, [])]
        if origin is not None:
            run.append(lambda: origin.confirmed(command, payload, notes))
        return run
    if origin is not None and verdict == State.FAILED:
        return [lambda: origin.failed(command)]
    if origin is not None and verdict == State.NEEDS_PERSON:
        return [lambda: origin.parked(command)]
    return []


def origin_follow(
    command: OutboxCommand,
    payload: dict | None = None,
    notes: list[str] | None = None,
    *,
    verdict: str | None = None,
) -> bool:
    """Run the handlers of the command's verdict (by default its state) inside the caller's
    transaction. False if one raised: the command is then left origin_pending with the error."""
    run = _handlers(
        command,
        verdict or command.state,
        payload if payload is not None else command.payload,
        notes if notes is not None else [],
    )
    if not run and not command.origin_pending:
        return True
    try:
        with transaction.atomic():  # the verdict stays whatever the handlers do
            for handler in run:
                handler()
    except Exception as exc:  # noqa: BLE001 - kept on the row, retried by the sweeper, shown
        log.exception("outbox %s: origin %s did not follow", command.pk, command.origin_type)
        error = f"{exc.__class__.__name__}: {exc}"[:4000]
        OutboxCommand.objects.filter(pk=command.pk).update(origin_pending=True, origin_error=error)
        command.origin_pending, command.origin_error = True, error
        return False
    if command.origin_pending:
        OutboxCommand.objects.filter(pk=command.pk).update(origin_pending=False, origin_error="")
        command.origin_pending, command.origin_error = False, ""
    return True


def outbox_origins_retry(limit: int = 100) -> int:
    """The sweeper's pass: run again the origin handlers that raised; returns how many went
    through. Each in its own transaction, the command row locked so two sweepers take turns."""
    done = 0
    for pk in OutboxCommand.objects.filter(origin_pending=True).values_list("pk", flat=True)[
        :limit
    ]:
        with transaction.atomic():
            command = OutboxCommand.objects.select_for_update().filter(pk=pk).first()
            if command is not None and command.origin_pending and origin_follow(command):
                done += 1
    return done
