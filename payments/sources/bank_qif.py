"""QIF (Quicken Interchange Format) bank exports, read by hand: no maintained Python reader
handles UK dates without dragging in a data-frame library, and the format is a few line codes.

A file is `!Type:Bank` (or Cash, CCard) then records of lines, each starting with a code:
D date, T or U amount (signed: money in positive), P payee, M memo, N number/reference,
L category, A address; `^` ends a record. Dates are day-first for UK/Irish banks
(03/02/2025 or 03/02'25 or 3/ 2/25); a format can set another. QIF has no account id and no
balances: the clerk chooses the bank account.
"""

import re
from datetime import date, datetime

from core.money import MoneyError, to_decimal
from payments.sources.statement_rows import (
    ParsedStatement,
    RowError,
    StatementEntry,
    StatementError,
    StatementHeader,
)

_DATE_FORMATS = ("%d/%m/%Y", "%d/%m/%y", "%d-%m-%Y", "%d-%m-%y", "%d.%m.%Y", "%Y-%m-%d")


def qif_date(text: str, formats=_DATE_FORMATS) -> date:
    cleaned = text.strip().replace("'", "/").replace(" ", "")
    for fmt in formats:
        try:
            return datetime.strptime(cleaned, fmt).date()
        except ValueError:
            continue
    raise ValueError(text)


def read_qif(
    content: bytes, *, currency: str = "GBP", day_first: bool = True
) -> tuple[ParsedStatement, list[StatementEntry]]:
    for encoding in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            text = content.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if not lines or not lines[0].strip().lower().startswith("!type:"):
        raise StatementError("This is not a QIF file (it must start with !Type:Bank).")
    kind = lines[0].strip()[6:].strip().lower()
    if kind not in ("bank", "cash", "ccard", "oth a", "oth l"):
        raise StatementError(f"QIF !Type:{kind} holds no bank transactions.")
    formats = _DATE_FORMATS if day_first else ("%m/%d/%Y", "%m/%d/%y", "%Y-%m-%d")
    parsed = ParsedStatement(file_format="qif", statements=[StatementHeader(currency=currency)])
    entries: list[StatementEntry] = []
    record: dict = {}
    start_line = 2
    number = 0
    for line_number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        code, value = line[0], line[1:].strip()
        if code != "^":
            record.setdefault(code, value)
            if code == "M" and record[code] != value:
                record[code] += " " + value
            continue
        number += 1
        entry = _entry(record, start_line, currency, formats)
        if isinstance(entry, RowError):
            parsed.errors.append(entry)
        elif entry is not None:
            entries.append(entry)
        record, start_line = {}, line_number + 1
    if record:
        raise StatementError(f"The QIF file ends inside a record (line {start_line}): missing ^.")
    parsed.row_count = number
    return parsed, entries


def _entry(record: dict, line: int, currency: str, formats) -> StatementEntry | RowError | None:
    raw_amount = record.get("T") or record.get("U")
    if raw_amount is None:
        return RowError(line, "amount", "record without an amount (T)")
    try:
        amount = to_decimal(raw_amount.replace(",", "").replace("£", "").replace("€", ""))
    except MoneyError:
        return RowError(line, "amount", f"{raw_amount!r} is not an amount")
    if amount <= 0:
        return StatementEntry(row=line, booked=date.min, amount=amount, currency=currency)
    try:
        booked = qif_date(record.get("D", ""), formats)
    except ValueError:
        return RowError(line, "date", f"{record.get('D', '')!r} is not a date like 03/02/2025")
    payee = record.get("P", "")
    return StatementEntry(
        row=line,
        booked=booked,
        amount=amount,
        currency=currency,
        bank_reference=record.get("N", ""),
        payer_name=payee,
        remittance=re.sub(r"\s+", " ", record.get("M") or payee),
        raw={"line": line},
    )
