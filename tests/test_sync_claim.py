"""A pull's claim: one pull at a time, but a killed pull blocks the next one only until its
task would have been killed anyway (Q_TIMEOUT_SECONDS), not for 30 minutes."""

from datetime import timedelta

import pytest
from django.utils import timezone

from ledger.models import SyncState
from ledger.sync.services import SyncAlreadyRunning, sync_claim


def _age_claim(entity, seconds: int) -> None:
    then = timezone.now() - timedelta(seconds=seconds)
    SyncState.objects.filter(entity=entity, object_type="all").update(
        last_started_at=then, heartbeat_at=then
    )


def test_a_pull_that_is_still_beating_refuses_a_second_start(entity, settings):
    settings.Q_TIMEOUT_SECONDS = 300
    sync_claim(entity=entity)
    _age_claim(entity, 299)
    with pytest.raises(SyncAlreadyRunning):
        sync_claim(entity=entity)


def test_a_killed_pull_stops_blocking_once_its_task_timeout_has_passed(entity, settings):
    settings.Q_TIMEOUT_SECONDS = 300
    sync_claim(entity=entity)
    _age_claim(entity, 301)  # the worker died mid-pull 5 minutes ago: "Sync now" works again
    state = sync_claim(entity=entity)
    assert state.running and timezone.now() - state.heartbeat_at < timedelta(seconds=5)


def test_progress_is_a_heartbeat(entity, settings):
    from ledger.sync.services import _progress

    settings.Q_TIMEOUT_SECONDS = 300
    sync_claim(entity=entity)
    _age_claim(entity, 299)
    _progress(entity, progress_rows=10)  # the pull is alive and reading
    state = SyncState.objects.get(entity=entity, object_type="all")
    assert timezone.now() - state.heartbeat_at < timedelta(seconds=5)
    SyncState.objects.filter(entity=entity, object_type="all").update(
        last_started_at=timezone.now() - timedelta(hours=1)
    )
    with pytest.raises(SyncAlreadyRunning):
        sync_claim(entity=entity)
