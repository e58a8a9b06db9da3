"""Outgoing webhooks, as an integrator's system hears them: a real HTTP receiver on 127.0.0.1
that checks every signature (tests/webhook_receiver.py). A receipt posted through the API and
confirmed in the AIQ sandbox arrives as signed `contact_payment.sent` then
`contact_payment.confirmed`; a refund as requested, sent, completed; a receiver that is down is
retried with backoff, given up after WEBHOOK_MAX_ATTEMPTS and replayed by an admin; every POST
is in the delivery log; a refused request (rolled back) sends nothing."""

from datetime import timedelta
from importlib import import_module

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_q.models import Schedule

from api.models import WebhookAttempt, WebhookDelivery, WebhookEvent
from api.webhooks import (
    SignatureInvalid,
    backoff,
    webhook_delivery_replay,
    webhook_signature,
    webhook_signature_verify,
    webhook_subscription_create,
    webhook_subscription_disable,
    webhooks_deliver_due,
)
from staff.models import AuditEntry
from tests.api_support import Caller, api_client
from tests.later_support import credit_note_in_aiq
from tests.refunds_support import drain_all, make_invoice, seed_roles_without_matching, setup_books
from tests.sales_support import aiq_invoices
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _seeded(transactional_db):
    seed_roles_without_matching()


@pytest.fixture
def books(aiq_sandbox, entity, audit_flushable):
    setup_books(entity)
    return aiq_sandbox


@pytest.fixture
def receiver():
    running = Receiver()
    yield running
    running.stop()


@pytest.fixture
def subscribed(books, entity, carol, receiver):
    """A billing system's API client with a webhook subscription to the receiver."""
    client, token = api_client(entity, carol)
    subscription, secret = webhook_subscription_create(actor=carol, client=client, url=receiver.url)
    receiver.secret = secret
    return Caller(token), subscription


def _receipt(invoice, total="120.00") -> dict:
    return {
        "contact_payment": {
            "transaction_type_id": "CUSTOMER_RECEIPT",
            "contact_id": "ACME",
            "bank_account_id": "BANK-GBP",
            "date": "2026-12-01",
            "total_amount": total,
            "allocated_artefacts": [{"artefact_id": f"inv_{invoice.pk}", "amount": "120.00"}],
        }
    }


def _due_now():
    """Time passes: every backoff has run out."""
    WebhookDelivery.objects.filter(state="pending").update(next_attempt_at=timezone.now())


def test_a_receipt_confirmed_in_aiq_reaches_the_subscriber_signed(
    subscribed, books, entity, receiver
):
    api, _subscription = subscribed
    invoice = make_invoice(entity, "ACME", [("Support", "4010", "120.00", "T0")])
    answer = api.post("contact_payments", _receipt(invoice))
    assert answer.status_code == 201
    payment_id = answer.json()["id"]

    assert webhooks_deliver_due() == {"delivered": 1, "pending": 0, "failed": 0}
    drain_all()  # the outbox writes the receipt and its allocation to AIQ
    assert books.state.outstanding(invoice.aiq_transaction_id) == 0
    webhooks_deliver_due()

    assert receiver.refused == []
    assert receiver.types() == ["contact_payment.sent", "contact_payment.confirmed"]
    confirmed = receiver.events[1]["data"]["object"]
    assert confirmed["id"] == payment_id and confirmed["status"] == "confirmed"
    assert confirmed["allocated_artefacts"] == [
        {"artefact_id": f"inv_{invoice.pk}", "amount": "120.00"}
    ]
    assert len({event["id"] for event in receiver.events}) == 2
    log = WebhookAttempt.objects.order_by("pk")
    assert [(a.number, a.status_code, a.error) for a in log] == [(1, 200, ""), (1, 200, "")]
    assert set(WebhookDelivery.objects.values_list("state", flat=True)) == {"delivered"}
    assert webhooks_deliver_due() == {"delivered": 0, "pending": 0, "failed": 0}  # sent once


def test_a_refund_is_heard_requested_sent_and_completed(subscribed, books, entity, bob, receiver):
    from payments.models import Refund
    from payments.services.refunds import refund_approve

    api, _subscription = subscribed
    note = credit_note_in_aiq(entity, "ACME", "100.00")
    answer = api.post(
        "contact_payments",
        {"contact_payment": {
            "transaction_type_id": "CUSTOMER_REFUND", "contact_id": "ACME",
            "bank_account_id": "BANK-GBP", "date": "2026-12-01", "total_amount": "100.00",
            "allocated_artefacts": [{"artefact_id": f"cn_{note.pk}", "amount": "100.00"}],
        }},
    )  # fmt: skip
    assert answer.status_code == 201, answer.json()
    refund_approve(refund=Refund.objects.get(), actor=bob)
    drain_all()
    assert books.state.outstanding(note.aiq_transaction_id) == 0
    webhooks_deliver_due()
    assert receiver.types() == ["refund.requested", "refund.sent", "refund.completed"]
    assert {e["data"]["object"]["id"] for e in receiver.events} == {answer.json()["id"]}


def test_a_receiver_that_is_down_is_retried_with_backoff_given_up_then_replayed(
    subscribed, books, entity, carol, receiver, settings
):
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    settings.WEBHOOK_RETRY_SECONDS = 60
    api, _subscription = subscribed
    receiver.failing = 10
    invoice = make_invoice(entity, "ACME", [("Support", "4010", "120.00", "T0")])
    assert api.post("contact_payments", _receipt(invoice)).status_code == 201

    before = timezone.now()
    assert webhooks_deliver_due() == {"delivered": 0, "pending": 1, "failed": 0}
    delivery = WebhookDelivery.objects.get()
    assert (delivery.attempts, delivery.last_status_code) == (1, 500)
    assert delivery.next_attempt_at >= before + timedelta(seconds=60)  # first backoff
    assert webhooks_deliver_due()["pending"] == 0  # not due yet: nothing posted
    _due_now()
    webhooks_deliver_due()
    delivery.refresh_from_db()
    assert delivery.next_attempt_at >= timezone.now() + timedelta(seconds=110)  # doubled
    assert (backoff(1), backoff(2), backoff(30)) == (
        timedelta(seconds=60),
        timedelta(seconds=120),
        timedelta(hours=6),
    )
    _due_now()
    assert webhooks_deliver_due() == {"delivered": 0, "pending": 0, "failed": 1}
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts) == ("failed", 3)
    _due_now()
    assert webhooks_deliver_due()["failed"] == 0  # given up: not tried again by itself
    assert receiver.events == []

    receiver.failing = 0  # the integrator fixed their endpoint
    webhook_delivery_replay(actor=carol, delivery=delivery)
    assert webhooks_deliver_due() == {"delivered": 1, "pending": 0, "failed": 0}
    assert receiver.types() == ["contact_payment.sent"]
    log = list(WebhookAttempt.objects.filter(delivery=delivery).order_by("number"))
    assert [(a.number, a.status_code) for a in log] == [(1, 500), (2, 500), (3, 500), (4, 200)]
    assert "down for maintenance" in log[0].error
    assert AuditEntry.objects.filter(action="webhook_delivery.replay").count() == 1


def test_the_delivery_schedule_exists_and_one_delivery_is_posted_by_one_worker_only(
    subscribed, entity, receiver
):
    from api.webhooks import _claim

    api, _subscription = subscribed
    invoice = make_invoice(entity, "ACME", [("Support", "4010", "120.00", "T0")])
    assert api.post("contact_payments", _receipt(invoice)).status_code == 201
    delivery = WebhookDelivery.objects.get()
    assert _claim(delivery.pk) is True
    assert _claim(delivery.pk) is False  # leased: a second worker does not post it too

    call_command("setup_schedules", stdout=open("/dev/null", "w"))  # noqa: SIM115
    schedule = Schedule.objects.get(name="api-webhooks")
    assert (schedule.minutes, schedule.repeats) == (1, -1)
    WebhookDelivery.objects.update(lease_until=timezone.now() - timedelta(seconds=1))
    module, _, name = schedule.func.rpartition(".")
    assert getattr(import_module(module), name)()["delivered"] == 1  # what the cluster runs
    assert receiver.types() == ["contact_payment.sent"]


def test_a_sales_invoice_posted_in_aiq_is_heard_with_its_aiq_transaction(
    subscribed, books, entity, receiver, settings
):
    settings.OUTBOX_SETTLE_SECONDS = 0
    api, _subscription = subscribed
    line = {"description": "Widgets", "net_amount": "100.00", "tax_rate_id": "T1",
            "tax_amount": "20.00"}  # fmt: skip
    body = {"contact_id": "ACME", "date": "2026-11-20", "reference": "SHOP-77",
            "invoice_lines": [line]}  # fmt: skip
    answer = api.post("sales_invoices", {"sales_invoice": body})
    assert answer.status_code == 201, answer.json()
    assert not WebhookEvent.objects.exists()  # queued: nothing in AIQ yet
    drain_all()
    webhooks_deliver_due()

    assert receiver.refused == []
    assert receiver.types() == ["sales_invoice.posted"]
    heard = receiver.events[0]["data"]["object"]
    (in_aiq,) = aiq_invoices(books, "SHOP-77")
    assert heard["id"] == answer.json()["id"] and heard["status"] == "posted"
    assert heard["aiq_transaction_id"] == in_aiq["transaction_id"]
    assert heard["total_amount"] == "120.00"
    assert set(heard) == set(api.get(f"sales_invoices/{heard['id']}").json())  # its shape


def test_a_refused_post_and_a_disabled_subscription_send_nothing(
    subscribed, entity, carol, receiver
):
    api, subscription = subscribed
    invoice = make_invoice(entity, "ACME", [("Support", "4010", "120.00", "T0")])
    refused = api.post("contact_payments", _receipt(invoice, total="100.00"))  # < allocated
    assert refused.status_code == 422
    assert not WebhookEvent.objects.exists()
    webhook_subscription_disable(actor=carol, subscription=subscription)
    assert api.post("contact_payments", _receipt(invoice)).status_code == 201
    assert not WebhookEvent.objects.exists()
    assert webhooks_deliver_due()["delivered"] == 0 and receiver.events == []


def test_a_signature_is_refused_when_the_body_secret_or_time_is_not_the_signed_one():
    body, secret, now = b'{"id":"evt_1"}', "whsec_test", 1_800_000_000
    header = webhook_signature(secret, body, now)
    webhook_signature_verify(body, header, secret, now=now + 10)  # accepted
    for args, when in (
        ((b'{"id":"evt_2"}', header, secret), now),
        ((body, header, "whsec_other"), now),
        ((body, header, secret), now + 301),
        ((body, "v1=abc", secret), now),
    ):
        with pytest.raises(SignatureInvalid):
            webhook_signature_verify(*args, now=when)
