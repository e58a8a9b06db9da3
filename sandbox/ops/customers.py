"""Customers: defaults, create/update with RowVersionNumber, look-ups."""

import base64

from sandbox.books import account_by_code, required
from sandbox.money import MoneyError, currency_code
from sandbox.registry import (
    CONCURRENCY,
    DUPLICATE,
    NOT_FOUND,
    VALIDATION,
    AiqFailure,
    Reply,
    operation,
)
from sandbox.store import dumps, from_milli, iso, loads, to_milli

# Columns kept outside the JSON document (the rest of AIQ's Customer record lives in `data`).
_COLUMNS = ("AccountID", "Code", "Name", "CurrencyCode", "IsActive", "CreditLimit", "LedgerType")


def row_version(row) -> str:
    """An opaque token like AIQ's base64 RowVersionNumber; changes on every update."""
    return base64.b64encode(f"account:{row['id']}:v{row['row_version']}".encode()).decode()


def customer_record(row) -> dict:
    record = loads(row["data"])
    record.update(
        AccountID=row["id"],
        LedgerType=row["ledger"],
        Code=row["code"],
        Name=row["name"],
        CurrencyCode=row["currency"],
        IsActive=bool(row["is_active"]),
        CreditLimit=from_milli(row["credit_limit_milli"]),
        RowVersionNumber=row_version(row),
    )
    return record


def customer_defaults(ctx, ledger: str = "Sales") -> dict:
    tax = ctx.db.execute(
        "SELECT code FROM tax_code WHERE entity_id = ? ORDER BY is_default DESC, code",
        (ctx.entity_id,),
    ).fetchone()
    bank = ctx.db.execute(
        "SELECT gl_code FROM bank WHERE entity_id = ? AND currency = ? ORDER BY id",
        (ctx.entity_id, ctx.entity["base_currency"]),
    ).fetchone()
    return {
        "AccountID": 0,
        "ExternalApproverID": 0,
        "LedgerType": ledger,
        "CountryCode": "GB",
        "DefaultTaxCode": tax["code"] if tax else None,
        "CreditTermID": "30",
        "CurrencyCode": ctx.entity["base_currency"],
        "CreationDate": ctx.now,
        "DiscountRate": 0,
        "UseAccountTaxCode": False,
        "DefaultGLAccountCode": "4000" if ledger == "Sales" else "5000",
        "ControlGLAccountCode": "1100" if ledger == "Sales" else "2100",
        "BankCode": bank["gl_code"] if bank else None,
        "IsActive": True,
        "Hold": 0,
        "HeadOfficeAccountID": 0,
        "UseHeadOffice": False,
        "IsHeadOffice": False,
        "CreditLimit": 0,
        "IsFranchise": False,
        "SalesRepresentativeID": 0,
    }


def save_customer(ctx, customer: dict | None, create: bool, ledger: str = "Sales") -> int:
    """Create or update; returns the AccountID. Raises AiqFailure on anything AIQ refuses."""
    if not customer:
        raise AiqFailure("No customer was sent.", VALIDATION)
    code = required(customer.get("Code"), "Code")
    if code != code.upper():
        raise AiqFailure(f"The customer code '{code}' must be upper case.", VALIDATION)
    name = required(customer.get("Name"), "Name")
    if customer.get("AccountReferralID"):
        raise AiqFailure("AccountReferralID cannot be set through the API.", VALIDATION)
    try:
        currency = currency_code(customer.get("CurrencyCode") or ctx.entity["base_currency"])
    except MoneyError as exc:
        raise AiqFailure(f"CurrencyCode: {exc}", VALIDATION) from None
    if customer.get("BankCode"):
        bank = ctx.db.execute(
            "SELECT 1 FROM bank WHERE entity_id = ? AND gl_code = ?",
            (ctx.entity_id, customer["BankCode"]),
        ).fetchone()
        if bank is None:
            raise AiqFailure(f"BankCode '{customer['BankCode']}' does not exist.", NOT_FOUND)
    if customer.get("DefaultTaxCode"):
        tax = ctx.db.execute(
            "SELECT 1 FROM tax_code WHERE entity_id = ? AND code = ?",
            (ctx.entity_id, customer["DefaultTaxCode"]),
        ).fetchone()
        if tax is None:
            raise AiqFailure(f"Tax code '{customer['DefaultTaxCode']}' does not exist.", NOT_FOUND)
    credit_limit = customer.get("CreditLimit") or 0
    if credit_limit < 0:
        raise AiqFailure("CreditLimit cannot be negative.", VALIDATION)
    data = {k: v for k, v in customer.items() if k not in _COLUMNS and k != "RowVersionNumber"}
    active = customer.get("IsActive", True) is not False
    existing = ctx.db.execute(
        "SELECT * FROM account WHERE entity_id = ? AND ledger = ? AND code = ?",
        (ctx.entity_id, ledger, code),
    ).fetchone()
    if create:
        if existing is not None:
            raise AiqFailure(f"An account with code '{code}' already exists.", DUPLICATE)
        data.setdefault("CreationDate", ctx.now)
        cursor = ctx.db.execute(
            "INSERT INTO account (entity_id, ledger, code, name, currency, is_active, "
            "credit_limit_milli, data, created_at, modified_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                ctx.entity_id, ledger, code, name, currency, int(active),
                to_milli(credit_limit), dumps(data), iso(ctx.now), iso(ctx.now),
            ),
        )  # fmt: skip
        return cursor.lastrowid
    if existing is None:
        raise AiqFailure(f"Account '{code}' does not exist.", NOT_FOUND)
    if customer.get("RowVersionNumber") != row_version(existing):
        raise AiqFailure(
            f"Account '{code}' was changed by someone else (RowVersionNumber does not match). "
            "Read it again and re-apply your change.",
            CONCURRENCY,
        )
    if currency != existing["currency"]:
        has_transactions = ctx.db.execute(
            "SELECT 1 FROM txn WHERE account_id = ? LIMIT 1", (existing["id"],)
        ).fetchone()
        if has_transactions:
            raise AiqFailure("The currency of an account with transactions cannot change.")
    ctx.db.execute(
        "UPDATE account SET name = ?, currency = ?, is_active = ?, credit_limit_milli = ?, "
        "data = ?, row_version = row_version + 1, modified_at = ? WHERE id = ?",
        (name, currency, int(active), to_milli(credit_limit), dumps(data), iso(ctx.now),
         existing["id"]),
    )  # fmt: skip
    return existing["id"]


@operation("GetNewCustomerFromDefaults")
def get_new_customer_from_defaults(ctx, args):
    return Reply(result=customer_defaults(ctx))


@operation("UpdateCustomer", write=True)
def update_customer(ctx, args):
    save_customer(ctx, args.get("customer"), bool(args.get("create")))
    return Reply(result=True)


@operation("GetCustomer")
def get_customer(ctx, args):
    return Reply(result=customer_record(account_by_code(ctx, args.get("customerCode"))))


@operation("GetSupplier")
def get_supplier(ctx, args):
    return Reply(
        result=customer_record(account_by_code(ctx, args.get("supplierCode"), "Purchases"))
    )


@operation("GetSupplierList")
def get_supplier_list(ctx, args):
    rows = ctx.db.execute(
        "SELECT * FROM account WHERE entity_id = ? AND ledger = 'Purchases' ORDER BY code",
        (ctx.entity_id,),
    ).fetchall()
    return Reply(result={"Supplier": [customer_record(row) for row in rows]})


@operation("GetActiveCustomerList")
def get_active_customer_list(ctx, args):
    rows = ctx.db.execute(
        "SELECT * FROM account WHERE entity_id = ? AND ledger = 'Sales' AND is_active = 1 "
        "ORDER BY code",
        (ctx.entity_id,),
    ).fetchall()
    return Reply(result={"Customer": [customer_record(row) for row in rows]})
