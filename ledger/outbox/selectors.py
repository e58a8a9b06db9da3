"""Reads of the outbox that several screens share (dashboard figure, outbox screen)."""

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Count, Min, Q
from django.utils import timezone

from ledger.models import OutboxCommand

State = OutboxCommand.State
WAITING = (State.PENDING, State.IN_FLIGHT, State.UNCERTAIN)
NEEDS_ATTENTION = (State.FAILED, State.NEEDS_PERSON)


@dataclass(frozen=True)
class OutboxHealth:
    oldest_waiting_seconds: int | None  # age of the oldest command not yet confirmed
    waiting: int
    needs_attention: int  # failed or parked for a person, all time
    failures_last_hour: int  # failed or parked in the last hour

    @property
    def healthy(self) -> bool:
        return self.needs_attention == 0 and (self.oldest_waiting_seconds or 0) < 15 * 60


def outbox_health(*, entity=None) -> OutboxHealth:
    now = timezone.now()
    rows = OutboxCommand.objects.all()
    if entity is not None:
        rows = rows.filter(entity=entity)
    figures = rows.aggregate(
        oldest=Min("created_at", filter=Q(state__in=WAITING)),
        waiting=Count("pk", filter=Q(state__in=WAITING)),
        attention=Count("pk", filter=Q(state__in=NEEDS_ATTENTION)),
        recent=Count(
            "pk",
            filter=Q(state__in=NEEDS_ATTENTION, updated_at__gte=now - timedelta(hours=1)),
        ),
    )
    oldest = figures["oldest"]
    return OutboxHealth(
        oldest_waiting_seconds=int((now - oldest).total_seconds()) if oldest else None,
        waiting=figures["waiting"],
        needs_attention=figures["attention"],
        failures_last_hour=figures["recent"],
    )


def outbox_commands(*, state: str | None = None, entity=None):
    """Commands for the outbox screen, newest first, with what the list shows."""
    rows = OutboxCommand.objects.select_related("entity", "depends_on").order_by("-created_at")
    if state:
        rows = rows.filter(state=state)
    if entity is not None:
        rows = rows.filter(entity=entity)
    return rows
