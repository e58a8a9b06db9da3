"""other_receipt: one AIQ sundry receipt (money into a bank account booked to a GL account,
with VAT where it applies) or, with "money_out", one sundry payment (money out of it) through
SaveSundryReceiptPaymentsGetBackTransactionIDs: AIQ's one operation for both, told apart by
the sign of the entry's Value (AIQ books a BankReceipt or a BankPayment).

Payload: {"bank_account_code", "gl_account_code", "tax_code", "tax_rate", "net_amount",
"tax_amount", "amount" (= net + tax, positive), "currency", "receipt_date", "description",
"lodgment_number", "money_out"}; ExternalReference = the command's external_reference (one entry per
command, so one reference is one AIQ transaction). result: {"transaction_id": int}.
Read back with GetTransactionsByExternalReference, as receipts and journals are.
"""

from decimal import Decimal

from ledger.aiq.results import as_decimal
from ledger.models import OutboxCommand
from ledger.outbox.executors import (
    REPLAY_AFTER_EXPIRY,
    ReadBack,
    _by_reference,
    _iso,
    _midnight,
    _require,
)

Kind = OutboxCommand.Kind


def sundry_send(client, command: OutboxCommand, payload: dict) -> dict:
    _require(payload, "bank_account_code", "gl_account_code", "amount", "receipt_date")
    entry = {
        "ExternalReference": command.external_reference,
        "TransactionDate": _midnight(_iso(payload["receipt_date"])),
        "Description": (payload.get("description") or "")[:250],
        "Value": -as_decimal(payload["amount"])
        if payload.get("money_out")
        else as_decimal(payload["amount"]),
        "GLAccountCode": payload["gl_account_code"],
        "BankAccountCode": payload["bank_account_code"],
        "TaxID": payload.get("tax_code") or None,
        "TaxRate": as_decimal(payload.get("tax_rate") or 0),
        "ExchangeRate": Decimal(1),
        "LodgmentNumber": payload.get("lodgment_number") or None,
        "TaxAmount": as_decimal(payload.get("tax_amount") or 0),
    }
    transaction_id = client.save_sundry_receipt(entry, replay_safe=REPLAY_AFTER_EXPIRY)
    return {"transaction_id": transaction_id}


def sundry_read_back(client, command: OutboxCommand, payload: dict) -> ReadBack:
    return _by_reference(client, command.external_reference, _iso(payload["receipt_date"]))
