"""Sales invoices into AIQ: 10,000 invoices of 3 lines pushed with the bulk operations.

    .venv/bin/python bench/bench_invoicing.py [--invoices 10000] [--latency-ms 50] [--workers 4]

Starts the AIQ sandbox (seeded demo company, a fixed latency per SOAP call), a fresh SQLite
database (or DATABASE_URL) and a real `qcluster` with --workers task workers, warmed with one
untimed submission. Then, timed: `sales_invoices_submit` of --invoices normalised invoices
(stored, credit-checked with one GetAccountBalanceInformation, queued as bulk commands of 100
in one transaction) until every invoice is posted in AIQ (duplicate check by
GetInvoicesByExternalReference + GetTransactionsByExternalReference per invoice, then
CreateBatchSalesInvoiceBulkGetBackTransactionIDs per 100). Target: <= 60 s end to end on
SQLite with 4 workers.

Overhead: the same AIQ calls for --bare invoices (default 2,000), made straight through
AiqClient with the same shape (--workers threads, each a bulk of 100 after its look-ups),
scaled to --invoices: the AIQ calls alone. The sandbox runs in a process of its own (AIQ is
another machine), so CPU seconds are printed per component: the sandbox (AIQ's side), the
cluster's task workers, the rest of the cluster (sentinel, pusher, monitor, broker polls), and
this process (the submission; then polling). On this shared 2-core machine wall time follows
the load; "CPU-bound wall" is the sum of our CPU and the sandbox's over the 2 cores, what a
quiet machine could not beat. AIQ's books are checked at the end: each invoice exactly once.

The migrated database is kept in var/ as a template named after the migrations (set up once,
copied for each run): migrating from scratch takes a minute on a loaded machine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import queue
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aiqrecon.settings")
VAR = tempfile.mkdtemp(prefix="bench-invoicing-")
os.environ["AIQRECON_VAR_DIR"] = VAR
os.environ.setdefault("SQLITE_PATH", str(Path(VAR) / "bench.sqlite3"))
os.environ["LOG_LEVEL"] = "WARNING"

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402

from ledger.models import Entity  # noqa: E402
from sales.models import CreditAction, InvoiceSource, SalesInvoice, SalesSettings  # noqa: E402
from sales.normalised import NormalisedInvoice, NormalisedLine  # noqa: E402
from sales.services.invoices import sales_invoices_submit  # noqa: E402
from tests.outbox_support import Cluster, wait_until  # noqa: E402

CUSTOMERS = ["ACME", "BRIGHT", "CASTLE", "DELTA", "EVERGR", "FOXTON", "GRANIT", "HARBOR"]


def invoices(prefix: str, count: int) -> list[NormalisedInvoice]:
    out = []
    for n in range(count):
        lines = [
            NormalisedLine(
                net_amount=Decimal(f"{10 + (n + k) % 90}.{(n * 7 + k) % 100:02d}"),
                tax_amount=Decimal(f"{2 + (n + k) % 18}.{(n * 3 + k) % 100:02d}"),
                tax_code="T1",
                description=f"Line {k + 1}",
            )
            for k in range(3)
        ]
        out.append(
            NormalisedInvoice(
                external_reference=f"{prefix}-{n:06d}",
                customer_code=CUSTOMERS[n % len(CUSTOMERS)],
                customer_name="known",
                invoice_date=date(2026, 11, 20),
                currency="GBP",
                lines=lines,
            )
        )
    return out


def cpu_seconds(pids: list[int]) -> float:
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def migrated() -> None:
    """Migrate the bench's SQLite database, from a template kept in var/ when one exists for
    exactly these migrations (PostgreSQL: migrate)."""
    if settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1] != "sqlite3":
        call_command("migrate", verbosity=0)
        return
    names = sorted(
        f"{p.relative_to(ROOT)}:{p.stat().st_size}" for p in ROOT.glob("*/migrations/0*.py")
    )
    key = hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]
    template = ROOT / "var" / f"bench_invoicing_{key}.sqlite3"
    target = Path(settings.DATABASES["default"]["NAME"])
    if template.exists():
        shutil.copyfile(template, target)
    call_command("migrate", verbosity=0)
    if not template.exists():
        template.parent.mkdir(exist_ok=True)
        shutil.copyfile(target, template)


class Sandbox:
    """The AIQ sandbox in a process of its own (`python -m sandbox serve`)."""

    def __init__(self, path: Path):
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sandbox", "serve", "--db", str(path), "--port", str(port)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        if not wait_until(self._up, timeout=60):
            sys.exit("the sandbox did not start")

    def _up(self) -> bool:
        try:
            urllib.request.urlopen(self.url + "/_sandbox/health", timeout=1).read()
        except OSError:
            return False
        return True

    def faults(self, **changes) -> None:
        request = urllib.request.Request(
            self.url + "/_sandbox/faults",
            data=json.dumps(changes).encode(),
            headers={"Content-Type": "application/json"},
        )
        urllib.request.urlopen(request, timeout=10).read()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def bare_calls(entity, count: int, workers: int) -> float:
    """Seconds for the same AIQ calls as the outbox makes for `count` invoices, straight
    through AiqClient: per bulk of 100 the look-ups (8 at a time) then the bulk create."""
    from ledger.aiq.client import AiqClient
    from sales import outbox as kinds
    from sales.services.invoices import _fields as fields_of
    from sales.services.invoices import _payload_invoice

    # one client per thread, as each worker process of the cluster has its own (its own pool
    # of connections, one per look-up thread)
    clients = [AiqClient.for_entity(entity) for _ in range(workers)]
    clients[0].call("GetBankList")  # log in outside the timing
    free = queue.SimpleQueue()
    for client in clients:
        free.put(client)
    payloads = []
    for invoice in invoices("BARE", count):
        row = SalesInvoice(**fields_of(entity, SOURCE, invoice, None, None))
        row.pk = 0
        row._lines = [
            type("L", (), {**line.__dict__, "gl_account_code": "", "quantity": 1})
            for line in invoice.lines
        ]
        payloads.append(_payload_invoice(row))
    chunks = [payloads[i : i + kinds.BULK_SIZE] for i in range(0, count, kinds.BULK_SIZE)]

    def push(chunk):
        client = free.get()
        try:
            kinds._look_up_all(client, chunk)
            client.create_batch_sales_invoices_bulk([kinds._batch_fields({}, i) for i in chunk])
        finally:
            free.put(client)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(push, chunks))
    return time.perf_counter() - started


SOURCE = None


def main() -> None:
    global SOURCE
    parser = argparse.ArgumentParser()
    parser.add_argument("--invoices", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--bare", type=int, default=2_000)
    args = parser.parse_args()

    from sandbox import seed

    migrated()
    path = Path(VAR) / "aiq.sqlite3"
    seed.seed(str(path))
    server = Sandbox(path)
    settings.AIQ_SANDBOX_URL = server.url
    os.environ.update(seed.credentials())
    os.environ["AIQ_SANDBOX_URL"] = server.url
    entity = Entity.objects.create(
        name="Demo", company_id="demo", region="sandbox", credentials_key="DEMO"
    )
    # breakdowns are not attached here: the bench times the invoices themselves
    SOURCE = InvoiceSource.objects.create(
        entity=entity, code="BENCH", name="Bench CRM", attach_breakdown=False
    )
    # the seeded customers carry credit limits: warn, so every invoice is pushed (the credit
    # check itself still runs: one GetAccountBalanceInformation per submission)
    SalesSettings.objects.create(entity=entity, credit_action=CreditAction.WARN)
    from ledger.outbox.runner import default_client_factory
    from ledger.sync import pull

    pull.sync_customers(default_client_factory(entity), entity)
    server.faults(latency_ms=args.latency_ms)
    print(
        f"AIQ sandbox latency {args.latency_ms} ms; {args.invoices} invoices x 3 lines; "
        f"{args.workers} workers; {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}"
    )

    bare = None
    if args.bare:
        cpu_before = cpu_seconds([server.proc.pid]), time.process_time()
        bare = bare_calls(entity, args.bare, args.workers)
        scale = args.invoices / args.bare
        print(
            f"bare AIQ calls: {args.bare} invoices in {bare:.2f} s "
            f"({args.bare / bare:.0f} invoices/s; scaled to {args.invoices}: "
            f"{bare * scale:.1f} s); CPU scaled to {args.invoices}: client "
            f"{(time.process_time() - cpu_before[1]) * scale:.1f} s, sandbox "
            f"{(cpu_seconds([server.proc.pid]) - cpu_before[0]) * scale:.1f} s"
        )
    cluster = Cluster(Path(VAR) / "qcluster.log", workers=args.workers)
    try:
        if not wait_until(lambda: len(cluster.workers()) == args.workers, timeout=60):
            sys.exit(f"qcluster did not start {args.workers} workers")
        settings.Q_CLUSTER["workers"] = args.workers
        warm = invoices("WARM", args.workers * 100)
        sales_invoices_submit(entity=entity, source=SOURCE, invoices=warm)
        posted = SalesInvoice.objects.filter(state=SalesInvoice.State.POSTED)
        if not wait_until(lambda: posted.count() == len(warm), timeout=300):
            sys.exit(f"warm-up did not finish: {posted.count()} of {len(warm)} posted")
        batch = invoices("BENCH", args.invoices)
        workers = cluster.workers()
        rest = [cluster.proc.pid, *(p for p in cluster.descendants() if p not in workers)]
        components = {"sandbox": [server.proc.pid], "workers": workers, "cluster rest": rest}
        cpu_before = {name: cpu_seconds(pids) for name, pids in components.items()}
        own_before = time.process_time()
        load_before = os.getloadavg()[0]
        started = time.perf_counter()
        sales_invoices_submit(entity=entity, source=SOURCE, invoices=batch)
        submitted = time.perf_counter()
        submit_cpu = time.process_time() - own_before
        rows = SalesInvoice.objects.filter(
            external_reference__startswith="BENCH-", state=SalesInvoice.State.POSTED
        )
        done = wait_until(lambda: rows.count() == args.invoices, timeout=900, interval=0.2)
        ended = time.perf_counter()
        cpu = {name: cpu_seconds(pids) - cpu_before[name] for name, pids in components.items()}
        cpu["submit"] = submit_cpu
        cpu["polling"] = time.process_time() - own_before - submit_cpu
        load_after = os.getloadavg()[0]
    finally:
        cluster.stop()
        server.stop()
    total = ended - started
    push = ended - submitted
    ours = sum(cpu.values()) - cpu["sandbox"] - cpu["polling"]
    print(
        f"{'done' if done else 'NOT DONE'}: {rows.count()} of {args.invoices} posted; "
        f"end to end {total:.1f} s ({args.invoices / total:.0f} invoices/s): submit "
        f"{submitted - started:.1f} s, push {push:.1f} s; load average {load_before:.1f} -> "
        f"{load_after:.1f}"
    )
    print(
        "CPU s: "
        + ", ".join(f"{name} {seconds:.1f}" for name, seconds in cpu.items())
        + f"; ours (all but the sandbox and the polling) {ours:.1f} s = "
        f"{1000 * ours / args.invoices:.2f} ms per invoice; CPU-bound wall on 2 cores "
        f"(ours + sandbox) / 2 = {(ours + cpu['sandbox']) / 2:.1f} s"
    )
    if bare:
        scaled = bare * args.invoices / args.bare
        print(
            f"overhead over the AIQ calls alone: end to end {total / scaled:.2f}x, "
            f"push only {push / scaled:.2f}x"
        )
    store = __import__("sqlite3").connect(path)
    refs = store.execute(
        "SELECT count(*), count(DISTINCT external_reference) FROM txn "
        "WHERE entity_id = 'demo' AND type = 'SalesInvoice' AND external_reference LIKE 'BENCH-%'"
    ).fetchone()
    print(f"AIQ holds {refs[0]} BENCH invoices, {refs[1]} distinct references (exactly once: "
          f"{refs[0] == refs[1] == args.invoices})")  # fmt: skip


if __name__ == "__main__":
    main()
