"""Set-up for the later-allocation, other-receipt and API scenarios: money that reached AIQ
outside the app (a receipt, a credit note) posted with AIQ's own operations and pulled into the
mirror by the sync, as a clerk would find it. Set-up only; the checks are in the tests."""

import itertools
from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from ledger.aiq.client import AiqClient
from ledger.models import CreditNote, Receipt
from ledger.sync.pull import sync_transactions

_numbers = itertools.count(1)


def pull(entity) -> None:
    """The incremental pull of sales transactions (what `sync now` runs)."""
    now = timezone.now()
    sync_transactions(
        AiqClient.for_entity(entity), entity, now - timedelta(days=2), now + timedelta(minutes=5)
    )


def receipt_in_aiq(entity, code: str, amount: str, bank: str = "BANK-GBP") -> Receipt:
    """A receipt somebody entered in AIQ, unallocated, pulled into the mirror."""
    reference = f"AIQ-RCPT-{next(_numbers)}"
    AiqClient.for_entity(entity).call(
        "SaveSalesReceiptGetBackTransactionID",
        salesReceipt={
            "CustomerCode": code,
            "CheckReference": reference,
            "PaymentAmount": Decimal(amount),
            "BankAccountCode": bank,
            "PaymentDate": timezone.now().replace(tzinfo=None, microsecond=0),
            "ExchangeRate": Decimal(1),
            "BankExchangeRate": Decimal(1),
            "Description": "entered in AIQ",
        },
    )
    pull(entity)
    return Receipt.objects.get(entity=entity, check_reference=reference)


def credit_note_in_aiq(entity, code: str, net: str, tax_code: str = "T0") -> CreditNote:
    """A credit note raised in AIQ (not allocated to anything), pulled into the mirror."""
    client = AiqClient.for_entity(entity)
    reference = f"AIQ-CN-{next(_numbers)}"
    record = client.call("GetNewSalesCreditNote", customerCode=code).result
    record = dict(record)
    record.update(
        InvoiceID=0,
        ExternalReference=reference,
        InvoiceDate=timezone.now().replace(tzinfo=None, microsecond=0),
        Lines={
            "InvoiceLine": [
                {
                    "StockItemDescription": "Goodwill credit",
                    "GLAccountCode": "4010",
                    "InvoicedQuantity": Decimal(1),
                    "NetAmount": Decimal(net),
                    "TaxCode": tax_code,
                }
            ]
        },
    )
    note_id = client.call(
        "SaveCreditNoteGetBackCreditNoteID", creditNote=record, create=True
    ).credit_note_id
    client.call("PostCreditNotesGetBackTransactionIDs", creditNoteIDs={"int": [note_id]})
    pull(entity)
    return CreditNote.objects.get(entity=entity, external_reference=reference)
