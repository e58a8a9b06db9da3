"""One rule for an AIQ write answered "Success" without the id it should carry: we cannot know
what it created, so it is ambiguous (the outbox reads back by external reference before any
resend), whether the write went through a typed operation or an outbox executor.

AIQ's answer is built here as the client decodes it (an AiqResult with no transactionID
sibling): the sandbox always sends the id, and this is the answer it cannot be made to give."""

from decimal import Decimal

import pytest

from ledger.aiq.errors import AiqAmbiguousError
from ledger.aiq.operations import AiqOperations
from ledger.aiq.results import AiqResult
from ledger.models import Entity, OutboxCommand
from ledger.outbox.executors import EXECUTORS

RECEIPT = {
    "customer_code": "ACME",
    "bank_account_code": "BANK1",
    "amount": "12.50",
    "payment_date": "2026-02-03",
}


class SuccessWithoutId(AiqOperations):
    """An AIQ that says Success and leaves out the id."""

    def call(self, operation, *, replay_safe=False, **params):
        return AiqResult(operation=operation, status="Success")


def test_a_typed_receipt_write_without_its_id_is_ambiguous():
    with pytest.raises(AiqAmbiguousError, match="Success without transaction_id"):
        SuccessWithoutId().save_sales_receipt(
            {"CustomerCode": "ACME", "PaymentAmount": Decimal("12.50")}
        )


@pytest.mark.parametrize(
    "kind", ["post_receipt", "post_debit_journal", "post_write_off", "other_receipt"]
)
def test_an_outbox_write_without_its_id_is_ambiguous_so_it_is_read_back(kind):
    # a GBP company's GBP receipt: its rates are 1 without asking AIQ
    command = OutboxCommand(
        kind=kind, entity=Entity(base_currency="GBP"), external_reference="RCPT-1", payload={}
    )
    payload = {
        **RECEIPT,
        "gl_account_code": "4000",
        "journal_date": "2026-02-03",
        "receipt_date": "2026-02-03",
    }
    with pytest.raises(AiqAmbiguousError, match="without transaction_id|0 transaction ids"):
        EXECUTORS[kind].send(SuccessWithoutId(), command, payload)
