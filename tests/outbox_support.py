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

    def kill_random_worker(self, rng: random.Random, steady: float = 0.05) -> int | None:
        """SIGKILL a worker that has been running the same task for at least `steady` seconds.

        django-q2's "processing" title also covers the end of a task, when the worker holds its
        timer's lock (which the sentinel's guard takes) and puts the result: a worker killed
        there can leave the sentinel blocked, so the cluster stops replacing workers and its
        pusher feeds tasks to nobody. A drain that found nothing to do lives only that long;
        one still on the same task `steady` later is in its AIQ calls (20 ms each, up to the
        drain budget), where the failure under test belongs."""
        first = {pid: _title(pid) for pid in self.busy_workers()}
        if not first:
            return None
        time.sleep(steady)
        leaves = [pid for pid in self.busy_workers() if _title(pid) == first.get(pid)]
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


# --- chaos: every kind of write, faults, pulls and kills (bench/soak_outbox.py and the test) --

# the settle period of the chaos clusters (cluster_env): no read-back before it has passed
CHAOS_SETTLE_SECONDS = 3
CHAOS_FAULTS = {
    "latency_ms": 20,  # keeps workers busy, so kills land mid-task
    "drop_after_commit_rate": 0.06,  # committed, then the connection is closed unanswered
    "reset_rate": 0.03,  # the connection is reset before the books are touched
    "failure_rate": 0.03,  # HTTP 500 before the books are touched
    # accepted, unanswered, and committed 1.5 s later: within the settle period, so a
    # read-back must find it and nothing may be sent twice
    "late_commit_rate": 0.05,
    "late_commit_ms": 1500,
    "token_expire_every": 40,
}
# after the chaos: writes that AIQ commits only after the settle period (after the outbox
# resent them). The outbox cannot tell them from writes that never landed, so it resends; each
# must then be found by the next pull, flagged and listed for repair.
LATE_PAST_SETTLE_OPS = [
    "SaveSalesReceiptGetBackTransactionID",
    "PostSalesCreditJournalGetBackTransactionID",
    "PostSalesDebitJournalGetBackTransactionID",
]


def cluster_env(server_url: str) -> dict[str, str]:
    """A qcluster tuned so killed work is taken over within seconds (short lease and settle)."""
    return {
        "AIQ_SANDBOX_URL": server_url,
        **{k: os.environ[k] for k in os.environ if k.startswith("AIQ_DEMO_")},
        "OUTBOX_BACKOFF_BASE_MS": "20",
        "OUTBOX_BACKOFF_MAX_SECONDS": "1",
        "AIQ_CONNECT_TIMEOUT_SECONDS": "1",
        "AIQ_READ_TIMEOUT_SECONDS": "1",
        "OUTBOX_LEASE_SECONDS": "10",
        "OUTBOX_SETTLE_SECONDS": str(CHAOS_SETTLE_SECONDS),
        "OUTBOX_DRAIN_SECONDS": "5",
        "Q_TIMEOUT_SECONDS": "30",
        "Q_SCHEDULER": "false",  # the caller runs the sweeper itself
        "LOG_LEVEL": "WARNING",
    }


def chaos_invoices_needed(commands: int) -> int:
    """Each unit of 12 commands uses up to 5 invoices (see chaos_workload); the refunds take
    theirs from the end of the pool (chaos_refund_requests), one per unit at most; the
    provider books' disputes one each, paid before the chaos (chaos_provider_setup)."""
    return (commands // 10 + 1) * 6 + CHAOS_DISPUTES


# the provider books' writes in the chaos (issue 17): per dispute its whole chain, lost then
# won after its reversal, plus a realised-FX reversal and a payout's two bank entries
CHAOS_DISPUTES = 3
CHAOS_DISPUTE_WRITES = 10  # per dispute (chaos_provider_items)


def chaos_provider_setup(world, count: int = CHAOS_DISPUTES) -> list:
    """Before the chaos (AIQ answering well): `count` invoices paid by a receipt allocated to
    each, in AIQ and mirrored, so that their disputes can be reversed during the chaos.
    Returns [(invoice, receipt command, its allocation's mirror row)]."""
    from ledger.models import Allocation
    from tests.refunds_support import drain_all

    invoices = world.invoices(count)  # the first of the pool: taken before the workload's
    pairs = make_workload(world.entity, world.customer, world.bank, invoices)
    drain_all()
    paid = []
    for invoice, receipt, _allocation in pairs:
        receipt.refresh_from_db()
        assert receipt.state == "confirmed", receipt.last_error_message
        row = Allocation.objects.get(
            transaction_id_2=invoice.aiq_transaction_id, state=Allocation.State.ACTIVE
        )
        paid.append((invoice, receipt, row))
    return paid


def chaos_provider_items(world, paid: list) -> list[tuple[str, object, object]]:
    """The provider books' writes (payments/services/provider_disputes.py, provider_fx.py,
    provider_currency.py), queued with the payloads, references and order the product gives
    them: per paid invoice its dispute taken (DISP, general journal), lost and reversed
    (DISPUNALLOC unallocate, DISPLOST sales debit journal, DISPREALLOC allocation of the
    receipt to it), won after the reversal (DISPWON general journal, DISPRESTORE sales credit
    journal and DISPRESTORE-1 its allocation to the reopened invoice), a realised-FX reversal
    (FXRREV, general journal) and a payout's bank payment and receipt (POUT, POUT-2, kind
    bank_entry: SaveSundryReceiptPayments)."""
    from ledger.outbox.services import outbox_enqueue

    today = date.today().isoformat()
    customer, bank = world.customer, world.bank
    items = []

    def queue(kind, label, reference, payload, after=None, invoice=None):
        command = outbox_enqueue(
            entity=world.entity, kind=kind, payload=payload, external_reference=reference,
            depends_on=after,
        )  # fmt: skip
        items.append((label, command, invoice))
        return command

    def journal(reference, amount, debit, credit, after=None):
        lines = [
            {"gl_account_code": debit, "debit": amount, "credit": "0", "description": reference},
            {"gl_account_code": credit, "debit": "0", "credit": amount, "description": reference},
        ]
        body = {"journal_date": today, "description": reference, "currency": "GBP", "lines": lines}
        return queue("post_general_journal", "provider_journal", reference, body, after)

    def on_customer(reference, amount):
        return {"customer_code": customer.code, "gl_account_code": "9990", "amount": amount,
                "currency": customer.currency, "journal_date": today,
                "description": reference}  # fmt: skip

    for n, (invoice, receipt, allocation) in enumerate(paid):
        amount, paying = str(invoice.gross_amount), receipt.result["transaction_id"]
        ref = f"CHAOS{n}"
        taken = journal(f"DISP-{ref}", amount, "9990", "1200")
        unallocated = queue(
            "unallocate", "dispute_unallocation", f"DISPUNALLOC-{ref}",
            {"transaction_ids": [paying], "reason": f"dispute lost (DISPUNALLOC-{ref})",
             "allocation_id": allocation.pk}, taken, invoice,
        )  # fmt: skip
        debit = queue("post_debit_journal", "dispute_debit_journal", f"DISPLOST-{ref}",
                      on_customer(f"DISPLOST-{ref}", amount), unallocated)  # fmt: skip
        realloc = queue(
            "allocate", "dispute_reallocation", f"DISPREALLOC-{ref}",
            {"amount": amount, "allocation_date": today, "paying_transaction_id": paying,
             "settled_transaction_id": None, "currency": customer.currency}, debit, invoice,
        )  # fmt: skip
        won = journal(f"DISPWON-{ref}", amount, "1200", "9990", realloc)
        restore = queue("post_write_off", "dispute_restore", f"DISPRESTORE-{ref}",
                        on_customer(f"DISPRESTORE-{ref}", amount), won)  # fmt: skip
        queue(
            "allocate", "dispute_restore_allocation", f"DISPRESTORE-{ref}-1",
            {"amount": amount, "allocation_date": today, "paying_transaction_id": None,
             "settled_transaction_id": invoice.aiq_transaction_id, "invoice_id": invoice.pk,
             "currency": invoice.currency}, restore, invoice,
        )  # fmt: skip
        journal(f"FXRREV-{ref}", f"{n + 1}.37", "1100", "9990")
        for number, sign in ((1, "-"), (2, "")):
            reference = f"POUT-{ref}" if number == 1 else f"POUT-{ref}-{number}"
            queue("bank_entry", "bank_entry", reference,
                  {"bank_account_code": bank.bank_account_code, "gl_account_code": "9990",
                   "amount": f"{sign}{n + 2}.40", "currency": bank.currency,
                   "exchange_rate": "1", "entry_date": today, "description": reference})  # fmt: skip
    return items


def chaos_dispute_states(server, paid: list) -> list[tuple]:
    """Dispute chains whose end is not what AIQ's books must hold after the loss, the
    reversal and the win: the receipt allocated once, in full, to its DISPLOST debit journal
    (nothing else); that journal settled; the invoice settled again by exactly one allocation,
    from its DISPRESTORE credit journal; each journal once."""
    wrong = []
    for n, (invoice, receipt, _row) in enumerate(paid):
        ref, gross = f"CHAOS{n}", Decimal(invoice.gross_amount)
        held = {r: server.state.transactions(f"{r}-{ref}")
                for r in ("DISP", "DISPLOST", "DISPWON", "DISPRESTORE")}  # fmt: skip
        if any(len(rows) != 1 for rows in held.values()):
            wrong.append((ref, {r: len(rows) for r, rows in held.items()}))
            continue
        debit = held["DISPLOST"][0]["transaction_id"]
        credit = held["DISPRESTORE"][0]["transaction_id"]
        paid_by = server.state.allocations(receipt.result["transaction_id"])
        settled = server.state.allocations(invoice.aiq_transaction_id)
        if (
            [a["amount"] for a in paid_by] != [gross]
            or server.state.outstanding(debit) != 0
            or [a["amount"] for a in settled] != [gross]
            or server.state.outstanding(invoice.aiq_transaction_id) != 0
            or server.state.outstanding(credit) != 0
        ):
            wrong.append((ref, paid_by, settled))
    return wrong


def chaos_clerk():
    """The clerk whose plans the chaos workload submits (under the approval threshold, so the
    submission approves them and queues their writes, as in production)."""
    from django.contrib.auth.models import Group, User

    from staff.models import Role

    user, _ = User.objects.get_or_create(username="chaos-clerk")
    user.groups.add(Group.objects.get_or_create(name=Role.CLERK)[0])
    return user


def chaos_refund_requests(world, commands: int) -> list:
    """Refunds a clerk asked for, before the chaos starts (asking reads the invoice's lines from
    AIQ): one cancellation of part of an unpaid invoice per two units of the workload, each
    drafting a credit note. Approved during the chaos (chaos_workload), each queues what the
    product posts for it: the credit note, then its allocation against the invoice."""
    from django.contrib.auth.models import Group, User

    from payments.models import Refund
    from payments.services.refunds import refund_request
    from staff.models import Role

    clerk = chaos_clerk()
    pool = world.invoices(chaos_invoices_needed(commands))
    count = commands // 24 + 1
    approver, _ = User.objects.get_or_create(username="chaos-approver")
    approver.groups.add(Group.objects.get_or_create(name=Role.APPROVER)[0])
    return [
        (
            refund_request(
                actor=clerk,
                kind=Refund.Kind.CANCEL_INVOICE,
                reason=f"chaos: part of {invoice.invoice_number} cancelled",
                invoice=invoice,
                amount=Decimal("3.60"),
            ),
            approver,
        )
        for invoice in pool[-count:]
    ]


def chaos_plan(world, invoice, clerk, n: int):
    """A payment of the invoice's gross from its customer and a plan settling the invoice,
    submitted by a clerk: approved, its receipt and allocation queued with the plan as origin."""
    from django.utils import timezone

    from ledger.models import OutboxCommand
    from payments.models import Payment
    from payments.services.plans import plan_propose, plan_submit

    payment = Payment.objects.create(
        entity=world.entity,
        source="stripe",
        external_id=f"pi_chaos_{n}",
        amount=invoice.gross_amount,
        currency=invoice.currency,
        received_at=timezone.now(),
        customer=world.customer,
        description=f"payment for {invoice.invoice_number}",
    )
    plan = plan_propose(
        payment=payment,
        actor=clerk,
        lines=[{"invoice_id": invoice.pk, "amount": invoice.gross_amount}],
    )
    plan = plan_submit(plan=plan, actor=clerk)
    commands = OutboxCommand.objects.filter(origin_type="allocation_plan", origin_id=plan.pk)
    receipt = commands.get(kind=OutboxCommand.Kind.POST_RECEIPT)
    allocation = commands.get(kind=OutboxCommand.Kind.ALLOCATE)
    return plan, receipt, allocation


def chaos_workload(world, commands: int, refunds=()) -> list[tuple[str, object, object]]:
    """About `commands` commands of every kind, enqueued as approvals would, per unit of 12:
    three receipts each settling a whole invoice through a dependent allocation (6), a plan a
    clerk submitted for a fourth (its receipt and allocation, 2), a write-off (sales credit
    journal) and a sales debit journal (as a refund's) (2); every other unit also a credit note
    against a fifth invoice, the units between a refund (chaos_refund_requests) approved: its
    credit note and the allocation that cancels part of its invoice (2). Returns (kind,
    command, invoice or None)."""
    from ledger.models import CreditNote, DocumentStatus, OutboxCommand
    from ledger.outbox.services import outbox_enqueue
    from payments.services.refunds import refund_approve

    today = date.today().isoformat()
    invoices = iter(world.invoices(chaos_invoices_needed(commands)))
    clerk = chaos_clerk()
    refunds = iter(refunds)
    items: list[tuple[str, object, object]] = []
    unit = 0
    while len(items) < commands:
        pairs = make_workload(
            world.entity, world.customer, world.bank, [next(invoices) for _ in range(3)]
        )
        for invoice, receipt, allocation in pairs:
            items += [("receipt", receipt, invoice), ("allocation", allocation, invoice)]
        invoice = next(invoices)
        _plan, receipt, allocation = chaos_plan(world, invoice, clerk, unit)
        items += [("receipt", receipt, invoice), ("allocation", allocation, invoice)]
        for kind, prefix in (("post_write_off", "WO"), ("post_debit_journal", "SDJ")):
            items.append(chaos_journal(world, kind, f"{prefix}-CHAOS-{unit}", f"{1 + unit % 9}.50"))
        if unit % 2 == 0:
            invoice = next(invoices)
            reference = f"CN-CHAOS-{unit}"
            with transaction.atomic():
                note = CreditNote.objects.create(
                    entity=world.entity,
                    customer=world.customer,
                    invoice=invoice,
                    external_reference=reference,
                    status=DocumentStatus.DRAFT,
                    currency=invoice.currency,
                    credit_date=date.today(),
                    net_amount=Decimal("1.00"),
                    tax_amount=Decimal("0.20"),
                    gross_amount=Decimal("1.20"),
                    outstanding_amount=Decimal("0"),
                )
                command = outbox_enqueue(
                    entity=world.entity,
                    kind="create_credit_note",
                    payload={
                        "credit_note_id": note.pk,
                        "customer_code": world.customer.code,
                        "currency": invoice.currency,
                        "credit_date": today,
                        "invoice_number": invoice.invoice_number,
                        "notes": "goodwill",
                        "gross_amount": "1.20",
                        "lines": [
                            {
                                "stock_item_id": "",
                                "description": "Goodwill credit",
                                "gl_account_code": "4000",
                                "tax_code": "T1",
                                "tax_rate": "20",
                                "quantity": "1",
                                "unit_price": "1.00",
                                "net_amount": "1.00",
                                "tax_amount": "0.20",
                            }
                        ],
                    },
                    external_reference=reference,
                )
            items.append(("credit_note", command, invoice))
        elif (refund := next(refunds, None)) is not None:
            refund, approver = refund
            refund_approve(refund=refund, actor=approver)
            steps = OutboxCommand.objects.filter(origin_type="refund", origin_id=refund.pk)
            note = steps.get(kind=OutboxCommand.Kind.CREATE_CREDIT_NOTE)
            allocation = steps.get(kind=OutboxCommand.Kind.ALLOCATE)
            items += [
                ("refund_credit_note", note, None),
                ("refund_allocation", allocation, refund.invoice),
            ]
        unit += 1
    return items


def chaos_books(server, items, entity_code: str = "demo") -> dict:
    """What the sandbox's books say about the workload: duplicates (a reference held more than
    once, an invoice allocated beyond its gross) and losses (a confirmed command whose write
    AIQ does not hold)."""
    from ledger.models import DuplicateWrite, OutboxCommand

    states = {c.pk: c.state for c in OutboxCommand.objects.all()}
    duplicates, losses, parked = [], [], []
    for kind, command, invoice in items:
        state = states[command.pk]
        if state != OutboxCommand.State.CONFIRMED:
            parked.append((kind, command.external_reference, state))
        if kind.startswith("dispute_") and kind.endswith("allocation"):
            continue  # the chain's end state: chaos_dispute_states
        if kind in ("allocation", "refund_allocation"):
            # a receipt settles its whole invoice; a refund's credit note only its own amount
            expected = (
                invoice.gross_amount if kind == "allocation" else Decimal(command.payload["amount"])
            )
            allocated = sum(
                a["amount"] for a in server.state.allocations(invoice.aiq_transaction_id)
            )
            if allocated > expected:
                duplicates.append((kind, invoice.invoice_number, allocated))
            elif state == OutboxCommand.State.CONFIRMED and allocated < expected:
                losses.append((kind, invoice.invoice_number, allocated))
            continue
        held = len(server.state.transactions(command.external_reference, entity_code))
        if held > 1:
            duplicates.append((kind, command.external_reference, held))
        elif held == 0 and state == OutboxCommand.State.CONFIRMED:
            losses.append((kind, command.external_reference, 0))
    flagged = set(DuplicateWrite.objects.values_list("external_reference", flat=True))
    by_invoice = {inv.invoice_number: cmd.external_reference for k, cmd, inv in items if inv}
    return {
        "duplicates": duplicates,
        "losses": losses,
        "parked": parked,
        "flagged": len(flagged),
        "unflagged_duplicates": [
            d
            for d in duplicates
            if d[1] not in flagged and by_invoice.get(d[1], d[1]) not in flagged
        ],
    }


def chaos_plan_states(server, entity_code: str = "demo") -> list[tuple]:
    """Plans whose final state is not what AIQ's books hold. A confirmed plan: its receipt once
    in AIQ and each line's invoice settled by exactly that line's amount from it, its payment
    "Confirmed in AIQ". A failed one: nothing of it in AIQ, or what is there flagged for
    repair. One needing a person: nothing, or its command is listed for a person (that is what
    the state says). Anything else (still on its way) is not a final state."""
    from ledger.models import DuplicateWrite, OutboxCommand
    from payments.models import AllocationPlan, Payment

    Plan = AllocationPlan.State
    payment_state = {
        Plan.CONFIRMED: Payment.MatchState.SENT,
        Plan.FAILED: Payment.MatchState.FAILED,
        Plan.NEEDS_PERSON: Payment.MatchState.NEEDS_PERSON,
    }
    flagged = set(DuplicateWrite.objects.values_list("external_reference", flat=True))
    wrong = []
    plans = AllocationPlan.objects.select_related("payment").prefetch_related("lines__invoice")
    for plan in plans.order_by("pk"):
        commands = list(
            OutboxCommand.objects.filter(origin_type="allocation_plan", origin_id=plan.pk)
        )
        [receipt] = [c for c in commands if c.kind == OutboxCommand.Kind.POST_RECEIPT]
        held = {t["transaction_id"] for t in server.state.transactions(receipt.external_reference)}
        allocated = {
            line.pk: sum(
                a["amount"]
                for a in server.state.allocations(line.invoice.aiq_transaction_id)
                if a["credit_transaction_id"] in held
            )
            for line in plan.lines.all()
        }
        if plan.payment.match_state != payment_state.get(plan.state):
            wrong.append((plan.pk, plan.state, "payment", plan.payment.match_state))
        if plan.state == Plan.CONFIRMED:
            if len(held) != 1 or any(
                allocated[line.pk] != line.amount for line in plan.lines.all()
            ):
                wrong.append((plan.pk, plan.state, len(held), allocated))
        elif plan.state in (Plan.FAILED, Plan.NEEDS_PERSON):
            in_aiq = bool(held) or any(allocated.values())
            listed = any(c.external_reference in flagged for c in commands) or (
                plan.state == Plan.NEEDS_PERSON
                and any(c.state == OutboxCommand.State.NEEDS_PERSON for c in commands)
            )
            if in_aiq and not listed:
                wrong.append((plan.pk, plan.state, len(held), allocated))
        else:
            wrong.append((plan.pk, plan.state, "not final"))
    return wrong


def chaos_refund_states(server, entity_code: str = "demo") -> list[tuple]:
    """Refunds whose final state is not what AIQ's books hold: a completed one has its credit
    note once in AIQ and exactly its amount allocated to the invoice from it; every approved
    one is completed (the chaos parks nothing)."""
    from payments.models import Refund

    wrong = []
    for refund in Refund.objects.select_related("credit_note", "invoice").order_by("pk"):
        if refund.state != Refund.State.COMPLETED:
            wrong.append((refund.pk, refund.state))
            continue
        note = refund.credit_note
        held = {
            t["transaction_id"]
            for t in server.state.transactions(note.external_reference, entity_code)
        }
        allocated = sum(
            a["amount"]
            for a in server.state.allocations(refund.invoice.aiq_transaction_id)
            if a["credit_transaction_id"] in held
        )
        if len(held) != 1 or allocated != note.gross_amount:
            wrong.append((refund.pk, refund.state, len(held), allocated))
    return wrong


def chaos_run(
    world,
    start_cluster,
    *,
    commands: int,
    kills: int,
    seed: int,
    timeout: float,
    clusters: int = 1,
    late_past_settle: int = 0,
):
    """Enqueue the workload into `clusters` running clusters (start_cluster(index)) under
    CHAOS_FAULTS, SIGKILL `kills` busy workers, run the sweeper every 0.5 s and an AIQ pull every
    3 s, then wait until every command is confirmed or parked. With `late_past_settle`, that
    many receipts and journals are then sent while AIQ commits each first send only after the
    settle period (the duplicates the outbox cannot prevent; the pull must flag them). Returns
    the figures of chaos_books (the chaos workload) and of the late ones, plus timings."""
    from ledger.models import OutboxCommand
    from ledger.outbox.tasks import sweep
    from ledger.sync.services import sync_claim, sync_run

    rng = random.Random(seed)
    paid = chaos_provider_setup(world)  # paid in AIQ while it answers well
    workload = commands - len(paid) * CHAOS_DISPUTE_WRITES  # the rest: chaos_workload's
    refunds = chaos_refund_requests(world, workload)  # asked for while AIQ answers well
    world.server.faults.update(**CHAOS_FAULTS, seed=seed)
    running = [start_cluster(index) for index in range(clusters)]
    assert wait_until(lambda: all(len(c.workers()) >= 2 for c in running), timeout=60), (
        "cluster did not start"
    )
    started = time.monotonic()
    items = chaos_provider_items(world, paid)
    items += chaos_workload(world, workload, refunds)
    last = {"sweep": 0.0, "pull": 0.0}
    pulls = [0]

    def pull():
        try:
            sync_claim(entity=world.entity)
            sync_run(entity=world.entity)
            pulls[0] += 1
        except Exception:  # noqa: BLE001 - a claim refused (pull still running) is fine
            pass

    def tick():
        now = time.monotonic()
        if now - last["sweep"] >= 0.5:
            sweep()
            last["sweep"] = now
        if now - last["pull"] >= 3:
            pull()
            last["pull"] = time.monotonic()

    final = ["confirmed", "failed", "needs_person"]
    open_ = OutboxCommand.objects.exclude(state__in=final)
    killed = []
    kill_deadline = time.monotonic() + timeout
    top_ups = 0
    # look for a busy worker often: with several clusters the work is spread thin and a
    # worker is busy only while it drains (the rest of the time rows wait out settle periods).
    # A fast machine can drain the whole workload before every kill has landed: then more
    # journals are enqueued (counted in the books like the rest), so the kills always happen
    # while work is in flight, however fast or slow the machine is.
    last_busy = time.monotonic()
    while len(killed) < kills and time.monotonic() < kill_deadline:
        time.sleep(rng.uniform(0.02, 0.15))
        victim = rng.choice(running).kill_random_worker(rng)
        if victim:
            killed.append(victim)
            last_busy = time.monotonic()
        elif time.monotonic() - last_busy > 2 and top_ups < 50:
            # no busy worker for 2 s: the rest is waiting out settle periods or back-offs
            items += chaos_top_up(world, top_ups)
            top_ups += 1
            last_busy = time.monotonic()
        tick()
    settled = wait_until(lambda: not open_.exists(), timeout=timeout, on_tick=tick)
    elapsed = time.monotonic() - started
    fired = world.server.faults.snapshot()["stats"]
    world.server.faults.reset()
    late_landed = world.server.settle_late_commits(timeout=30)

    late = {}
    if late_past_settle:
        # held by AIQ until the outbox has given up waiting (settle period) and resent each;
        # then AIQ commits them all (a timer alone could fire before a slow resend)
        # one at a time, so that it is each command's first send that AIQ holds (with several
        # at once, a slow queue can resend one before another is first sent)
        late_items = []
        for n in range(late_past_settle):
            held = world.server.faults.snapshot()["stats"]["late_commits"]
            world.server.faults.update(
                late_commit_next=1, late_commit_ms=3_600_000, ops=LATE_PAST_SETTLE_OPS
            )
            late_items.append(chaos_late_item(world, n))
            assert wait_until(
                lambda held=held: world.server.faults.snapshot()["stats"]["late_commits"] > held,
                timeout=60,
                on_tick=tick,
            ), "the first send was not made"
        late_settled = wait_until(lambda: not open_.exists(), timeout=120, on_tick=tick)
        released = world.server.release_late_commits()
        late_landed = world.server.settle_late_commits(timeout=60) and late_landed
        world.server.faults.reset()
        pull()  # the next scheduled pull after AIQ committed them
        late = chaos_books(world.server, late_items)
        late.update(
            settled=late_settled,
            released=released,
            references=[c.external_reference for _, c, _ in late_items],
        )

    # the final pull and the count see AIQ without faults
    sync_claim(entity=world.entity)
    sync_run(entity=world.entity)
    figures = chaos_books(world.server, items)
    figures.update(
        commands=len(items),
        kills=len(killed),
        top_ups=top_ups,
        pulls=pulls[0] + 1,
        settled=settled,
        seconds=elapsed,
        kinds=sorted({kind for kind, _, _ in items}),
        drops=fired["drops"],
        dropped_ops=sorted(set(fired.get("dropped_ops") or [])),
        failures=fired["failures"],
        resets=fired["resets"],
        late_commits=fired["late_commits"],
        late_landed=fired["late_landed"],
        all_late_landed=late_landed,
        plans_wrong=chaos_plan_states(world.server),
        refunds_wrong=chaos_refund_states(world.server),
        disputes_wrong=chaos_dispute_states(world.server, paid),
        late_past_settle=late,
        open=list(open_.values_list("external_reference", "state")[:10]),
    )
    return figures


def chaos_top_up(world, batch: int, size: int = 6) -> list[tuple[str, object, None]]:
    """More work for the kill loop when the workload drained before every kill landed:
    `size` write-off and debit journals (their own references, no invoice needed)."""
    items = []
    for n in range(size):
        kind, prefix = (("post_write_off", "WO"), ("post_debit_journal", "SDJ"))[n % 2]
        items.append(chaos_journal(world, kind, f"{prefix}-TOPUP-{batch}-{n}", f"{1 + n}.75"))
    return items


def chaos_journal(world, kind: str, reference: str, amount: str) -> tuple[str, object, None]:
    """A write-off (sales credit journal) or sales debit journal of `amount` on the workload's
    customer, queued as an approval would."""
    from ledger.outbox.services import outbox_enqueue

    command = outbox_enqueue(
        entity=world.entity,
        kind=kind,
        payload={
            "customer_code": world.customer.code,
            "gl_account_code": "8100",
            "amount": amount,
            "currency": world.customer.currency,
            "journal_date": date.today().isoformat(),
            "description": reference,
        },
        external_reference=reference,
    )
    return (kind, command, None)


def chaos_late_item(world, n: int) -> tuple[str, object, None]:
    """The n-th write whose first send AIQ commits late: a receipt, a write-off or a debit
    journal in turn (their operations are the only ones the late commits are switched on for)."""
    from ledger.outbox.services import outbox_enqueue

    today = date.today().isoformat()
    kind = ("post_receipt", "post_write_off", "post_debit_journal")[n % 3]
    reference = f"LATE-{n}"
    if kind == "post_receipt":
        payload = {
            "customer_code": world.customer.code,
            "bank_account_code": world.bank.bank_account_code,
            "amount": f"{10 + n}.00",
            "currency": world.customer.currency,
            "payment_date": today,
            "description": "paid late",
            "payment_id": None,
        }
    else:
        payload = {
            "customer_code": world.customer.code,
            "gl_account_code": "8100",
            "amount": f"{2 + n}.25",
            "currency": world.customer.currency,
            "journal_date": today,
            "description": reference,
        }
    command = outbox_enqueue(
        entity=world.entity, kind=kind, payload=payload, external_reference=reference
    )
    return (kind, command, None)
