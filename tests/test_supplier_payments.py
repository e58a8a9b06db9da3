"""A supplier payment (Sage's VENDOR_PAYMENT) through the outbox into the AIQ sandbox's books:
SavePurchasePaymentGetBackTransactionID, sent once though its answer is lost (read back by its
CheckReference), the money out of the bank onto the supplier's account."""

from decimal import Decimal

import pytest
from django.db import transaction

from ledger.models import OutboxCommand
from ledger.outbox.executors import PayloadError
from ledger.outbox.services import outbox_enqueue
from sandbox.ops.banks import bank_gl_balance
from sandbox.store import loads
from tests.sales_support import drain_all


@pytest.fixture(autouse=True)
def _quick_outbox(settings):
    settings.OUTBOX_SETTLE_SECONDS = 0


def _books(sandbox) -> tuple[Decimal, Decimal]:
    """(bank GL 1200, creditors control 2100) as the sandbox's lines sum them (debits +)."""
    with sandbox.server.store.transaction() as db:
        return bank_gl_balance(db, "demo", "1200"), bank_gl_balance(db, "demo", "2100")


def _enqueue(entity, reference: str, **payload) -> OutboxCommand:
    with transaction.atomic():
        return outbox_enqueue(
            entity=entity,
            kind="supplier_payment",
            payload={
                "supplier_code": "OFFICEPRO",
                "bank_account_code": "BANK-GBP",
                "amount": "240.00",
                "currency": "GBP",
                "payment_date": "2026-11-20",
                "description": "Stationery, November",
                **payload,
            },
            external_reference=reference,
        )


def test_a_supplier_payment_leaves_the_bank_once_though_its_answer_is_lost(entity, aiq_sandbox):
    bank_before, creditors_before = _books(aiq_sandbox)
    command = _enqueue(entity, "VPAY-1-1")
    aiq_sandbox.faults.update(drop_next=1, ops=["SavePurchasePaymentGetBackTransactionID"])
    drain_all()

    command.refresh_from_db()
    assert command.state == OutboxCommand.State.CONFIRMED
    [payment] = aiq_sandbox.state.transactions("VPAY-1-1")
    assert command.result == {"transaction_id": payment["transaction_id"]}
    # on the supplier's account: what the company owes OFFICEPRO is 240.00 less (unallocated)
    assert payment["type"] == "PurchasesPayment"
    [(code, ledger)] = [
        (r["code"], r["ledger"])
        for r in aiq_sandbox.state._rows(
            "SELECT code, ledger FROM account WHERE id = ?", (payment["account_id"],)
        )
    ]
    assert (code, ledger) == ("OFFICEPRO", "Purchases")
    assert (payment["amount"], payment["outstanding"]) == (Decimal("-240"), Decimal("-240"))
    # the bank credited, creditors control debited, by 240.00 each: the books balance
    bank_after, creditors_after = _books(aiq_sandbox)
    assert bank_after - bank_before == Decimal("-240.00")
    assert creditors_after - creditors_before == Decimal("240.00")
    [row] = aiq_sandbox.state._rows(
        "SELECT lines FROM txn WHERE id = ?", (payment["transaction_id"],)
    )
    assert {line["GLAccountCode"] for line in loads(row["lines"])} == {"1200", "2100"}


def test_a_supplier_payment_aiq_refuses_is_not_tried_again(entity, aiq_sandbox):
    command = _enqueue(entity, "VPAY-2-1", supplier_code="NOSUCH")
    drain_all()
    command.refresh_from_db()
    assert command.state != OutboxCommand.State.CONFIRMED
    assert "NOSUCH" in command.last_error_message
    assert aiq_sandbox.state.transactions("VPAY-2-1") == []
    assert aiq_sandbox.server.calls()["SavePurchasePaymentGetBackTransactionID"] == 1


def test_a_supplier_payment_payload_must_be_whole(entity):
    with pytest.raises(PayloadError, match="amount must be positive"):
        _enqueue(entity, "VPAY-3-1", amount="-5")
