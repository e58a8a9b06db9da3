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


def test_the_pull_mirrors_each_invoices_lines_as_aiq_keeps_them(world, entity, alice, client):
    from django.urls import reverse

    from ledger.aiq.client import AiqClient
    from ledger.aiq.results import get, unwrap

    invoice = Invoice.objects.filter(entity=entity, external_reference="SO-2001").get()
    document = AiqClient.for_entity(entity).get_invoice(invoice.aiq_invoice_id)
    items = unwrap(get(document, "Lines"), "InvoiceLine")
    lines = list(invoice.lines.order_by("line_number"))
    assert len(lines) == len(items) >= 1
    for line, item in zip(lines, items, strict=True):
        assert line.aiq_invoice_item_id == get(item, "InvoiceItemID")
        assert line.description == get(item, "StockItemDescription")
        assert (line.net_amount, line.tax_amount) == (item["NetAmount"], item["TaxAmount"])
    # the lines add up to the invoice the books hold
    assert sum(line.gross_amount for line in lines) == invoice.gross_amount
    # every seeded item invoice has its lines
    assert (
        not Invoice.objects.filter(entity=entity, external_reference__startswith="SO-")
        .filter(lines__isnull=True)
        .exists()
    )
    # a second pull reads the same lines again and keeps one copy of each
    sync_claim(entity=entity)
    sync_run(entity=entity)
    assert [line.pk for line in invoice.lines.order_by("line_number")] == [
        line.pk for line in lines
    ]

    client.force_login(alice)
    page = client.get(reverse("ledger:invoice", args=[invoice.pk])).content.decode()
    assert "No lines mirrored" not in page and lines[0].description in page


def test_an_invoice_with_a_pending_command_keeps_its_mirrored_lines(world, entity):
    invoice = Invoice.objects.filter(entity=entity, external_reference="SO-2002").get()
    before = list(invoice.lines.values_list("pk", flat=True))
    invoice.lines.all().delete()  # our mirror out of step with AIQ
    make_workload(entity, world.customer, world.bank, [invoice])
    SyncState.objects.filter(entity=entity, object_type="transactions").update(
        last_modified_cursor=None
    )
    sync_claim(entity=entity)
    sync_run(entity=entity)
    assert not invoice.lines.exists()  # the open allocation's invoice waits for its confirmation
    assert before


def test_pulled_invoices_fall_due_on_the_customers_aiq_credit_term(world, entity, alice, client):
    from datetime import timedelta

    from django.urls import reverse

    # the demo company's customers are on AIQ's 30-day term (CreditTermID "30")
    invoice = Invoice.objects.filter(entity=entity, external_reference="SO-2003").get()
    assert (invoice.customer.credit_days, invoice.customer.credit_end_of_month) == (30, False)
    assert invoice.due_date == invoice.invoice_date + timedelta(days=30)
    assert not Invoice.objects.filter(entity=entity, due_date__isnull=True).exists()
    client.force_login(alice)
    page = client.get(reverse("ledger:invoice", args=[invoice.pk])).content.decode()
    assert f"due {invoice.due_date:%d/%m/%Y}" in page
