"""AIQ says "not now" (issue 16 point 8), and work parked behind a command that later succeeds.

A `SERVER_ERROR ... temporarily unavailable` answer is retried with backoff, never a permanent
failure; since AIQ's answer does not say how far it got, a write refused this way is read back
(after the settle period) before it is sent again. A command parked only because the command it
depends on was not confirmed becomes due by itself once that one is (e.g. after an approver
retried it), without anyone retrying it by hand.
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from ledger.models import OutboxCommand
from ledger.outbox.runner import drain
from ledger.outbox.services import outbox_retry
from tests.outbox_support import make_workload

State = OutboxCommand.State
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def world(entity, audit_flushable, tmp_path, settings, monkeypatch):
    from tests.outbox_support import start_world

    settings.OUTBOX_BACKOFF_BASE_MS = 10
    world = start_world(tmp_path, entity, settings, monkeypatch, extra_invoices=2)
    yield world
    world.server.stop()


def let_settle() -> None:
    OutboxCommand.objects.exclude(state=State.CONFIRMED).update(
        sent_at=timezone.now() - timedelta(hours=1), next_attempt_at=timezone.now()
    )


def test_a_temporarily_unavailable_aiq_is_retried_and_the_receipt_posted_once(world, settings):
    settings.OUTBOX_SETTLE_SECONDS = 600
    [(invoice, receipt, allocation)] = make_workload(
        world.entity, world.customer, world.bank, world.invoices(1)
    )
    world.server.faults.update(
        fail_next=1, failure_mode="aiq", ops=["SaveSalesReceiptGetBackTransactionID"]
    )

    drain(budget_seconds=30, batch_size=10)
    receipt.refresh_from_db()
    allocation.refresh_from_db()
    assert world.server.faults.snapshot()["stats"]["failures"] == 1
    assert receipt.state == State.UNCERTAIN  # not "failed permanently at 1/8 attempts"
    assert "temporarily unavailable" in receipt.last_error_message
    assert allocation.state == State.PENDING  # waiting, not parked for a person
    assert receipt.next_attempt_at >= receipt.sent_at + timedelta(seconds=600)

    let_settle()
    drain(budget_seconds=30, batch_size=10)
    receipt.refresh_from_db()
    allocation.refresh_from_db()
    assert (receipt.state, allocation.state) == (State.CONFIRMED, State.CONFIRMED)
    assert world.server.state.receipt_count(receipt.external_reference) == 1
    assert world.server.state.outstanding(invoice.aiq_transaction_id) == Decimal(0)


def test_an_allocation_parked_behind_its_receipt_runs_by_itself_once_the_receipt_is_retried(
    world, bob
):
    [(invoice, receipt, allocation)] = make_workload(
        world.entity, world.customer, world.bank, world.invoices(1)
    )
    # AIQ refuses the receipt for good (say the bank account was closed): the allocation waits
    # on it and is parked for a person
    world.server.faults.update(
        fail_next=1, failure_mode="http500", ops=["SaveSalesReceiptGetBackTransactionID"]
    )
    OutboxCommand.objects.filter(pk=receipt.pk).update(max_attempts=1)
    drain(budget_seconds=30, batch_size=10)
    receipt.refresh_from_db()
    allocation.refresh_from_db()
    assert receipt.state == State.NEEDS_PERSON
    assert (allocation.state, allocation.last_error_code) == (State.NEEDS_PERSON, "DEPENDENCY")

    # the approver fixed the cause and retries the receipt only
    outbox_retry(command=receipt, actor=bob)
    let_settle()
    drain(budget_seconds=30, batch_size=10)
    receipt.refresh_from_db()
    allocation.refresh_from_db()
    assert receipt.state == State.CONFIRMED
    assert allocation.state == State.CONFIRMED  # nobody retried it
    assert world.server.state.receipt_count(receipt.external_reference) == 1
    assert [a["amount"] for a in world.server.state.allocations(invoice.aiq_transaction_id)] == [
        invoice.gross_amount
    ]
