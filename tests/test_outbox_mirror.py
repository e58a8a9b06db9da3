"""The mirror update of a confirmed receipt (ledger/outbox/mirror.py): one look-up and one upsert."""

from datetime import date

import pytest

from ledger.models import OutboxCommand, Receipt
from ledger.outbox.mirror import mirror_apply
from tests.test_plans_factories import D, make_customer, make_payment, setup_books

pytestmark = pytest.mark.django_db


def _receipt_command(entity, ref="RCP-1", **payload):
    return OutboxCommand.objects.create(
        entity=entity,
        kind=OutboxCommand.Kind.POST_RECEIPT,
        external_reference=ref,
        payload={
            "customer_code": "acme",  # the mirror matches AIQ's upper-case codes
            "bank_account_code": "BANK1",
            "amount": "12.50",
            "currency": "GBP",
            "payment_date": "2026-02-03",
            "description": "card payment",
            "payment_id": None,
            **payload,
        },
    )


def test_a_confirmed_receipt_is_added_to_the_mirror_and_linked_to_its_payment(entity):
    bank = setup_books(entity)
    customer = make_customer(entity)
    payment = make_payment(entity, "12.50", customer=customer)
    command = _receipt_command(entity, payment_id=payment.pk)

    notes = mirror_apply(command, command.payload, {"transaction_id": 777})

    assert notes == []
    receipt = Receipt.objects.get(entity=entity, check_reference="RCP-1")
    assert (receipt.customer, receipt.bank_account, receipt.aiq_transaction_id) == (
        customer,
        bank,
        777,
    )
    assert receipt.amount == receipt.unallocated_amount == D("12.50")
    assert receipt.payment_date == date(2026, 2, 3)
    payment.refresh_from_db()
    assert payment.receipt == receipt


def test_a_receipt_synced_before_its_confirmation_gets_the_transaction_id_and_keeps_its_data(
    entity,
):
    bank = setup_books(entity)
    customer = make_customer(entity)
    synced = Receipt.objects.create(
        entity=entity,
        customer=customer,
        bank_account=bank,
        check_reference="RCP-1",
        aiq_transaction_id=None,
        currency="GBP",
        payment_date=date(2026, 2, 4),
        amount=D("12.50"),
        unallocated_amount=D("2.50"),  # AIQ already shows part of it allocated
    )
    command = _receipt_command(entity)

    mirror_apply(command, command.payload, {"transaction_id": 778})

    synced.refresh_from_db()
    assert synced.aiq_transaction_id == 778
    assert synced.unallocated_amount == D("2.50")
    assert synced.payment_date == date(2026, 2, 4)
    assert Receipt.objects.filter(entity=entity).count() == 1


def test_a_receipt_for_a_bank_account_not_in_the_mirror_is_left_to_sync(entity):
    setup_books(entity)
    make_customer(entity)
    command = _receipt_command(entity, bank_account_code="NOPE")

    notes = mirror_apply(command, command.payload, {"transaction_id": 779})

    assert notes == ["customer or bank account not in the mirror; receipt row left to sync"]
    assert not Receipt.objects.filter(entity=entity).exists()
