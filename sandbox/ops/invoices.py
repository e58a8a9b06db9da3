"""Sales invoices: item invoices (new -> saved -> posted) and batch invoices; look-ups."""

from datetime import datetime

from sandbox import invoicing
from sandbox.books import account_by_code
from sandbox.registry import SUCCESS, VALIDATION, AiqFailure, Reply, operation
from sandbox.store import iso

_NO_DATE = datetime(1, 1, 1)  # .NET's DateTime.MinValue: "no filter"


def _strings(value) -> list[str]:
    return [item for item in (value or {}).get("string") or [] if item]


def _ints(value) -> list[int]:
    return list((value or {}).get("int") or [])


def _given(value) -> bool:
    return value is not None and value > _NO_DATE


def invoices(ctx, where: str, params: tuple, kind: str = "invoice", suffix: str = "ORDER BY id"):
    rows = ctx.db.execute(
        f"SELECT * FROM invoice WHERE entity_id = ? AND kind = ? AND {where} {suffix}",
        (ctx.entity_id, kind, *params),
    ).fetchall()
    return [invoicing.record(ctx, row) for row in rows]


@operation("GetNewSalesInvoice")
def get_new_sales_invoice(ctx, args):
    return Reply(result=invoicing.template(ctx, args.get("customerCode"), "invoice"))


@operation("GetNewPurchasesInvoice")
def get_new_purchases_invoice(ctx, args):
    account = account_by_code(ctx, args.get("supplierCode"), "Purchases")
    if not account["is_active"]:
        # as for receipts: an inactive account takes no new transaction
        raise AiqFailure(f"Supplier '{account['code']}' is inactive.", VALIDATION)
    return Reply(
        result=invoicing.template(ctx, args.get("supplierCode"), "invoice", ledger="Purchases")
    )


@operation("SaveInvoiceGetBackInvoiceID", write=True)
def save_invoice_get_back_invoice_id(ctx, args):
    invoice_id = invoicing.save(ctx, args.get("invoice"), bool(args.get("create")), "invoice")
    return Reply(siblings={"invoiceID": invoice_id})


@operation("PostInvoiceGetBackTransactionID", write=True)
def post_invoice_get_back_transaction_id(ctx, args):
    return Reply(siblings={"transactionID": invoicing.post(ctx, args.get("invoiceID"), "invoice")})


@operation("GetInvoice")
def get_invoice(ctx, args):
    return Reply(
        result=invoicing.record(ctx, invoicing.document(ctx, args.get("invoiceID"), "invoice"))
    )


@operation("GetInvoicesByCustomerCode")
def get_invoices_by_customer_code(ctx, args):
    account = account_by_code(ctx, args.get("customerCode"))
    return Reply(result={"Invoice": invoices(ctx, "account_id = ?", (account["id"],))})


@operation("GetInvoicesByExternalReference")
def get_invoices_by_external_reference(ctx, args):
    found = invoices(ctx, "external_reference = ?", (args.get("externalReference") or "",))
    return Reply(result={"Invoice": found})


@operation("GetInvoicesBy")
def get_invoices_by(ctx, args):
    query = args.get("query") or {}
    where, params = ["1 = 1"], []
    for key, column in (("FromCreationDate", "created_at >="), ("ToCreationDate", "created_at <=")):
        if _given(query.get(key)):
            where.append(f"{column} ?")
            params.append(iso(query[key]))
    if _given(query.get("FromLastModifiedDateInUTC")):
        where.append("modified_at >= ?")
        params.append(iso(query["FromLastModifiedDateInUTC"]))
    for key, column in (("AccountIDsFilter", "account_id"), ("InvoiceIDsFilter", "id")):
        ids = _ints(query.get(key))
        if ids:
            where.append(f"{column} IN ({','.join('?' * len(ids))})")
            params.extend(ids)
    numbers = _strings(query.get("InvoiceNumbersFilter"))
    if numbers:
        where.append(f"invoice_number IN ({','.join('?' * len(numbers))})")
        params.extend(numbers)
    status = (query.get("Status") or "").strip()
    if status:
        where.append("status = ?")
        params.append({"Processed": "posted", "Created": "saved"}.get(status, status.lower()))
    found = invoices(ctx, " AND ".join(where), tuple(params))
    # Invoice dates live in the document; filter and order them here.
    if _given(query.get("FromDate")):
        found = [i for i in found if _date(i["InvoiceDate"]) >= query["FromDate"]]
    if _given(query.get("ToDate")):
        found = [i for i in found if _date(i["InvoiceDate"]) <= query["ToDate"]]
    order = query.get("OrderBy") or "InvoiceID"
    key = order if order in ("InvoiceID", "InvoiceDate", "InvoiceNumber") else "InvoiceID"
    found.sort(key=lambda i: (str(i[key]) if key != "InvoiceID" else i[key], i["InvoiceID"]))
    if query.get("ReverseOrderBy"):
        found.reverse()
    skip = max(query.get("Skip") or 0, 0)
    limit = query.get("Limit") or 1000
    return Reply(result={"Invoice": found[skip : skip + limit]})


def _date(value):
    return datetime.fromisoformat(value) if isinstance(value, str) else value


@operation("GetNewBatchSalesInvoice")
def get_new_batch_sales_invoice(ctx, args):
    account = account_by_code(ctx, args.get("customerCode"))
    template = invoicing.template(ctx, account["code"], "invoice")
    return Reply(
        result={
            "CustomerCode": account["code"],
            "InvoiceDate": ctx.now,
            "Lines": {"BatchSalesInvoiceLine": []},
            "ExchangeRate": template["ExchangeRate"],
        }
    )


@operation("CreateBatchSalesInvoiceGetBackTransactionID", write=True)
def create_batch_sales_invoice_get_back_transaction_id(ctx, args):
    transaction_id, number = invoicing.batch_invoice(ctx, args.get("inv"))
    return Reply(result=number, siblings={"transactionID": transaction_id})


@operation("CreateBatchSalesInvoiceBulkGetBackTransactionIDs", write=True)
def create_batch_sales_invoice_bulk_get_back_transaction_ids(ctx, args):
    """Each batch invoice posts or fails on its own: one WSResultStatus per invoice, in order,
    and transactionIDs in the same positions (0 where that invoice failed)."""
    sent = (args.get("invoices") or {}).get("BatchSalesInvoice") or []
    if not sent:
        raise AiqFailure("No invoices were sent.", VALIDATION)
    statuses, transaction_ids = [], []
    for inv in sent:
        ctx.db.execute("SAVEPOINT batch_invoice")
        try:
            transaction_id, _number = invoicing.batch_invoice(ctx, inv)
        except AiqFailure as failure:
            ctx.db.execute("ROLLBACK TO batch_invoice")
            transaction_ids.append(0)
            statuses.append(_status("Failure", failure.code, failure.message))
        else:
            transaction_ids.append(transaction_id)
            statuses.append(_status("Success", SUCCESS, ""))
        ctx.db.execute("RELEASE batch_invoice")
    return Reply(
        result={"WSResultStatus": statuses}, siblings={"transactionIDs": {"int": transaction_ids}}
    )


def _status(status, code, message):
    return {"Status": status, "ErrorCode": code, "ErrorMessage": message, "HasExpired": False}
