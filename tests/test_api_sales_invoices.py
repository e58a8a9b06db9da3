"""POST /api/v1/sales_invoices: a billing system's invoice into AIQ through the invoicing
service (sales/services/invoices.py), followed to the AIQ sandbox's books: posted once with the
caller's VAT to the cent, its new customer made in AIQ first, the same reference answered with
the same invoice, a changed copy of a posted invoice refused (raise a credit note)."""

from decimal import Decimal

import pytest

from sales.models import SalesInvoice
from tests.api_support import Caller, api_client
from tests.refunds_support import seed_roles_without_matching, setup_books
from tests.sales_support import aiq_customer_codes, aiq_invoices, aiq_vat, drain_all

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _seeded(transactional_db, settings):
    seed_roles_without_matching()
    settings.OUTBOX_SETTLE_SECONDS = 0


@pytest.fixture
def api(aiq_sandbox, entity, carol, audit_flushable):
    setup_books(entity)
    _client, token = api_client(entity, carol)
    return Caller(token)


def _invoice(reference="SHOP-1001", contact="ACME", lines=None, **more) -> dict:
    body = {
        "contact_id": contact,
        "date": "2026-11-20",
        "due_date": "2026-12-20",
        "reference": reference,
        "invoice_lines": lines
        or [
            {
                "description": "Widgets",
                "quantity": "3",
                "unit_price": "33.33",
                "tax_rate_id": "T1",
                "tax_amount": "20.00",
            },
            {
                "description": "Delivery",
                "net_amount": "5.01",
                "tax_rate_id": "T1",
                "tax_amount": "1.00",
            },
        ],  # fmt: skip
        **more,
    }
    return {"sales_invoice": body}


def test_an_invoice_is_posted_once_with_the_callers_vat(api, aiq_sandbox):
    answer = api.post("sales_invoices", _invoice())
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert (body["net_amount"], body["tax_amount"], body["total_amount"]) == (
        "105.00",
        "21.00",
        "126.00",
    )
    assert body["status"] == "queued" and body["id"].startswith("sinv_")
    drain_all()

    read = api.get(f"sales_invoices/{body['id']}").json()
    assert read["status"] == "posted", read
    (in_aiq,) = aiq_invoices(aiq_sandbox, "SHOP-1001")
    assert read["aiq_transaction_id"] == in_aiq["transaction_id"]
    assert in_aiq["amount"] == Decimal("126.00")
    assert aiq_vat(aiq_sandbox, in_aiq["transaction_id"]) == Decimal(
        "21.00"
    )  # ours, not recomputed

    again = api.post("sales_invoices", _invoice())  # another key, the same invoice
    assert (again.status_code, again.json()["id"]) == (201, body["id"])
    changed = api.post(
        "sales_invoices",
        _invoice(lines=[{"net_amount": "200.00", "tax_rate_id": "T1", "tax_amount": "40.00"}]),
    )
    assert changed.status_code == 422
    assert "credit note" in changed.json()["detail"]
    drain_all()
    assert len(aiq_invoices(aiq_sandbox, "SHOP-1001")) == 1
    assert SalesInvoice.objects.count() == 1


def test_a_new_customer_needs_a_name_and_is_made_in_aiq_first(api, aiq_sandbox):
    nameless = api.post("sales_invoices", _invoice(reference="SHOP-2001", contact="NEWSHOP"))
    assert nameless.status_code == 422
    assert nameless.json()["errors"][0]["field"] == "contact_name"
    assert "NEWSHOP" not in aiq_customer_codes(aiq_sandbox)

    answer = api.post(
        "sales_invoices",
        _invoice(reference="SHOP-2001", contact="NEWSHOP", contact_name="New Shop Ltd"),
    )
    assert answer.status_code == 201, answer.json()
    drain_all()
    assert "NEWSHOP" in aiq_customer_codes(aiq_sandbox)
    sales = SalesInvoice.objects.get()
    if sales.state == "posted":  # unless the entity holds invoices of new customers
        assert len(aiq_invoices(aiq_sandbox, "SHOP-2001")) == 1
    assert api.get(f"sales_invoices/{answer.json()['id']}").json()["status"] == sales.state


def test_vat_without_an_amount_and_a_line_without_money_are_refused(api):
    no_vat = api.post(
        "sales_invoices", _invoice(lines=[{"net_amount": "10.00", "tax_rate_id": "T1"}])
    )
    assert no_vat.status_code == 400
    assert no_vat.json()["errors"][0]["field"] == "sales_invoice.invoice_lines[0].tax_amount"
    no_money = api.post("sales_invoices", _invoice(lines=[{"description": "free"}]))
    assert no_money.status_code == 400
    zero = api.post("sales_invoices", _invoice(lines=[{"net_amount": "0"}]))
    assert zero.status_code == 422  # the invoicing service's own check
    assert not SalesInvoice.objects.exists()
