"""QIF (Quicken Interchange Format) bank exports, read by hand: no maintained Python reader
handles UK dates without dragging in a data-frame library, and the format is a few line codes.

A file is `!Type:Bank` (or Cash, CCard) then records of lines, each starting with a code
(Quicken and GnuCash exports add lists and other sections first: see read_qif):
D date, T or U amount (signed: money in positive), P payee, M memo, N number/reference,
L category, A address; `^` ends a record. Dates are day-first for UK/Irish banks
(03/02/2025 or 03/02'25 or 3/ 2/25); a format can set another. QIF has no account id and no
balances: the clerk chooses the bank account.
"""

import html
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


_MONEY_SECTIONS = ("bank", "cash", "ccard", "oth a", "oth l")


def read_qif(
    content: bytes, *, currency: str = "GBP", day_first: bool = True
) -> tuple[ParsedStatement, list[StatementEntry]]:
    """Every record of the file's bank, cash and card sections (`!Type:Bank` …). A Quicken or
    GnuCash export also holds lists (`!Type:Cat`, `!Account`, `!Option:AutoSwitch`) and other
    sections (`!Type:Invst`): those records are not money and are passed over. Each money
    section is a statement of its own (the account the `!Account` before it names)."""
    for encoding in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            text = content.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if not lines or not lines[0].strip().startswith("!"):
        raise StatementError("This is not a QIF file (it must start with !Type:Bank).")
    formats = _DATE_FORMATS if day_first else ("%m/%d/%Y", "%m/%d/%y", "%Y-%m-%d")
    parsed = ParsedStatement(file_format="qif")
    entries: list[StatementEntry] = []
    record: dict = {}
    start_line = 1
    number = 0
    section, account_name, kinds = "", "", []
    for line_number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if line.startswith("!"):
            if record:
                raise StatementError(f"The QIF file ends a record without ^ (line {start_line}).")
            header = line.strip()[1:].lower()
            if header.startswith("type:"):
                section = header[5:].strip()
                kinds.append(section)
                if section in _MONEY_SECTIONS:
                    parsed.statements.append(
                        StatementHeader(currency=currency, account_name=account_name[:100])
                    )
            elif header == "account":
                section = "account"
            # !Option:AutoSwitch / !Clear:AutoSwitch only frame the account list
            start_line = line_number + 1
            continue
        code, value = line[0], line[1:].strip()
        if code != "^":
            record.setdefault(code, value)
            if code == "M" and record[code] != value:
                record[code] += " " + value
            continue
        if section == "account":
            account_name = record.get("N", "")
        elif section in _MONEY_SECTIONS:
            number += 1
            entry = _entry(record, start_line, currency, formats)
            if isinstance(entry, RowError):
                parsed.errors.append(entry)
            elif entry is not None:
                entry.statement = len(parsed.statements) - 1
                entries.append(entry)
        record, start_line = {}, line_number + 1
    if record:
        raise StatementError(f"The QIF file ends inside a record (line {start_line}): missing ^.")
    if not parsed.statements:
        found = ", ".join(f"!Type:{k}" for k in kinds) or "no !Type: section"
        raise StatementError(f"The QIF file holds no bank transactions ({found}).")
    parsed.row_count = number
    return parsed, entries


def _text(value: str, amount) -> str:
    """A payee or memo as a person reads it: HTML entities some banks write decoded (Santander
    UK's `R&amp;D`), runs of spaces made one, and the amount some banks append to the payee
    (Santander UK's `FASTER PAYMENTS RECEIPT        , 1200.00`) taken off."""
    text = re.sub(r"\s+", " ", html.unescape(value or "")).strip()
    trailing = re.search(r"\s*,\s*([\d,]+\.\d+)$", text)
    if trailing:
        try:
            if to_decimal(trailing.group(1).replace(",", "")) == abs(amount):
                text = text[: trailing.start()].strip()
        except MoneyError:
            pass
    return text


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
    payee = _text(record.get("P", ""), amount)
    return StatementEntry(
        row=line,
        booked=booked,
        amount=amount,
        currency=currency,
        bank_reference=record.get("N", ""),
        payer_name=payee,
        remittance=_text(record.get("M", ""), amount) or payee,
        raw={"line": line},
    )
