"""The accounting core: posted transactions, outstanding amounts and allocations.

Sign convention (as on the customer's account): invoices and sales debit journals are positive,
receipts, credit notes, sales credit journals and settlement discounts negative. Each
transaction's `outstanding` starts at its amount and moves towards zero as allocations settle
it; an allocation always pairs one positive (debit) with one negative (credit) transaction of
the same customer and currency, and can never take either past zero. Every transaction's GL
lines balance (debits = credits), checked before it is written.
"""

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sandbox.money import MoneyError, amount_in
from sandbox.registry import NOT_FOUND, OVER_ALLOCATION, VALIDATION, AiqFailure
from sandbox.store import dumps, from_milli, iso, loads, next_number, parse_iso, to_milli

SALES_INVOICE = "SalesInvoice"
SALES_CREDIT_NOTE = "SalesCreditNote"
SALES_RECEIPT = "SalesReceipt"
SALES_DEBIT_JOURNAL = "SalesDebitJournal"
SALES_CREDIT_JOURNAL = "SalesCreditJournal"
SALES_DISCOUNT = "SalesDiscount"
GENERAL_JOURNAL = "GeneralJournal"
# on a supplier's account: a purchase invoice is positive (what the company owes the supplier)
PURCHASES_INVOICE = "PurchasesInvoice"
INVOICE_TYPES = (SALES_INVOICE, SALES_DEBIT_JOURNAL)
DEBTORS_GL = "1100"


@dataclass
class Ctx:
    """What a handler works with: the open transaction, the caller's entity, the clock."""

    db: sqlite3.Connection
    entity: sqlite3.Row | None  # None for Login / TokenGet / TokenRefresh
    now: datetime
    user: str
    app: object = None  # the SandboxServer (tokens, settings)

    @property
    def entity_id(self) -> str:
        return self.entity["id"]


def money(value, currency: str, field: str, *, positive: bool = True) -> Decimal:
    """An amount from a request, exact in its currency; AIQ-style failure otherwise."""
    if value is None:
        raise AiqFailure(f"{field} is required.", VALIDATION)
    try:
        amount = amount_in(value, currency)
    except MoneyError as exc:
        raise AiqFailure(f"{field}: {exc}", VALIDATION) from None
    if positive and amount <= 0:
        raise AiqFailure(f"{field} must be greater than zero (got {amount}).", VALIDATION)
    return amount


def required(value, field: str) -> str:
    if value is None or not str(value).strip():
        raise AiqFailure(f"{field} is mandatory.", VALIDATION)
    return str(value).strip()


def account_by_code(ctx: Ctx, code, ledger: str = "Sales") -> sqlite3.Row:
    code = required(code, "CustomerCode" if ledger == "Sales" else "SupplierCode")
    row = ctx.db.execute(
        "SELECT * FROM account WHERE entity_id = ? AND ledger = ? AND code = ?",
        (ctx.entity_id, ledger, code.upper()),
    ).fetchone()
    if row is None:
        kind = "Customer" if ledger == "Sales" else "Supplier"
        raise AiqFailure(f"{kind} '{code}' does not exist.", NOT_FOUND)
    return row


def account_by_id(ctx: Ctx, account_id: int) -> sqlite3.Row | None:
    return ctx.db.execute(
        "SELECT * FROM account WHERE entity_id = ? AND id = ?", (ctx.entity_id, account_id)
    ).fetchone()


def bank_by_code(ctx: Ctx, code: str) -> sqlite3.Row:
    row = ctx.db.execute(
        "SELECT * FROM bank WHERE entity_id = ? AND bank_account_code = ?",
        (ctx.entity_id, code),
    ).fetchone()
    if row is None:
        raise AiqFailure(f"Bank account '{code}' does not exist.", NOT_FOUND)
    return row


def gl_account(ctx: Ctx, code, field: str = "GLAccountCode") -> sqlite3.Row:
    code = required(code, field)
    row = ctx.db.execute(
        "SELECT * FROM gl_account WHERE entity_id = ? AND code = ?", (ctx.entity_id, code)
    ).fetchone()
    if row is None:
        raise AiqFailure(f"GL account '{code}' does not exist.", NOT_FOUND)
    return row


def department_usable(ctx: Ctx, department_id, field: str = "DepartmentID") -> None:
    """A line's BI code (department) must exist and be active: a retired code stays on the
    lines that carry it, and AIQ refuses it on new ones."""
    if not department_id:
        return
    row = ctx.db.execute(
        "SELECT is_active FROM department WHERE entity_id = ? AND id = ?",
        (ctx.entity_id, department_id),
    ).fetchone()
    if row is None:
        raise AiqFailure(f"{field}: department '{department_id}' does not exist.", NOT_FOUND)
    if not row["is_active"]:
        raise AiqFailure(
            f"{field}: department '{department_id}' is inactive and cannot be used.", VALIDATION
        )


def gl_by_category(ctx: Ctx, category: str) -> str:
    row = ctx.db.execute(
        "SELECT code FROM gl_account WHERE entity_id = ? AND category = ? ORDER BY code",
        (ctx.entity_id, category),
    ).fetchone()
    if row is None:
        raise AiqFailure(f"No {category} GL account is set up.", NOT_FOUND)
    return row["code"]


def txn(ctx: Ctx, transaction_id) -> sqlite3.Row:
    row = None
    if transaction_id is not None:
        row = ctx.db.execute(
            "SELECT * FROM txn WHERE entity_id = ? AND id = ?", (ctx.entity_id, transaction_id)
        ).fetchone()
    if row is None:
        raise AiqFailure(f"Transaction {transaction_id} does not exist.", NOT_FOUND)
    return row


def line(gl: str, amount: Decimal, description=None, **flags) -> dict:
    return {"GLAccountCode": gl, "Amount": amount, "Description": description, **flags}


def create_txn(
    ctx: Ctx,
    *,
    type: str,
    prefix: str,
    currency: str,
    amount: Decimal,
    lines: list[dict],
    account: sqlite3.Row | None = None,
    external_reference: str | None = None,
    transaction_date: datetime | None = None,
    exchange_rate: Decimal = Decimal(1),
    invoice_id: int | None = None,
    internal_number: str | None = None,
    is_batch: bool = False,
    description: str | None = None,
    bank_id: int | None = None,
    department_id: str | None = None,
    extra: dict | None = None,
) -> int:
    department_usable(ctx, department_id)
    for number, item in enumerate(lines, start=1):
        department_usable(ctx, item.get("DepartmentID"), f"Line {number} DepartmentID")
    total = sum((Decimal(item["Amount"]) for item in lines), Decimal(0))
    if total != 0:
        raise AiqFailure(f"Debits and credits differ by {total}.", VALIDATION)
    if internal_number is None:
        internal_number = f"{prefix}-{next_number(ctx.db, ctx.entity_id, prefix):06d}"
    stamp = iso(ctx.now)
    cursor = ctx.db.execute(
        "INSERT INTO txn (entity_id, account_id, type, internal_number, external_reference, "
        "currency, amount_milli, outstanding_milli, exchange_rate, transaction_date, "
        "creation_date, modified_at, invoice_id, is_batch, description, bank_id, department_id, "
        "lines, extra) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            ctx.entity_id,
            account["id"] if account is not None else None,
            type,
            internal_number,
            external_reference,
            currency,
            to_milli(amount),
            to_milli(amount) if account is not None else 0,
            format(exchange_rate, "f"),
            iso(transaction_date or ctx.now),
            stamp,
            stamp,
            invoice_id,
            int(is_batch),
            description,
            bank_id,
            department_id,
            dumps(lines),
            dumps(extra or {}),
        ),
    )
    return cursor.lastrowid


def _touch(ctx: Ctx, txn_id: int, outstanding_delta_milli: int) -> None:
    ctx.db.execute(
        "UPDATE txn SET outstanding_milli = outstanding_milli + ?, modified_at = ? WHERE id = ?",
        (outstanding_delta_milli, iso(ctx.now), txn_id),
    )


def allocate(
    ctx: Ctx,
    id_1,
    id_2,
    amount,
    *,
    reference: str | None,
    allocation_date: datetime | None,
    discount=None,
) -> list[int]:
    """Allocate `amount` between a debit and a credit of one customer; optionally settle
    `discount` more of the debit with a discount credit. Returns the allocation ids."""
    first, second = txn(ctx, id_1), txn(ctx, id_2)
    if first["id"] == second["id"]:
        raise AiqFailure("A transaction cannot be allocated to itself.", VALIDATION)
    if first["account_id"] is None or second["account_id"] is None:
        raise AiqFailure("Only transactions on a customer account can be allocated.", VALIDATION)
    if first["account_id"] != second["account_id"]:
        raise AiqFailure(
            f"Transactions {first['id']} and {second['id']} belong to different accounts.",
            VALIDATION,
        )
    if first["currency"] != second["currency"]:
        raise AiqFailure(
            f"Transactions {first['id']} ({first['currency']}) and {second['id']} "
            f"({second['currency']}) are in different currencies.",
            VALIDATION,
        )
    if (first["amount_milli"] > 0) == (second["amount_milli"] > 0):
        raise AiqFailure("Allocation needs one debit and one credit transaction.", VALIDATION)
    debit, credit = (first, second) if first["amount_milli"] > 0 else (second, first)
    currency = debit["currency"]
    amount = money(amount, currency, "allocationAmount")
    discount = money(discount, currency, "discountAmount", positive=False) if discount else None
    if discount is not None and discount < 0:
        raise AiqFailure("discountAmount cannot be negative.", VALIDATION)
    settles = to_milli(amount) + (to_milli(discount) if discount else 0)
    if settles > debit["outstanding_milli"]:
        raise AiqFailure(
            f"Cannot allocate {from_milli(settles)}: transaction {debit['id']} has only "
            f"{from_milli(debit['outstanding_milli'])} outstanding.",
            OVER_ALLOCATION,
        )
    if to_milli(amount) > -credit["outstanding_milli"]:
        raise AiqFailure(
            f"Cannot allocate {amount}: transaction {credit['id']} has only "
            f"{from_milli(-credit['outstanding_milli'])} unallocated.",
            OVER_ALLOCATION,
        )
    ids = [_pair(ctx, debit["id"], credit["id"], to_milli(amount), reference, allocation_date)]
    if discount:
        account = account_by_id(ctx, debit["account_id"])
        discount_gl = gl_by_category(ctx, "discount")
        discount_id = create_txn(
            ctx,
            type=SALES_DISCOUNT,
            prefix="DSC",
            currency=currency,
            amount=-discount,
            account=account,
            external_reference=reference,
            transaction_date=allocation_date,
            lines=[
                line(DEBTORS_GL, -discount, "Settlement discount", IsControlLine=True),
                line(discount_gl, discount, "Settlement discount"),
            ],
        )
        ids.append(
            _pair(ctx, debit["id"], discount_id, to_milli(discount), reference, allocation_date)
        )
    return ids


def _pair(ctx, debit_id, credit_id, milli, reference, allocation_date) -> int:
    _touch(ctx, debit_id, -milli)
    _touch(ctx, credit_id, milli)
    cursor = ctx.db.execute(
        "INSERT INTO allocation (entity_id, debit_txn, credit_txn, amount_milli, reference, "
        "allocation_date, created_at, user_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            ctx.entity_id,
            debit_id,
            credit_id,
            milli,
            reference,
            iso(allocation_date or ctx.now),
            iso(ctx.now),
            ctx.user,
        ),
    )
    return cursor.lastrowid


def unallocate(ctx: Ctx, transaction_id) -> int:
    """Reverse every live allocation of one transaction; returns how many."""
    row = txn(ctx, transaction_id)
    allocations = ctx.db.execute(
        "SELECT * FROM allocation WHERE active = 1 AND (debit_txn = ? OR credit_txn = ?)",
        (row["id"], row["id"]),
    ).fetchall()
    if not allocations:
        raise AiqFailure(f"Transaction {row['id']} has no allocations.", NOT_FOUND)
    for allocation in allocations:
        _touch(ctx, allocation["debit_txn"], allocation["amount_milli"])
        _touch(ctx, allocation["credit_txn"], -allocation["amount_milli"])
        ctx.db.execute(
            "UPDATE allocation SET active = 0, unallocated_at = ? WHERE id = ?",
            (iso(ctx.now), allocation["id"]),
        )
    return len(allocations)


# --- read models --------------------------------------------------------------------------


def period(value: datetime) -> dict:
    return {
        "FinancialYear": value.year,
        "PeriodNumber": value.month,
        "PeriodName": value.strftime("%b %Y"),
        "PeriodDate": datetime(value.year, value.month, 1),
    }


def bc(amount: Decimal, rate: Decimal) -> Decimal:
    """Base-currency amount: the sandbox's rates are 'units of currency per base unit'."""
    if rate in (0, 1):
        return amount
    return (amount / rate).quantize(Decimal("0.01"))


def summary(ctx: Ctx, row: sqlite3.Row, *, changed: bool = False) -> dict:
    """A WSTransactionSummary (or WSChangedTransactionSummary with `changed`)."""
    account = account_by_id(ctx, row["account_id"]) if row["account_id"] else None
    amount = from_milli(row["amount_milli"])
    rate = Decimal(row["exchange_rate"])
    date = parse_iso(row["transaction_date"])
    lines = loads(row["lines"])
    bank = [item for item in lines if item.get("IsBankLine")]
    result = {
        "AccountID": row["account_id"] or 0,
        "AccountCode": account["code"] if account else None,
        # LedgerType is Sales or Purchases: a general journal or sundry receipt is on neither
        "Ledger": account["ledger"] if account else None,
        "TransactionType": row["type"],
        "TransactionID": row["id"],
        "IsBatchInvoiceOrNote": bool(row["is_batch"]),
        "InvoiceID": row["invoice_id"] or 0,
        "InternalNumber": row["internal_number"],
        "ExternalReference": row["external_reference"],
        "ControlAmount": amount,
        "OutstandingAmount": from_milli(row["outstanding_milli"]),
        "ControlBCAmount": bc(amount, rate),
        "TransactionDate": date,
        **{k: v for k, v in period(date).items() if k != "PeriodDate"},
        "CreationDate": parse_iso(row["creation_date"]),
        "LineDetails": {
            "WSTransactionDetail": [
                {
                    "GLAccountCode": item["GLAccountCode"],
                    "IsControlLine": bool(item.get("IsControlLine")),
                    "IsTaxLine": bool(item.get("IsTaxLine")),
                    "IsStockLine": False,
                    "Amount": Decimal(item["Amount"]),
                    "BCAmount": bc(Decimal(item["Amount"]), rate),
                    "TaxID": item.get("TaxCode"),
                    "DepartmentID": item.get("DepartmentID"),
                    "CurrencyCode": row["currency"],
                    "IsReconciled": False,
                    "Description": item.get("Description"),
                    "TransactionDate": date,
                    "PeriodDate": period(date)["PeriodDate"],
                    "ExchangeRate": rate,
                }
                for item in lines
            ]
        },
        "CurrencyCode": row["currency"],
        "PeriodDate": period(date)["PeriodDate"],
        "CreatedBy": loads(row["extra"]).get("CreatedBy", "api"),
        "AccountName": account["name"] if account else None,
        "TransactionBankGLAccountNumber": bank[0]["GLAccountCode"] if bank else None,
    }
    if changed:
        # The committed WSDL types this Status as DocumentStatus (Quote, Created, Processed,
        # Complete): "Created" = unchanged since it was posted, "Processed" = changed since
        # (e.g. allocated or unallocated).
        result["Status"] = "Created" if row["modified_at"] == row["creation_date"] else "Processed"
    return result
