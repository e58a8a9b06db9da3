"""Sundry receipts and payments: money into (or out of) a bank account booked straight to a GL
account, with VAT, not on a customer's account (SaveSundryReceiptPayments[GetBackTransactionIDs]).

Each WSSundryReceiptPayment entry is one transaction. `Value` is the gross amount (VAT
included): positive money in (a receipt), negative money out (a payment); `TaxAmount` of it goes
to the tax GL account, the rest to `GLAccountCode`. One WSResultStatus per entry; an entry that
fails changes nothing (the others stand), and its transaction id is not listed.
"""

from sandbox import invoicing
from sandbox.books import (
    bank_by_code,
    create_txn,
    gl_account,
    gl_by_category,
    line,
    money,
    required,
)
from sandbox.registry import NOT_FOUND, SUCCESS, VALIDATION, AiqFailure, Reply, operation


def _entry(ctx, entry: dict | None) -> int:
    if not entry:
        raise AiqFailure("An empty entry was sent.", VALIDATION)
    bank_code = required(entry.get("BankAccountCode"), "BankAccountCode")
    bank = bank_by_code(ctx, bank_code)
    gl = gl_account(ctx, entry.get("GLAccountCode"))
    currency = bank["currency"]
    value = money(entry.get("Value"), currency, "Value", positive=False)
    if value == 0:
        raise AiqFailure("Value cannot be zero.", VALIDATION)
    sign = 1 if value > 0 else -1
    tax = money(entry.get("TaxAmount") or 0, currency, "TaxAmount", positive=False)
    if tax < 0 or tax > abs(value):
        raise AiqFailure("TaxAmount must be between 0 and the Value.", VALIDATION)
    if tax and not entry.get("TaxID"):
        raise AiqFailure("TaxID is mandatory with a TaxAmount.", VALIDATION)
    if entry.get("TaxID"):
        found = ctx.db.execute(
            "SELECT 1 FROM tax_code WHERE entity_id = ? AND code = ?",
            (ctx.entity_id, entry["TaxID"]),
        ).fetchone()
        if found is None:
            raise AiqFailure(f"Tax code '{entry['TaxID']}' does not exist.", NOT_FOUND)
    description = entry.get("Description") or entry.get("ExternalReference") or "Sundry"
    lines = [
        line(bank["gl_code"], value, description, IsBankLine=True),
        line(gl["code"], -sign * (abs(value) - tax), description),
    ]
    if tax:
        lines.append(
            line(gl_by_category(ctx, "tax"), -sign * tax, description, TaxCode=entry["TaxID"])
        )
    return create_txn(
        ctx,
        type="BankReceipt" if sign > 0 else "BankPayment",
        prefix="BR" if sign > 0 else "BP",
        currency=currency,
        amount=value,
        external_reference=entry.get("ExternalReference") or None,
        transaction_date=entry.get("TransactionDate") or ctx.now,
        exchange_rate=entry.get("ExchangeRate") or invoicing.rate_for(ctx, currency),
        description=description,
        bank_id=bank["id"],
        department_id=entry.get("DepartmentID"),
        lines=lines,
        extra={"LodgmentNumber": entry.get("LodgmentNumber"), "BankAccountCode": bank_code},
    )


def _save(ctx, args) -> tuple[list[dict], list[int]]:
    entries = (args.get("entries") or {}).get("WSSundryReceiptPayment") or []
    if not entries:
        raise AiqFailure("No entries were sent.", VALIDATION)
    statuses, ids = [], []
    for entry in entries:
        ctx.db.execute("SAVEPOINT sundry")
        try:
            ids.append(_entry(ctx, entry))
            statuses.append(_status("Success", SUCCESS, ""))
        except AiqFailure as failure:
            ctx.db.execute("ROLLBACK TO sundry")
            statuses.append(_status("Failure", failure.code, failure.message))
        ctx.db.execute("RELEASE sundry")
    return statuses, ids


def _status(status, code, message):
    return {"Status": status, "ErrorCode": code, "ErrorMessage": message, "HasExpired": False}


@operation("SaveSundryReceiptPaymentsGetBackTransactionIDs", write=True)
def save_sundry_receipt_payments_get_back_transaction_ids(ctx, args):
    statuses, ids = _save(ctx, args)
    return Reply(result=statuses, siblings={"transactionIDs": {"int": ids}})


@operation("SaveSundryReceiptPayments", write=True)
def save_sundry_receipt_payments(ctx, args):
    statuses, _ids = _save(ctx, args)
    return Reply(result=statuses)
