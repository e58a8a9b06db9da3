"""Bank statements and SmartDebit collection reports (CSV or Excel) -> normalised payments.

The file's columns are mapped to our fields by a saved ImportFormat. Quoting and delimiters
are the csv module's business and cells are openpyxl's; nothing here parses quotes by hand.
Every row is validated and each error names the row (as a spreadsheet shows it: the header is
row 1) and the field. Money becomes Decimal through core.money, never a float.
"""

import csv
import hashlib
import io
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal

from core.money import MoneyError, exact, normalise_currency, to_decimal
from payments.sources.normalised import NormalisedPayment

# Our fields and what they mean; a format maps each to one of the file's column headers.
FIELDS = {
    "date": "Date the money arrived (required)",
    "amount": "Amount received (or use credit/debit)",
    "credit": "Money in column, when the file splits in and out",
    "debit": "Money out column (rows with only a debit are skipped)",
    "reference": "Narrative / payment reference",
    "payer_name": "Payer or account name",
    "currency": "Currency code (else the format's currency)",
    "external_id": "The bank's own transaction id, when it has one",
}
MAX_ROWS = 50_000
MAX_BYTES = 20 * 1024 * 1024


class StatementError(ValueError):
    """The file as a whole cannot be read (wrong type, missing columns, empty)."""


@dataclass
class RowError:
    row: int
    field: str
    message: str

    def as_dict(self) -> dict:
        return {"row": self.row, "field": self.field, "message": self.message}

    def __str__(self) -> str:
        return f"Row {self.row}, {self.field}: {self.message}"


@dataclass
class ParsedStatement:
    items: list[NormalisedPayment] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    skipped: int = 0  # money-out and empty rows
    row_count: int = 0


def read_table(content: bytes, filename: str) -> list[list]:
    """The file's rows (header first) as lists of cells (str, or date/number from Excel)."""
    if len(content) > MAX_BYTES:
        raise StatementError(f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB.")
    if filename.lower().endswith((".xlsx", ".xlsm")):
        return _read_excel(content)
    for encoding in ("utf-8-sig", "cp1252", "latin-1"):  # latin-1 never fails
        try:
            text = content.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    if "\x00" in text:
        raise StatementError("This is not a text (CSV) file; upload CSV or .xlsx.")
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    return [row for row in csv.reader(io.StringIO(text, newline=""), dialect)]


def _read_excel(content: bytes) -> list[list]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception:  # noqa: BLE001 - openpyxl raises many types for a bad file
        raise StatementError("The Excel file cannot be opened (is it .xlsx?).") from None
    sheet = book.worksheets[0]
    return [list(row) for row in sheet.iter_rows(values_only=True)]


def _cell_text(value) -> str:
    if value is None:
        return ""
    return str(value).strip()


def _parse_date(value, fmt: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return datetime.strptime(_cell_text(value), fmt).date()


def _parse_amount(value, decimal_comma: bool) -> Decimal | None:
    if value is None or _cell_text(value) == "":
        return None
    if isinstance(value, float):
        value = repr(value)  # Excel numbers: the shortest exact decimal text, then Decimal
    elif isinstance(value, int):
        value = str(value)
    text = _cell_text(value).replace("£", "").replace("€", "").replace("$", "").replace(" ", "")
    if decimal_comma:
        text = text.replace(".", "").replace(",", ".")
    else:
        text = text.replace(",", "")
    if text.startswith("(") and text.endswith(")"):
        text = "-" + text[1:-1]
    return to_decimal(text)


def row_external_id(source: str, values: tuple, occurrence: int) -> str:
    """Stable id of a row: the same transaction in two overlapping statements gets the same
    id (duplicate), two identical rows in one file do not (occurrence counts them)."""
    digest = hashlib.sha256(repr((source, values, occurrence)).encode()).hexdigest()
    return f"row:{digest[:40]}"


def parse_statement(
    rows: list[list],
    *,
    source: str,
    column_map: dict,
    date_format: str,
    decimal_comma: bool,
    currency: str,
) -> ParsedStatement:
    if not rows:
        raise StatementError("The file is empty.")
    header = [_cell_text(h) for h in rows[0]]
    index = {}
    for our_field, column in column_map.items():
        if our_field not in FIELDS:
            raise StatementError(f"The format maps an unknown field {our_field!r}.")
        if column not in header:
            raise StatementError(
                f"Column {column!r} (for {our_field}) is not in the file's header row: "
                f"{', '.join(h for h in header if h) or 'no headers'}."
            )
        index[our_field] = header.index(column)
    if "date" not in index or not ({"amount", "credit"} & index.keys()):
        raise StatementError("The format must map a date and an amount (or credit) column.")
    if len(rows) - 1 > MAX_ROWS:
        raise StatementError(f"The file has more than {MAX_ROWS} rows; split it.")
    result = ParsedStatement(row_count=len(rows) - 1)
    seen = Counter()
    for number, row in enumerate(rows[1:], start=2):
        if not any(_cell_text(c) for c in row):
            result.skipped += 1
            continue

        def cell(name, row=row):
            position = index.get(name)
            return row[position] if position is not None and position < len(row) else None

        errors = []
        try:
            row_currency = normalise_currency(_cell_text(cell("currency")) or currency)
        except MoneyError as error:
            errors.append(RowError(number, "currency", str(error)))
            row_currency = None
        try:
            when = _parse_date(cell("date"), date_format)
        except (ValueError, TypeError):
            errors.append(
                RowError(
                    number,
                    "date",
                    f"{_cell_text(cell('date'))!r} is not a "
                    f"date like {date.today().strftime(date_format)}",
                )
            )
            when = None
        amount = None
        amount_field = "amount" if "amount" in index else "credit"
        try:
            amount = _parse_amount(cell(amount_field), decimal_comma)
            debit = _parse_amount(cell("debit"), decimal_comma) if "debit" in index else None
        except MoneyError:
            errors.append(
                RowError(
                    number, amount_field, f"{_cell_text(cell(amount_field))!r} is not an amount"
                )
            )
            debit = None
        if not errors and amount is None:
            if debit:
                result.skipped += 1  # money out: not a payment to us
                continue
            errors.append(RowError(number, amount_field, "no amount"))
        if not errors and amount <= 0:
            result.skipped += 1  # a debit in a signed amount column
            continue
        if not errors and row_currency:
            try:
                amount = exact(amount, row_currency)
            except MoneyError as error:
                errors.append(RowError(number, amount_field, str(error)))
        if errors:
            result.errors.extend(errors)
            continue
        reference = _cell_text(cell("reference"))[:500]
        values = tuple(_cell_text(c) for c in row)
        own_id = _cell_text(cell("external_id"))
        if own_id:
            external_id = f"id:{own_id}"[:100]
        else:
            key = (when.isoformat(), str(amount), row_currency, reference, values)
            seen[key] += 1
            external_id = row_external_id(source, key, seen[key])
        result.items.append(
            NormalisedPayment(
                source=source,
                external_id=external_id,
                amount=amount,
                currency=row_currency,
                received_at=datetime.combine(when, time(12, 0), tzinfo=UTC),
                payer_name=_cell_text(cell("payer_name"))[:200],
                description=reference,
                references=[{"source": "bank.narrative", "value": reference}] if reference else [],
                raw={"row": number, "cells": list(values)},
            )
        )
    return result
