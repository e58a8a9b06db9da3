"""The outbox against the AIQ sandbox over real HTTP (zeep client), drained in-process.

These are the executor's failure modes (RELIABILITY.md 5, 6, 7, 8, 9); the ones where the queue
itself is under test (killed workers, brokers, two clusters) are in test_outbox_cluster.py.
Scenario sizes: OUTBOX_SCENARIO_PAIRS receipt+allocation pairs (default 100 = 200 commands,
enough for ~40 dropped answers at 20 %; set 500 for the full 1,000 commands).
"""

import os
import threading
from datetime import timedelta

import pytest
from django.db import close_old_connections, transaction
from django.utils import timezone

from ledger.models import Allocation, Invoice, OutboxCommand, Receipt
from ledger.outbox.runner import drain
from staff.models import AuditEntry
from tests.outbox_support import assert_exactly_once, make_workload

PAIRS = int(os.environ.get("OUTBOX_SCENARIO_PAIRS", "100"))
State = OutboxCommand.State
pytestmark = pytest.mark.django_db(transaction=True)


def drain_all(rounds: int = 200, **kw) -> None:
    """Drain until nothing is due; backoff is shortened by the aiq_world fixture."""
    for _ in range(rounds):
        if not OutboxCommand.objects.filter(
            state__in=[State.PENDING, State.UNCERTAIN, State.IN_FLIGHT]
        ).exists():
            return
        drain(budget_seconds=30, batch_size=20, **kw)
        # make the rest due now, skipping rows another drainer holds: several threads updating
        # the same rows in different orders deadlocked on PostgreSQL (the test's shortcut, not
        # the outbox's claim, which skips locked rows too)
        with transaction.atomic():
            due = list(
                OutboxCommand.objects.select_for_update(skip_locked=True)
                .filter(state__in=[State.PENDING, State.UNCERTAIN])
                .order_by("pk")
                .values_list("pk", flat=True)
            )
            OutboxCommand.objects.filter(pk__in=due).update(next_attempt_at=timezone.now())


def test_commit_then_drop_on_20_percent_of_writes_gives_one_receipt_and_allocation_each(
    aiq_world,
):
    server, entity, customer, bank = (
        aiq_world.server,
        aiq_world.entity,
        aiq_world.customer,
        aiq_world.bank,
    )
    invoices = aiq_world.invoices(PAIRS)
    pairs = make_workload(entity, customer, bank, invoices)
    server.faults.update(drop_after_commit_rate=0.2, seed=5)

    drain_all()

    assert server.faults.snapshot()["stats"]["drops"] >= PAIRS * 2 * 0.1  # the fault really fired
    assert_exactly_once(server, pairs)
    # the mirror followed: one receipt row and one allocation per pair, invoices paid
    ours = Receipt.objects.filter(check_reference__startswith="RCP-")
    assert ours.count() == PAIRS
    assert Allocation.objects.filter(state="active", reference__startswith="ALC-").count() == PAIRS
    paid = Invoice.objects.filter(pk__in=[invoice.pk for invoice in invoices])
    assert set(paid.values_list("status", flat=True)) == {"paid"}
    assert set(paid.values_list("outstanding_amount", flat=True)) == {0}
    for receipt in ours:
        assert receipt.unallocated_amount == 0


def test_two_deliveries_of_the_same_work_at_once_have_their_side_effects_once(aiq_world):
    server = aiq_world.server
    invoices = aiq_world.invoices(20)
    pairs = make_workload(aiq_world.entity, aiq_world.customer, aiq_world.bank, invoices)
    server.faults.update(latency_ms=20)
    ids = [c.pk for _, r, a in pairs for c in (r, a)]

    def delivery():
        try:
            drain(budget_seconds=30, batch_size=5, prefer=ids)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=delivery) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    drain_all()
    assert_exactly_once(server, pairs)
    assert server.calls()["SaveSalesReceiptGetBackTransactionID"] == 20
    assert server.calls()["AllocateTransactions"] == 20


def test_tokens_expiring_every_few_calls_cause_no_duplicates_and_surface_nothing(aiq_world):
    server = aiq_world.server
    invoices = aiq_world.invoices(30)
    pairs = make_workload(aiq_world.entity, aiq_world.customer, aiq_world.bank, invoices)
    server.faults.update(token_expire_every=3)

    drain(budget_seconds=60, batch_size=20)

    assert_exactly_once(server, pairs)
    commands = OutboxCommand.objects.all()
    # no command needed a second attempt or shows an error: expiry is invisible to users
    assert {c.attempts for c in commands} == {1}
    assert {c.last_error_message for c in commands} == {""}
    assert server.calls().get("Login", 0) >= 60 // 3


def test_shuffled_commands_never_send_an_allocation_before_its_receipt_is_confirmed(aiq_world):
    server = aiq_world.server
    invoices = aiq_world.invoices(40)
    pairs = make_workload(
        aiq_world.entity, aiq_world.customer, aiq_world.bank, invoices, shuffle_seed=9
    )
    server.faults.update(latency_ms=5, drop_after_commit_rate=0.2, seed=3)

    def worker():
        try:
            drain_all()
        finally:
            close_old_connections()

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert_exactly_once(server, pairs)
    # AIQ never refused an allocation (it would have, for a receipt it did not know yet)
    assert not OutboxCommand.objects.exclude(last_error_code="").filter(kind="allocate").exists()
    for _, receipt, allocation in pairs:
        receipt.refresh_from_db()
        allocation.refresh_from_db()
        assert receipt.confirmed_at <= allocation.confirmed_at
        assert allocation.payload["paying_transaction_id"] is None  # came from the receipt


def test_a_command_that_always_fails_is_parked_after_n_attempts_with_backoff(aiq_world, settings):
    # backoff steps (2-4 s, 4-8 s, ...) longer than the settle period, so backoff is measured
    settings.OUTBOX_BACKOFF_BASE_MS = 2000
    settings.OUTBOX_SETTLE_SECONDS = 1
    server = aiq_world.server
    [invoice] = aiq_world.invoices(1)
    [(_, receipt, allocation)] = make_workload(
        aiq_world.entity, aiq_world.customer, aiq_world.bank, [invoice]
    )
    OutboxCommand.objects.filter(pk=receipt.pk).update(max_attempts=4)
    server.faults.update(failure_rate=1.0, ops=["SaveSalesReceiptGetBackTransactionID"])

    delays = []
    for _ in range(20):
        drain(budget_seconds=5, batch_size=5)
        receipt.refresh_from_db()
        if receipt.state == State.NEEDS_PERSON:
            break
        assert receipt.next_attempt_at > timezone.now() - timedelta(seconds=1)
        delays.append((receipt.next_attempt_at - receipt.updated_at).total_seconds())
        OutboxCommand.objects.filter(pk=receipt.pk).update(next_attempt_at=timezone.now())

    receipt.refresh_from_db()
    allocation.refresh_from_db()
    assert receipt.state == State.NEEDS_PERSON and receipt.attempts == 4
    assert "gave up after 4 attempts" in receipt.last_error_message
    assert allocation.state == State.NEEDS_PERSON  # its receipt will not come by itself
    calls = server.calls()
    # one send per attempt; each resend is preceded by one read back (the 500 was ambiguous)
    assert calls["SaveSalesReceiptGetBackTransactionID"] == 4
    assert calls.get("GetTransactionsByExternalReference", 0) == 3
    assert len(delays) == 3 and delays == sorted(delays)  # exponential, jittered within steps
    assert server.state.receipt_count(receipt.external_reference) == 0
    assert AuditEntry.objects.filter(action="outbox.park", object_id=str(receipt.pk)).exists()


def test_a_refusal_by_aiq_fails_permanently_with_its_message_after_one_call(aiq_world):
    [invoice] = aiq_world.invoices(1)
    [(_, receipt, _)] = make_workload(
        aiq_world.entity, aiq_world.customer, aiq_world.bank, [invoice]
    )
    OutboxCommand.objects.filter(pk=receipt.pk).update(
        payload={**receipt.payload, "customer_code": "NO-SUCH-CUSTOMER"}
    )
    drain(budget_seconds=5, batch_size=5)
    receipt.refresh_from_db()
    assert receipt.state == State.FAILED
    assert receipt.last_error_code and receipt.last_error_message
    assert aiq_world.server.calls()["SaveSalesReceiptGetBackTransactionID"] == 1


@pytest.fixture
def aiq_world(entity, audit_flushable, tmp_path, settings, monkeypatch):
    from tests.outbox_support import start_world

    settings.OUTBOX_BACKOFF_BASE_MS = 10  # scenarios drain retries right away
    world = start_world(tmp_path, entity, settings, monkeypatch, extra_invoices=max(PAIRS, 40) + 5)
    yield world
    world.server.stop()
