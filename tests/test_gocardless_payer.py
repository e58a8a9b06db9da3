"""GoCardless payments carry their payer: the mandate's customer, fetched through the SDK from
the fake GoCardless server once per mandate, and what that lets the matching run do."""

import pytest

from payments.models import MatchRule, Payment, WebhookEvent
from payments.services.matching_runs import matching_run
from payments.sources.gocardless_source import gocardless_import
from tests.test_gocardless_webhooks import (  # noqa: F401 - gocardless: the fixture, used by name
    FakeGoCardless,
    _body,
    _customer,
    _event,
    _payer_add,
    _payment,
    _post,
    gocardless,
)
from tests.test_plans_factories import make_customer, make_invoice, setup_books

# every test talks to the fake server through the real SDK
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("gocardless")]
TOKEN = "gc_access_token_test_value"


def _payers():
    return {
        p.external_id: (p.payer_name, p.payer_email, p.payer_reference)
        for p in Payment.objects.all()
    }


def test_import_asks_once_per_mandate_and_customer(entity):
    acme = _customer("CU1", "ap@acme.test", company="Acme Trading Ltd")
    _payer_add(FakeGoCardless, "MD1", acme)
    _payer_add(FakeGoCardless, "MD2", acme)  # a second mandate of the same customer
    _payer_add(
        FakeGoCardless, "MD3", _customer("CU3", "jo@example.test", given="Jo", family="Bloggs")
    )
    for n in range(9):
        mandate = f"MD{n % 3 + 1}"
        FakeGoCardless.payments[f"PM{n}"] = _payment(f"PM{n}", 1000 + n, mandate=mandate)

    assert gocardless_import() == {"created": 9, "updated": 0}

    payers = _payers()
    assert payers["PM0"] == ("Acme Trading Ltd", "ap@acme.test", "MD1")
    assert payers["PM1"] == ("Acme Trading Ltd", "ap@acme.test", "MD2")
    assert payers["PM2"] == ("Jo Bloggs", "jo@example.test", "MD3")
    asked = [path for path in FakeGoCardless.asked if not path.startswith("/payments")]
    assert sorted(asked) == [
        "/customers/CU1",
        "/customers/CU3",
        "/mandates/MD1",
        "/mandates/MD2",
        "/mandates/MD3",
    ]


def test_a_payer_fetch_error_still_stores_the_payment_and_a_refresh_fills_it_in(
    client, entity, caplog, django_capture_on_commit_callbacks
):
    FakeGoCardless.payments["PM1"] = _payment("PM1", 5000, mandate="MD1")
    _payer_add(FakeGoCardless, "MD1", _customer("CU1", "jane@example.test"))
    FakeGoCardless.failing["/customers/CU1"] = "error"
    body = _body(_event("EV1", "payments", "confirmed", payment="PM1"))

    _post(client, body, capture=django_capture_on_commit_callbacks)

    assert WebhookEvent.objects.get().state == "processed"  # not retried for a missing name
    assert _payers() == {"PM1": ("", "", "MD1")}
    assert "MD1" in caplog.text and "GoCardlessInternalError" in caplog.text
    assert TOKEN not in caplog.text

    del FakeGoCardless.failing["/customers/CU1"]
    assert gocardless_import() == {"created": 0, "updated": 1}
    assert _payers() == {"PM1": ("Jane Doe", "jane@example.test", "MD1")}


def test_a_refresh_during_an_outage_keeps_the_payer_and_stops_asking(entity):
    _payer_add(FakeGoCardless, "MD1", _customer("CU1", "jane@example.test"))
    _payer_add(FakeGoCardless, "MD2", _customer("CU2", "jo@example.test", given="Jo"))
    FakeGoCardless.payments["PM1"] = _payment("PM1", 5000, mandate="MD1")
    FakeGoCardless.payments["PM2"] = _payment("PM2", 6000, mandate="MD2")
    gocardless_import()
    FakeGoCardless.failing.update({"/mandates/MD1": "drop", "/mandates/MD2": "drop"})
    FakeGoCardless.asked.clear()

    assert gocardless_import() == {"created": 0, "updated": 2}

    assert _payers() == {
        "PM1": ("Jane Doe", "jane@example.test", "MD1"),
        "PM2": ("Jo Doe", "jo@example.test", "MD2"),
    }
    # the SDK retried MD1; the API counted as unreachable, MD2 was not waited on as well
    assert "/mandates/MD1" in FakeGoCardless.asked
    assert "/mandates/MD2" not in FakeGoCardless.asked


def test_a_payer_email_of_an_aiq_customer_gets_the_payment_matched(entity):
    setup_books(entity)
    acme = make_customer(entity, code="ACME", email="Accounts@Acme.test")
    make_invoice(acme, "80.00")
    invoice = make_invoice(acme, "50.00", number="INV-2001")
    payment = _payment("PM1", 5000, mandate="MD1")
    payment.update(description="March collection", reference="GC-MARCH", metadata={})
    FakeGoCardless.payments["PM1"] = payment
    _payer_add(FakeGoCardless, "MD1", _customer("CU1", "accounts@acme.test", company="Acme Ltd"))
    gocardless_import()

    report = matching_run(dry_run=False, auto_approve=False)

    stored = Payment.objects.get()
    assert stored.customer == acme
    best = stored.proposals.exclude(state="superseded").order_by("rank").first()
    assert best.rule_kind == MatchRule.Kind.PAYER_EXACT
    assert [line["invoice_id"] for line in best.lines] == [invoice.pk]
    assert report.by_rule == {"payer_exact": 1}
