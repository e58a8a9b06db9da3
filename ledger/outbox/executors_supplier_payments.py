"""supplier_payment: money paid out of a bank account to an AIQ supplier (Sage's VENDOR_PAYMENT),
through SavePurchasePaymentGetBackTransactionID. It lands on the supplier's account in AIQ,
not allocated (the product mirrors AIQ's suppliers, not their invoices: allocating it to them
is done in AIQ).

Payload (SupplierPaymentPayload): {"supplier_code", "bank_account_code", "amount" (positive),
"currency", "payment_date", "description"}; CheckReference = the command's external_reference.
result: {"transaction_id": int}. Read back with GetTransactionsByExternalReference, as receipts
are (AIQ finds a payment by its CheckReference).
"""

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

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

KIND = "supplier_payment"


@dataclass(frozen=True)
class SupplierPaymentPayload:
    supplier_code: str
    bank_account_code: str
    amount: str
    payment_date: str
    currency: str = ""
    description: str = ""

    def __post_init__(self):
        for name in ("supplier_code", "bank_account_code", "payment_date"):
            if not (getattr(self, name) or "").strip():
                raise ValueError(f"missing {name}")
        try:
            amount = Decimal(self.amount)
        except (InvalidOperation, TypeError):
            raise ValueError(f"amount is not a decimal: {self.amount!r}") from None
        if not amount.is_finite() or amount <= 0:
            raise ValueError(f"amount must be positive: {self.amount!r}")
        _iso(self.payment_date)


def supplier_payment_send(client, command: OutboxCommand, payload: dict) -> dict:
    _require(payload, "supplier_code", "bank_account_code", "amount", "payment_date")
    transaction_id = client.save_purchase_payment(
        {
            "SupplierCode": payload["supplier_code"].upper(),
            "CheckReference": command.external_reference,
            "PaymentAmount": as_decimal(payload["amount"]),
            "BankAccountCode": payload["bank_account_code"],
            "PaymentDate": _midnight(_iso(payload["payment_date"])),
            "ExchangeRate": Decimal(1),
            "BankExchangeRate": Decimal(1),
            "Description": (payload.get("description") or "")[:500],
        },
        replay_safe=REPLAY_AFTER_EXPIRY,
    )
    return {"transaction_id": transaction_id}


def supplier_payment_read_back(client, command: OutboxCommand, payload: dict) -> ReadBack:
    return _by_reference(client, command.external_reference, _iso(payload["payment_date"]))
