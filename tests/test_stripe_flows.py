"""Payment lifecycles against a real localstripe: event order, refunds, payouts, disputes,
currency exponents, the incremental import and the catch-up."""

import itertools
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from ledger.models import Customer
from payments.models import Dispute, Fee, PayerMapping, Payment, Payout, WebhookEvent
from payments.services import stripe_events
from payments.services.payments import payer_mapping_confirm
from payments.sources import stripe_client, stripe_source
from payments.sources.stripe_client import request
from payments.sources.stripe_demo import demo_customer_create, demo_payment_create
from staff.models import AuditEntry
from tests.stripe_fixtures import SECRET, event, fixture, sign

URL = "/webhooks/stripe/"


@pytest.fixture
def deliver(client, settings, django_capture_on_commit_callbacks):
    settings.STRIPE_WEBHOOK_SECRETS = [SECRET]

    def send(event_type: str, obj: dict) -> int:
        payload = event(event_type, obj)
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                URL,
                data=payload,
                content_type="application/json",
                HTTP_STRIPE_SIGNATURE=sign(payload),
            )
        return response.status_code

    return send


def _state(payment: Payment) -> tuple:
    return (
        payment.status,
        payment.amount,
        payment.amount_refunded,
        payment.currency,
        tuple(sorted(r["value"] for r in payment.references)),
        payment.payer_email,
    )


def _external_refund_audits(payment: Payment) -> int:
    return AuditEntry.objects.filter(
        action="payment.external_refund", after__payment_id=payment.pk
    ).count()


@pytest.mark.django_db
def test_every_order_of_a_payments_lifecycle_events_gives_the_same_final_state(
    localstripe, entity, deliver
):
    finals = set()
    for order in itertools.permutations(range(4)):
        customer = demo_customer_create(email="pay@initech.example", name="Initech")
        intent = demo_payment_create(
            amount_minor=10000, customer_id=customer["id"], metadata={"invoice": "INV-1007"}
        )
        charge_id = intent["latest_charge"]["id"]
        first = request("post", "/v1/refunds", charge=charge_id, amount=2500)
        second = request("post", "/v1/refunds", charge=charge_id, amount=1500)
        lifecycle = [
            ("payment_intent.succeeded", {"id": intent["id"], "object": "payment_intent"}),
            ("charge.refunded", {"id": charge_id, "object": "charge"}),
            ("refund.created", {"id": first["id"], "object": "refund"}),
            ("charge.refund.updated", {"id": second["id"], "object": "refund"}),
        ]
        for index in order:
            assert deliver(*lifecycle[index]) == 200
        payment = Payment.objects.get(external_id=intent["id"])
        finals.add(_state(payment))
        # each refund made outside the app is reported once, however many events mention it
        assert _external_refund_audits(payment) == 2
    assert finals == {
        (
            "partially_refunded",
            Decimal("100.000"),
            Decimal("40.000"),
            "GBP",
            ("INV-1007",),
            "pay@initech.example",
        )
    }
    assert WebhookEvent.objects.exclude(state="processed").count() == 0


@pytest.mark.django_db
def test_full_refund_marks_the_payment_refunded_and_audits_the_change(localstripe, entity, deliver):
    intent = demo_payment_create(amount_minor=4200)
    assert deliver("payment_intent.succeeded", {"id": intent["id"], "object": "payment_intent"})
    refund = request("post", "/v1/refunds", payment_intent=intent["id"])
    assert deliver("refund.created", {"id": refund["id"], "object": "refund"}) == 200
    payment = Payment.objects.get()
    assert payment.status == "refunded"
    assert payment.amount_refunded == payment.amount == Decimal("42")
    change = AuditEntry.objects.get(action="payment.status", object_id=str(payment.pk))
    assert change.before["status"] == "succeeded" and change.after["status"] == "refunded"


@pytest.mark.django_db
def test_a_declined_card_is_recorded_as_a_failed_payment(localstripe, entity, deliver):
    with pytest.raises(stripe_client.StripePermanent):
        demo_payment_create(amount_minor=999, card="4000000000000341")
    intent_id = request("get", "/v1/payment_intents")["data"][0]["id"]
    assert deliver("payment_intent.payment_failed", {"id": intent_id, "object": "x"}) == 200
    assert Payment.objects.get().status == "failed"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("currency", "minor", "major"),
    [
        ("jpy", 5000, "5000"),
        ("kwd", 12345, "12.345"),
        ("gbp", 12345, "123.45"),
        ("bhd", 1, "0.001"),
    ],
)
def test_minor_units_from_stripe_use_the_currencys_exponent(
    localstripe, entity, deliver, currency, minor, major
):
    intent = demo_payment_create(amount_minor=minor, currency=currency)
    assert deliver("payment_intent.succeeded", {"id": intent["id"], "object": "x"}) == 200
    payment = Payment.objects.get()
    assert payment.amount == Decimal(major)
    assert payment.currency == currency.upper()


@pytest.mark.django_db
def test_payout_paid_in_localstripe_is_stored(localstripe, entity, deliver):
    payout = request("post", "/v1/payouts", amount=9650, currency="eur", status="paid")
    assert deliver("payout.paid", {"id": payout["id"], "object": "payout"}) == 200
    row = Payout.objects.get()
    assert (row.external_id, row.amount, row.currency, row.status) == (
        payout["id"],
        Decimal("96.5"),
        "EUR",
        "paid",
    )
    # localstripe cannot list balance transactions by payout: recorded, not an error loop
    assert WebhookEvent.objects.get().state == "processed"


@pytest.mark.django_db
def test_payout_balance_transactions_link_payments_and_their_net_adds_up(
    localstripe, entity, deliver
):
    intent = demo_payment_create(amount_minor=10000)
    deliver("payment_intent.succeeded", {"id": intent["id"], "object": "x"})
    page = fixture("payout_balance_transactions.json")
    page["data"][1]["source"]["id"] = intent["latest_charge"]["id"]
    page["data"][1]["source"]["payment_intent"] = intent["id"]
    payout = stripe_events.payout_upsert(
        source="stripe",
        payout=stripe_source.normalise_payout(
            {
                "id": "po_1MiN3gLkdIwHu7ixhPJ8rIzk",
                "amount": 9650,
                "currency": "gbp",
                "status": "paid",
                "arrival_date": 1678060800,
            }
        ),
    )

    linked = stripe_events.stripe_payout_reconcile(payout=payout, pages=[page["data"]])

    assert linked == 1
    assert Payment.objects.get().payout == payout
    audit = AuditEntry.objects.get(action="payout.reconcile")
    assert audit.after["balanced"] is True and audit.after["net_total"] == "96.50"


@pytest.mark.django_db
def test_dispute_lifecycle_marks_the_payment_disputed_until_won(
    localstripe, entity, deliver, monkeypatch
):
    # localstripe has no disputes: the dispute object comes from Stripe's documented shape,
    # faked at our own boundary; the charge is fetched from localstripe for real.
    intent = demo_payment_create(amount_minor=1000, currency="usd")
    dispute = fixture("dispute.json")
    dispute["charge"] = intent["latest_charge"]["id"]
    monkeypatch.setattr(stripe_client, "dispute_retrieve", lambda _id: dict(dispute))

    assert deliver("charge.dispute.created", {"id": dispute["id"], "object": "dispute"}) == 200
    payment = Payment.objects.get()
    assert payment.status == "disputed"
    assert Dispute.objects.get().status == "warning_needs_response"
    # a later event for the payment itself keeps the dispute visible
    deliver("payment_intent.succeeded", {"id": intent["id"], "object": "x"})
    assert Payment.objects.get().status == "disputed"

    dispute["status"] = "won"
    assert deliver("charge.dispute.closed", {"id": dispute["id"], "object": "dispute"}) == 200
    assert Payment.objects.get().status == "succeeded"
    assert Dispute.objects.get().status == "won"
    actions = list(
        AuditEntry.objects.filter(action__startswith="dispute.").values_list("action", flat=True)
    )
    assert sorted(actions) == ["dispute.create", "dispute.update"]


@pytest.mark.django_db
def test_fees_and_exchange_rate_come_from_the_balance_transaction(entity):
    charge = fixture("charge_with_fees.json")
    item = stripe_source.normalise_charge(charge)
    assert item.external_id == "pi_3MmlLrLkdIwHu7ix0Mtr8Tbb"
    assert item.amount == Decimal("100.00") and item.currency == "USD"
    assert item.exchange_rate == "0.857312"
    # fee and net are in GBP (settlement), not comparable with a USD payment: kept as Fee rows
    assert item.fee_amount is None and item.net_amount is None
    assert [(f.amount, f.currency) for f in item.fees] == [
        (Decimal("2.90"), "GBP"),
        (Decimal("0.30"), "GBP"),
    ]
    assert {"source": "metadata.invoice", "value": "INV-2001"} in item.references
    assert {"source": "statement_descriptor_suffix", "value": "INV-2001"} in item.references
    Customer.objects.create(entity=entity, code="GLOBEX", name="Globex", currency="USD")
    stripe_events.payments_upsert(items=[item], origin="test")
    payment = Payment.objects.get()
    assert payment.customer.code == "GLOBEX"  # metadata.aiq_customer_code, upper-cased
    assert Fee.objects.filter(payment=payment).count() == 2

    same_currency = {
        **charge,
        "currency": "gbp",
        "balance_transaction": {**charge["balance_transaction"], "amount": 10000},
    }
    item = stripe_source.normalise_charge(same_currency)
    assert (item.fee_amount, item.net_amount) == (Decimal("3.20"), Decimal("82.53"))


@pytest.mark.django_db
def test_import_is_incremental_and_idempotent_and_maps_customers(localstripe, entity, alice):
    known = Customer.objects.create(
        entity=entity, code="ACME", name="Acme", email="AP@acme.example", currency="GBP"
    )
    other = Customer.objects.create(entity=entity, code="UMBRELLA", name="Umbrella", currency="GBP")
    acme = demo_customer_create(email="ap@acme.example")
    stranger = demo_customer_create(email="someone@umbrella.example")
    first = demo_payment_create(amount_minor=1000, customer_id=acme["id"])
    second = demo_payment_create(amount_minor=2000, customer_id=stranger["id"])

    call_command("stripe_import")
    assert Payment.objects.count() == 2
    assert Payment.objects.get(external_id=first["id"]).customer == known  # by email
    assert Payment.objects.get(external_id=second["id"]).customer is None

    payer_mapping_confirm(user=alice, source="stripe", payer_key=stranger["id"], customer=other)
    assert Payment.objects.get(external_id=second["id"]).customer == other
    assert PayerMapping.objects.get().confirmed_by == alice

    request("post", "/v1/refunds", payment_intent=first["id"], amount=300)
    third = demo_payment_create(amount_minor=3000, customer_id=stranger["id"])
    call_command("stripe_import", "--since", "2017-01-01")
    call_command("stripe_import")
    assert Payment.objects.count() == 3
    assert Payment.objects.get(external_id=third["id"]).customer == other  # remembered
    refunded = Payment.objects.get(external_id=first["id"])
    assert (refunded.status, refunded.amount_refunded) == ("partially_refunded", Decimal("3"))
    assert _external_refund_audits(refunded) == 1


@pytest.mark.django_db
def test_catch_up_fetches_events_missed_while_the_endpoint_was_down(localstripe, entity):
    intent = demo_payment_create(amount_minor=7700, metadata={"invoice": "INV-1010"})
    call_command("stripe_catch_up")
    call_command("stripe_catch_up")
    payment = Payment.objects.get()
    assert payment.external_id == intent["id"]
    assert WebhookEvent.objects.filter(event_type="payment_intent.succeeded").count() == 1


@pytest.mark.django_db
def test_the_sweep_retries_events_whose_object_could_not_be_fetched(
    localstripe, entity, deliver, settings
):
    intent = demo_payment_create(amount_minor=500)
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # Stripe unreachable
    assert deliver("payment_intent.succeeded", {"id": intent["id"], "object": "x"}) == 200
    assert WebhookEvent.objects.get().state == "retry"
    settings.STRIPE_API_BASE = localstripe
    assert stripe_events.stripe_events_retry_due(older_than_seconds=0) == 1
    assert WebhookEvent.objects.get().state == "processed"
    assert Payment.objects.count() == 1


@pytest.mark.django_db
def test_demo_payments_command_creates_real_payment_intents(localstripe, entity, settings):
    call_command("stripe_demo_payments", "INV-1001", "INV-1002", "--count", "2")
    intents = request("get", "/v1/payment_intents", limit=100)["data"]
    assert len(intents) == 2 + 2 * 2
    assert all(i["status"] == "succeeded" for i in intents)
    invoices = sorted(i["metadata"]["invoice"] for i in intents if i["metadata"])
    assert invoices == ["INV-1001", "INV-1002"]
    assert sum(1 for i in intents if i["customer"]) == 4  # two with invoices, two email only

    call_command("stripe_import")
    call_command("stripe_demo_payments", "--if-empty")  # payments exist: nothing new
    assert len(request("get", "/v1/payment_intents", limit=100)["data"]) == 6

    settings.STRIPE_API_BASE = "https://api.stripe.com"
    with pytest.raises(CommandError, match="Refusing"):
        call_command("stripe_demo_payments")


@pytest.mark.django_db
def test_the_api_key_never_reaches_the_logs_or_stored_errors(
    localstripe, entity, deliver, settings, caplog
):
    settings.STRIPE_API_KEY = "sk_test_this_key_must_not_leak_42"
    with caplog.at_level("DEBUG"):
        intent = demo_payment_create(amount_minor=100)
        call_command("stripe_import")
        settings.STRIPE_API_BASE = "http://127.0.0.1:9"
        deliver("payment_intent.succeeded", {"id": intent["id"], "object": "x"})
    assert caplog.records  # the SDK and our code did log
    assert "sk_test_this_key_must_not_leak_42" not in caplog.text
    assert "must_not_leak" not in WebhookEvent.objects.get().last_error
