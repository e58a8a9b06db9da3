"""Liveness: a wedged cluster (rows due, nothing progressing) is detected from outside it and
restarted (issue 19). `manage.py outbox_health` says so (exit status 1); `manage.py
outbox_watchdog`, which `make run` starts instead of a bare qcluster, restarts the cluster.

Scenario: the whole qcluster process group is frozen (SIGSTOP: every worker stuck, as when a
killed process leaves the task queue's lock taken), five receipts are approved meanwhile. The
watchdog sees them due with no progress, kills the frozen cluster, starts a new one, and the
receipts reach AIQ once each.
"""

import os
import re
import signal
import subprocess
import sys
import time
from datetime import date, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from ledger.models import OutboxCommand
from ledger.outbox.health import outbox_health
from ledger.outbox.services import outbox_enqueue
from ledger.outbox.tasks import sweep
from tests.outbox_support import BASE, cluster_env, db_env, start_world, wait_until


def _receipt(entity, reference: str, amount: str = "10.00") -> OutboxCommand:
    return outbox_enqueue(
        entity=entity,
        kind="post_receipt",
        payload={
            "customer_code": "ACME",
            "bank_account_code": "BANK-GBP",
            "amount": amount,
            "currency": "GBP",
            "payment_date": date.today().isoformat(),
            "description": "payment",
            "payment_id": None,
        },
        external_reference=reference,
    )


@pytest.mark.django_db
def test_rows_due_with_no_progress_are_a_wedged_outbox(entity):
    assert not outbox_health(60).wedged  # nothing due
    command = _receipt(entity, "RCPT-DUE")
    assert outbox_health(60).due == 1
    assert not outbox_health(60).wedged  # just enqueued: a working cluster gets a minute
    ten_minutes_ago = timezone.now() - timedelta(minutes=10)
    OutboxCommand.objects.filter(pk=command.pk).update(
        created_at=ten_minutes_ago, updated_at=ten_minutes_ago
    )
    health = outbox_health(60)
    assert health.wedged and "WEDGED" in str(health)
    with pytest.raises(SystemExit) as exit_:
        call_command("outbox_health", stall=60, stderr=StringIO())
    assert exit_.value.code == 1
    # a long queue being worked is not wedged: another row changed a moment ago
    other = _receipt(entity, "RCPT-BUSY")
    OutboxCommand.objects.filter(pk=other.pk).update(
        next_attempt_at=timezone.now() + timedelta(minutes=5)
    )
    assert not outbox_health(60).wedged
    out = StringIO()
    call_command("outbox_health", stall=60, stdout=out)
    assert "working: 1 row(s) due" in out.getvalue()


@pytest.fixture
def world(entity, audit_flushable, tmp_path, settings, monkeypatch):
    world = start_world(tmp_path, entity, settings, monkeypatch, extra_invoices=1)
    yield world
    world.server.stop()


@pytest.fixture
def watchdog(world, tmp_path):
    log_path = tmp_path / "watchdog.log"
    env = {**os.environ, **db_env(), **cluster_env(world.server.url), "Q_WORKERS": "2"}
    env = {k: v for k, v in env.items() if v != ""}
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "outbox_watchdog",
                "--every",
                "0.5",
                "--stall",
                "4",
                "--startup",
                "20",
            ],
            cwd=BASE,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    yield process, log_path
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    finally:
        for pid in _cluster_pids(log_path):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _cluster_pids(log_path) -> list[int]:
    return [int(p) for p in re.findall(r"qcluster started, pid (\d+)", log_path.read_text())]


@pytest.mark.django_db(transaction=True)
def test_the_watchdog_restarts_a_frozen_cluster_and_the_work_reaches_aiq(world, watchdog):
    process, log_path = watchdog
    assert wait_until(lambda: _cluster_pids(log_path), timeout=30)
    [first] = _cluster_pids(log_path)
    time.sleep(3)  # its workers are up
    os.killpg(first, signal.SIGSTOP)  # every process of the cluster stuck
    commands = [_receipt(world.entity, f"RCPT-LIVE-{n}") for n in range(5)]

    def scheduler():  # the test plays the scheduler: wakes for due rows every second
        if int(time.monotonic() * 2) % 2 == 0:
            sweep()

    restarted = wait_until(lambda: len(_cluster_pids(log_path)) >= 2, timeout=60, on_tick=scheduler)
    assert restarted, log_path.read_text()[-2000:]
    assert "WEDGED" in log_path.read_text()
    done = OutboxCommand.objects.filter(
        pk__in=[c.pk for c in commands], state=OutboxCommand.State.CONFIRMED
    )
    assert wait_until(lambda: done.count() == 5, timeout=60, on_tick=scheduler), list(
        OutboxCommand.objects.values_list("external_reference", "state")
    )
    for command in commands:
        assert world.server.state.receipt_count(command.external_reference) == 1
    assert process.poll() is None  # the watchdog itself carries on
