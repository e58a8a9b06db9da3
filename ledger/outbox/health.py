"""Is the outbox making progress? A wedged cluster (every worker stuck: a queue lock left taken
by a killed process, a hung connection, a stopped host) runs no task, not even the sweeper, so
nothing inside it can notice. This check runs outside the cluster: by `manage.py outbox_health`
(for monitoring, exit status 1 when wedged) and by `manage.py outbox_watchdog`, which runs
`qcluster` as its child and restarts it when it is wedged (`make run` starts the workers so).

Wedged means: rows have been due for longer than OUTBOX_STALL_SECONDS and no row of the outbox
changed in that time (a working cluster claims a due row within a sweep, and every claim, lease
renewal and outcome writes the row). A long queue that is being worked is not wedged.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Case, F, Max, Min, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from ledger.models import OutboxCommand
from ledger.outbox.claim import due_commands


@dataclass(frozen=True)
class Health:
    due: int
    due_since: datetime | None  # when the longest-waiting due row became due
    last_progress: datetime | None  # the last change to any outbox row
    wedged: bool

    def __str__(self) -> str:
        if not self.due:
            return "outbox healthy: nothing due"
        since = self.due_since.isoformat(timespec="seconds") if self.due_since else "?"
        progress = (
            self.last_progress.isoformat(timespec="seconds") if self.last_progress else "never"
        )
        verdict = "WEDGED" if self.wedged else "working"
        return (
            f"outbox {verdict}: {self.due} row(s) due, the oldest since {since}; "
            f"last progress {progress}"
        )


def outbox_health(stall_seconds: int | None = None, now: datetime | None = None) -> Health:
    now = now or timezone.now()
    stall = timedelta(seconds=stall_seconds or settings.OUTBOX_STALL_SECONDS)
    due = due_commands(now)
    figures = due.aggregate(
        due_since=Min(
            Case(
                When(state=OutboxCommand.State.IN_FLIGHT, then=F("lease_until")),
                default=Coalesce(F("next_attempt_at"), F("created_at")),
            )
        )
    )
    count = due.count()
    last = OutboxCommand.objects.aggregate(last=Max("updated_at"))["last"]
    wedged = bool(
        count
        and figures["due_since"] is not None
        and figures["due_since"] <= now - stall
        and (last is None or last <= now - stall)
    )
    return Health(due=count, due_since=figures["due_since"], last_progress=last, wedged=wedged)
