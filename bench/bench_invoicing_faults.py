"""Sales invoices into AIQ under faults: each exactly once in AIQ's books.

    .venv/bin/python bench/bench_invoicing_faults.py [--invoices 1000] [--kills 12] [--workers 3]

The AIQ sandbox answers with the chaos tests' faults (tests/outbox_support.CHAOS_FAULTS:
answers dropped after the commit, connections reset, HTTP 500s, writes committed 1.5 s after an
unanswered send, tokens expiring every 40 calls). A real `qcluster` (short leases and settle
period, like the chaos tests) pushes --invoices sales invoices: most as bulk commands
(CreateBatchSalesInvoiceBulkGetBackTransactionIDs, one submission per 50), some one command
each (batch invoices of small submissions, item invoices with order numbers, already-paid orders
through PostPayAndAllocateSalesInvoice), with new customers created first. While they go,
--kills busy task workers are SIGKILLed mid-task; this process runs the outbox sweeper.

Checked at the end in the sandbox's own books (its SQLite file): every invoice's external
reference is on exactly one AIQ transaction, and each invoice row is posted with that
transaction's id. Prints the figures; exits 1 when a single invoice is missing or doubled.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import sys
import tempfile
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aiqrecon.settings")
VAR = tempfile.mkdtemp(prefix="bench-invoicing-faults-")
os.environ["AIQRECON_VAR_DIR"] = VAR
os.environ["SQLITE_PATH"] = str(Path(VAR) / "bench.sqlite3")
os.environ.pop("DATABASE_URL", None)
os.environ["LOG_LEVEL"] = "ERROR"

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402

from ledger.models import Entity, OutboxCommand  # noqa: E402
from sales.models import CreditAction, InvoiceSource, SalesInvoice, SalesSettings  # noqa: E402
from sales.normalised import NormalisedInvoice, NormalisedLine, NormalisedPaid  # noqa: E402
from sales.services.invoices import sales_invoices_submit  # noqa: E402
from tests.outbox_support import (  # noqa: E402
    CHAOS_FAULTS,
    Cluster,
    cluster_env,
    wait_until,
)

KNOWN = ["ACME", "BRIGHT", "CASTLE", "DELTA", "EVERGR", "FOXTON", "GRANIT", "HARBOR"]
NEW = [f"FAULTNEW{n}" for n in range(1, 6)]


def invoice(n: int, bank_code: str) -> NormalisedInvoice:
    code = NEW[n % len(NEW)] if n % 17 == 0 else KNOWN[n % len(KNOWN)]
    item = n % 23 == 0  # order numbers: an item invoice (save, then post)
    paid = n % 29 == 0 and not item and code in KNOWN  # an already-paid web-shop order
    lines = [
        NormalisedLine(
            net_amount=Decimal(f"{10 + (n + k) % 90}.{(n * 7 + k) % 100:02d}"),
            tax_amount=Decimal(f"{2 + (n + k) % 18}.{(n * 3 + k) % 100:02d}"),
            tax_code="T1",
            description=f"Line {k + 1}",
            order_number=f"PO-{n}" if item else "",
        )
        for k in range(2)
    ]
    out = NormalisedInvoice(
        external_reference=f"FLT-{n:05d}",
        customer_code=code,
        customer_name=f"Customer {code}",
        invoice_date=date(2026, 11, 20),
        currency="GBP",
        lines=lines,
    )
    if paid:
        out.paid = NormalisedPaid(
            amount=out.gross_amount,
            bank_account_code=bank_code,
            reference=f"PAY-FLT-{n:05d}",
            paid_on=date(2026, 11, 21),
        )
    return out


def books(path: Path, count: int) -> tuple[dict[str, list[int]], int]:
    """AIQ's sales invoice transactions by our references, and how many references AIQ holds
    more than once."""
    store = sqlite3.connect(path)
    rows = store.execute(
        "SELECT external_reference, id FROM txn WHERE entity_id = 'demo' "
        "AND type = 'SalesInvoice' AND external_reference LIKE 'FLT-%'"
    ).fetchall()
    found: dict[str, list[int]] = {}
    for reference, txn in rows:
        found.setdefault(reference, []).append(txn)
    return found, sum(1 for ids in found.values() if len(ids) > 1)


def submit(entity, source, chunk) -> None:
    """A submission makes one AIQ call itself (the credit check's balances): under faults it
    may fail, and then nothing of it is stored; the source sends it again (idempotent)."""
    from ledger.aiq.errors import AiqTemporaryError

    for attempt in range(20):
        try:
            sales_invoices_submit(entity=entity, source=source, invoices=chunk)
            return
        except AiqTemporaryError:
            SUBMIT_RETRIES[0] += 1
            time.sleep(0.1 * attempt)
    raise RuntimeError("a submission failed 20 times")


SUBMIT_RETRIES = [0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--invoices", type=int, default=1000)
    parser.add_argument("--kills", type=int, default=12)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    from ledger.outbox.runner import default_client_factory
    from ledger.outbox.tasks import sweep
    from ledger.sync import pull
    from sandbox import seed
    from sandbox.server import SandboxServer

    call_command("migrate", verbosity=0)
    path = Path(VAR) / "aiq.sqlite3"
    seed.seed(str(path))
    server = SandboxServer(str(path)).start()
    settings.AIQ_SANDBOX_URL = server.url
    os.environ.update(seed.credentials())
    os.environ["AIQ_SANDBOX_URL"] = server.url
    entity = Entity.objects.create(
        name="Demo", company_id="demo", region="sandbox", credentials_key="DEMO"
    )
    source = InvoiceSource.objects.create(
        entity=entity, code="FAULTS", name="Fault CRM", attach_breakdown=False
    )
    SalesSettings.objects.create(entity=entity, credit_action=CreditAction.WARN)
    client = default_client_factory(entity)
    pull.sync_customers(client, entity)
    bank_code = "BANK-GBP"  # the seeded company's GBP bank
    all_invoices = [invoice(n, bank_code) for n in range(1, args.invoices + 1)]
    # most in submissions of 50 (bulk commands); every tenth submission of 4 (one command each)
    chunks, start = [], 0
    while start < len(all_invoices):
        size = 4 if len(chunks) % 10 == 9 else 50
        chunks.append(all_invoices[start : start + size])
        start += size

    server.faults.update(**CHAOS_FAULTS, seed=args.seed)
    cluster = Cluster(
        Path(VAR) / "qcluster.log",
        workers=args.workers,
        env={**cluster_env(server.url), "LOG_LEVEL": "ERROR"},
    )
    open_ = OutboxCommand.objects.exclude(state__in=["confirmed", "failed", "needs_person"])
    killed: list[int] = []
    last_sweep = [0.0]

    def tick():
        if time.monotonic() - last_sweep[0] >= 0.5:
            sweep()
            last_sweep[0] = time.monotonic()

    try:
        if not wait_until(lambda: len(cluster.workers()) >= args.workers, timeout=60):
            sys.exit("qcluster did not start")
        started = time.monotonic()
        for chunk in chunks:
            submit(entity, source, chunk)
            victim = cluster.kill_random_worker(rng) if len(killed) < args.kills else None
            if victim:
                killed.append(victim)
            tick()
        deadline = time.monotonic() + args.timeout
        while len(killed) < args.kills and open_.exists() and time.monotonic() < deadline:
            time.sleep(rng.uniform(0.05, 0.3))
            victim = cluster.kill_random_worker(rng)
            if victim:
                killed.append(victim)
            tick()
        settled = wait_until(
            lambda: not open_.exists(), timeout=max(1, deadline - time.monotonic()), on_tick=tick
        )
        elapsed = time.monotonic() - started
        fired = server.faults.snapshot()["stats"]
        server.faults.reset()
        server.settle_late_commits(timeout=30)
    finally:
        cluster.stop()
        server.stop()

    found, doubled = books(path, args.invoices)
    rows = {r.external_reference: r for r in SalesInvoice.objects.all()}
    missing = [ref for ref in rows if ref not in found]
    wrong = [
        ref
        for ref, row in rows.items()
        if ref in found and (row.aiq_transaction_id not in found[ref] or row.state != "posted")
    ]
    parked = OutboxCommand.objects.filter(state__in=["failed", "needs_person"]).count()
    print(
        f"{args.invoices} invoices, {len(chunks)} submissions, {args.workers} workers: "
        f"{'settled' if settled else 'NOT SETTLED'} in {elapsed:.1f} s; {len(killed)} workers "
        f"killed; {SUBMIT_RETRIES[0]} submissions sent again after an AIQ error; "
        f"faults fired: {fired}"
    )
    print(
        f"AIQ holds {len(found)} of {args.invoices} references; {doubled} more than once; "
        f"{len(missing)} missing; {len(wrong)} rows not posted with AIQ's id; "
        f"{parked} commands failed or waiting for a person"
    )
    exactly_once = len(found) == args.invoices and not doubled and not missing and not wrong
    print(f"exactly once: {exactly_once}")
    sys.exit(0 if exactly_once and settled else 1)


if __name__ == "__main__":
    main()
