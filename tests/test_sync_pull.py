"""Pull sync from the AIQ sandbox over HTTP into the mirror."""

import pytest

from ledger.models import Allocation, BankAccount, Customer, Invoice, Receipt, SyncState
from ledger.sync.services import SyncAlreadyRunning, sync_claim, sync_run
from tests.outbox_support import make_workload, start_world

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def world(entity, audit_flushable, tmp_path, settings, monkeypatch):
    world = start_world(tmp_path, entity, settings, monkeypatch, extra_invoices=3)
    yield world
    world.server.stop()


def test_the_pull_fills_the_mirror_and_a_second_pull_duplicates_nothing(world, entity):
    state = SyncState.objects.get(entity=entity, object_type="all")
    assert state.last_error == "" and not state.running
    assert state.progress_done == state.progress_total > 0
    assert Customer.objects.filter(entity=entity).count() >= 20
    assert BankAccount.objects.filter(entity=entity).count() == 2
    # the first pull picks the base-currency bank as the one money is received into
    entity.refresh_from_db()
    assert entity.default_bank_account.bank_account_code == "BANK-GBP"
    # the demo company's 60 invoices plus the 3 workload ones, 15 part-paid by receipts
    assert Invoice.objects.filter(entity=entity).count() == 63
    assert Invoice.objects.filter(status="part_paid").count() == 15
    assert Receipt.objects.filter(entity=entity).count() == 17
    assert Allocation.objects.filter(entity=entity).count() == 15
    counts = (Invoice.objects.count(), Receipt.objects.count(), Allocation.objects.count())

    sync_claim(entity=entity)
    sync_run(entity=entity)  # overlapping window: the same rows again
    assert (Invoice.objects.count(), Receipt.objects.count(), Allocation.objects.count()) == counts


def test_a_second_pull_is_refused_while_one_runs(world, entity):
    sync_claim(entity=entity)
    with pytest.raises(SyncAlreadyRunning):
        sync_claim(entity=entity)


def test_an_invoice_with_a_pending_allocation_keeps_our_outstanding(world, entity):
    [invoice] = world.invoices(1)
    make_workload(entity, world.customer, world.bank, [invoice])
    # our view: already settled locally, AIQ not told yet (the command is pending)
    Invoice.objects.filter(pk=invoice.pk).update(outstanding_amount=0, status="paid")
    sync_claim(entity=entity)
    sync_run(entity=entity)
    invoice.refresh_from_db()
    assert (invoice.outstanding_amount, invoice.status) == (0, "paid")
    # an invoice with nothing pending is overwritten with AIQ's figure
    [other] = Invoice.objects.filter(external_reference="WL-1")
    Invoice.objects.filter(pk=other.pk).update(outstanding_amount=0, status="paid")
    # nothing changed in AIQ since the last pull, so read the whole history again
    SyncState.objects.filter(entity=entity, object_type="transactions").update(
        last_modified_cursor=None
    )
    sync_claim(entity=entity)
    sync_run(entity=entity)
    other.refresh_from_db()
    assert other.outstanding_amount == other.gross_amount and other.status == "posted"
