"""Invoice files (CSV/Excel) -> normalised invoices, through a source's saved column mapping.

One row per invoice line; rows with the same external reference make one invoice and must
agree on its header (customer, dates, currency). Every problem is named with its row number
(as a spreadsheet shows it), so a preview lists them all; a file with any error imports nothing.
"""

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from core.money import MoneyError
from payments.sources.bank_csv import _cell_text, _parse_amount, _parse_date, read_table
from payments.sources.statement_rows import StatementError
from sales.normalised import NormalisedInvoice, NormalisedLine, NormalisedPaid

# our field -> required?
FIELDS = {
    "external_reference": True,
    "customer_code": True,
    "customer_name": True,
    "invoice_date": True,
    "currency": True,
    "net": True,
    "tax": True,
    "tax_code": False,
    "due_date": False,
    "customer_email": False,
    "description": False,
    "line_description": False,
    "item_code": False,
    "department": False,
    "gl_account_code": False,
    "order_number": False,
    "delivery_date": False,
    "quantity": False,
    "deferred_months": False,
    # an already-paid order (a web shop's or a checkout's sale): the money it was paid with,
    # posted with the invoice and allocated to it (PostPayAndAllocateSalesInvoice)
    "paid_amount": False,
    "paid_date": False,
    "payment_reference": False,
    "bank_account": False,
}
HEADER_FIELDS = (
    "customer_code",
    "customer_name",
    "invoice_date",
    "due_date",
    "currency",
    "paid_amount",
    "paid_date",
    "payment_reference",
    "bank_account",
)
PAID_FIELDS = ("paid_amount", "paid_date", "payment_reference", "bank_account")


@dataclass
class ParsedFile:
    invoices: list[NormalisedInvoice] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    rows: int = 0


def _columns(header: list, column_map: dict) -> tuple[dict[str, int], list[str]]:
    names = [_cell_text(h).lower() for h in header]
    found, errors = {}, []
    for ours, required in FIELDS.items():
        theirs = column_map.get(ours)
        if not theirs:
            if required:
                errors.append(f"the source's layout does not map {ours}")
            continue
        if str(theirs).lower() not in names:
            errors.append(f"column {theirs!r} ({ours}) is not in the file's header row")
            continue
        found[ours] = names.index(str(theirs).lower())
    return found, errors


def _paid(text: dict, paid_amount, paid_date, invoice_date, default_bank: str, problems: list):
    """The row's payment (an already-paid order), or None when it names none."""
    given = [name for name in PAID_FIELDS if text.get(name)]
    if not given:
        return None
    if paid_amount is None:
        problems.append(
            f"{', '.join(n.replace('_', ' ') for n in given)} given but the paid amount is empty"
        )
        return None
    if not text.get("payment_reference"):
        problems.append("a paid order needs its payment reference (the card or bank payment)")
        return None
    return NormalisedPaid(
        amount=paid_amount,
        bank_account_code=text.get("bank_account", "").upper() or default_bank,
        reference=text["payment_reference"][:100],
        paid_on=paid_date or invoice_date,
    )


def parse_invoices(
    content: bytes, filename: str, *, column_map: dict, date_format: str, default_bank: str = ""
):
    """`default_bank`: the AIQ bank account a paid order's money went into when its row
    names none (the company's default receiving bank)."""
    result = ParsedFile()
    try:
        table = read_table(content, filename)
    except StatementError as error:
        result.errors.append(str(error))
        return result
    table = [row for row in table if any(_cell_text(c) for c in row)]
    if not table:
        result.errors.append("the file is empty")
        return result
    columns, errors = _columns(table[0], column_map)
    if errors:
        result.errors += errors
        return result
    grouped: dict[str, NormalisedInvoice] = {}
    header_of: dict[str, tuple] = {}
    for number, row in enumerate(table[1:], start=2):
        result.rows += 1
        cells = {k: (row[i] if i < len(row) else None) for k, i in columns.items()}
        text = {k: _cell_text(v) for k, v in cells.items()}
        problems = []

        def day(name, required=False, cells=cells, text=text, problems=problems) -> date | None:
            if not text.get(name):
                if required:
                    problems.append(f"{name.replace('_', ' ')} is empty")
                return None
            try:
                return _parse_date(cells[name], date_format)
            except ValueError:
                problems.append(
                    f"{name.replace('_', ' ')} {text[name]!r} is not a {date_format} date"
                )
                return None

        def amount(name, problems=problems, cells=cells, required=True) -> Decimal | None:
            try:
                value = _parse_amount(cells.get(name), False)
            except MoneyError as error:
                problems.append(f"{name.replace('_', ' ')}: {error}")
                return Decimal(0)
            if value is None and required:
                problems.append(f"{name.replace('_', ' ')} is empty")
                return Decimal(0)
            return value

        reference = text.get("external_reference", "")
        if not reference:
            problems.append("external reference is empty")
        code = text.get("customer_code", "").upper()  # AIQ's codes are upper case
        invoice_date = day("invoice_date", required=True)
        due_date = day("due_date")
        delivery = day("delivery_date")
        net, tax = amount("net"), amount("tax")
        paid_amount = amount("paid_amount", required=False) if text.get("paid_amount") else None
        paid_date = day("paid_date")
        quantity = Decimal(1)
        if text.get("quantity"):
            try:
                quantity = _parse_amount(cells["quantity"], False) or Decimal(1)
            except MoneyError as error:
                problems.append(f"quantity: {error}")
        deferred = None
        if text.get("deferred_months"):
            if text["deferred_months"].isascii() and text["deferred_months"].isdigit():
                deferred = int(text["deferred_months"])
            else:
                problems.append(f"deferred months: {text['deferred_months']!r} is not a number")
        line = NormalisedLine(
            net_amount=net,
            tax_amount=tax,
            tax_code=text.get("tax_code", "").upper(),
            description=text.get("line_description", "") or text.get("description", ""),
            item_code=text.get("item_code", ""),
            department=text.get("department", ""),
            gl_account_code=text.get("gl_account_code", ""),
            order_number=text.get("order_number", ""),
            delivery_date=delivery,
            quantity=quantity,
            deferred_months=deferred,
        )
        header = (
            code,
            text.get("customer_name", ""),
            invoice_date,
            due_date,
            text.get("currency", "").upper(),
            paid_amount,
            paid_date,
            text.get("payment_reference", ""),
            text.get("bank_account", "").upper(),
        )
        paid = _paid(text, paid_amount, paid_date, invoice_date, default_bank, problems)
        if reference and reference in grouped:
            if header != header_of[reference]:
                first = grouped[reference].rows[0]
                differ = [
                    HEADER_FIELDS[i].replace("_", " ")
                    for i, (a, b) in enumerate(zip(header, header_of[reference], strict=True))
                    if a != b
                ]
                problems.append(
                    f"invoice {reference} has a different {', '.join(differ)} than on row {first}"
                )
        if problems:
            result.errors += [f"row {number}: {p}" for p in problems]
            continue
        invoice = grouped.get(reference)
        if invoice is None:
            invoice = grouped[reference] = NormalisedInvoice(
                external_reference=reference,
                customer_code=code,
                customer_name=header[1],
                invoice_date=invoice_date,
                due_date=due_date,
                currency=header[4],
                customer_email=text.get("customer_email", ""),
                description=text.get("description", ""),
                paid=paid,
            )
            header_of[reference] = header
        invoice.lines.append(line)
        invoice.rows.append(number)
    for invoice in grouped.values():
        rows = ", ".join(str(r) for r in invoice.rows)
        result.errors += [
            f"rows {rows} ({invoice.external_reference}): {e}" for e in invoice.check()
        ]
    result.invoices = list(grouped.values())
    return result
