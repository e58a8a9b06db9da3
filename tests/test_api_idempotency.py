"""Idempotency-Key: the same POST sent 100 times from 10 threads makes one receipt in AIQ and
gets 100 identical answers; the same key with another body is refused and changes nothing.
Runs on the configured database (PostgreSQL with DATABASE_URL: the threads really race on the
key's unique index; SQLite: writers take turns)."""

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from api.models import IdempotencyKey
from ledger.models import OutboxCommand
from payments.models import AllocationPlan, Payment
from tests.api_support import Caller, api_client
from tests.refunds_support import drain_all, make_invoice, seed_roles_without_matching, setup_books

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _seeded(transactional_db):
    seed_roles_without_matching()


@pytest.fixture
def books(aiq_sandbox, entity, audit_flushable):
    setup_books(entity)
    return aiq_sandbox


def _body(invoice, total="120.00"):
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


def test_the_same_post_100_times_from_10_threads_is_one_receipt_in_aiq(books, entity, carol):
    _client, token = api_client(entity, carol)
    invoice = make_invoice(entity, "ACME", [("Support", "4010", "120.00", "T0")])
    body = _body(invoice)

    def send(_):
        try:
            answer = Caller(token).post("contact_payments", body, key="order-4711")
            return answer.status_code, answer.content
        finally:
            connection.close()  # each thread's own connection

    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(send, range(100)))

    assert {status for status, _ in answers} == {201}
    assert len({content for _, content in answers}) == 1  # 100 identical answers
    payment_id = json.loads(answers[0][1])["id"]
    assert Payment.objects.count() == AllocationPlan.objects.count() == 1
    drain_all()
    (receipt,) = books.state.transactions(f"RCPT-{payment_id.removeprefix('pay_')}")
    assert receipt["outstanding"] == 0
    assert books.state.receipt_count(f"RCPT-{payment_id.removeprefix('pay_')}") == 1
    assert books.state.outstanding(invoice.aiq_transaction_id) == 0
    assert IdempotencyKey.objects.count() == 1


def test_the_same_key_with_another_body_is_refused_and_changes_nothing(books, entity, carol):
    _client, token = api_client(entity, carol)
    invoice = make_invoice(entity, "ACME", [("Support", "4010", "120.00", "T0")])
    caller = Caller(token)
    first = caller.post("contact_payments", _body(invoice), key="k-1")
    assert first.status_code == 201
    other = caller.post("contact_payments", _body(invoice, total="130.00"), key="k-1")
    assert (other.status_code, other["Content-Type"]) == (409, "application/problem+json")
    assert other.json()["errors"][0]["field"] == "Idempotency-Key"
    again = caller.post("contact_payments", _body(invoice), key="k-1")
    assert (again.status_code, again.content, again["Idempotent-Replayed"]) == (
        201,
        first.content,
        "true",
    )
    missing = caller.http.post(
        "/api/v1/contact_payments", data=json.dumps(_body(invoice)), content_type="application/json"
    )
    assert missing.status_code == 400
    assert Payment.objects.count() == 1
    assert OutboxCommand.objects.filter(kind="post_receipt").count() == 1


def test_a_refusal_is_kept_for_its_key_too(books, entity, carol):
    """A 422 is an answer: the same request with the same key gets it again, nothing made."""
    _client, token = api_client(entity, carol)
    invoice = make_invoice(entity, "ACME", [("Support", "4010", "120.00", "T0")])
    caller = Caller(token)
    body = _body(invoice, total="100.00")  # less than what it allocates
    first = caller.post("contact_payments", body, key="k-2")
    second = caller.post("contact_payments", body, key="k-2")
    assert first.status_code == second.status_code == 422
    assert first.content == second.content
    assert not Payment.objects.exists()


def test_keys_past_their_hours_are_purged_by_the_hourly_schedule(books, entity, carol, settings):
    """The schedule setup_schedules makes runs the purge: a key older than
    API_IDEMPOTENCY_HOURS is forgotten (the same key then makes a new receipt), a younger one
    still answers with the first answer."""
    from datetime import timedelta
    from importlib import import_module

    from django.core.management import call_command
    from django.utils import timezone
    from django_q.models import Schedule

    settings.API_IDEMPOTENCY_HOURS = 48
    _client, token = api_client(entity, carol)
    old = make_invoice(entity, "ACME", [("Support", "4010", "120.00", "T0")])
    young = make_invoice(entity, "ACME", [("Support", "4010", "120.00", "T0")])
    caller = Caller(token)
    assert caller.post("contact_payments", _body(old), key="old").status_code == 201
    assert caller.post("contact_payments", _body(young), key="young").status_code == 201
    IdempotencyKey.objects.filter(key="old").update(created_at=timezone.now() - timedelta(hours=49))
    IdempotencyKey.objects.filter(key="young").update(
        created_at=timezone.now() - timedelta(hours=47)
    )

    call_command("setup_schedules", stdout=open("/dev/null", "w"))  # noqa: SIM115
    schedule = Schedule.objects.get(name="api-idempotency-purge")
    assert (schedule.schedule_type, schedule.minutes, schedule.repeats) == (
        Schedule.MINUTES,
        60,
        -1,
    )
    module, _, name = schedule.func.rpartition(".")
    assert getattr(import_module(module), name)() == 1  # what the cluster runs

    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["young"]
    replay = caller.post("contact_payments", _body(young), key="young")
    assert replay["Idempotent-Replayed"] == "true"
    assert Payment.objects.count() == 2
