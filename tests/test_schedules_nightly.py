"""Issue 19: the nightly drift check runs at night. A daily schedule created at start-up ran 24
hours after it was first created: a week of read-backs in the middle of the working day."""

from datetime import date, datetime, time
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_q.models import Schedule

from ledger.management.commands.setup_schedules import SCHEDULES, nightly_runs

pytestmark = pytest.mark.django_db


def _local(run) -> tuple:
    run = timezone.localtime(run)
    return run.date(), run.time()


def _setup() -> dict[str, Schedule]:
    call_command("setup_schedules", stdout=StringIO())
    return {s.name: s for s in Schedule.objects.all()}


def test_the_drift_check_and_the_catch_ups_run_at_night_ten_minutes_apart(settings):
    settings.NIGHTLY_HOUR = 2
    before = timezone.now()
    schedules = _setup()
    drift = schedules["aiq-drift-check"]
    assert _local(drift.next_run)[1] == time(2, 0)
    assert before < drift.next_run <= before + timezone.timedelta(days=1)
    assert _local(schedules["stripe-catch-up"].next_run)[1] == time(2, 10)
    daily = sorted(
        _local(schedules[name].next_run)[1]
        for name, (_f, minutes) in SCHEDULES.items()
        if minutes == 24 * 60
    )
    assert len(set(daily)) == len(daily), "two daily schedules at the same minute"
    # the frequent ones are left to run from now
    assert schedules["outbox-sweep"].next_run <= timezone.now()


def test_a_daily_schedule_made_in_the_day_is_moved_to_the_night_once(settings):
    settings.NIGHTLY_HOUR = 3
    Schedule.objects.create(
        name="aiq-drift-check",
        func="ledger.outbox.tasks.drift_check",
        schedule_type=Schedule.MINUTES,
        minutes=24 * 60,
        repeats=-1,
        next_run=timezone.make_aware(datetime(2026, 12, 4, 11, 17)),
    )
    moved = _setup()["aiq-drift-check"].next_run
    assert _local(moved)[1] == time(3, 0)
    # django-q2 keeps it at that time of day; a later start-up leaves it alone
    Schedule.objects.filter(name="aiq-drift-check").update(
        next_run=moved + timezone.timedelta(days=3)
    )
    assert _setup()["aiq-drift-check"].next_run == moved + timezone.timedelta(days=3)


def test_the_night_is_local_wall_time_also_when_the_clocks_change(settings):
    settings.NIGHTLY_HOUR = 2
    # London, the night the clocks go back (01:00-02:00 happens twice) and the one they go
    # forward (01:00 -> 02:00): still 02:00 local, the next one after `now`
    for now in (datetime(2026, 10, 25, 0, 30), datetime(2026, 3, 29, 0, 30)):
        runs = nightly_runs(timezone.make_aware(now))
        assert _local(runs["aiq-drift-check"]) == (now.date(), time(2, 0))
    late = nightly_runs(timezone.make_aware(datetime(2026, 10, 25, 2, 5)))
    assert _local(late["aiq-drift-check"])[0].day == 26
    assert _local(late["stripe-catch-up"]) == (date(2026, 10, 25), time(2, 10))
