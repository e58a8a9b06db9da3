"""contact_payments through the API under load: latency per POST, nothing lost.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/aiqrecon_api REDIS_URL=redis://127.0.0.1:6379/8 \
        .venv/bin/python bench/bench_api.py [--posts 1000] [--clients 8] [--web-workers N]
        [--web-threads N]

Migrates the database it is given (SQLite in a temp dir when DATABASE_URL is unset), makes a
company of its own (a fresh company id per run) with one customer, a bank account and --posts
open invoices of 10.00 as the mirror holds them, and an API client. Starts gunicorn on a free
port (workers and threads as gunicorn.conf.py says, or --web-workers and --web-threads), warms
each worker up, then --clients threads, each with its own HTTP session, send --posts / --clients POST /api/v1/contact_payments: a receipt of
10.00 allocated to its own invoice, a fresh Idempotency-Key each. Timed per request from
send to last byte. The AIQ push is asynchronous (the POST queues outbox commands; no worker
runs here), which is what the figure is about: p95 <= 100 ms on PostgreSQL.

Before the run, one more POST is made in-process (Django's test client) with every SQL
statement counted: the queries per POST, printed with the latencies (p50, p95, p99).

Checks after the run: every answer 201, one payment, one plan and two outbox commands
(receipt + allocation) per POST: none lost, none doubled.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aiqrecon.settings")
VAR = tempfile.mkdtemp(prefix="bench-api-")
os.environ["AIQRECON_VAR_DIR"] = VAR
os.environ.setdefault("SQLITE_PATH", str(Path(VAR) / "bench.sqlite3"))
os.environ["LOG_LEVEL"] = "WARNING"
os.environ["API_RATE_LIMIT"] = "1000000/min"

import django  # noqa: E402

django.setup()

import requests  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402

from api.services import api_client_create  # noqa: E402
from ledger.models import (  # noqa: E402
    BankAccount,
    Customer,
    DocumentStatus,
    Entity,
    Invoice,
    OutboxCommand,  # noqa: E402
)
from payments.models import AllocationPlan, Payment  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(root: int) -> float:
    """User + system CPU of a process and its children so far (from /proc)."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(stat.parent.name) == root or int(fields[1]) == root:  # fields[1]: ppid
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def database_cpu_seconds(name: str) -> dict[int, float]:
    """CPU so far of each PostgreSQL backend serving database `name` (a backend's process
    title names its database: "postgres: user dbname host(port) state"), by process id."""
    seconds = {}
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            title = cmdline.read_bytes().decode(errors="replace")
            if not title.startswith("postgres:") or f" {name} " not in title:
                continue
            fields = (cmdline.parent / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        seconds[int(cmdline.parent.name)] = (int(fields[11]) + int(fields[12])) / os.sysconf(
            "SC_CLK_TCK"
        )
    return seconds


def make_books(posts: int):
    run = uuid.uuid4().hex[:8]
    entity = Entity.objects.create(
        name=f"Bench {run}", company_id=f"bench-{run}", region="sandbox", credentials_key="DEMO"
    )
    customer = Customer.objects.create(
        entity=entity, code="BENCH", name="Bench Ltd", currency="GBP"
    )
    BankAccount.objects.create(
        entity=entity, bank_code="1200", bank_account_code="BANK-GBP", name="Bank", currency="GBP"
    )
    Invoice.objects.bulk_create(
        Invoice(
            entity=entity, customer=customer, invoice_number=f"B{run}-{n}",
            aiq_transaction_id=100000 + n, currency="GBP", invoice_date="2026-11-01",
            net_amount="10.00", tax_amount="0", gross_amount="10.00",
            outstanding_amount="10.00", status=DocumentStatus.POSTED,
        )
        for n in range(posts + 1)  # one more for the in-process POST that counts queries
    )  # fmt: skip
    admin, _ = User.objects.get_or_create(username=f"bench-admin-{run}", is_superuser=True)
    _client, token = api_client_create(
        actor=admin, name=f"bench-{run}", entity=entity, scope="write"
    )
    invoices = list(
        Invoice.objects.filter(entity=entity).order_by("pk").values_list("pk", flat=True)
    )
    return entity, token, invoices


def body(invoice_id: int) -> dict:
    return {
        "contact_payment": {
            "transaction_type_id": "CUSTOMER_RECEIPT",
            "contact_id": "BENCH",
            "bank_account_id": "BANK-GBP",
            "date": "2026-12-01",
            "total_amount": "10.00",
            "allocated_artefacts": [{"artefact_id": f"inv_{invoice_id}", "amount": "10.00"}],
        }
    }


def queries_per_post(token: str, invoice_id: int) -> int:
    """One POST in this process, its SQL statements counted (the savepoints included)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    http = Client(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_HOST="127.0.0.1")
    http.get("/api/v1/bank_accounts")  # the client's last_used_at written here, not below
    with CaptureQueriesContext(connection) as counted:
        answer = http.post(
            "/api/v1/contact_payments",
            data=body(invoice_id),
            content_type="application/json",
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
    assert answer.status_code == 201, answer.content
    return len(counted.captured_queries)


def _gunicorn_workers(env: dict) -> tuple[int, int]:
    """The workers and threads gunicorn.conf.py gives with this environment."""
    config: dict = {}
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        exec((ROOT / "gunicorn.conf.py").read_text(), config)  # noqa: S102 (our own file)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return config["workers"], config["threads"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--posts", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--web-workers", type=int, default=0, help="default: gunicorn.conf.py")
    parser.add_argument("--web-threads", type=int, default=0, help="default: gunicorn.conf.py")
    args = parser.parse_args()

    engine = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    call_command("migrate", verbosity=0)
    entity, token, invoices = make_books(args.posts)
    queries = queries_per_post(token, invoices.pop())
    port = free_port()
    # gunicorn reads gunicorn.conf.py from ROOT (workers, threads); --web-* override it
    env = os.environ.copy()
    if args.web_workers:
        env["WEB_WORKERS"] = str(args.web_workers)
    if args.web_threads:
        env["WEB_THREADS"] = str(args.web_threads)
    server = subprocess.Popen(
        [
            str(ROOT / ".venv/bin/gunicorn"), "aiqrecon.wsgi", "-b", f"127.0.0.1:{port}",
            "--log-level", "warning",
        ],
        cwd=ROOT,
        env=env,
    )  # fmt: skip
    web_workers, web_threads = _gunicorn_workers(env)
    base = f"http://127.0.0.1:{port}/api/v1"
    headers = {"Authorization": f"Bearer {token}"}
    try:
        for _ in range(200):
            try:
                if requests.get(f"{base}/bank_accounts", headers=headers, timeout=10).ok:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        for _ in range(web_workers * 4):  # warm every worker (imports, connections)
            requests.get(f"{base}/customers", headers=headers, timeout=30)

        latencies: list[float] = []
        statuses: list[int] = []
        lock = threading.Lock()
        share = [invoices[i :: args.clients] for i in range(args.clients)]

        def client(mine: list[int]) -> None:
            session = requests.Session()
            session.headers.update(headers)
            for invoice_id in mine:
                started = time.perf_counter()
                answer = session.post(
                    f"{base}/contact_payments",
                    json=body(invoice_id),
                    headers={"Idempotency-Key": str(uuid.uuid4())},
                    timeout=30,
                )
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed)
                    statuses.append(answer.status_code)

        cpu_before = cpu_seconds(server.pid)
        database = settings.DATABASES["default"]["NAME"] if engine == "postgresql" else ""
        db_before = database_cpu_seconds(database) if database else {}
        own_before = time.process_time()
        started = time.perf_counter()
        threads = [threading.Thread(target=client, args=(mine,)) for mine in share]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - started
        cpu = cpu_seconds(server.pid) - cpu_before
        own = time.process_time() - own_before
        db_after = database_cpu_seconds(database) if database else {}
        db_cpu = sum(db_after.values()) - sum(db_before.get(pid, 0) for pid in db_after)
    finally:
        server.terminate()
        server.wait(timeout=30)

    ms = sorted(x * 1000 for x in latencies)
    q = statistics.quantiles(ms, n=100)
    # the in-process POST's rows left out
    payments = Payment.objects.filter(entity=entity).count() - 1
    plans = AllocationPlan.objects.filter(payment__entity=entity).count() - 1
    commands = OutboxCommand.objects.filter(entity=entity).count() - 2
    print(
        f"database {engine}, {args.posts} POST /contact_payments from {args.clients} clients, "
        f"gunicorn {web_workers} workers x {web_threads} threads, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(f"  answers: {statuses.count(201)} x 201, others {sorted(set(statuses) - {201})}")
    print(f"  latency ms: p50 {q[49]:.1f}  p95 {q[94]:.1f}  p99 {q[98]:.1f}  max {ms[-1]:.1f}")
    print(f"  SQL statements per POST: {queries} (one POST counted in-process)")
    print(f"  throughput {len(ms) / wall:.1f} POST/s over {wall:.1f} s")
    # CPU seconds are not free of other load either: on a loaded machine (shared cores, caches)
    # the same work counts up to twice the CPU time; compare runs at the same load
    print(f"  web server CPU {1000 * cpu / len(ms):.1f} ms per POST")
    if database:
        print(f"  PostgreSQL backends' CPU {1000 * db_cpu / len(ms):.1f} ms per POST")
    print(f"  this bench's clients' CPU {1000 * own / len(ms):.1f} ms per POST")
    print(
        f"  machine: {os.cpu_count()} cores; with {args.clients} clients waiting on each other "
        f"a p95 of 100 ms needs about {os.cpu_count() * 100 / args.clients:.0f} ms of CPU per "
        "POST in all (web + database + clients) at most"
    )
    print(
        f"  stored: {payments} payments, {plans} plans, {commands} outbox commands "
        f"(expected {args.posts}, {args.posts}, {2 * args.posts})"
    )
    ok = statuses.count(201) == payments == plans == args.posts and commands == 2 * args.posts
    print("  none lost, none doubled" if ok else "  MISMATCH: something was lost or doubled")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
