"""A drain writes outcomes on a second thread while it calls AIQ for the next row
(ledger/outbox/runner.py OutcomeWriter): what that must not change, against the AIQ sandbox."""

from datetime import timedelta

import pytest
from django.db import OperationalError
from django.utils import timezone

from ledger.models import OutboxCommand
from ledger.outbox import runner
from ledger.outbox.runner import drain
from tests.outbox_support import assert_exactly_once, make_workload

State = OutboxCommand.State
# outcomes go to another connection only when the caller holds no transaction
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def aiq_world(entity, audit_flushable, tmp_path, settings, monkeypatch):
    from tests.outbox_support import start_world

    world = start_world(tmp_path, entity, settings, monkeypatch, extra_invoices=3)
    yield world
    world.server.stop()


def _pairs(world, count):
    return make_workload(world.entity, world.customer, world.bank, world.invoices(count))


def test_an_allocation_runs_in_the_same_drain_as_the_receipt_it_waits_for(aiq_world):
    pairs = _pairs(aiq_world, 3)
    # batches of one: each allocation becomes due only once its receipt's outcome is written
    counts = drain(budget_seconds=30, batch_size=1)
    assert counts == {State.CONFIRMED: 6}
    assert_exactly_once(aiq_world.server, pairs)


def test_an_outcome_that_cannot_be_written_stops_the_drain_and_is_read_back_later(
    aiq_world, monkeypatch
):
    [(_, receipt, allocation)] = _pairs(aiq_world, 1)
    write_outcome = runner._finish

    def database_gone(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(runner, "_finish", database_gone)
    with pytest.raises(OperationalError):
        drain(budget_seconds=30, batch_size=5)
    receipt.refresh_from_db()
    assert receipt.state == State.IN_FLIGHT  # sent, but no outcome: its lease decides
    assert aiq_world.server.state.receipt_count(receipt.external_reference) == 1

    monkeypatch.setattr(runner, "_finish", write_outcome)
    # its lease ran out and so did the settle period after its send: read back now
    OutboxCommand.objects.filter(pk=receipt.pk).update(
        lease_until=timezone.now() - timedelta(seconds=1),
        sent_at=timezone.now() - timedelta(hours=1),
    )
    drain(budget_seconds=30, batch_size=5)
    receipt.refresh_from_db()
    allocation.refresh_from_db()
    assert (receipt.state, allocation.state) == (State.CONFIRMED, State.CONFIRMED)
    # read back found the first send: still one receipt in AIQ
    assert aiq_world.server.state.receipt_count(receipt.external_reference) == 1
    assert aiq_world.server.calls()["SaveSalesReceiptGetBackTransactionID"] == 1
