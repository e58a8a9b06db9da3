"""Stripe webhooks against a real localstripe over HTTP, and the signature rules."""

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from payments.models import Payment, WebhookEvent
from payments.sources.stripe_demo import demo_customer_create, demo_payment_create
from tests.conftest import localstripe_register_webhook
from tests.stripe_fixtures import OLD_SECRET, SECRET, event, sign

URL = "/webhooks/stripe/"


@pytest.fixture
def secrets(settings):
    settings.STRIPE_WEBHOOK_SECRETS = [SECRET, OLD_SECRET]
    settings.STRIPE_WEBHOOK_TOLERANCE_SECONDS = 300


def _wait_for(predicate, seconds=15.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.django_db(transaction=True)
def test_payment_made_in_localstripe_arrives_by_webhook_as_exactly_one_payment(
    localstripe, live_server, entity, secrets, audit_flushable
):
    localstripe_register_webhook(localstripe, f"{live_server.url}{URL}", SECRET)
    customer = demo_customer_create(email="ap@acme.example", name="Acme Ltd")
    intent = demo_payment_create(
        amount_minor=12345, customer_id=customer["id"], metadata={"invoice": "INV-1043"}
    )

    assert _wait_for(lambda: Payment.objects.filter(external_id=intent["id"]).exists())
    assert _wait_for(
        lambda: (
            WebhookEvent.objects.filter(event_type="payment_intent.succeeded")
            .exclude(state="received")
            .exists()
        )
    )
    time.sleep(1.5)  # any further (repeated) delivery would have arrived by now

    # localstripe is shared by the session: count only what concerns this PaymentIntent
    (payment,) = Payment.objects.filter(external_id=intent["id"])
    assert str(payment.amount) == "123.450"
    assert payment.currency == "GBP"
    assert payment.status == Payment.Status.SUCCEEDED
    assert payment.payer_email == "ap@acme.example"
    assert payment.payer_name == "Acme Ltd"
    assert payment.payer_reference == customer["id"]
    assert {"source": "metadata.invoice", "value": "INV-1043"} in payment.references
    assert payment.fee_amount == 0 and payment.net_amount == payment.amount
    ours = [
        event
        for event in WebhookEvent.objects.filter(event_type="payment_intent.succeeded")
        if event.payload["data"]["object"]["id"] == intent["id"]
    ]
    assert [event.state for event in ours] == ["processed"]


@pytest.mark.django_db(transaction=True)
def test_one_signed_event_delivered_1000_times_from_50_threads_is_stored_once(
    localstripe, live_server, entity, secrets, audit_flushable
):
    intent = demo_payment_create(amount_minor=5000, metadata={"invoice": "INV-1001"})
    payload = event("payment_intent.succeeded", {"id": intent["id"], "object": "payment_intent"})
    headers = {"Stripe-Signature": sign(payload), "Content-Type": "application/json"}
    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=50))

    def deliver(_):
        return session.post(
            f"{live_server.url}{URL}", data=payload, headers=headers, timeout=60
        ).status_code

    with ThreadPoolExecutor(max_workers=50) as pool:
        codes = list(pool.map(deliver, range(1000)))

    assert len(codes) == 1000
    assert set(codes) == {200}, {c: codes.count(c) for c in set(codes)}
    assert WebhookEvent.objects.count() == 1
    assert WebhookEvent.objects.get().state == "processed"
    assert Payment.objects.filter(external_id=intent["id"]).count() == 1
    assert Payment.objects.count() == 1


def _post(client, payload: bytes, header: str | None):
    headers = {"HTTP_STRIPE_SIGNATURE": header} if header is not None else {}
    return client.post(URL, data=payload, content_type="application/json", **headers)


@pytest.mark.django_db
def test_unknown_event_type_is_answered_200_and_ignored(client, entity, secrets):
    payload = event("customer.created", {"id": "cus_123", "object": "customer"})
    response = _post(client, payload, sign(payload))
    assert response.status_code == 200
    assert WebhookEvent.objects.get().state == "ignored"
    assert Payment.objects.count() == 0


@pytest.mark.django_db
def test_a_secret_being_rotated_out_is_still_accepted(client, entity, secrets):
    payload = event("customer.updated", {"id": "cus_123", "object": "customer"})
    assert _post(client, payload, sign(payload, OLD_SECRET)).status_code == 200
    assert WebhookEvent.objects.count() == 1


def _flip_one_byte(payload: bytes) -> bytes:
    index = payload.index(b"payment_intent.succeeded")
    return payload[:index] + b"P" + payload[index + 1 :]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "tamper",
    ["flipped_byte", "301_seconds_old", "reserialised", "unsigned", "wrong_secret", "garbage"],
)
def test_forged_stale_or_reserialised_webhooks_get_400_and_store_nothing(
    client, entity, secrets, tamper, caplog
):
    payload = event("payment_intent.succeeded", {"id": "pi_123", "object": "payment_intent"})
    header = sign(payload)
    if tamper == "flipped_byte":
        payload = _flip_one_byte(payload)
    elif tamper == "301_seconds_old":
        header = sign(payload, at=int(time.time()) - 301)
    elif tamper == "reserialised":
        payload = json.dumps(json.loads(payload)).encode()  # same data, other bytes
    elif tamper == "unsigned":
        header = None
    elif tamper == "wrong_secret":
        header = sign(payload, "whsec_attacker_guess_000")
    elif tamper == "garbage":
        header = "t=abc,v1=zz"

    with caplog.at_level(logging.DEBUG):
        response = _post(client, payload, header)

    assert response.status_code == 400
    assert WebhookEvent.objects.count() == 0
    assert Payment.objects.count() == 0
    text = response.content.decode() + caplog.text
    assert SECRET not in text and OLD_SECRET not in text
    assert "rejected" in caplog.text


@pytest.mark.django_db
def test_a_webhook_for_an_object_that_cannot_be_fetched_is_kept_for_retry(
    client, localstripe, entity, secrets, django_capture_on_commit_callbacks
):
    payload = event("payment_intent.succeeded", {"id": "pi_doesnotexist", "object": "x"})
    with django_capture_on_commit_callbacks(execute=True):
        assert _post(client, payload, sign(payload)).status_code == 200
    stored = WebhookEvent.objects.get()
    assert stored.state == "retry"
    assert stored.attempts == 1
    assert "404" in stored.last_error
    assert Payment.objects.count() == 0


@pytest.mark.django_db
def test_webhook_needs_no_login_and_rejects_get(client, secrets):
    assert client.get(URL).status_code == 405
