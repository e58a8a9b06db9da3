"""Invoices carry the reference keys matching looks them up by, on every way they are written."""

import importlib
from datetime import date
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.db import connection
from hypothesis import given
from hypothesis import strategies as st

from ledger.models import Customer, Invoice, SyncState
from ledger.references import digits_keys, invoice_keys, reference_keys
from ledger.sync.services import sync_claim, sync_run
from tests.outbox_support import start_world

migration_0006 = importlib.import_module("ledger.migrations.0006_invoice_reference_keys")


@pytest.fixture
def customer(entity):
    return Customer.objects.create(entity=entity, code="ACME", name="Acme", currency="GBP")


def new_invoice(entity, customer, number="INV-001043", external_reference="", **fields):
    return Invoice(
        entity=entity,
        customer=customer,
        invoice_number=number,
        external_reference=external_reference,
        currency="GBP",
        invoice_date=date(2026, 1, 1),
        net_amount=Decimal("100.00"),
        gross_amount=Decimal("100.00"),
        outstanding_amount=Decimal("100.00"),
        **fields,
    )


def stored_keys(invoice):
    return tuple(
        Invoice.objects.filter(pk=invoice.pk)
        .values_list("number_key", "external_reference_key", "number_digits_key")
        .get()
    )


@pytest.mark.django_db
def test_create_stores_the_keys(entity, customer):
    invoice = new_invoice(entity, customer, "inv 001043", "in_00AB12")
    invoice.save()
    assert stored_keys(invoice) == ("INV1043", "IN0AB12", "#1043")


@pytest.mark.django_db
def test_saving_a_new_number_stores_its_keys(entity, customer):
    invoice = new_invoice(entity, customer)
    invoice.save()
    invoice.invoice_number, invoice.external_reference = "SO/77", "PO 0009"
    invoice.save()
    assert stored_keys(invoice) == ("SO77", "PO9", "#77")


@pytest.mark.django_db
def test_saving_only_the_number_saves_its_keys_too(entity, customer):
    invoice = new_invoice(entity, customer, external_reference="EXT-5")
    invoice.save()
    invoice.invoice_number = "CN-0042"
    invoice.save(update_fields=["invoice_number"])
    assert stored_keys(invoice) == ("CN42", "EXT5", "#42")


@pytest.mark.django_db
def test_saving_other_fields_leaves_the_keys_alone(entity, customer):
    invoice = new_invoice(entity, customer)
    invoice.save()
    invoice.notes = "called the customer"
    invoice.save(update_fields=["notes"])
    assert stored_keys(invoice) == ("INV1043", "", "#1043")


@pytest.mark.django_db
def test_bulk_create_stores_the_keys(entity, customer):
    Invoice.objects.bulk_create(
        [
            new_invoice(entity, customer, "INV-0001", "in_001"),
            new_invoice(entity, customer, "2024/17"),
        ]
    )
    keys = Invoice.objects.order_by("invoice_number").values_list(
        "invoice_number", "number_key", "external_reference_key", "number_digits_key"
    )
    assert list(keys) == [("2024/17", "202417", "", ""), ("INV-0001", "INV1", "IN1", "#1")]


@pytest.mark.django_db
def test_bulk_update_of_the_number_stores_its_keys(entity, customer):
    invoice = new_invoice(entity, customer)
    invoice.save()
    invoice.invoice_number = "B-12"
    Invoice.objects.bulk_update([invoice], ["invoice_number"])
    assert stored_keys(invoice) == ("B12", "", "#12")


@pytest.mark.django_db
@pytest.mark.parametrize("reference", ["invoice_number", "external_reference"])
def test_queryset_update_of_a_reference_is_refused(entity, customer, reference):
    invoice = new_invoice(entity, customer)
    invoice.save()
    with pytest.raises(TypeError, match=f"cannot change {reference}"):
        Invoice.objects.filter(pk=invoice.pk).update(**{reference: "X-1"})
    assert stored_keys(invoice) == ("INV1043", "", "#1043")
    assert Invoice.objects.filter(pk=invoice.pk).update(notes="other fields still update") == 1


@pytest.mark.django_db
def test_a_key_longer_than_its_column_is_cut(entity, customer):
    """upper() turns each "ß" into "SS": the key would be twice the number's length."""
    invoice = new_invoice(entity, customer, "ß" * 49 + "1", "ß" * 100)
    invoice.save()
    number_key, external_key, digits_key = stored_keys(invoice)
    assert (len(number_key), len(external_key)) == (50, 100)
    assert number_key == "SS" * 25 and digits_key == "#1"


@pytest.mark.django_db
def test_the_migration_fills_the_keys_of_rows_written_without_them(entity, customer, monkeypatch):
    Invoice.objects.bulk_create(
        new_invoice(entity, customer, f"INV-{n:05d}", f"in_{n:04x}" if n % 3 else "")
        for n in range(1, 12)
    )
    new_invoice(entity, customer, "ß" * 49 + "1", "").save()
    new_invoice(entity, customer, "", "").save()
    keys = ("number_key", "external_reference_key", "number_digits_key")
    as_saved = set(Invoice.objects.values_list("pk", *keys))
    assert [row[1:] for row in as_saved].count(("", "", "")) == 1  # the one with no reference
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE ledger_invoice SET number_key = '', external_reference_key = '', "
            "number_digits_key = ''"
        )
    monkeypatch.setattr(migration_0006, "BATCH", 4)  # several batches of ids
    migration_0006.fill_invoice_keys(apps, SimpleNamespace(connection=connection))
    assert set(Invoice.objects.values_list("pk", *keys)) == as_saved


@given(st.text(), st.text())
def test_invoice_keys_equal_the_bulk_keys(number, external_reference):
    number_key = reference_keys([number])
    assert invoice_keys(number, external_reference) == (
        number_key[0],
        reference_keys([external_reference])[0],
        digits_keys(number_key)[0],
    )


@pytest.fixture
def world(entity, audit_flushable, tmp_path, settings, monkeypatch):
    world = start_world(tmp_path, entity, settings, monkeypatch, extra_invoices=0)
    yield world
    world.server.stop()


@pytest.mark.django_db(transaction=True)
def test_the_pull_stores_the_keys_of_new_and_renumbered_invoices(world, entity):
    pulled = Invoice.objects.filter(entity=entity)
    assert pulled.exclude(number_key="").exists()
    assert pulled.exclude(external_reference_key="").exists()
    for invoice in pulled:
        keys = (invoice.number_key, invoice.external_reference_key, invoice.number_digits_key)
        assert keys == invoice_keys(invoice.invoice_number, invoice.external_reference)
    # a mirror row out of date with AIQ (renumbered, keys lost): the next pull puts both right
    renumbered = pulled.exclude(number_key="").first()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE ledger_invoice SET invoice_number = 'OLD-1', number_key = 'OLD1', "
            "number_digits_key = '#1' WHERE id = %s",
            [renumbered.pk],
        )
    SyncState.objects.filter(entity=entity, object_type="transactions").update(
        last_modified_cursor=None
    )
    sync_claim(entity=entity)
    sync_run(entity=entity)
    number_key, _external_key, digits_key = stored_keys(renumbered)
    assert (number_key, digits_key) == (renumbered.number_key, renumbered.number_digits_key)
