"""Helpers for the outbox/sync scenarios and bench/bench_outbox.py: a real `qcluster` process
tree against the test database, and a workload of receipts + allocations in the mirror and
the outbox.
"""

import os
import random
import signal
import subprocess
import sys
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

from django.db import connection, transaction

BASE = Path(__file__).resolve().parent.parent


def db_env() -> dict[str, str]:
    """Point a subprocess at the database this test process uses (the test database)."""
    conf = connection.settings_dict
    if connection.vendor == "sqlite":
        return {"SQLITE_PATH": str(conf["NAME"]), "DATABASE_URL": ""}
    user = conf.get("USER") or "postgres"
    host = conf.get("HOST") or "127.0.0.1"
    port = conf.get("PORT") or 5432
    auth = f"{user}:{conf['PASSWORD']}" if conf.get("PASSWORD") else user
    return {"DATABASE_URL": f"postgres://{auth}@{host}:{port}/{conf['NAME']}"}


class Cluster:
    """One `manage.py qcluster` with its own process group, logging to a file."""

    def __init__(self, log_path: Path, *, workers: int = 2, env: dict | None = None):
        full_env = {**os.environ, **db_env(), "Q_WORKERS": str(workers), **(env or {})}
        full_env = {k: v for k, v in full_env.items() if v != ""}
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=BASE,
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _tree(self) -> dict[int, list[int]]:
        """Live processes by parent pid (zombies left out: killing one again proves nothing)."""
        children: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            state, ppid = stat.rsplit(")", 1)[1].split()[:2]
            if state in ("Z", "X"):
                continue
            children.setdefault(int(ppid), []).append(int(entry.name))
        return children

    def descendants(self) -> list[int]:
        """Every process below the main qcluster process (sentinel, pusher, monitor, workers)."""
        children = self._tree()
        found, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            for child in children.get(pid, []):
                found.append(child)
                todo.append(child)
        return found

    def workers(self) -> list[int]:
        """django-q2's task workers below the sentinel. Not the sentinel (its death stops the
        cluster rather than testing recovery), nor the pusher/monitor: a SIGKILL while they hold
        a multiprocessing queue's lock can wedge the queue, which is not the failure under test
        (a worker dying mid-push). setproctitle names each process, so they can be told apart."""
        children = self._tree()
        sentinels = children.get(self.proc.pid, [])
        return [
            pid
            for sentinel in sentinels
            for pid in children.get(sentinel, [])
            if not _title(pid).endswith(("pusher", "monitor"))
        ]

    def busy_workers(self) -> list[int]:
        """Task workers running a task now (django-q2 titles them "... processing ...").

        An idle worker sits in the task queue's get(), holding the queue's read lock: a SIGKILL
        there leaves the lock taken and every other worker of the cluster blocked on it for good
        (multiprocessing's Queue, not our code). On a loaded machine the first kills often land
        before the first task is pushed, which wedged the whole cluster with every row pending.
        The failure under test is a worker dying mid-task, so only busy workers are victims."""
        return [pid for pid in self.workers() if " processing " in _title(pid)]

    def kill_random_worker(self, rng: random.Random) -> int | None:
        leaves = self.busy_workers()
        if not leaves:
            return None
        victim = rng.choice(leaves)
        try:
            os.kill(victim, signal.SIGKILL)
        except ProcessLookupError:
            return None
        return victim

    def kill_all(self) -> None:
        """A crash of the whole cluster (host lost): nothing gets to clean up."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)
        self._log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            # SIGTERM to the main process only: django-q2 then stops its children gracefully
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if self.proc.poll() is None:
            self.proc.wait(timeout=10)
        if not self._log.closed:
            self._log.close()


def _title(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def wait_until(predicate, timeout: float, interval: float = 0.2, on_tick=None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if on_tick:
            on_tick()
        time.sleep(interval)
    return predicate()


def make_workload(entity, customer, bank, invoices, *, shuffle_seed: int | None = None):
    """For each invoice, a receipt for its gross amount and an allocation that depends on it,
    enqueued as an approval would (one transaction per pair). With shuffle_seed the pairs are
    enqueued allocation-first in random order, so dependents often exist before receipts."""
    from ledger.outbox.services import outbox_enqueue

    pairs = []
    order = list(invoices)
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(order)
    for invoice in order:
        with transaction.atomic():
            receipt = outbox_enqueue(
                entity=entity,
                kind="post_receipt",
                payload={
                    "customer_code": customer.code,
                    "bank_account_code": bank.bank_account_code,
                    "amount": str(invoice.gross_amount),
                    "currency": invoice.currency,
                    "payment_date": date.today().isoformat(),
                    "description": f"payment for {invoice.invoice_number}",
                    "payment_id": None,
                },
                external_reference=f"RCP-{invoice.pk}",
            )
            allocation = outbox_enqueue(
                entity=entity,
                kind="allocate",
                payload={
                    "paying_transaction_id": None,
                    "settled_transaction_id": invoice.aiq_transaction_id,
                    "invoice_id": invoice.pk,
                    "credit_note_id": None,
                    "amount": str(invoice.gross_amount),
                    "allocation_date": date.today().isoformat(),
                    "currency": invoice.currency,
                },
                external_reference=f"ALC-{invoice.pk}",
                depends_on=receipt,
            )
        pairs.append((invoice, receipt, allocation))
    return pairs


def assert_exactly_once(server, pairs, entity_code: str = "demo") -> None:
    """Every receipt once in AIQ, every invoice settled by exactly one allocation of it."""
    from ledger.models import OutboxCommand

    states = dict(
        OutboxCommand.objects.values_list("state").annotate(
            n=__import__("django").db.models.Count("pk")
        )
    )
    assert set(states) == {"confirmed"}, states
    for invoice, receipt, _allocation in pairs:
        assert server.state.receipt_count(receipt.external_reference, entity_code) == 1, receipt
        allocations = server.state.allocations(invoice.aiq_transaction_id)
        assert len(allocations) == 1, (invoice, allocations)
        assert allocations[0]["amount"] == Decimal(invoice.gross_amount)
        assert server.state.outstanding(invoice.aiq_transaction_id) == 0


# --- the AIQ sandbox world -------------------------------------------------------------------

WORKLOAD_CUSTOMER = "ACME"


def seed_sandbox(path: Path, extra_invoices: int) -> None:
    """The sandbox's demo company plus `extra_invoices` small open invoices (WL-n) for ACME,
    built with the sandbox's own book-keeping functions (set-up, not the thing under test)."""
    from datetime import datetime

    from sandbox import books, invoicing, seed
    from sandbox.store import Store

    seed.seed(str(path))
    store = Store(str(path))
    try:
        with store.transaction() as db:
            entity = db.execute("SELECT * FROM entity WHERE id = 'demo'").fetchone()
            ctx = books.Ctx(db=db, entity=entity, now=datetime.now(), user="test")
            for n in range(extra_invoices):
                record = invoicing.template(ctx, WORKLOAD_CUSTOMER, "invoice")
                line = {
                    "StockItemDescription": "Widget",
                    "GLAccountCode": "4000",
                    "InvoicedQuantity": Decimal(1),
                    "StockItemPrice": Decimal("10.00") + n % 50,
                    "DepartmentID": "NS",
                }
                record.update(
                    Lines={"InvoiceLine": [line]}, ExternalReference=f"WL-{n}", InvoiceDate=ctx.now
                )
                invoicing.post(ctx, invoicing.save(ctx, record, True, "invoice"), "invoice")
    finally:
        store.close()


class World:
    def __init__(self, server, entity):
        from ledger.models import BankAccount, Customer

        self.server = server
        self.entity = entity
        self.customer = Customer.objects.get(entity=entity, code=WORKLOAD_CUSTOMER)
        self.bank = BankAccount.objects.get(entity=entity, currency=self.customer.currency)

    def invoices(self, count: int):
        from ledger.models import Invoice

        rows = list(
            Invoice.objects.filter(
                entity=self.entity, external_reference__startswith="WL-", outstanding_amount__gt=0
            ).order_by("pk")[:count]
        )
        assert len(rows) == count, f"seed more workload invoices ({len(rows)} < {count})"
        return rows


def start_world(tmp_path: Path, entity, settings, monkeypatch, extra_invoices: int) -> World:
    from sandbox import seed
    from sandbox.server import SandboxServer

    path = tmp_path / "aiq.sqlite3"
    seed_sandbox(path, extra_invoices)
    server = SandboxServer(str(path)).start()
    settings.AIQ_SANDBOX_URL = server.url
    for name, value in seed.credentials().items():
        monkeypatch.setenv(name, value)
    from ledger.sync.services import sync_claim, sync_run

    sync_claim(entity=entity)
    sync_run(entity=entity)
    mirror_workload(server, entity, extra_invoices)
    server._calls.clear()  # count only what the scenario itself sends
    return World(server, entity)


def mirror_workload(server, entity, count: int) -> None:
    """Mirror rows for the WL-n invoices straight from the sandbox's books, so the outbox
    scenarios do not depend on the pull sync (tested on its own in test_sync_pull.py)."""
    from ledger.models import Customer, Invoice

    customer = Customer.objects.get(entity=entity, code=WORKLOAD_CUSTOMER)
    for n in range(count):
        [txn] = server.state.transactions(f"WL-{n}")
        gross = txn["amount"]
        tax = (gross / Decimal("1.2") * Decimal("0.2")).quantize(Decimal("0.01"))
        Invoice.objects.get_or_create(
            entity=entity,
            aiq_transaction_id=txn["transaction_id"],
            defaults={
                "customer": customer,
                "external_reference": f"WL-{n}",
                "invoice_number": f"WL-{n}",
                "currency": txn["currency"],
                "invoice_date": date.today(),
                "net_amount": gross - tax,
                "tax_amount": tax,
                "gross_amount": gross,
                "outstanding_amount": txn["outstanding"],
            },
        )
