"""Origins own their outcome, and a new command kind is one typed payload, one executor and one
origin handler, registered by the app that owns it (here: a test "late fee" kind, a sales debit
journal charging a customer a fee, whose origin is a dunning letter), against the AIQ sandbox
over HTTP. Nothing in ledger knows the kind or the origin."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse

from ledger.models import OutboxCommand
from ledger.outbox import origins
from ledger.outbox.executors import Executor, PayloadError, ReadBack
from ledger.outbox.origins import Origin, origin_register, outbox_origins_retry
from ledger.outbox.services import outbox_enqueue
from ledger.outbox.steps import command_kind_register, command_kind_unregister
from tests.outbox_support import start_world
from tests.test_outbox_aiq import drain_all

pytestmark = pytest.mark.django_db(transaction=True)
State = OutboxCommand.State
KIND = "test_late_fee"
ORIGIN = "test_dunning_letter"


@dataclass(frozen=True)
class LateFeePayload:
    customer_code: str
    amount: str
    fee_date: str

    def __post_init__(self):
        if Decimal(self.amount) <= 0:
            raise ValueError("a late fee must be more than zero")
        date.fromisoformat(self.fee_date)


def _midnight(day: str) -> datetime:
    return datetime.fromisoformat(day)


def late_fee_send(client, command, payload) -> dict:
    transaction_id = client.post_sales_debit_journal(
        {
            "AccountCode": payload["customer_code"],
            "ExchangeRate": Decimal(1),
            "ExternalReference": command.external_reference,
            "JournalNumber": command.external_reference[:30],
            "TransactionDate": _midnight(payload["fee_date"]),
            "Lines": {
                "WSLedgerJournalLine": [
                    {
                        "GLAccountCode": "4000",
                        "Description": "Late payment fee",
                        "Amount": Decimal(payload["amount"]),
                    }
                ]
            },
        },
        replay_safe=True,
    )
    return {"transaction_id": transaction_id}


def late_fee_read_back(client, command, payload) -> ReadBack:
    day = _midnight(payload["fee_date"])
    found = client.get_transactions_by_external_reference(
        command.external_reference, from_date=day - timedelta(days=7), to_date=day + timedelta(7)
    )
    result = {"transaction_id": int(found[0]["TransactionID"])} if len(found) == 1 else {}
    return ReadBack(len(found), result)


@pytest.fixture
def aiq_world(entity, audit_flushable, tmp_path, settings, monkeypatch):
    world = start_world(tmp_path, entity, settings, monkeypatch, extra_invoices=1)
    yield world
    world.server.stop()


@pytest.fixture
def letters():
    """The dunning app's side: what its letters heard back, registered as an app would in
    AppConfig.ready(); a letter may be told to fail (a bug in the origin's transition)."""
    heard = {"confirmed": [], "failed": [], "broken": False}

    def confirmed(command, payload, notes):
        if heard["broken"]:
            raise RuntimeError("the letter's transition has a bug")
        heard["confirmed"].append((command.origin_id, command.result["transaction_id"]))

    command_kind_register(
        KIND,
        executor=Executor(late_fee_send, late_fee_read_back),
        payload=LateFeePayload,
        label="Late payment fee",
    )
    origin_register(ORIGIN, Origin(confirmed=confirmed, failed=heard["failed"].append))
    yield heard
    command_kind_unregister(KIND)
    origins.ORIGINS.pop(ORIGIN)


def _enqueue(world, letter_id: int, amount: str = "15.00") -> OutboxCommand:
    return outbox_enqueue(
        entity=world.entity,
        kind=KIND,
        payload={
            "customer_code": world.customer.code,
            "amount": amount,
            "fee_date": date.today().isoformat(),
        },
        external_reference=f"FEE-{letter_id}",
        origin_type=ORIGIN,
        origin_id=letter_id,
    )


def _journal_in_aiq(world, reference: str) -> list[dict]:
    from ledger.aiq.client import AiqClient

    today = datetime.combine(date.today(), datetime.min.time())
    return AiqClient.for_entity(world.entity).get_transactions_by_external_reference(
        reference, from_date=today - timedelta(days=1), to_date=today + timedelta(days=1)
    )


def test_a_new_kind_posts_its_fee_once_and_its_letter_hears_the_confirmation(aiq_world, letters):
    command = _enqueue(aiq_world, letter_id=7)
    drain_all()

    command.refresh_from_db()
    assert command.state == State.CONFIRMED
    [journal] = _journal_in_aiq(aiq_world, "FEE-7")  # the customer is charged once, in AIQ
    assert journal["TransactionID"] == command.result["transaction_id"]
    assert letters["confirmed"] == [(7, command.result["transaction_id"])]
    assert not command.origin_pending
    assert str(command).startswith("Late payment fee FEE-7")  # its name on screens


def test_a_payload_its_kind_cannot_read_is_refused_when_enqueued(aiq_world, letters):
    with pytest.raises(PayloadError, match="more than zero"):
        _enqueue(aiq_world, letter_id=8, amount="0.00")
    with pytest.raises(PayloadError, match="unknown field"):
        outbox_enqueue(
            entity=aiq_world.entity,
            kind=KIND,
            payload={"customer_code": "X", "amount": "1", "fee_date": "2026-01-01", "vat": "1"},
            external_reference="FEE-9",
        )
    assert not OutboxCommand.objects.filter(kind=KIND).exists()


def test_a_kind_nobody_registered_cannot_be_enqueued(aiq_world):
    with pytest.raises(PayloadError, match="no command kind"):
        outbox_enqueue(
            entity=aiq_world.entity,
            kind="test_late_fee",
            payload={"customer_code": "X", "amount": "1", "fee_date": "2026-01-01"},
            external_reference="FEE-10",
        )
    assert not OutboxCommand.objects.exists()


def test_a_failing_origin_transition_stays_pending_is_shown_and_the_sweeper_repeats_it(
    aiq_world, letters, client, alice
):
    letters["broken"] = True
    command = _enqueue(aiq_world, letter_id=11)
    drain_all()

    command.refresh_from_db()
    assert command.state == State.CONFIRMED  # AIQ has the fee: the verdict stands
    assert len(_journal_in_aiq(aiq_world, "FEE-11")) == 1
    assert command.origin_pending and "has a bug" in command.origin_error
    assert letters["confirmed"] == []
    client.force_login(alice)
    page = client.get(reverse("ledger:sync")).content.decode()
    assert "FEE-11" in page and "has a bug" in page

    assert outbox_origins_retry() == 0  # still broken: still pending
    letters["broken"] = False
    assert outbox_origins_retry() == 1
    command.refresh_from_db()
    assert not command.origin_pending and command.origin_error == ""
    assert letters["confirmed"] == [(11, command.result["transaction_id"])]
    assert len(_journal_in_aiq(aiq_world, "FEE-11")) == 1  # nothing was sent again
