"""Outbox throughput with 1, 2 and 4 django-q2 workers, and our overhead per command.

    .venv/bin/python bench/bench_outbox.py [--commands 200] [--latency-ms 50] [--workers 1 2 4]

Starts the AIQ sandbox (seeded demo company) with a fixed latency per SOAP call, a fresh
database (SQLite in a temp dir, or DATABASE_URL if set) and, per worker count, a real
`qcluster` with Q_WORKERS=n, waiting until exactly n task workers are up and warming each of
them with one untimed drain (first import, WSDL, login). Each round then enqueues
--commands post_receipt commands with outbox_enqueue in one transaction (a bulk approval) and
times its commit -> last confirmed: the workers' throughput, not the enqueueing caller's.

Overhead: right before the 1-worker round, the same number of
SaveSalesReceiptGetBackTransactionID calls made directly through AiqClient, one after another,
give the cost of the AIQ calls themselves (on this machine, at this moment); the outbox's
extra wall time per command at 1 worker over that (claim, lease, confirm, mirror, audit,
queue) is our overhead. Targets: >= 3.5x throughput from 1 to 4 workers; overhead <= 20 %.
CPU seconds per command of the qcluster processes and of this process (sandbox, enqueue,
polling) are printed too: on a machine shared with other work they show whether a round
was limited by the outbox's design or by the cores it got.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aiqrecon.settings")
VAR = tempfile.mkdtemp(prefix="bench-outbox-")
os.environ["AIQRECON_VAR_DIR"] = VAR
os.environ.setdefault("SQLITE_PATH", str(Path(VAR) / "bench.sqlite3"))
os.environ["LOG_LEVEL"] = "WARNING"

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import transaction  # noqa: E402

from ledger.models import Entity, OutboxCommand  # noqa: E402
from ledger.outbox.services import outbox_enqueue  # noqa: E402
from tests.outbox_support import Cluster, seed_sandbox, wait_until  # noqa: E402


def enqueue(entity, customer, bank, prefix: str, count: int) -> None:
    with transaction.atomic():
        for n in range(count):
            outbox_enqueue(
                entity=entity,
                kind="post_receipt",
                payload={
                    "customer_code": customer.code,
                    "bank_account_code": bank.bank_account_code,
                    "amount": "10.00",
                    "currency": bank.currency,
                    "payment_date": date.today().isoformat(),
                    "description": "bench",
                    "payment_id": None,
                },
                external_reference=f"{prefix}-{n}",
            )


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes so far (from /proc; 0 for one that is gone)."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def direct_calls(entity, customer, bank, count: int) -> float:
    """Seconds for `count` receipts sent straight through AiqClient (no outbox)."""
    from ledger.aiq.client import AiqClient

    client = AiqClient.for_entity(entity)
    client.call("GetBankList")  # log in and warm up outside the timing
    started = time.perf_counter()
    for n in range(count):
        client.call(
            "SaveSalesReceiptGetBackTransactionID",
            salesReceipt={
                "CustomerCode": customer.code,
                "CheckReference": f"DIRECT-{n}",
                "PaymentAmount": "10.00",
                "BankAccountCode": bank.bank_account_code,
                "PaymentDate": date.today(),
                "ExchangeRate": 1,
                "BankExchangeRate": 1,
            },
        )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--commands", type=int, default=200)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()

    from sandbox import seed
    from sandbox.server import SandboxServer

    call_command("migrate", verbosity=0)
    path = Path(VAR) / "aiq.sqlite3"
    seed_sandbox(path, 0)
    server = SandboxServer(str(path)).start()
    server.faults.update(latency_ms=args.latency_ms)
    settings.AIQ_SANDBOX_URL = server.url
    os.environ.update(seed.credentials())
    os.environ["AIQ_SANDBOX_URL"] = server.url

    entity = Entity.objects.create(
        name="Demo", company_id="demo", region="sandbox", credentials_key="DEMO"
    )
    from ledger.outbox.runner import default_client_factory
    from ledger.sync import pull

    client = default_client_factory(entity)
    pull.sync_banks(client, entity)
    pull.sync_customers(client, entity)
    customer = entity.customer_set.get(code="ACME")
    bank = entity.bankaccount_set.get(currency=customer.currency)

    print(f"AIQ sandbox latency {args.latency_ms} ms; {args.commands} commands per round")
    per_call = None
    results = {}
    for workers in args.workers:
        if workers == 1:
            per_call = direct_calls(entity, customer, bank, args.commands) / args.commands
            print(f"direct AiqClient calls: {per_call * 1000:.1f} ms per receipt")
        cluster = Cluster(Path(VAR) / f"qcluster-{workers}.log", workers=workers)
        try:
            # Cluster.workers() lists the task workers only (not pusher/monitor)
            if not wait_until(lambda c=cluster, w=workers: len(c.workers()) == w, timeout=60):
                sys.exit(f"qcluster did not start {workers} workers: {cluster.workers()}")
            time.sleep(1)
            # the enqueueing side reads the same settings as the cluster (as in a deployment):
            # it wakes one drain per batch, at most one per worker
            settings.Q_CLUSTER["workers"] = workers
            # Warm-up, untimed: one drain per worker imports the AIQ client, parses the WSDL and
            # logs in once per worker process (about a second each here); a long-lived worker
            # pays that once, not per round, so the timed round measures the steady state.
            warm = f"WARM-{workers}"
            warm_started = time.perf_counter()
            enqueue(entity, customer, bank, warm, workers * settings.OUTBOX_BATCH_SIZE)
            warm_rows = OutboxCommand.objects.filter(external_reference__startswith=warm + "-")
            wait_until(
                lambda r=warm_rows, n=workers * settings.OUTBOX_BATCH_SIZE: (
                    r.filter(state="confirmed").count() == n
                ),
                timeout=120,
            )
            warm_seconds = time.perf_counter() - warm_started
            prefix = f"BENCH-{workers}"
            cluster_pids = [cluster.proc.pid, *cluster.descendants()]
            cpu_before = cpu_seconds(cluster_pids), time.process_time()
            enqueue_started = time.perf_counter()
            enqueue(entity, customer, bank, prefix, args.commands)
            started = time.perf_counter()
            rows = OutboxCommand.objects.filter(external_reference__startswith=prefix + "-")
            done = wait_until(
                lambda r=rows: r.filter(state="confirmed").count() == args.commands,
                timeout=600,
                interval=0.05,
            )
            elapsed = time.perf_counter() - started
            cluster_cpu = cpu_seconds(cluster_pids) - cpu_before[0]
            # this process: the sandbox's request handling, the enqueueing, the polling
            own_cpu = time.process_time() - cpu_before[1]
        finally:
            cluster.stop()
        if not done:
            print(
                f"{workers} worker(s): did not finish; states {list(rows.values_list('state'))[:5]}"
            )
            continue
        results[workers] = elapsed
        print(
            f"{workers} worker(s): {args.commands / elapsed:6.1f} commands/s "
            f"({elapsed:.2f} s, {elapsed / args.commands * 1000:.1f} ms per command; "
            f"enqueueing took {started - enqueue_started:.2f} s, not counted); CPU per "
            f"command: qcluster {cluster_cpu / args.commands * 1000:.1f} ms, sandbox+bench "
            f"{own_cpu / args.commands * 1000:.1f} ms; warm-up of "
            f"{workers * settings.OUTBOX_BATCH_SIZE} commands {warm_seconds:.2f} s)"
        )
    if 1 in results and per_call:
        overhead = (results[1] / args.commands - per_call) / per_call
        print(
            f"overhead per command over the AIQ call (1 worker): {overhead * 100:.1f} %"
            f" (target <= 20 %)"
        )
    if 1 in results and 4 in results:
        print(f"speed-up 1 -> 4 workers: {results[1] / results[4]:.2f}x (target >= 3.5x)")
    server.stop()


if __name__ == "__main__":
    main()
