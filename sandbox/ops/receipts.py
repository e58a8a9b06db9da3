"""Receipts and allocations: SaveSalesReceiptGetBackTransactionID, AllocateTransactions(...),
UnallocateTransactions, GetAllocationsByTransactionId, PostPayAndAllocateSalesInvoice(s)."""

from decimal import ROUND_HALF_UP, Decimal

from sandbox import books, invoicing
from sandbox.books import (
    SALES_RECEIPT,
    account_by_code,
    bank_by_code,
    create_txn,
    line,
    money,
    required,
    txn,
)
from sandbox.money import decimals
from sandbox.registry import (
    DUPLICATE,
    SUCCESS,
    VALIDATION,
    AiqFailure,
    Reply,
    operation,
)
from sandbox.store import from_milli, parse_iso


def save_receipt(ctx, receipt: dict | None) -> int:
    """A customer receipt into a bank account; outstanding starts at the full amount."""
    if not receipt:
        raise AiqFailure("No sales receipt was sent.", VALIDATION)
    # AIQ's troubleshooting guide: these three are mandatory.
    bank_code = required(receipt.get("BankAccountCode"), "BankAccountCode")
    check_reference = required(receipt.get("CheckReference"), "CheckReference")
    required(receipt.get("CustomerCode"), "CustomerCode")
    account = account_by_code(ctx, receipt["CustomerCode"])
    if not account["is_active"]:
        raise AiqFailure(f"Customer '{account['code']}' is inactive.", VALIDATION)
    bank = bank_by_code(ctx, bank_code)
    currency = account["currency"]
    amount = money(receipt.get("PaymentAmount"), currency, "PaymentAmount")
    # AIQ's SalesReceipt constraints (API wiki): Description "Cannot be longer than 500
    # characters", LodgmentNumber "Cannot be more than 50 characters long"
    for field, limit in (("Description", 500), ("LodgmentNumber", 50)):
        if len(receipt.get(field) or "") > limit:
            raise AiqFailure(f"{field} cannot be longer than {limit} characters.", VALIDATION)
    description = receipt.get("Description") or f"Receipt {check_reference}"
    rate = receipt.get("ExchangeRate") or invoicing.rate_for(ctx, currency)
    bank_line = line(bank["gl_code"], amount, description, IsBankLine=True)
    if bank["currency"] != currency:
        # money in one currency into a bank kept in another: the bank holds the amount in its
        # own currency, at the receipt's rate into base and the bank's rate out of it
        bank_rate = receipt.get("BankExchangeRate") or invoicing.rate_for(ctx, bank["currency"])
        places = Decimal(1).scaleb(-decimals(bank["currency"]))
        in_bank = amount / Decimal(str(rate)) * Decimal(str(bank_rate))
        bank_line["BankAmount"] = in_bank.quantize(places, rounding=ROUND_HALF_UP)
    return create_txn(
        ctx,
        type=SALES_RECEIPT,
        prefix="REC",
        currency=currency,
        amount=-amount,
        account=account,
        external_reference=check_reference,
        transaction_date=receipt.get("PaymentDate") or ctx.now,
        exchange_rate=rate,
        description=description,
        bank_id=bank["id"],
        department_id=receipt.get("DepartmentID"),
        lines=[
            bank_line,
            line(books.DEBTORS_GL, -amount, description, IsControlLine=True),
        ],
        extra={
            "LodgmentNumber": receipt.get("LodgmentNumber"),
            "BankAccountCode": bank_code,
            "BankExchangeRate": receipt.get("BankExchangeRate"),
        },
    )


@operation("SaveSalesReceiptGetBackTransactionID", write=True)
def save_sales_receipt_get_back_transaction_id(ctx, args):
    return Reply(siblings={"transactionID": save_receipt(ctx, args.get("salesReceipt"))})


@operation("AllocateTransactions", write=True)
def allocate_transactions(ctx, args):
    books.allocate(
        ctx,
        args.get("transactionID_1"),
        args.get("transactionID_2"),
        args.get("allocationAmount"),
        reference=args.get("allocationReference"),
        allocation_date=args.get("allocationDate"),
    )
    return Reply()


@operation("AllocateTransactionsWithDiscount", write=True)
def allocate_transactions_with_discount(ctx, args):
    books.allocate(
        ctx,
        args.get("transactionID_1"),
        args.get("transactionID_2"),
        args.get("allocationAmount"),
        reference=args.get("allocationReference"),
        allocation_date=args.get("allocationDate"),
        discount=args.get("discountAmount"),
    )
    return Reply()


@operation("UnallocateTransactions", write=True)
def unallocate_transactions(ctx, args):
    """One WSResultStatus per transaction id; the ones that fail change nothing."""
    ids = (args.get("transactionIDs") or {}).get("int") or []
    if not ids:
        raise AiqFailure("No transaction ids were sent.", VALIDATION)
    statuses = []
    for transaction_id in ids:
        ctx.db.execute("SAVEPOINT unallocate")
        try:
            books.unallocate(ctx, transaction_id)
            statuses.append(_status("Success", SUCCESS, ""))
        except AiqFailure as failure:
            ctx.db.execute("ROLLBACK TO unallocate")
            statuses.append(_status("Failure", failure.code, failure.message))
        ctx.db.execute("RELEASE unallocate")
    return Reply(result={"WSResultStatus": statuses})


def _status(status, code, message):
    return {"Status": status, "ErrorCode": code, "ErrorMessage": message, "HasExpired": False}


@operation("GetAllocationsByTransactionId")
def get_allocations_by_transaction_id(ctx, args):
    raw = (args.get("transactionId") or "").strip()
    if not raw.isdigit():
        raise AiqFailure(f"'{raw}' is not a transaction id.", VALIDATION)
    row = txn(ctx, int(raw))
    account = books.account_by_id(ctx, row["account_id"]) if row["account_id"] else None
    allocations = ctx.db.execute(
        "SELECT * FROM allocation WHERE active = 1 AND (debit_txn = ? OR credit_txn = ?) "
        "ORDER BY id",
        (row["id"], row["id"]),
    ).fetchall()
    entries = []
    for allocation in allocations:
        other_id = (
            allocation["credit_txn"]
            if allocation["debit_txn"] == row["id"]
            else allocation["debit_txn"]
        )
        other = txn(ctx, other_id)
        entries.append(
            {
                "AllocatedToTransactionID": other["id"],
                "AllocatedToTransactionType": other["type"],
                "AllocatedToInternalNumber": other["internal_number"],
                "AllocatedToExternalReference": other["external_reference"],
                "AllocationAmount": from_milli(allocation["amount_milli"]),
                "AllocationDate": parse_iso(allocation["allocation_date"]),
                "AllocationId": allocation["id"],
                "AllocationUserId": allocation["user_id"],
                "AllocationCreationDate": parse_iso(allocation["created_at"]),
            }
        )
    return Reply(
        result={
            "WSAllocationTransactionDTO": [
                {
                    "TransactionID": row["id"],
                    "TransactionType": row["type"],
                    "InternalNumber": row["internal_number"],
                    "ExternalReference": row["external_reference"],
                    "AllocationEntries": {"WSAllocationEntryDTO": entries},
                    "AccountID": row["account_id"] or 0,
                    "AccountCode": account["code"] if account else None,
                }
            ]
        }
    )


def pay_and_allocate(ctx, query: dict | None) -> dict:
    """Batch invoice + receipt + allocation in one go, after AIQ's duplicate checks."""
    if not query:
        raise AiqFailure("No query was sent.", VALIDATION)
    invoice = query.get("BatchInvoice")
    receipt = query.get("Receipt")
    if not invoice:
        raise AiqFailure("BatchInvoice is mandatory.", VALIDATION)
    if query.get("PerformExternalReferenceDuplicateCheckOnInvoice") and invoice.get(
        "ExternalReference"
    ):
        _refuse_duplicate(ctx, books.INVOICE_TYPES, invoice["ExternalReference"], "invoice")
    if receipt and query.get("PerformExternalReferenceDuplicateCheckOnReceipt"):
        _refuse_duplicate(
            ctx, (SALES_RECEIPT,), required(receipt.get("CheckReference"), "CheckReference"),
            "receipt",
        )  # fmt: skip
    invoice_id, _number = invoicing.batch_invoice(ctx, invoice)
    invoice_row = txn(ctx, invoice_id)
    if query.get("EnforceCreditLimit"):
        _check_credit_limit(ctx, invoice_row)
    receipt_id = 0
    if receipt:
        if (receipt.get("CustomerCode") or "").upper() != (
            invoice.get("CustomerCode") or ""
        ).upper():
            raise AiqFailure("The receipt and the invoice are for different customers.")
        receipt_id = save_receipt(ctx, receipt)
        if query.get("PerformAllocation"):
            amount = query.get("AllocationAmount")
            if not amount:
                receipt_row = txn(ctx, receipt_id)
                amount = from_milli(
                    min(invoice_row["outstanding_milli"], -receipt_row["outstanding_milli"])
                )
            books.allocate(
                ctx,
                invoice_id,
                receipt_id,
                amount,
                reference=query.get("AllocationReference"),
                allocation_date=query.get("AllocationDate"),
            )
    return {
        "InvoiceTransactionID": invoice_id,
        "ReceiptTransactionID": receipt_id,
        "ClientUniqueReference": query.get("ClientUniqueReference"),
    }


def _refuse_duplicate(ctx, types, reference, label):
    marks = ",".join("?" * len(types))
    existing = ctx.db.execute(
        f"SELECT id FROM txn WHERE entity_id = ? AND external_reference = ? AND type IN ({marks}) "
        "ORDER BY id LIMIT 1",
        (ctx.entity_id, reference, *types),
    ).fetchone()
    if existing is not None:
        raise AiqFailure(
            f"A {label} with external reference '{reference}' already exists "
            f"(transaction {existing['id']}).",
            DUPLICATE,
        )


def _check_credit_limit(ctx, invoice_row):
    account = books.account_by_id(ctx, invoice_row["account_id"])
    limit = account["credit_limit_milli"]
    if limit <= 0:
        return
    balance = ctx.db.execute(
        "SELECT coalesce(sum(amount_milli), 0) AS b FROM txn WHERE account_id = ?", (account["id"],)
    ).fetchone()["b"]
    if balance > limit:
        raise AiqFailure(
            f"Customer '{account['code']}' would exceed its credit limit of "
            f"{from_milli(limit)} (balance {from_milli(balance)}).",
            "CREDIT_LIMIT",
        )


@operation("PostPayAndAllocateSalesInvoice", write=True)
def post_pay_and_allocate_sales_invoice(ctx, args):
    return Reply(result=pay_and_allocate(ctx, args.get("query")))


@operation("PostPayAndAllocateSalesInvoices", write=True)
def post_pay_and_allocate_sales_invoices(ctx, args):
    """Each query succeeds or fails on its own; the outer status is Success."""
    queries = (args.get("queries") or {}).get("WSPostPayAndAllocateSalesInvoiceQuery") or []
    if not queries:
        raise AiqFailure("No queries were sent.", VALIDATION)
    results = []
    for query in queries:
        ctx.db.execute("SAVEPOINT pay_and_allocate")
        try:
            result = pay_and_allocate(ctx, query)
            results.append({**_status("Success", SUCCESS, ""), "Result": result})
        except AiqFailure as failure:
            ctx.db.execute("ROLLBACK TO pay_and_allocate")
            results.append(_status("Failure", failure.code, failure.message))
        ctx.db.execute("RELEASE pay_and_allocate")
    return Reply(result={"WSResult2OfWSPostPayAndAllocateSalesInvoiceResult": results})
