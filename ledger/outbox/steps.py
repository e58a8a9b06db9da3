"""Registering a command kind, and the errors of a step that is not an AIQ call.

A command kind is one typed payload, one executor and (for its origin) one handler:

    command_kind_register("stripe_refund", executor=Executor(send, read_back),
                          payload=StripeRefundPayload, label="Refund through Stripe")
                                                              # in the owning app's ready()
    origin_register("refund", Origin(confirmed=..., failed=...))   # ledger/outbox/origins.py

The payload class (a dataclass) is built from the payload when it is enqueued: a missing or
unknown field, or a value its __post_init__ refuses, stops the decision that enqueues it
(PayloadError) instead of parking the command later. A kind nobody registered cannot be
enqueued. The label is the kind's name on screens (OutboxCommand.kind's choices are the
registered kinds: ledger/models/outbox.py COMMAND_KINDS), so no other app is edited.

An executor that calls another provider (Stripe...) speaks this module's errors, not AIQ's:
StepRefused (the provider said no, for good: the command fails and its origin is told) and
StepUncertain (the call went out and its answer was lost: read back before any resend). Any
other exception is a temporary failure, retried.
"""

from dataclasses import fields, is_dataclass

from ledger.models.outbox import COMMAND_KINDS, OutboxCommand
from ledger.outbox.executors import EXECUTORS, Executor, PayloadError

# kind -> the dataclass its payload must build
PAYLOADS: dict[str, type] = {}


class StepError(Exception):
    def __init__(self, message: str, *, code: str = ""):
        super().__init__(message)
        self.error_code = code
        self.error_message = message


class StepRefused(StepError):
    """The provider refused the step for good; retrying will not help."""


class StepUncertain(StepError):
    """The step may have happened: read back before doing it again."""


def command_kind_register(
    kind: str, *, executor: Executor, payload: type, label: str | None = None
) -> None:
    """Called from the owning app's AppConfig.ready()."""
    if EXECUTORS.get(kind, executor) is not executor:
        raise RuntimeError(f"command kind {kind!r} is registered twice")
    if not is_dataclass(payload):
        raise TypeError(f"the payload of {kind!r} must be a dataclass")
    if label is None:
        known = dict(OutboxCommand.Kind.choices)
        label = known.get(kind, kind.replace("_", " ").capitalize())
    EXECUTORS[kind] = executor
    PAYLOADS[kind] = payload
    COMMAND_KINDS[kind] = label


def command_kind_unregister(kind: str) -> None:
    """Undo command_kind_register (tests that add a kind of their own)."""
    EXECUTORS.pop(kind, None)
    PAYLOADS.pop(kind, None)
    COMMAND_KINDS.pop(kind, None)


def payload_check(kind: str, payload: dict) -> None:
    """Refuse a payload its kind's dataclass cannot be built from (PayloadError)."""
    shape = PAYLOADS.get(kind)
    if shape is None:
        raise PayloadError(f"no command kind {kind!r} is registered")
    names = {f.name for f in fields(shape)}
    unknown = sorted(set(payload) - names)
    if unknown:
        raise PayloadError(f"{kind} payload: unknown field(s) {', '.join(unknown)}")
    try:
        shape(**payload)
    except TypeError as error:  # a required field missing
        raise PayloadError(f"{kind} payload: {error}") from None
    except ValueError as error:  # refused by the dataclass's own checks
        raise PayloadError(f"{kind} payload: {error}") from None
