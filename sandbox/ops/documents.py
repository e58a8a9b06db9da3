"""AttachDocument and the invoice / receipt PDFs."""

from decimal import Decimal

from sandbox import books
from sandbox.books import account_by_id, txn
from sandbox.pdf import document_pdf
from sandbox.registry import NOT_FOUND, VALIDATION, AiqFailure, Reply, operation
from sandbox.store import from_milli, iso, loads, parse_iso

MAX_DOCUMENT_BYTES = 20 * 1024 * 1024


@operation("AttachDocument", write=True)
def attach_document(ctx, args):
    document = args.get("document") or {}
    header = document.get("Header") or {}
    content = (document.get("Content") or {}).get("Content")
    master_type = (header.get("MasterType") or "").strip()
    master_id = (header.get("MasterID") or "").strip()
    filename = (header.get("Filename") or "").strip()
    if not master_type or not master_id or not filename:
        raise AiqFailure("MasterType, MasterID and Filename are mandatory.", VALIDATION)
    if not content:
        raise AiqFailure("The document has no content.", VALIDATION)
    if len(content) > MAX_DOCUMENT_BYTES:
        raise AiqFailure("The document is larger than 20 MB.", VALIDATION)
    if master_type == "Transaction":
        if not master_id.isdigit():
            raise AiqFailure(f"MasterID '{master_id}' is not a transaction id.", VALIDATION)
        txn(ctx, int(master_id))
    elif master_type in ("Customer", "Account"):
        books.account_by_code(ctx, master_id)
    else:
        raise AiqFailure(f"MasterType '{master_type}' is not supported.", VALIDATION)
    ctx.db.execute(
        "INSERT INTO document (entity_id, master_type, master_id, filename, content, comments, "
        "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (ctx.entity_id, master_type, master_id, filename, content,
         (document.get("Content") or {}).get("Comments"), iso(ctx.now)),
    )  # fmt: skip
    return Reply()


@operation("GetAttachedDocumentList")
def get_attached_document_list(ctx, args):
    """The documents attached to one master record, oldest first (AIQ's published shape)."""
    master_type = (args.get("masterType") or "").strip()
    master_id = (args.get("masterID") or "").strip()
    if not master_type or not master_id:
        raise AiqFailure("masterType and masterID are mandatory.", VALIDATION)
    rows = ctx.db.execute(
        "SELECT id, master_type, master_id, filename FROM document "
        "WHERE entity_id = ? AND master_type = ? AND master_id = ? ORDER BY id",
        (ctx.entity_id, master_type, master_id),
    ).fetchall()
    return Reply(
        result={
            "WSDocumentHeader": [
                {"MasterType": r["master_type"], "MasterID": r["master_id"],
                 "Filename": r["filename"], "DocumentID": r["id"]}
                for r in rows
            ]
        }
    )  # fmt: skip


def _address(account) -> list[str]:
    data = loads(account["data"])
    parts = [data.get(k) for k in ("Address1", "Address2", "City", "PostCode", "Country")]
    return [p for p in parts if p]


@operation("GetInvoicePDFByTransactionID")
def get_invoice_pdf_by_transaction_id(ctx, args):
    row = txn(ctx, args.get("transactionID"))
    if row["type"] not in (books.SALES_INVOICE, books.SALES_CREDIT_NOTE):
        raise AiqFailure(f"Transaction {row['id']} is not an invoice or credit note.", NOT_FOUND)
    account = account_by_id(ctx, row["account_id"])
    sign = 1 if row["type"] == books.SALES_INVOICE else -1
    if row["invoice_id"]:
        document = ctx.db.execute(
            "SELECT data FROM invoice WHERE id = ?", (row["invoice_id"],)
        ).fetchone()
        items = loads(document["data"])["Lines"]["InvoiceLine"]
        lines = [
            (i.get("StockItemDescription") or i.get("Notes") or i["GLAccountCode"],
             Decimal(i["NetAmount"]), Decimal(i["TaxAmount"]), Decimal(i["GrossAmount"]))
            for i in items
        ]  # fmt: skip
    else:  # batch invoice: its GL lines are the document
        gl = [
            i for i in loads(row["lines"]) if not i.get("IsControlLine") and not i.get("IsTaxLine")
        ]
        tax = sum((-sign * Decimal(i["Amount"]) for i in loads(row["lines"]) if i.get("IsTaxLine")),
                  Decimal(0))  # fmt: skip
        lines = [(i.get("Description") or i["GLAccountCode"], -sign * Decimal(i["Amount"]),
                  Decimal(0), -sign * Decimal(i["Amount"])) for i in gl]  # fmt: skip
        if tax:
            lines.append(("VAT", Decimal(0), tax, tax))
    gross = sign * from_milli(row["amount_milli"])
    outstanding = sign * from_milli(row["outstanding_milli"])
    title = "Invoice" if sign > 0 else "Credit note"
    pdf = document_pdf(
        title=title,
        number=row["internal_number"],
        entity_name=ctx.entity["name"],
        customer_code=account["code"],
        customer_name=account["name"],
        address=_address(account),
        date=parse_iso(row["transaction_date"]).date().isoformat(),
        currency=row["currency"],
        lines=lines,
        totals=[
            ("Total", gross),
            ("Paid / allocated", gross - outstanding),
            ("Balance due", outstanding),
        ],
        notes=[f"Reference: {row['external_reference']}"] if row["external_reference"] else [],
    )
    return Reply(result=pdf)


@operation("GetSalesReceiptPDFByTransactionID")
def get_sales_receipt_pdf_by_transaction_id(ctx, args):
    row = txn(ctx, args.get("transactionID"))
    if row["type"] != books.SALES_RECEIPT:
        raise AiqFailure(f"Transaction {row['id']} is not a sales receipt.", NOT_FOUND)
    account = account_by_id(ctx, row["account_id"])
    amount = -from_milli(row["amount_milli"])
    unallocated = -from_milli(row["outstanding_milli"])
    allocations = ctx.db.execute(
        "SELECT a.amount_milli, t.internal_number FROM allocation a JOIN txn t "
        "ON t.id = a.debit_txn WHERE a.credit_txn = ? AND a.active = 1 ORDER BY a.id",
        (row["id"],),
    ).fetchall()
    pdf = document_pdf(
        title="Receipt",
        number=row["internal_number"],
        entity_name=ctx.entity["name"],
        customer_code=account["code"],
        customer_name=account["name"],
        address=_address(account),
        date=parse_iso(row["transaction_date"]).date().isoformat(),
        currency=row["currency"],
        lines=[(row["description"] or "Payment received", amount, Decimal(0), amount)],
        totals=[
            ("Received", amount),
            ("Allocated", amount - unallocated),
            ("Unallocated", unallocated),
        ],
        notes=[f"Reference: {row['external_reference']}"]
        + [
            f"Allocated {from_milli(a['amount_milli'])} to {a['internal_number']}"
            for a in allocations
        ],
    )
    return Reply(result=pdf)
