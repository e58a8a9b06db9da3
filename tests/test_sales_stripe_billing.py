"""Stripe Billing as an invoice source, as worked scenarios against the sandbox's books.

A real localstripe for what it supports (customers, tax rates, invoice items, invoices, paying
them, customer updates); Stripe's documented shapes for what it does not (finalize without
paying, credit notes, the current `taxes` line shape), fetched through our own boundary.
Events arrive signed at the webhook, as Stripe sends them."""

import copy
from decimal import Decimal

import pytest

from payments.models import WebhookEvent
from payments.sources import stripe_client
from payments.sources.stripe_client import request
from sales.models import CreditAction, CustomerUpdate, SalesCreditNote, SalesInvoice, SalesSettings
from tests.sales_support import aiq_customer_codes, aiq_invoices, aiq_vat, drain_all
from tests.stripe_fixtures import SECRET, event, fixture, sign

URL = "/webhooks/stripe/"
S = SalesInvoice.State


@pytest.fixture(autouse=True)
def _quick_outbox(settings):
    settings.OUTBOX_SETTLE_SECONDS = 0


@pytest.fixture
def deliver(client, settings, django_capture_on_commit_callbacks):
    settings.STRIPE_WEBHOOK_SECRETS = [SECRET]

    def send(event_type: str, object_id: str, kind: str) -> WebhookEvent:
        payload = event(event_type, {"id": object_id, "object": kind})
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                URL, data=payload, content_type="application/json",
                HTTP_STRIPE_SIGNATURE=sign(payload),
            )  # fmt: skip
        assert response.status_code == 200
        return WebhookEvent.objects.order_by("-pk").first()

    return send


def test_a_paid_localstripe_invoice_is_posted_once_with_stripes_vat_then_its_customer_follows(
    localstripe, entity, aiq_sandbox, deliver
):
    rate = request(
        "post", "/v1/tax_rates", display_name="VAT", inclusive=False, percentage=20,
        metadata={"aiq_tax_code": "T1"},
    )  # fmt: skip
    card = request(
        "post", "/v1/payment_methods", type="card",
        card={"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"},
    )  # fmt: skip
    customer = request(
        "post", "/v1/customers", name="Orchard Cafe", email="hello@orchard.example",
        payment_method=card["id"], invoice_settings={"default_payment_method": card["id"]},
    )  # fmt: skip
    # localstripe makes invoices from subscriptions only (no one-off invoice, no finalize):
    # the subscription's first invoice, charged at once
    plan = request(
        "post", "/v1/plans", amount=4999, currency="gbp", interval="month",
        product={"name": "Beans, 5 kg monthly"},
    )  # fmt: skip
    subscription = request(
        "post", "/v1/subscriptions", customer=customer["id"],
        items=[{"plan": plan["id"], "quantity": 3, "tax_rates": [rate["id"]]}],
    )  # fmt: skip
    invoice = request("get", f"/v1/invoices/{subscription['latest_invoice']}")
    paid = request("get", f"/v1/invoices/{invoice['id']}")
    assert paid["status"] == "paid"
    assert deliver("invoice.paid", invoice["id"], "invoice").state == "processed"
    assert deliver("invoice.payment_succeeded", invoice["id"], "invoice").state == "processed"
    drain_all()
    row = SalesInvoice.objects.get()
    code = "STRIPE-" + customer["id"].removeprefix("cus_").upper()
    assert (row.external_reference, row.customer_code, row.state) == (invoice["id"], code, S.POSTED)
    [posted] = aiq_invoices(aiq_sandbox, invoice["id"])
    # Stripe's VAT to the cent, as Stripe rounded it (3 x 49.99 = 149.97, 20 %: 29.994 -> 29.99)
    assert aiq_vat(aiq_sandbox, row.aiq_transaction_id) == row.tax_amount
    assert row.tax_amount == Decimal(paid["tax"]) / 100 == Decimal("29.99")
    assert posted["amount"] == row.gross_amount == row.net_amount + row.tax_amount
    assert code in aiq_customer_codes(aiq_sandbox)  # a new customer, made in AIQ first

    request(
        "post", f"/v1/customers/{customer['id']}", name="Orchard Cafe & Bakery",
        address={"line1": "2 Mill Lane", "city": "Bath", "postal_code": "BA1 1AA",
                 "country": "GB"},
    )  # fmt: skip
    assert deliver("customer.updated", customer["id"], "customer").state == "processed"
    drain_all()
    update = CustomerUpdate.objects.get()
    assert update.state == CustomerUpdate.State.DONE, update.error
    from ledger.aiq.client import AiqClient

    record = AiqClient.for_entity(entity).get_customer(code)
    assert (record["Name"], record["Address1"], record["City"], record["PostCode"]) == (
        "Orchard Cafe & Bakery", "2 Mill Lane", "Bath", "BA1 1AA",
    )  # fmt: skip


@pytest.fixture
def stripe_objects(localstripe, monkeypatch):
    """Objects localstripe cannot make, as Stripe documents them, fetched at our boundary."""
    objects = {"/v1/customers/cus_NeZwdNtLEOXuvB": {
        "id": "cus_NeZwdNtLEOXuvB", "object": "customer", "name": "Harbour Logistics",
        "email": "ap@harbour.example", "metadata": {"aiq_customer_code": "harbor"},
    }}  # fmt: skip
    real = stripe_client.retrieve

    def retrieve(path, *, expand=None):
        if path in objects:
            return copy.deepcopy(objects[path])
        return real(path, expand=expand)

    monkeypatch.setattr(stripe_client, "retrieve", retrieve)
    return objects


def test_documented_shapes_finalized_credited_and_voided(
    entity, aiq_sandbox, stripe_objects, deliver
):
    # the first invoice's due date (Dec 2025) has passed: warn about what is overdue, not hold
    SalesSettings.objects.create(entity=entity, credit_action=CreditAction.WARN)
    invoice = fixture("invoice_finalized.json")
    stripe_objects[f"/v1/invoices/{invoice['id']}"] = invoice
    deliver("invoice.finalized", invoice["id"], "invoice")
    drain_all()
    row = SalesInvoice.objects.get(external_reference=invoice["id"])
    assert row.state == S.POSTED and row.customer_code == "HARBOR"  # the metadata's code
    # discounts off the net, Stripe's VAT as it is: 90.00 + 30.00 net, 24.00 VAT
    assert (row.net_amount, row.tax_amount) == (120, 24)
    assert aiq_vat(aiq_sandbox, row.aiq_transaction_id) == 24

    note = fixture("credit_note.json")
    stripe_objects[f"/v1/credit_notes/{note['id']}"] = note
    deliver("credit_note.created", note["id"], "credit_note")
    deliver("credit_note.created", note["id"], "credit_note")  # a second delivery (new event)
    drain_all()
    credit = SalesCreditNote.objects.get()
    assert credit.state == SalesCreditNote.State.POSTED and credit.gross_amount == 36
    assert len(aiq_sandbox.state.transactions(note["id"])) == 1
    assert aiq_sandbox.state.outstanding(row.aiq_transaction_id) == 108  # 144 - 36

    # another invoice, finalized then voided: AIQ gets a credit note of all of it
    voided = {**copy.deepcopy(invoice), "id": "in_1MtHbELkdIwHu7ixVOIDED0"}
    stripe_objects[f"/v1/invoices/{voided['id']}"] = voided
    deliver("invoice.finalized", voided["id"], "invoice")
    drain_all()
    voided["status"] = "void"
    voided["status_transitions"]["voided_at"] = 1764500000
    deliver("invoice.voided", voided["id"], "invoice")
    drain_all()
    posted = SalesInvoice.objects.get(external_reference=voided["id"])
    assert posted.state == S.POSTED
    void_note = SalesCreditNote.objects.get(external_reference=f"{voided['id']}-VOID")
    assert void_note.state == SalesCreditNote.State.POSTED and void_note.gross_amount == 144
    assert aiq_sandbox.state.outstanding(posted.aiq_transaction_id) == 0

    # a line Stripe prorated away (negative) cannot be an AIQ batch invoice: failed, with why
    odd = copy.deepcopy(invoice)
    odd["id"] = "in_1MtHbELkdIwHu7ixPRORATE"
    odd["lines"]["data"][1]["amount"] = -3000
    odd["lines"]["data"][1]["taxes"][0]["amount"] = -600
    stripe_objects[f"/v1/invoices/{odd['id']}"] = odd
    failed = deliver("invoice.finalized", odd["id"], "invoice")
    assert failed.state == "failed" and "negative" in failed.last_error
    assert not SalesInvoice.objects.filter(external_reference=odd["id"]).exists()
