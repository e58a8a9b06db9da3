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


def test_a_voided_invoice_that_was_partly_credited_is_credited_only_for_the_rest(
    entity, aiq_sandbox, stripe_objects, deliver
):
    SalesSettings.objects.create(entity=entity, credit_action=CreditAction.WARN)
    invoice = fixture("invoice_finalized.json")  # retainer 90.00 + 18.00, support 30.00 + 6.00
    stripe_objects[f"/v1/invoices/{invoice['id']}"] = invoice
    deliver("invoice.finalized", invoice["id"], "invoice")
    drain_all()
    row = SalesInvoice.objects.get()
    # the credit note credits the support hours: Stripe's second line, by its line item id
    note = fixture("credit_note.json")
    stripe_objects[f"/v1/credit_notes/{note['id']}"] = note
    deliver("credit_note.created", note["id"], "credit_note")
    drain_all()
    credit = SalesCreditNote.objects.get()
    support = row.lines.get(line_number=2)
    assert [line["invoice_line_id"] for line in credit.lines] == [support.pk]
    assert aiq_sandbox.state.outstanding(row.aiq_transaction_id) == 108

    voided = copy.deepcopy(invoice)
    voided["status"] = "void"
    voided["status_transitions"]["voided_at"] = 1764500000
    stripe_objects[f"/v1/invoices/{invoice['id']}"] = voided
    assert deliver("invoice.voided", invoice["id"], "invoice").state == "processed"
    assert deliver("invoice.voided", invoice["id"], "invoice").state == "processed"  # again
    drain_all()
    void_note = SalesCreditNote.objects.get(external_reference=f"{invoice['id']}-VOID")
    assert void_note.state == SalesCreditNote.State.POSTED, void_note.error
    # the rest, line by line: the retainer whole, nothing more of the support hours
    assert (void_note.net_amount, void_note.tax_amount, void_note.gross_amount) == (90, 18, 108)
    retainer = row.lines.get(line_number=1)
    assert [(line["invoice_line_id"], Decimal(line["net_amount"])) for line in void_note.lines] == [
        (retainer.pk, 90)
    ]
    assert aiq_sandbox.state.outstanding(row.aiq_transaction_id) == 0
    credit_notes = [
        t for t in aiq_sandbox.state.transactions(f"{invoice['id']}-VOID")
        if t["type"] == "SalesCreditNote"
    ]  # fmt: skip
    assert [t["amount"] for t in credit_notes] == [-108]  # AIQ keeps a credit negative


def _receipts(sandbox) -> int:
    return sandbox.state._rows("SELECT count(*) AS n FROM txn WHERE type = 'SalesReceipt'")[0]["n"]


def _paid_invoice(rate: dict, name: str, quantity: int) -> dict:
    """A subscription's first invoice in localstripe, paid at once by its payment intent
    (which names the invoice, as Stripe's does)."""
    card = request(
        "post", "/v1/payment_methods", type="card",
        card={"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"},
    )  # fmt: skip
    customer = request(
        "post", "/v1/customers", name=name, payment_method=card["id"],
        invoice_settings={"default_payment_method": card["id"]},
    )  # fmt: skip
    plan = request(
        "post", "/v1/plans", amount=4999, currency="gbp", interval="month",
        product={"name": "Beans, 5 kg monthly"},
    )  # fmt: skip
    subscription = request(
        "post", "/v1/subscriptions", customer=customer["id"],
        items=[{"plan": plan["id"], "quantity": quantity, "tax_rates": [rate["id"]]}],
    )  # fmt: skip
    invoice = request("get", f"/v1/invoices/{subscription['latest_invoice']}")
    assert invoice["status"] == "paid"
    return invoice


def test_a_paid_stripe_invoice_is_settled_by_its_payment_and_a_refunded_credit_note_credits_once(
    localstripe, entity, aiq_sandbox, stripe_objects, deliver, bob
):
    from ledger.models import Invoice
    from payments.models import MatchProposal, Payment, Refund
    from payments.services.refunds import refund_approve
    from tests.refunds_support import setup_books

    setup_books(entity)  # AIQ's banks, GL and VAT codes; receipts land in the GBP bank
    seeded = _receipts(aiq_sandbox)
    rate = request(
        "post", "/v1/tax_rates", display_name="VAT", inclusive=False, percentage=20,
        metadata={"aiq_tax_code": "T1"},
    )  # fmt: skip

    # the invoice reaches AIQ first, then its payment: settled at once, no matching run
    first = _paid_invoice(rate, "Orchard Cafe", 3)  # 149.97 + 29.99 VAT
    deliver("invoice.paid", first["id"], "invoice")
    drain_all()
    row = SalesInvoice.objects.get(external_reference=first["id"])
    assert row.state == S.POSTED and row.gross_amount == Decimal("179.96")
    deliver("payment_intent.succeeded", first["payment_intent"], "payment_intent")
    drain_all()
    payment = Payment.objects.get(external_id=first["payment_intent"])
    [plan] = payment.plans.all()
    mirror = Invoice.objects.get(aiq_transaction_id=row.aiq_transaction_id)
    assert [(line.invoice_id, line.amount) for line in plan.lines.all()] == [
        (mirror.pk, Decimal("179.96"))
    ]
    assert plan.maker is None and plan.proposal is None and plan.on_account_amount == 0
    assert not MatchProposal.objects.filter(payment=payment).exists()
    payment.refresh_from_db()
    assert payment.match_state == Payment.MatchState.SENT
    assert aiq_sandbox.state.outstanding(row.aiq_transaction_id) == 0
    assert _receipts(aiq_sandbox) == seeded + 1

    # the payment first (localstripe sends it before invoice.paid), then the invoice: the
    # payment waits unmatched and is settled as AIQ takes the invoice
    second = _paid_invoice(rate, "Mill Bakery", 1)  # 49.99 + 10.00 VAT
    deliver("payment_intent.succeeded", second["payment_intent"], "payment_intent")
    early = Payment.objects.get(external_id=second["payment_intent"])
    assert not early.plans.exists()
    deliver("invoice.paid", second["id"], "invoice")
    drain_all()
    later = SalesInvoice.objects.get(external_reference=second["id"])
    [plan] = early.plans.all()
    assert [line.amount for line in plan.lines.all()] == [Decimal("59.99")]
    assert plan.proposal is None
    assert aiq_sandbox.state.outstanding(later.aiq_transaction_id) == 0
    assert _receipts(aiq_sandbox) == seeded + 2

    # a Stripe credit note paid back to the card: its refund books it, not the credit note
    # too (one credit of 36.00, not two)
    refund = request("post", "/v1/refunds", payment_intent=first["payment_intent"], amount=3600)
    line = first["lines"]["data"][0]
    note = {
        "id": "cn_1NqRefundedOrchard01", "object": "credit_note", "amount": 3600,
        "currency": "gbp", "customer": first["customer"], "invoice": first["id"],
        "created": 1764672000, "effective_at": 1764672000, "number": "ORCH-CN-01",
        "memo": "Two bags returned", "reason": "product_unsatisfactory", "status": "issued",
        "type": "post_payment", "pre_payment_amount": 0, "post_payment_amount": 3600,
        "out_of_band_amount": None, "subtotal": 3000, "total": 3600,
        "refunds": [{"amount_refunded": 3600, "refund": refund["id"], "type": "refund"}],
        "lines": {"object": "list", "has_more": False, "data": [{
            "id": "cnli_1NqRefundedOrchard01", "object": "credit_note_line_item",
            "type": "invoice_line_item", "invoice_line_item": line["id"], "amount": 3000,
            "description": "Beans returned", "quantity": 1, "discount_amounts": [],
            "tax_rates": [rate],
            "taxes": [{"amount": 600, "tax_behavior": "exclusive",
                       "tax_rate_details": {"tax_rate": rate["id"]},
                       "taxability_reason": "standard_rated", "taxable_amount": 3000,
                       "type": "tax_rate_details"}],
        }]},
    }  # fmt: skip
    stripe_objects[f"/v1/credit_notes/{note['id']}"] = note
    assert deliver("credit_note.created", note["id"], "credit_note").state == "processed"
    credit = SalesCreditNote.objects.get(external_reference=note["id"])
    assert credit.state == SalesCreditNote.State.REFUNDED and credit.command_id is None
    assert credit.refund_references == refund["id"] and credit.gross_amount == 36
    charge = request("get", f"/v1/payment_intents/{first['payment_intent']}")["latest_charge"]
    deliver("charge.refunded", charge if isinstance(charge, str) else charge["id"], "charge")
    external = Refund.objects.get(stripe_refund_id=refund["id"])
    assert external.kind == Refund.Kind.EXTERNAL and external.invoice == mirror
    refund_approve(refund=external, actor=bob)
    drain_all()
    external.refresh_from_db()
    assert external.state == Refund.State.COMPLETED
    notes = aiq_sandbox.state._rows(
        "SELECT external_reference, amount_milli FROM txn WHERE type = 'SalesCreditNote'"
    )
    assert [(n["external_reference"], n["amount_milli"]) for n in notes] == [
        (f"REF-{external.pk}-CN", -36000)
    ]
    assert aiq_sandbox.state.transactions(note["id"]) == []
