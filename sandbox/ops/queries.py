"""Reading the books: one transaction, by external reference, changes since, statements,
balances. Receipts match on their CheckReference, invoices on their ExternalReference, journals
on their reference: all are stored as the transaction's external reference."""

from datetime import datetime
from decimal import Decimal

from sandbox import books
from sandbox.books import account_by_code, account_by_id, period, summary, txn
from sandbox.registry import NOT_FOUND, VALIDATION, AiqFailure, Reply, operation
from sandbox.store import from_milli, iso, loads, parse_iso

PAGE_SIZE = 100  # GetTransactionsModifiedBy returns at most this many per call; page with Skip
_NO_DATE = datetime(1, 1, 1)


def _given(value) -> bool:
    return value is not None and value > _NO_DATE


def _filters(query: dict, where: list, params: list) -> None:
    types = [t for t in (query.get("TypesFilter") or {}).get("string") or [] if t]
    accounts = (query.get("AccountIDsFilter") or {}).get("int") or []
    ids = (query.get("TransactionIDsFilter") or {}).get("int") or []
    departments = [d for d in (query.get("DepartmentIDsFilter") or {}).get("string") or [] if d]
    for column, values in (
        ("type", types),
        ("account_id", accounts),
        ("id", ids),
        ("department_id", departments),
    ):
        if values:
            where.append(f"{column} IN ({','.join('?' * len(values))})")
            params.extend(values)


@operation("GetTransaction")
def get_transaction(ctx, args):
    return _transaction(ctx, txn(ctx, args.get("transactionID")))


@operation("GetTransactionByInvoiceID")
def get_transaction_by_invoice_id(ctx, args):
    """The transaction a posted item invoice became (an invoice only saved has none)."""
    invoice_id = args.get("invoiceID")
    row = ctx.db.execute(
        "SELECT * FROM txn WHERE entity_id = ? AND invoice_id = ? ORDER BY id LIMIT 1",
        (ctx.entity_id, invoice_id),
    ).fetchone()
    if row is None:
        raise AiqFailure(f"Invoice {invoice_id} has no posted transaction.", NOT_FOUND)
    return _transaction(ctx, row)


def _transaction(ctx, row) -> Reply:
    date = parse_iso(row["transaction_date"])
    rate = Decimal(row["exchange_rate"])
    extra = loads(row["extra"])
    lines = []
    for number, item in enumerate(loads(row["lines"]), start=1):
        amount = Decimal(item["Amount"])
        control = bool(item.get("IsControlLine"))
        gl = ctx.db.execute(
            "SELECT name FROM gl_account WHERE entity_id = ? AND code = ?",
            (ctx.entity_id, item["GLAccountCode"]),
        ).fetchone()
        kind = (
            "Control"
            if control
            else "Bank"
            if item.get("IsBankLine")
            else ("Tax" if item.get("IsTaxLine") else "GL")
        )
        lines.append(
            {
                "TransactionLineID": row["id"] * 100 + number,
                "TransactionID": row["id"],
                "AccountID": row["account_id"] if control else 0,
                "BankID": row["bank_id"] if item.get("IsBankLine") else 0,
                "CurrencyCode": row["currency"],
                "TaxCode": item.get("TaxCode"),
                "AuthorUserID": "api",
                "TransactionGroupNumber": row["id"],
                "GLAccountCode": item["GLAccountCode"],
                "TransactionLineType": kind,
                "Description": item.get("Description"),
                "GlAccountName": gl["name"] if gl else None,
                "InternalNumber": row["internal_number"],
                "ExternalReference": row["external_reference"],
                "IsInDispute": False,
                "CreationDate": parse_iso(row["creation_date"]),
                "TransactionDate": date,
                "PeriodDate": period(date)["PeriodDate"],
                "Amount": amount,
                "AllocatedAmount": (
                    from_milli(row["amount_milli"] - row["outstanding_milli"]) if control else 0
                ),
                "BCAmount": books.bc(amount, rate),
                "ExchangeRate": rate,
                "Reconciled": False,
                "InvoiceID": row["invoice_id"] or 0,
                "DepartmentID": item.get("DepartmentID"),
                "IsReversed": False,
                "LodgmentNumber": extra.get("LodgmentNumber"),
                "IsBankLine": bool(item.get("IsBankLine")),
                "IsAccountControlLine": control,
            }
        )
    return Reply(result={"Lines": {"TransactionLine": lines}, "TransactionType": row["type"]})


@operation("GetTransactionsByExternalReference")
def get_transactions_by_external_reference(ctx, args):
    query = args.get("query") or {}
    reference = (query.get("ExternalReference") or "").strip()
    if not reference:
        raise AiqFailure("ExternalReference is mandatory.", VALIDATION)
    where, params = ["entity_id = ?", "external_reference = ?"], [ctx.entity_id, reference]
    if _given(query.get("FromDate")):
        where.append("transaction_date >= ?")
        params.append(iso(query["FromDate"]))
    if _given(query.get("ToDate")):
        where.append("transaction_date <= ?")
        params.append(iso(query["ToDate"]))
    _filters(query, where, params)
    rows = ctx.db.execute(
        f"SELECT * FROM txn WHERE {' AND '.join(where)} ORDER BY id", params
    ).fetchall()
    return Reply(result={"WSTransactionSummary": [summary(ctx, row) for row in rows]})


@operation("GetTransactionsModifiedBy")
def get_transactions_modified_by(ctx, args):
    """Transactions created or changed (e.g. by an allocation) in [FromDate, ToDate], oldest
    change first, PAGE_SIZE at a time from Skip."""
    query = args.get("query") or {}
    where, params = ["entity_id = ?"], [ctx.entity_id]
    for key, condition in (
        ("FromDate", "modified_at >= ?"),
        ("ToDate", "modified_at <= ?"),
        ("FromCreationDate", "creation_date >= ?"),
        ("ToCreationDate", "creation_date <= ?"),
        ("FromPeriodDate", "transaction_date >= ?"),
    ):
        if _given(query.get(key)):
            where.append(condition)
            params.append(iso(query[key]))
    if _given(query.get("ToPeriodDate")):
        end = query["ToPeriodDate"]
        where.append("transaction_date < ?")
        params.append(iso(datetime(end.year + end.month // 12, end.month % 12 + 1, 1)))
    _filters(query, where, params)
    skip = max(query.get("Skip") or 0, 0)
    rows = ctx.db.execute(
        f"SELECT * FROM txn WHERE {' AND '.join(where)} ORDER BY modified_at, id LIMIT ? OFFSET ?",
        (*params, PAGE_SIZE, skip),
    ).fetchall()
    return Reply(
        result={"WSChangedTransactionSummary": [summary(ctx, r, changed=True) for r in rows]}
    )


def _customers(ctx, codes: list[str]):
    if codes:
        return [account_by_code(ctx, code) for code in codes]
    return ctx.db.execute(
        "SELECT * FROM account WHERE entity_id = ? AND ledger = 'Sales' ORDER BY code",
        (ctx.entity_id,),
    ).fetchall()


@operation("GetCustomersStatement")
def get_customers_statement(ctx, args):
    """Open items up to `upTo` with aged balances (by transaction date)."""
    up_to = args.get("upTo") if _given(args.get("upTo")) else ctx.now
    codes = [c for c in (args.get("customerCodes") or {}).get("string") or [] if c]
    statements = []
    for account in _customers(ctx, codes):
        rows = ctx.db.execute(
            "SELECT * FROM txn WHERE account_id = ? AND transaction_date <= ? "
            "AND outstanding_milli <> 0 ORDER BY transaction_date, id",
            (account["id"], iso(up_to)),
        ).fetchall()
        buckets = dict.fromkeys((30, 60, 90, 120, None), 0)
        for row in rows:
            age = (up_to - parse_iso(row["transaction_date"])).days
            bucket = next((limit for limit in (30, 60, 90, 120) if age < limit), None)
            buckets[bucket] += row["outstanding_milli"]
        balance = sum(buckets.values())
        if balance == 0 and not rows and not args.get("showZeros"):
            continue
        statements.append(
            {
                "CustomerState": {
                    "From0To30DaysBalanceBucket": from_milli(buckets[30]),
                    "From30To60DaysBalanceBucket": from_milli(buckets[60]),
                    "From60To90DaysBalanceBucket": from_milli(buckets[90]),
                    "From90To120DaysBalanceBucket": from_milli(buckets[120]),
                    "From120DaysPlusBalanceBucket": from_milli(buckets[None]),
                    "FutureBalanceBucket": Decimal("0.00"),
                    "CurrentBalance": from_milli(balance),
                    "CurrentDate": up_to,
                    "CustomerCode": account["code"],
                },
                "TransactionList": {
                    "TransactionState": [
                        {
                            "TransactionReference": row["id"],
                            "Type": row["type"],
                            "InternalNumber": row["internal_number"],
                            "ExternalReference": row["external_reference"],
                            "Amount": from_milli(row["amount_milli"]),
                            "OutstandingAmount": from_milli(row["outstanding_milli"]),
                            "TransactionDate": parse_iso(row["transaction_date"]),
                            "Description": row["description"],
                        }
                        for row in rows
                    ]
                },
            }
        )
    return Reply(result={"CustomerStatement": statements})


@operation("GetAccountBalanceInformation")
def get_account_balance_information(ctx, args):
    """Balance = sum of the account's transactions dated up to `edt` (positive: owes us)."""
    edt = args.get("edt") if _given(args.get("edt")) else ctx.now
    ids = (args.get("accountIDs") or {}).get("int") or []
    if ids:
        accounts = [account_by_id(ctx, i) for i in ids]
        missing = [i for i, a in zip(ids, accounts, strict=True) if a is None]
        if missing:
            raise AiqFailure(f"Account(s) {missing} do not exist.", NOT_FOUND)
    else:
        accounts = _customers(ctx, [])
    result = []
    for account in accounts:
        balance = ctx.db.execute(
            "SELECT coalesce(sum(amount_milli), 0) AS b FROM txn WHERE account_id = ? "
            "AND transaction_date <= ?",
            (account["id"], iso(edt)),
        ).fetchone()["b"]
        limit = account["credit_limit_milli"]
        result.append(
            {
                "AccountID": account["id"],
                "AccountCode": account["code"],
                "AccountType": "Customer" if account["ledger"] == "Sales" else "Supplier",
                "Balance": from_milli(balance),
                "CreditLimit": from_milli(limit),
                "CreditLeft": from_milli(limit - balance) if limit else from_milli(0),
                "OverCreditLimitBalance": from_milli(max(0, balance - limit))
                if limit
                else (from_milli(0)),
                "CurrencyCode": account["currency"],
            }
        )
    return Reply(result={"AccountBalanceInformation": result})
