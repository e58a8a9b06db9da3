"""Matching runs that write take turns: one lease row, taken with one conditional UPDATE.

A run takes the lease before it reads and gives it back when it has written and auto-approved
(matching_runs.matching_run). A run that finds it taken is refused (MatchingRunBusy): the
woken pass then leaves the work to the run in progress, which looks again for changes once it
has given the lease back (auto_match.auto_match_changed). The UPDATE is the whole check, so two
workers asking at the same moment cannot both get it, on SQLite or PostgreSQL; a run whose
worker died holds it only until `until`, a little longer than django-q lets a task live.
"""

from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from payments.models import MatchingLease

LEASE_ROW = 1


class MatchingRunBusy(Exception):
    """Another matching run is writing; the message says since when."""


def lease_seconds() -> int:
    return settings.Q_TIMEOUT_SECONDS + 60


def matching_lease_take(run_id: str) -> None:
    """Take the lease for this run, or raise MatchingRunBusy."""
    now = timezone.now()
    MatchingLease.objects.get_or_create(pk=LEASE_ROW)
    taken = (
        MatchingLease.objects.filter(pk=LEASE_ROW)
        .filter(Q(holder="") | Q(until__lt=now))
        .update(holder=run_id, until=now + timedelta(seconds=lease_seconds()))
    )
    if not taken:
        lease = MatchingLease.objects.get(pk=LEASE_ROW)
        started = lease.until - timedelta(seconds=lease_seconds())
        raise MatchingRunBusy(
            f"Another matching run ({lease.holder}) is in progress since "
            f"{timezone.localtime(started):%H:%M:%S}; try again when it has finished."
        )


def matching_lease_give_back(run_id: str) -> None:
    """Free the lease if this run still holds it (after it expired another run may)."""
    MatchingLease.objects.filter(pk=LEASE_ROW, holder=run_id).update(holder="", until=None)
