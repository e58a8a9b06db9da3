"""Bank statements and SmartDebit collection reports (CSV or Excel) -> normalised payments.

The file's columns are mapped to our fields by a saved ImportFormat. Quoting and delimiters
are the csv module's business and cells are openpyxl's; nothing here parses quotes by hand.
Every row is validated and each error names the row (as a spreadsheet shows it: the header is
row 1) and the field. Money becomes Decimal through core.money, never a float.
"""

import csv
import io
import re
from datetime import date, datetime
from decimal import Decimal

from core.money import MoneyError, normalise_currency, to_decimal
from payments.sources.statement_rows import (
    ParsedStatement,
    RowError,
    StatementEntry,
    StatementError,
    StatementHeader,
    row_external_id,
)

__all__ = ["ParsedStatement", "RowError", "StatementError", "row_external_id"]

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
    "indicator": "Debit/credit indicator column (C/CR/Credit = money in, D/DR/Debit = out)",
    "payer_account": "Payer's account (IBAN, or sort code and account number)",
    "bank_reference": "The bank's reference for the entry",
    "payer_reference": "Direct Debit payer reference (SmartDebit / Bacs)",
    "status": "Collection status (rows not collected, e.g. Failed, are not money in)",
}
# a status column's values that mean the money did not arrive (SmartDebit collection reports)
NOT_COLLECTED = frozenset(
    {
        "FAILED",
        "UNPAID",
        "REJECTED",
        "CANCELLED",
        "CANCELED",
        "RETURNED",
        "PENDING",
        "REFERRED",
        # Revolut Business's State column: money that never arrived or went back
        "DECLINED",
        "REVERTED",
    }
)
# Columns may be named by position instead of header ("#1" = first column), for exports
# without a header row (HSBC's CSV is date, description, amount).
POSITION = re.compile(r"^#(\d+)$")
CREDIT_MARKS = frozenset({"C", "CR", "CRDT", "CREDIT", "RC", "PAID IN", "IN", "+"})
DEBIT_MARKS = frozenset({"D", "DR", "DBIT", "DEBIT", "RD", "PAID OUT", "OUT", "-"})
HEADER_SEARCH_ROWS = 30
MAX_ROWS = 200_000
MAX_BYTES = 64 * 1024 * 1024  # a 100,000-entry camt.053 is about 45 MB


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
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    try:
        return list(reader)
    except csv.Error as error:  # e.g. a cell over csv.field_size_limit() (131,072 characters)
        raise StatementError(
            f"Line {reader.line_num} of the file cannot be read as CSV: {error}."
        ) from None


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
    text = _cell_text(value)
    *others, last = fmt.split("|")  # "%d %b %Y|%d/%m/%Y": the bank has used both
    for one in others:
        try:
            return datetime.strptime(text, one).date()
        except ValueError:
            continue
    return datetime.strptime(text, last).date()


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


def _header_index(rows: list[list], column_map: dict, header_row: int) -> tuple[int, dict]:
    """(index of the header row or -1 when every column is positional, our field -> column)."""
    for our_field in column_map:
        if our_field not in FIELDS:
            raise StatementError(f"The format maps an unknown field {our_field!r}.")
    named = {f: c for f, c in column_map.items() if not POSITION.match(str(c))}
    index = {
        f: int(POSITION.match(str(c)).group(1)) - 1 for f, c in column_map.items() if f not in named
    }
    if not named:
        return (header_row - 1 if header_row else -1), index
    if header_row:
        candidates = [header_row - 1] if header_row - 1 < len(rows) else []
    else:  # find it: the first row holding every named column (preambles come first)
        candidates = range(min(len(rows), HEADER_SEARCH_ROWS))
    # a column may be named by alternatives, "Description1|Description": the bank renamed it
    # between versions of its export; the first the header holds is read
    spellings = {
        f: [name.strip().casefold() for name in str(c).split("|") if name.strip()]
        for f, c in named.items()
    }
    for position in candidates:
        header = [_cell_text(h).casefold() for h in rows[position]]
        present = set(header)
        found = {
            f: next((n for n in names if n in present), None) for f, names in spellings.items()
        }
        if all(found.values()):
            index.update({f: header.index(name) for f, name in found.items()})
            return position, index
    header = [_cell_text(h) for h in rows[candidates[0]]] if candidates else []
    present = {h.casefold() for h in header}
    missing = [
        f"{c!r} (for {f})"
        for f, c in named.items()
        if not any(name in present for name in spellings[f])
    ]
    where = f"row {header_row}" if header_row else f"the first {HEADER_SEARCH_ROWS} rows"
    raise StatementError(
        f"Column {missing[0] if missing else repr(next(iter(named.values())))} is not in the "
        f"file's header row ({where}): {', '.join(h for h in header if h) or 'no headers'}."
    )


def parse_statement(
    rows: list[list],
    *,
    source: str,
    column_map: dict,
    date_format: str,
    decimal_comma: bool,
    currency: str,
    header_row: int = 0,
    amounts_inverted: bool = False,
) -> tuple[ParsedStatement, list[StatementEntry]]:
    """A CSV/Excel table through a saved layout -> statement entries (row errors collected).

    Direction first: a money-out row (a debit cell, a negative signed amount, a D indicator)
    is skipped before its other cells are checked, so a pending card payment with no date
    does not reject a whole file."""
    if not rows:
        raise StatementError("The file is empty.")
    header_at, index = _header_index(rows, column_map, header_row)
    if "date" not in index or not ({"amount", "credit"} & index.keys()):
        raise StatementError("The format must map a date and an amount (or credit) column.")
    body = rows[header_at + 1 :]
    if len(body) > MAX_ROWS:
        raise StatementError(f"The file has more than {MAX_ROWS} rows; split it.")
    parsed = ParsedStatement(file_format="csv", row_count=len(body))
    entries: list[StatementEntry] = []
    amount_field = "amount" if "amount" in index else "credit"
    for number, row in enumerate(body, start=header_at + 2):
        if not any(_cell_text(c) for c in row):
            parsed.skipped += 1
            continue

        def cell(name, row=row):
            position = index.get(name)
            return row[position] if position is not None and position < len(row) else None

        errors = []
        amount = debit = None
        try:
            amount = _parse_amount(cell(amount_field), decimal_comma)
        except MoneyError:
            errors.append(
                RowError(
                    number, amount_field, f"{_cell_text(cell(amount_field))!r} is not an amount"
                )
            )
        if "debit" in index:
            try:
                debit = _parse_amount(cell("debit"), decimal_comma)
            except MoneyError:
                errors.append(
                    RowError(number, "debit", f"{_cell_text(cell('debit'))!r} is not an amount")
                )
        if "indicator" in index and amount is not None:
            mark = _cell_text(cell("indicator")).upper()
            if mark in DEBIT_MARKS:
                amount = -abs(amount)
            elif mark in CREDIT_MARKS:
                amount = abs(amount)
            else:
                errors.append(
                    RowError(
                        number,
                        "indicator",
                        f"{_cell_text(cell('indicator'))!r} is neither credit (C, CR) nor "
                        "debit (D, DR)",
                    )
                )
        if amounts_inverted and amount is not None:
            amount = -amount
        if not errors and amount is None:
            if debit:
                parsed.skipped += 1  # money out: not a payment to us
                continue
            errors.append(RowError(number, amount_field, "no amount"))
        if not errors and amount <= 0:
            parsed.skipped += 1  # a debit in a signed amount column
            continue
        if "status" in index and _cell_text(cell("status")).upper() in NOT_COLLECTED:
            parsed.skipped += 1  # not collected: no money in (a return is its own report)
            continue
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
                    f"date like {date.today().strftime(date_format.split('|')[0])}",
                )
            )
        if errors:
            parsed.errors.extend(errors)
            continue
        entries.append(
            StatementEntry(
                row=number,
                booked=when,
                amount=amount,
                currency=row_currency,
                transaction_id=_cell_text(cell("external_id")),
                bank_reference=_cell_text(cell("bank_reference")),
                payer_name=_cell_text(cell("payer_name")),
                payer_account=_cell_text(cell("payer_account")),
                payer_reference=_cell_text(cell("payer_reference")),
                remittance=_cell_text(cell("reference"))[:500],
                raw={"cells": [_cell_text(c) for c in row]},
                amount_field=amount_field,
            )
        )
    parsed.statements.append(StatementHeader(currency=currency))
    return parsed, entries
