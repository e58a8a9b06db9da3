"""The outbox's claim/lease/backoff state machine against the real database (no AIQ calls)."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from django.utils import timezone

from ledger.models import OutboxCommand
from ledger.outbox import claim as claiming
from ledger.outbox.selectors import outbox_health
from ledger.outbox.services import outbox_cancel, outbox_enqueue, outbox_retry
from staff.models import AuditEntry
from tests.payloads import allocate_payload, receipt_payload

State = OutboxCommand.State


def _cmd(entity, ref, kind="post_receipt", **kw):
    payload = allocate_payload() if kind == "allocate" else receipt_payload()
    return outbox_enqueue(entity=entity, kind=kind, payload=payload, external_reference=ref, **kw)


def test_a_row_is_claimed_once_and_the_second_claimer_gets_nothing(entity):
    command = _cmd(entity, "R-1")
    first = claiming.claim_batch(limit=10)
    second = claiming.claim_batch(limit=10)
    assert [c.command_id for c in first] == [command.pk]
    assert second == []
    command.refresh_from_db()
    assert command.state == State.IN_FLIGHT
    assert command.attempts == 1
    assert command.lease_until > timezone.now()
    assert not first[0].must_read_back


def test_drains_share_the_last_due_rows_instead_of_one_taking_a_full_batch(entity):
    for n in range(5):
        _cmd(entity, f"R-{n}")
    # plenty due for everyone: a full batch each
    assert claiming.fair_share(2, workers=2) == 2
    # 5 due, 4 workers: 2 each at most, so no worker is left with nothing while one works
    # through a batch of 5 alone
    assert claiming.fair_share(10, workers=4) == 2
    assert claiming.fair_share(10, workers=1) == 10  # alone: no one to share with
    claiming.claim_batch(limit=4)
    assert claiming.fair_share(10, workers=4) == 1
    claiming.claim_batch(limit=1)
    assert claiming.fair_share(10, workers=4) == 1  # nothing visible: the claim decides


def test_a_conditional_claim_on_a_stale_view_of_the_row_fails(entity):
    command = _cmd(entity, "R-1")
    now = timezone.now()
    assert claiming.claim_one(command.pk, State.PENDING, now) is not None
    # a second delivery that read the row as pending before the first claim committed
    assert claiming.claim_one(command.pk, State.PENDING, now) is None


def test_a_lapsed_lease_is_claimed_again_and_must_be_read_back(entity, settings):
    settings.OUTBOX_SETTLE_SECONDS = 60
    command = _cmd(entity, "R-1")
    [claim] = claiming.claim_batch(limit=1)
    # the holder sent 61 s ago and died: AIQ cannot still commit it, so read back now
    OutboxCommand.objects.filter(pk=command.pk).update(
        lease_until=timezone.now() - timedelta(seconds=1),
        sent_at=timezone.now() - timedelta(seconds=61),
    )
    [again] = claiming.claim_batch(limit=1)
    assert again.previous_state == State.IN_FLIGHT
    assert again.must_read_back
    assert again.attempt == 2
    # the first holder is fenced out: its late outcome cannot be written
    assert not claiming.fenced(claim).exists()
    assert claiming.fenced(again).exists()


def test_a_lapsed_lease_whose_send_may_still_land_waits_for_the_settle_period(entity, settings):
    settings.OUTBOX_SETTLE_SECONDS = 60
    command = _cmd(entity, "R-1")
    claiming.claim_batch(limit=1)
    OutboxCommand.objects.filter(pk=command.pk).update(
        lease_until=timezone.now() - timedelta(seconds=1),
        sent_at=timezone.now() - timedelta(seconds=30),
    )
    assert claiming.claim_batch(limit=1) == []  # AIQ may still be committing that send
    OutboxCommand.objects.filter(pk=command.pk).update(
        sent_at=timezone.now() - timedelta(seconds=60)
    )
    [again] = claiming.claim_batch(limit=1)
    assert again.must_read_back


def test_a_row_whose_holder_died_before_sending_is_sent_without_a_read_back(entity):
    command = _cmd(entity, "R-1")
    claiming.claim_batch(limit=1)
    OutboxCommand.objects.filter(pk=command.pk).update(
        lease_until=timezone.now() - timedelta(seconds=1)
    )
    [again] = claiming.claim_batch(limit=1)
    assert again.previous_state == State.IN_FLIGHT
    assert not again.must_read_back  # nothing was sent, so there is nothing to find


def test_backoff_is_not_due_until_next_attempt_at(entity):
    command = _cmd(entity, "R-1")
    OutboxCommand.objects.filter(pk=command.pk).update(
        next_attempt_at=timezone.now() + timedelta(minutes=5)
    )
    assert claiming.claim_batch(limit=10) == []
    OutboxCommand.objects.filter(pk=command.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )
    assert len(claiming.claim_batch(limit=10)) == 1


def test_backoff_grows_exponentially_with_jitter_and_is_capped(settings):
    settings.OUTBOX_BACKOFF_BASE_MS = 1000
    settings.OUTBOX_BACKOFF_MAX_SECONDS = 60
    for attempts, step in [(1, 1), (2, 2), (3, 4), (5, 16), (20, 60)]:
        delays = {claiming.backoff_delay(attempts).total_seconds() for _ in range(50)}
        assert all(step / 2 <= d <= step for d in delays), (attempts, delays)
        assert len(delays) > 1  # jittered, so retries of many rows do not arrive together


def test_a_dependent_waits_until_its_dependency_is_confirmed(entity):
    receipt = _cmd(entity, "R-1")
    allocation = _cmd(entity, "A-1", kind="allocate", depends_on=receipt)
    claims = claiming.claim_batch(limit=10)
    assert [c.command_id for c in claims] == [receipt.pk]
    assert claiming.claim_batch(limit=10) == []
    OutboxCommand.objects.filter(pk=receipt.pk).update(state=State.CONFIRMED, lease_until=None)
    assert [c.command_id for c in claiming.claim_batch(limit=10)] == [allocation.pk]


def test_preferred_rows_are_claimed_first(entity):
    rows = [_cmd(entity, f"R-{i}") for i in range(5)]
    claims = claiming.claim_batch(limit=2, prefer=[rows[4].pk])
    assert claims[0].command_id == rows[4].pk
    assert claims[1].command_id == rows[0].pk


def test_releasing_an_unstarted_claim_gives_the_attempt_back(entity):
    command = _cmd(entity, "R-1")
    [claim] = claiming.claim_batch(limit=1)
    claiming.release_unstarted(claim)
    command.refresh_from_db()
    assert (command.state, command.attempts, command.lease_until) == (State.PENDING, 0, None)


def test_retry_and_cancel_need_an_approver_and_are_audited(entity, alice, bob):
    command = _cmd(entity, "R-1")
    OutboxCommand.objects.filter(pk=command.pk).update(
        state=State.NEEDS_PERSON, attempts=8, last_error_message="gave up"
    )
    with pytest.raises(PermissionDenied):
        outbox_retry(command=command, actor=alice)
    retried = outbox_retry(command=command, actor=bob)
    # it was attempted before, so it reads back before sending again
    assert (retried.state, retried.attempts) == (State.UNCERTAIN, 0)
    entry = AuditEntry.objects.get(action="outbox.retry")
    assert entry.actor == bob and entry.before["state"] == "needs_person"

    dependent = _cmd(entity, "A-1", kind="allocate", depends_on=command)
    with pytest.raises(PermissionDenied):
        outbox_cancel(command=command, actor=alice)
    outbox_cancel(command=command, actor=bob, reason="paid twice by the customer")
    command.refresh_from_db()
    dependent.refresh_from_db()
    assert command.state == State.CANCELLED
    assert dependent.state == State.NEEDS_PERSON and dependent.last_error_code == "DEPENDENCY"
    assert AuditEntry.objects.filter(action="outbox.cancel", actor=bob).count() == 1


def test_a_confirmed_or_in_flight_command_cannot_be_cancelled(entity, bob):
    command = _cmd(entity, "R-1")
    OutboxCommand.objects.filter(pk=command.pk).update(state=State.CONFIRMED)
    with pytest.raises(ValidationError, match="reverse it"):
        outbox_cancel(command=command, actor=bob)
    claimable = _cmd(entity, "R-2")
    claiming.claim_batch(limit=10, prefer=[claimable.pk])
    with pytest.raises(ValidationError, match="being sent"):
        outbox_cancel(command=claimable, actor=bob)
    assert not AuditEntry.objects.filter(action="outbox.cancel").exists()


def test_health_reports_the_oldest_waiting_command_and_recent_failures(entity):
    assert outbox_health().oldest_waiting_seconds is None
    old = _cmd(entity, "R-1")
    OutboxCommand.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - timedelta(minutes=30)
    )
    failed = _cmd(entity, "R-2")
    OutboxCommand.objects.filter(pk=failed.pk).update(state=State.FAILED)
    health = outbox_health()
    assert 1790 <= health.oldest_waiting_seconds <= 1810
    assert (health.waiting, health.needs_attention, health.failures_last_hour) == (1, 1, 1)
    assert not health.healthy


def test_sweeper_parks_commands_whose_dependency_died(entity, settings):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "sync": False}
    receipt = _cmd(entity, "R-1")
    allocation = _cmd(entity, "A-1", kind="allocate", depends_on=receipt)
    OutboxCommand.objects.filter(pk=receipt.pk).update(state=State.FAILED)
    from ledger.outbox.services import outbox_park_orphans

    assert outbox_park_orphans() == 1
    allocation.refresh_from_db()
    assert allocation.state == State.NEEDS_PERSON


# `manage.py check` runs every check, and the provider books check (payments.W201) reads the
# mirror's bank and GL lists, so the whole check needs the database.
@pytest.mark.django_db
def test_start_up_check_refuses_a_dangerous_q_cluster(settings):
    from ledger.outbox.checks import check_q_cluster

    assert [p.id for p in check_q_cluster() if p.level >= 40] == []
    settings.Q_CLUSTER = {"timeout": 60, "retry": 60, "catch_up": True}
    ids = {p.id for p in check_q_cluster()}
    assert {"aiqrecon.E101", "aiqrecon.E102", "aiqrecon.E104", "aiqrecon.E105"} <= ids
    with pytest.raises(Exception, match="E101"):
        call_command("check")


def test_start_up_check_refuses_settings_where_a_row_can_outlive_its_lease(settings):
    """Issue 19 defect 3: a drain budget longer than the lease parked work never sent. Leases
    are renewed before each step, so what must fit in one lease is the longest step; a lease
    shorter than that, a settle period shorter than one AIQ call, or a drain that outlives the
    task timeout are refused at start-up."""
    from ledger.outbox.checks import check_q_cluster

    def errors() -> set[str]:
        return {p.id for p in check_q_cluster() if p.level >= 40}

    assert errors() == set()
    settings.AIQ_CONNECT_TIMEOUT_SECONDS, settings.AIQ_READ_TIMEOUT_SECONDS = 5, 10
    settings.OUTBOX_CALLS_PER_STEP = 5
    settings.OUTBOX_LEASE_SECONDS = 74  # one step: 5 calls of up to 15 s
    assert "aiqrecon.E108" in errors()
    settings.OUTBOX_LEASE_SECONDS = 75
    assert "aiqrecon.E108" not in errors()
    settings.OUTBOX_SETTLE_SECONDS = 14
    assert "aiqrecon.E109" in errors()
    settings.OUTBOX_SETTLE_SECONDS = 180
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "timeout": 100, "retry": 300}
    settings.OUTBOX_DRAIN_SECONDS = 30  # 30 + 75 > 100
    assert errors() == {"aiqrecon.E107"}
