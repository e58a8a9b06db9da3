"""post_general_journal: one AIQ general journal (CreateGeneralJournalGetBackTransactionID).

Used for the books of a card or Direct Debit provider (payments/services/provider_books.py):
the fees of a payout (Dr fees [+ VAT], Cr the provider's clearing account), the payout itself
(Dr the real bank account, Cr clearing) and its reversal when the payout fails. General journal
lines name GL accounts; a bank account's side is its bank GL code (AIQ's BankCode), so a
journal between two bank GL codes moves money between the two bank accounts.

Payload (GeneralJournalPayload): {"journal_date", "description", "currency", "lines": [
{"gl_account_code", "debit", "credit", "description", "department_id"?}]}; amounts as text, each line a debit or a
credit, debits = credits. ExternalReference = the command's external_reference (one journal per
command). result: {"transaction_id": int}. Read back with GetTransactionsByExternalReference,
as receipts, sundry receipts and ledger journals are.
"""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from ledger.aiq.results import as_decimal
from ledger.models import Journal, JournalLine, OutboxCommand
from ledger.outbox.executors import (
    REPLAY_AFTER_EXPIRY,
    ReadBack,
    _by_reference,
    _iso,
    _midnight,
    _require,
)

Kind = OutboxCommand.Kind


def _amount(value, where: str) -> Decimal:
    try:
        amount = Decimal(str(value or "0"))
    except InvalidOperation:
        raise ValueError(f"{where}: not an amount: {value!r}") from None
    if not amount.is_finite() or amount < 0 or amount != amount.quantize(Decimal("0.01")):
        raise ValueError(f"{where}: {value!r} is not a positive amount in pence/cents")
    return amount


@dataclass(frozen=True)
class GeneralJournalPayload:
    journal_date: str
    lines: list
    description: str = ""
    currency: str = ""

    def __post_init__(self):
        date.fromisoformat(self.journal_date)
        if len(self.lines) < 2:
            raise ValueError("a general journal needs at least two lines")
        debits = credits = Decimal(0)
        for number, item in enumerate(self.lines, start=1):
            if not (item.get("gl_account_code") or "").strip():
                raise ValueError(f"line {number} has no GL account")
            debit = _amount(item.get("debit"), f"line {number} debit")
            credit = _amount(item.get("credit"), f"line {number} credit")
            if (debit == 0) == (credit == 0):
                raise ValueError(f"line {number}: give either a debit or a credit")
            debits += debit
            credits += credit
        if debits != credits:
            raise ValueError(f"debits {debits} and credits {credits} differ")


def general_journal_send(client, command: OutboxCommand, payload: dict) -> dict:
    _require(payload, "journal_date", "lines")
    lines = [
        {
            "GLAccountCode": item["gl_account_code"],
            "Description": (item.get("description") or payload.get("description") or "")[:250],
            "DepartmentID": item.get("department_id") or None,
            "Debit": as_decimal(item.get("debit") or 0),
            "Credit": as_decimal(item.get("credit") or 0),
        }
        for item in payload["lines"]
    ]
    transaction_id = client.create_general_journal(
        {
            "ExternalReference": command.external_reference,
            "TransactionDate": _midnight(_iso(payload["journal_date"])),
            "Lines": {"GeneralJournalLine": lines},
        },
        replay_safe=REPLAY_AFTER_EXPIRY,
    )
    return {"transaction_id": transaction_id}


def general_journal_read_back(client, command: OutboxCommand, payload: dict) -> ReadBack:
    return _by_reference(client, command.external_reference, _iso(payload["journal_date"]))


def general_journal_mirror(command: OutboxCommand, payload: dict, result: dict, notes) -> None:
    """The journal in the mirror, as the pull would record it."""
    if Journal.objects.filter(entity=command.entity, reference=command.external_reference).exists():
        return
    lines = payload["lines"]
    journal = Journal.objects.create(
        entity=command.entity,
        kind=Journal.Kind.GENERAL,
        reference=command.external_reference,
        aiq_transaction_id=result.get("transaction_id"),
        currency=payload.get("currency") or command.entity.base_currency,
        journal_date=_iso(payload["journal_date"]),
        amount=sum((Decimal(str(item.get("debit") or 0)) for item in lines), Decimal(0)),
        description=(payload.get("description") or "")[:500],
    )
    JournalLine.objects.bulk_create(
        JournalLine(
            journal=journal,
            line_number=number,
            gl_account_code=item["gl_account_code"],
            description=(item.get("description") or "")[:500],
            department_id=item.get("department_id") or "",
            debit=Decimal(str(item.get("debit") or 0)),
            credit=Decimal(str(item.get("credit") or 0)),
        )
        for number, item in enumerate(lines, start=1)
    )
