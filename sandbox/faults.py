"""Fault injection: what reliability tests switch on to make the sandbox misbehave like a
real, remote AIQ does on a bad day.

- `latency_ms`: every SOAP call waits this long before it is handled.
- `failure_rate` (0..1) and `fail_next` (a count): the call is refused before it touches the
  books, either as HTTP 500 with a SOAP fault (`failure_mode="http500"`) or as AIQ's own
  `Status=Failure` in an HTTP 200 body (`failure_mode="aiq"`).
- `drop_after_commit_rate` (0..1) and `drop_next`: for operations that write, the change is
  committed and then the connection is closed without an answer, so the caller sees a
  connection error or timeout although the write happened (the case that doubles receipts in
  a naive client).
- `reset_rate` (0..1) and `reset_next`: the connection is closed (reset) before the call
  touches the books: the caller cannot tell this from a lost answer, but nothing was written.
- `late_commit_rate` (0..1) and `late_commit_next`: for operations that write, AIQ accepts the
  call and closes the connection without answering, and commits the write `late_commit_ms`
  later (as a busy AIQ that finishes processing after the caller timed out). A read-back
  before then finds nothing; one after it finds the write. A late write that AIQ's own checks
  refuse by then (e.g. the invoice meanwhile fully allocated) is not written, as in AIQ.
  `SandboxServer.settle_late_commits()` waits until every late write has landed;
  `release_late_commits()` commits the waiting ones at once (AIQ catching up at a chosen moment).
- `token_expire_every`: each session/access token is good for this many calls, then reports
  `HasExpired` (0 = off). "Expire all tokens now" is `SandboxServer.expire_tokens()`.
- `ops`: when set, failures and drops only hit these operation names.

Rates draw from a private `random.Random(seed)`, so a test that sets `seed` gets the same
sequence of faults on every run.
"""

import random
import threading
from dataclasses import asdict, dataclass, field

FAILURE_MODES = ("http500", "aiq")


@dataclass
class FaultSettings:
    latency_ms: int = 0
    failure_rate: float = 0.0
    failure_mode: str = "http500"
    drop_after_commit_rate: float = 0.0
    token_expire_every: int = 0
    fail_next: int = 0
    drop_next: int = 0
    reset_rate: float = 0.0
    reset_next: int = 0
    late_commit_rate: float = 0.0
    late_commit_next: int = 0
    late_commit_ms: int = 2000
    ops: list[str] | None = None
    seed: int | None = None


@dataclass
class FaultStats:
    failures: int = 0
    drops: int = 0
    dropped_ops: list[str] = field(default_factory=list)
    resets: int = 0
    late_commits: int = 0  # writes accepted to be committed late
    late_landed: int = 0  # ... of which AIQ committed
    late_refused: int = 0  # ... of which AIQ's own checks refused when their time came
    late_ops: list[str] = field(default_factory=list)


class Faults:
    """Thread-safe fault switches shared by all request threads of one server."""

    def __init__(self, **settings):
        self._lock = threading.Lock()
        self.settings = FaultSettings()
        self.stats = FaultStats()
        self._rng = random.Random()
        self.update(**settings)

    def update(self, **changes) -> dict:
        """Change some switches; unknown names or bad values raise ValueError."""
        with self._lock:
            current = asdict(self.settings)
            unknown = set(changes) - current.keys()
            if unknown:
                raise ValueError(f"unknown fault setting(s): {', '.join(sorted(unknown))}")
            current.update(changes)
            settings = _validated(current)
            self.settings = settings
            if "seed" in changes:
                self._rng = random.Random(settings.seed)
            return asdict(settings)

    def reset(self) -> None:
        with self._lock:
            self.settings = FaultSettings()
            self.stats = FaultStats()
            self._rng = random.Random()

    def snapshot(self) -> dict:
        with self._lock:
            return {"settings": asdict(self.settings), "stats": asdict(self.stats)}

    def latency_seconds(self) -> float:
        return self.settings.latency_ms / 1000

    def _applies(self, op: str) -> bool:
        return self.settings.ops is None or op in self.settings.ops

    def should_fail(self, op: str) -> str | None:
        """The failure mode to inject for this call, or None."""
        with self._lock:
            if not self._applies(op):
                return None
            hit = False
            if self.settings.fail_next > 0:
                self.settings.fail_next -= 1
                hit = True
            elif self.settings.failure_rate and self._rng.random() < self.settings.failure_rate:
                hit = True
            if hit:
                self.stats.failures += 1
                return self.settings.failure_mode
            return None

    def _hit(self, op: str, rate_name: str, next_name: str) -> bool:
        """Under the lock: does the `next` count or the rate pick this call?"""
        if not self._applies(op):
            return False
        if getattr(self.settings, next_name) > 0:
            setattr(self.settings, next_name, getattr(self.settings, next_name) - 1)
            return True
        rate = getattr(self.settings, rate_name)
        return bool(rate) and self._rng.random() < rate

    def should_reset(self, op: str) -> bool:
        """Before the call touches the books: close the connection without answering?"""
        with self._lock:
            hit = self._hit(op, "reset_rate", "reset_next")
            if hit:
                self.stats.resets += 1
            return hit

    def late_commit_delay(self, op: str) -> float | None:
        """For a write: seconds after which AIQ commits it (the caller gets no answer), or None
        to handle it now."""
        with self._lock:
            if not self._hit(op, "late_commit_rate", "late_commit_next"):
                return None
            self.stats.late_commits += 1
            self.stats.late_ops.append(op)
            return self.settings.late_commit_ms / 1000

    def late_outcome(self, landed: bool) -> None:
        with self._lock:
            if landed:
                self.stats.late_landed += 1
            else:
                self.stats.late_refused += 1

    def should_drop(self, op: str) -> bool:
        """Called after a write committed: close the connection without answering?"""
        with self._lock:
            if not self._applies(op):
                return False
            hit = False
            if self.settings.drop_next > 0:
                self.settings.drop_next -= 1
                hit = True
            elif (
                self.settings.drop_after_commit_rate
                and self._rng.random() < self.settings.drop_after_commit_rate
            ):
                hit = True
            if hit:
                self.stats.drops += 1
                self.stats.dropped_ops.append(op)
            return hit


def _validated(values: dict) -> FaultSettings:
    def rate(name):
        value = values[name]
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise ValueError(f"{name} must be a number between 0 and 1")
        return value

    def count(name):
        value = values[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a whole number >= 0")
        return value

    if values["failure_mode"] not in FAILURE_MODES:
        raise ValueError(f"failure_mode must be one of {', '.join(FAILURE_MODES)}")
    ops = values["ops"]
    if ops is not None and (
        not isinstance(ops, list | tuple | set) or not all(isinstance(o, str) for o in ops)
    ):
        raise ValueError("ops must be a list of operation names")
    seed = values["seed"]
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError("seed must be an integer")
    return FaultSettings(
        latency_ms=count("latency_ms"),
        failure_rate=rate("failure_rate"),
        failure_mode=values["failure_mode"],
        drop_after_commit_rate=rate("drop_after_commit_rate"),
        token_expire_every=count("token_expire_every"),
        fail_next=count("fail_next"),
        drop_next=count("drop_next"),
        reset_rate=rate("reset_rate"),
        reset_next=count("reset_next"),
        late_commit_rate=rate("late_commit_rate"),
        late_commit_next=count("late_commit_next"),
        late_commit_ms=count("late_commit_ms"),
        ops=sorted(ops) if ops is not None else None,
        seed=seed,
    )
