"""ensure_customer: a customer known only here is created in AIQ once, then receipts can follow.

Against the AIQ sandbox over HTTP (zeep), drained in-process.
"""

import sqlite3
from datetime import date

import pytest
from django.core.exceptions import PermissionDenied

from ledger.aiq.client import AiqClient
from ledger.customers import customer_ensure_in_aiq
from ledger.models import Customer, OutboxCommand
from ledger.outbox.runner import drain
from ledger.outbox.services import outbox_enqueue
from staff.models import AuditEntry


@pytest.fixture
def newco(entity):
    return Customer.objects.create(
        entity=entity, code="NEWCO", name="New Co Ltd", email="ap@newco.example", currency="GBP"
    )


def aiq_customers(sandbox, code: str) -> list:
    db = sqlite3.connect(sandbox.db_path)
    try:
        return db.execute(
            "SELECT id, name FROM account WHERE entity_id = 'demo' AND code = ?", (code,)
        ).fetchall()
    finally:
        db.close()


def drain_once():
    return drain(budget_seconds=20, batch_size=10)


def test_a_local_customer_is_created_in_aiq_and_the_mirror_learns_its_account(
    entity, newco, alice, aiq_sandbox
):
    command = customer_ensure_in_aiq(customer=newco, actor=alice)
    assert command.kind == "ensure_customer" and command.external_reference == "CUST-NEWCO"
    assert AuditEntry.objects.filter(action="customer.ensure_in_aiq").count() == 1

    assert drain_once() == {"confirmed": 1}
    [(account_id, name)] = aiq_customers(aiq_sandbox, "NEWCO")
    assert name == "New Co Ltd"
    record = AiqClient.for_entity(entity).get_customer("NEWCO")
    assert record["Email"] == "ap@newco.example" and record["CurrencyCode"] == "GBP"
    command.refresh_from_db()
    assert command.result["account_id"] == account_id and command.result["created"] is True
    newco.refresh_from_db()
    assert newco.aiq_account_id == account_id and newco.row_version
    # known in AIQ now: nothing more to queue
    assert customer_ensure_in_aiq(customer=newco, actor=alice) is None


def test_a_lost_answer_to_the_create_is_read_back_and_never_creates_twice(
    newco, alice, aiq_sandbox
):
    customer_ensure_in_aiq(customer=newco, actor=alice)
    aiq_sandbox.faults.update(drop_after_commit_rate=1.0, ops=["UpdateCustomer"])
    assert drain_once() == {"uncertain": 1}
    aiq_sandbox.faults.reset()
    OutboxCommand.objects.update(next_attempt_at=None)

    assert drain_once() == {"confirmed": 1}
    assert len(aiq_customers(aiq_sandbox, "NEWCO")) == 1
    assert aiq_sandbox.server.calls()["UpdateCustomer"] == 1
    newco.refresh_from_db()
    assert newco.aiq_account_id


def test_a_customer_that_already_exists_in_aiq_is_left_as_aiq_has_it(entity, alice, aiq_sandbox):
    acme = Customer.objects.create(entity=entity, code="ACME", name="Renamed here", currency="GBP")
    customer_ensure_in_aiq(customer=acme, actor=alice)
    assert drain_once() == {"confirmed": 1}
    assert aiq_sandbox.server.calls().get("UpdateCustomer", 0) == 0
    assert OutboxCommand.objects.get().result["created"] is False
    [(_, name)] = aiq_customers(aiq_sandbox, "ACME")
    assert name != "Renamed here"
    acme.refresh_from_db()
    assert acme.aiq_account_id


def test_a_receipt_waits_for_its_customer_then_posts_once(entity, newco, alice, aiq_sandbox):
    db = sqlite3.connect(aiq_sandbox.db_path)
    [bank_code] = db.execute(
        "SELECT bank_account_code FROM bank WHERE entity_id = 'demo' AND currency = 'GBP' "
        "ORDER BY id LIMIT 1"
    ).fetchone()
    db.close()
    ensure = customer_ensure_in_aiq(customer=newco, actor=alice)
    outbox_enqueue(
        entity=entity,
        kind="post_receipt",
        external_reference="RCPT-NEWCO-1",
        depends_on=ensure,
        payload={
            "customer_code": "NEWCO",
            "bank_account_code": bank_code,
            "amount": "25.00",
            "currency": "GBP",
            "payment_date": date.today().isoformat(),
            "description": "first payment",
            "payment_id": None,
        },
    )
    for _ in range(3):
        drain_once()
    assert set(OutboxCommand.objects.values_list("state", flat=True)) == {"confirmed"}
    assert aiq_sandbox.state.receipt_count("RCPT-NEWCO-1") == 1


def test_only_staff_can_queue_a_customer_for_aiq(newco, mallory):
    with pytest.raises(PermissionDenied):
        customer_ensure_in_aiq(customer=newco, actor=mallory)
    assert not OutboxCommand.objects.exists()
