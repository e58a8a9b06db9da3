"""Run `manage.py qcluster` as a child and restart it when it dies or is wedged (due outbox rows,
no progress for OUTBOX_STALL_SECONDS: ledger/outbox/health.py). `make run` starts the task
workers through this. SIGTERM/SIGINT stop the child gracefully (SIGTERM to its main process,
then whatever is left after the grace period is killed) and then the watchdog.

A restart loses nothing: rows a stuck worker held are read back once their lease lapses, and
the queue only wakes work (RELIABILITY.md)."""

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connections

from ledger.outbox.health import outbox_health

log = logging.getLogger(__name__)
BASE = Path(settings.BASE_DIR)
# below `make run`'s STOP_GRACE_SECONDS (5): the watchdog must take its child's process group
# down before scripts/run.sh kills whatever is left
GRACE_SECONDS = 3


class Command(BaseCommand):
    help = "Run qcluster and restart it when it dies or the outbox is wedged."

    def add_arguments(self, parser):
        parser.add_argument("--every", type=float, default=settings.OUTBOX_WATCHDOG_SECONDS)
        parser.add_argument("--stall", type=int, default=settings.OUTBOX_STALL_SECONDS)
        parser.add_argument(
            "--startup", type=float, default=60, help="seconds a new qcluster gets to start"
        )

    def handle(self, *args, every, stall, startup, **options):
        stopping = []

        def stop(signum, frame):
            stopping.append(signum)

        # before the child exists: a Ctrl-C at start-up must never leave qcluster running alone
        # in its own process group, where the terminal's Ctrl-C does not reach it
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.child = self._start()
        started = time.monotonic()
        restarts = 0
        while not stopping:
            self._wait(every, stopping)
            if stopping:
                break
            if self.child.poll() is not None:
                self._say(f"qcluster exited with status {self.child.returncode}; restarting")
            else:
                if time.monotonic() - started < max(stall, startup):
                    continue  # a fresh cluster is not judged before it could have worked
                try:
                    health = outbox_health(stall)
                except Exception as exc:  # noqa: BLE001 - a database outage is not a wedge
                    log.warning("outbox watchdog: health check failed: %s", exc)
                    continue
                finally:
                    connections.close_all()
                if not health.wedged:
                    continue
                self._say(f"{health}; restarting qcluster")
                self._stop(self.child)
            restarts += 1
            self.child = self._start()
            started = time.monotonic()
        self._stop(self.child)
        self._say(f"stopped ({restarts} restart(s))")

    @staticmethod
    def _wait(seconds: float, stopping: list) -> None:
        """Sleep `seconds`, but wake within 0.2 s of a stop signal (time.sleep resumes after a
        signal handler), so the child is stopped well inside `make run`'s grace period."""
        deadline = time.monotonic() + seconds
        while not stopping and time.monotonic() < deadline:
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))

    def _say(self, message: str) -> None:
        log.warning("outbox watchdog: %s", message)
        self.stderr.write(f"outbox watchdog: {message}")

    def _start(self) -> subprocess.Popen:
        child = subprocess.Popen(
            [sys.executable, str(BASE / "manage.py"), "qcluster"],
            cwd=BASE,
            start_new_session=True,  # its own process group: a restart takes all of it
        )
        self.stdout.write(f"outbox watchdog: qcluster started, pid {child.pid}")
        self.stdout.flush()
        return child

    def _stop(self, child: subprocess.Popen) -> None:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(child.pid, signal.SIGKILL)  # also a wedged or stopped group
        except ProcessLookupError:
            pass
        if child.poll() is None:
            child.wait(timeout=10)
