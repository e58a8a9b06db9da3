"""Item invoices and credit notes: template -> saved (editable, RowVersionNumber) -> posted
(a transaction id; never editable again). Batch invoices skip the document stage."""

import base64
from datetime import datetime
from decimal import Decimal

from sandbox.books import (
    DEBTORS_GL,
    PURCHASES_INVOICE,
    SALES_CREDIT_NOTE,
    SALES_INVOICE,
    account_by_code,
    account_by_id,
    create_txn,
    department_usable,
    gl_account,
    gl_by_category,
    line,
    money,
)
from sandbox.registry import CONCURRENCY, NOT_FOUND, VALIDATION, AiqFailure
from sandbox.store import dumps, iso, loads, next_number, parse_iso

KINDS = {
    "invoice": {"type": "Invoice", "prefix": "INV", "start": 1001, "txn": SALES_INVOICE, "sign": 1},
    "credit_note": {
        "type": "CreditNote", "prefix": "CN", "start": 5001, "txn": SALES_CREDIT_NOTE, "sign": -1,
    },
}  # fmt: skip
# Elements of AIQ's Invoice record that its CreditNote record does not have.
_INVOICE_ONLY = ("ApprovalStatusName", "AuthorUserName", "ExternalApproverName", "AccountCode")
# A supplier's invoice (ledger Purchases) is numbered and posted on its own: creditors control
# credited with the gross, the lines' purchases accounts and input VAT debited.
PURCHASES = {"type": "Invoice", "prefix": "PI", "start": 1, "txn": PURCHASES_INVOICE, "sign": 1}
_STATUS = {"saved": "Created", "posted": "Processed"}
CENT = Decimal("0.01")


def rate_for(ctx, currency: str) -> Decimal:
    if currency == ctx.entity["base_currency"]:
        return Decimal(1)
    row = ctx.db.execute(
        "SELECT rate FROM currency_rate WHERE entity_id = ? AND currency = ?",
        (ctx.entity_id, currency),
    ).fetchone()
    return Decimal(row["rate"]) if row else Decimal(1)


def tax_rate(ctx, code) -> Decimal:
    row = ctx.db.execute(
        "SELECT rate FROM tax_code WHERE entity_id = ? AND code = ?", (ctx.entity_id, code)
    ).fetchone()
    if row is None:
        raise AiqFailure(f"Tax code '{code}' does not exist.", NOT_FOUND)
    return Decimal(row["rate"])


def template(ctx, customer_code, kind: str, ledger: str = "Sales") -> dict:
    account = account_by_code(ctx, customer_code, ledger)
    customer = loads(account["data"])
    record = {
        "InvoiceID": 0,
        "AccountID": account["id"],
        "CurrencyCode": account["currency"],
        "CurrrencyCode": account["currency"],
        "AccountTaxCode": customer.get("DefaultTaxCode"),
        "CreationDate": ctx.now,
        "InvoiceDate": ctx.now,
        "ExternalApproverID": 0,
        "DeliveryDate": ctx.now,
        "Status": "Created",
        "AccountName": account["name"],
        "AccountAddress1": customer.get("Address1"),
        "AccountAddress2": customer.get("Address2"),
        "City": customer.get("City"),
        "County_State": customer.get("County_State"),
        "Country": customer.get("Country"),
        "PostCode": customer.get("PostCode"),
        "Contact": customer.get("Contact"),
        "Phone": customer.get("Phone"),
        "DiscountRate": Decimal(0),
        "ForCollection": False,
        "ExchangeRate": rate_for(ctx, account["currency"]),
        "UseAccountTaxCode": False,
        "OrderID": 0,
        "Hold": 0,
        "Ledger": ledger,
        "Lines": {"InvoiceLine": []},
        "IsPrinted": False,
        "AccountBranchID": 0,
        "ExcludeFromPrinting": False,
        "Type": KINDS[kind]["type"],
        "SalesRepresentativeID": 0,
        "NetAmount": Decimal(0),
        "TaxAmount": Decimal(0),
        "GrossAmount": Decimal(0),
        "BCNetAmount": Decimal(0),
        "BCTaxAmount": Decimal(0),
        "BCGrossAmount": Decimal(0),
    }
    if kind == "invoice":
        record["AccountCode"] = account["code"]
    return record


def _lines(ctx, record: dict, currency: str, default_tax, default_gl) -> list[dict]:
    lines = (record.get("Lines") or {}).get("InvoiceLine") or []
    if not lines:
        raise AiqFailure("The document has no lines.", VALIDATION)
    result = []
    for number, raw in enumerate(lines, start=1):
        item = dict(raw or {})
        quantity = item.get("InvoicedQuantity")
        quantity = Decimal(1) if quantity is None else quantity
        if item.get("NetAmount"):
            net = money(item["NetAmount"], currency, f"Line {number} NetAmount", positive=False)
        else:
            price = item.get("ActualPrice") or item.get("StockItemPrice") or Decimal(0)
            discount = item.get("DiscountRate") or Decimal(0)
            net = (quantity * price * (100 - discount) / 100).quantize(CENT)
        if net <= 0:
            raise AiqFailure(f"Line {number}: the net amount must be greater than zero.")
        code = item.get("TaxCode") or default_tax
        rate = tax_rate(ctx, code) if code else (item.get("TaxRate") or Decimal(0))
        tax = item.get("TaxAmount")
        tax = (
            money(tax, currency, f"Line {number} TaxAmount", positive=False)
            if tax
            else (net * rate / 100).quantize(CENT)
        )
        gl = item.get("GLAccountCode") or default_gl
        gl_account(ctx, gl, f"Line {number} GLAccountCode")
        department_usable(ctx, item.get("DepartmentID"), f"Line {number} DepartmentID")
        item.update(
            InvoiceItemID=item.get("InvoiceItemID") or next_number(ctx.db, ctx.entity_id, "item"),
            InvoicedQuantity=quantity,
            TaxCode=code,
            TaxRate=rate,
            NetAmount=net,
            TaxAmount=tax,
            GrossAmount=net + tax,
            GLAccountCode=gl,
            CreationDate=item.get("CreationDate") or ctx.now,
        )
        result.append(item)
    return result


def save(ctx, record: dict | None, create: bool, kind: str) -> int:
    if not record:
        raise AiqFailure("No document was sent.", VALIDATION)
    account = None
    if record.get("AccountID"):
        account = account_by_id(ctx, record["AccountID"])
    elif record.get("AccountCode"):
        account = account_by_code(ctx, record["AccountCode"])
    if account is None:
        raise AiqFailure("AccountID does not name an existing customer.", NOT_FOUND)
    currency = account["currency"]
    given = record.get("CurrencyCode") or record.get("CurrrencyCode")
    if given and given.upper() != currency:
        raise AiqFailure(f"The customer's currency is {currency}, not {given}.", VALIDATION)
    customer = loads(account["data"])
    lines = _lines(
        ctx, record, currency, customer.get("DefaultTaxCode"), customer.get("DefaultGLAccountCode")
    )
    net = sum((item["NetAmount"] for item in lines), Decimal(0))
    tax = sum((item["TaxAmount"] for item in lines), Decimal(0))
    rate = record.get("ExchangeRate") or rate_for(ctx, currency)
    data = {key: value for key, value in record.items() if key not in ("RowVersionNumber",)}
    data.update(
        AccountID=account["id"],
        CurrencyCode=currency,
        CurrrencyCode=currency,
        AccountName=record.get("AccountName") or account["name"],
        InvoiceDate=record.get("InvoiceDate") or ctx.now,
        ExchangeRate=rate,
        Ledger=account["ledger"],
        Type=KINDS[kind]["type"],
        Lines={"InvoiceLine": lines},
        NetAmount=net,
        TaxAmount=tax,
        GrossAmount=net + tax,
        BCNetAmount=(net / rate).quantize(CENT),
        BCTaxAmount=(tax / rate).quantize(CENT),
        BCGrossAmount=((net + tax) / rate).quantize(CENT),
    )
    external = record.get("ExternalReference") or None
    if create:
        spec = _spec(kind, account["ledger"])
        number = record.get("InvoiceNumber") or (
            f"{spec['prefix']}-{next_number(ctx.db, ctx.entity_id, spec['prefix'], spec['start'])}"
        )
        data.update(InvoiceNumber=number, CreationDate=ctx.now)
        cursor = ctx.db.execute(
            "INSERT INTO invoice (entity_id, kind, ledger, account_id, status, invoice_number, "
            "external_reference, data, created_at, modified_at) "
            "VALUES (?, ?, ?, ?, 'saved', ?, ?, ?, ?, ?)",
            (ctx.entity_id, kind, account["ledger"], account["id"], number, external, dumps(data),
             iso(ctx.now), iso(ctx.now)),
        )  # fmt: skip
        return cursor.lastrowid
    row = document(ctx, record.get("InvoiceID"), kind)
    if row["status"] == "posted":
        raise AiqFailure(f"Document {row['id']} is posted and cannot be changed.", VALIDATION)
    if record.get("RowVersionNumber") != row_version(row):
        raise AiqFailure(
            f"Document {row['id']} was changed since you read it (RowVersionNumber).", CONCURRENCY
        )
    data.update(InvoiceNumber=record.get("InvoiceNumber") or row["invoice_number"])
    ctx.db.execute(
        "UPDATE invoice SET account_id = ?, invoice_number = ?, external_reference = ?, "
        "data = ?, row_version = row_version + 1, modified_at = ? WHERE id = ?",
        (account["id"], data["InvoiceNumber"], external, dumps(data), iso(ctx.now), row["id"]),
    )
    return row["id"]


def row_version(row) -> str:
    return base64.b64encode(f"invoice:{row['id']}:v{row['row_version']}".encode()).decode()


def document(ctx, invoice_id, kind: str):
    row = ctx.db.execute(
        "SELECT * FROM invoice WHERE entity_id = ? AND id = ? AND kind = ?",
        (ctx.entity_id, invoice_id, kind),
    ).fetchone()
    if row is None:
        label = "Invoice" if kind == "invoice" else "Credit note"
        raise AiqFailure(f"{label} {invoice_id} does not exist.", NOT_FOUND)
    return row


def post(ctx, invoice_id, kind: str) -> int:
    row = document(ctx, invoice_id, kind)
    if row["status"] == "posted":
        raise AiqFailure(
            f"Document {row['id']} is already posted (transaction {row['transaction_id']}).",
            VALIDATION,
        )
    data = loads(row["data"])
    spec = _spec(kind, row["ledger"])
    sign = spec["sign"]
    # the control line's side: debtors debited by a sale, creditors credited by a purchase
    side = 1 if row["ledger"] == "Sales" else -1
    control = DEBTORS_GL if side == 1 else gl_by_category(ctx, "creditors")
    gross = Decimal(data["GrossAmount"])
    lines = [line(control, side * sign * gross, data["InvoiceNumber"], IsControlLine=True)]
    for item in data["Lines"]["InvoiceLine"]:
        lines.append(
            line(
                item["GLAccountCode"],
                -side * sign * Decimal(item["NetAmount"]),
                item.get("StockItemDescription") or item.get("Notes"),
                TaxCode=item.get("TaxCode"),
                DepartmentID=item.get("DepartmentID"),
            )
        )
    tax = Decimal(data["TaxAmount"])
    if tax:
        lines.append(line(gl_by_category(ctx, "tax"), -side * sign * tax, "VAT", IsTaxLine=True))
    transaction_id = create_txn(
        ctx,
        type=spec["txn"],
        prefix=spec["prefix"],
        internal_number=row["invoice_number"],
        currency=data["CurrencyCode"],
        amount=sign * gross,
        account=account_by_id(ctx, row["account_id"]),
        external_reference=row["external_reference"],
        transaction_date=_date(data.get("InvoiceDate")) or ctx.now,
        exchange_rate=Decimal(data["ExchangeRate"]),
        invoice_id=row["id"],
        description=data.get("Notes"),
        department_id=data.get("DepartmentID"),
        lines=lines,
    )
    ctx.db.execute(
        "UPDATE invoice SET status = 'posted', transaction_id = ?, modified_at = ? WHERE id = ?",
        (transaction_id, iso(ctx.now), row["id"]),
    )
    return transaction_id


def _spec(kind: str, ledger: str) -> dict:
    return PURCHASES if ledger == "Purchases" and kind == "invoice" else KINDS[kind]


def _date(value) -> datetime | None:
    return parse_iso(value) if isinstance(value, str) else value


def record(ctx, row) -> dict:
    """The AIQ Invoice (or CreditNote) record of a saved or posted document."""
    data = loads(row["data"])
    data.update(
        InvoiceID=row["id"], Status=_STATUS[row["status"]], RowVersionNumber=row_version(row)
    )
    for item in data["Lines"]["InvoiceLine"]:
        item["InvoiceID"] = row["id"]
    if row["kind"] == "credit_note":
        for key in _INVOICE_ONLY:
            data.pop(key, None)
    else:
        account = account_by_id(ctx, row["account_id"])
        data["AccountCode"] = account["code"] if account else None
    return data


def batch_invoice(ctx, inv: dict | None) -> tuple[int, str]:
    """Post a batch sales invoice straight to the ledger; returns (transaction id, number)."""
    if not inv:
        raise AiqFailure("No invoice was sent.", VALIDATION)
    account = account_by_code(ctx, inv.get("CustomerCode"))
    currency = account["currency"]
    customer = loads(account["data"])
    raw_lines = (inv.get("Lines") or {}).get("BatchSalesInvoiceLine") or []
    if not raw_lines:
        raise AiqFailure("The invoice has no lines.", VALIDATION)
    lines, gross = [], Decimal(0)
    for number, item in enumerate(raw_lines, start=1):
        item = item or {}
        net = money(item.get("NetAmount"), currency, f"Line {number} NetAmount", positive=False)
        code = item.get("TaxCode") or None
        if code:
            tax_rate(ctx, code)  # an unknown tax code is refused, even with the VAT given
        if item.get("TaxAmount") is not None:
            tax = money(item["TaxAmount"], currency, f"Line {number} TaxAmount", positive=False)
        else:
            rate = item.get("TaxRate")
            rate = tax_rate(ctx, code) if rate is None and code else (rate or Decimal(0))
            tax = (net * rate / 100).quantize(CENT)
        gl = item.get("GLAccountCode") or customer.get("DefaultGLAccountCode") or "4000"
        gl_account(ctx, gl, f"Line {number} GLAccountCode")
        lines.append(
            line(gl, -net, item.get("Description"), TaxCode=code,
                 DepartmentID=item.get("DepartmentID"))
        )  # fmt: skip
        if tax:
            lines.append(line(gl_by_category(ctx, "tax"), -tax, "VAT", IsTaxLine=True))
        gross += net + tax
    if gross <= 0:
        raise AiqFailure("The invoice total must be greater than zero.", VALIDATION)
    lines.insert(0, line(DEBTORS_GL, gross, inv.get("Description"), IsControlLine=True))
    number = f"INV-{next_number(ctx.db, ctx.entity_id, 'INV', 1001)}"
    transaction_id = create_txn(
        ctx,
        type=SALES_INVOICE,
        prefix="INV",
        internal_number=number,
        currency=currency,
        amount=gross,
        account=account,
        external_reference=inv.get("ExternalReference") or None,
        transaction_date=inv.get("InvoiceDate") or ctx.now,
        exchange_rate=inv.get("ExchangeRate") or rate_for(ctx, currency),
        is_batch=True,
        description=inv.get("Description"),
        lines=lines,
    )
    return transaction_id, number
