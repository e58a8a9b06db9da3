"""SWIFT MT940 statements (Lloyds, NatWest Bankline, Barclays, HSBC, AIB, Bank of Ireland and
every other bank that sends them), read with the `mt-940` library.

One statement per :20: block (mt940.parse_statements), with the account (:25:, which UK banks
write as IBAN, as "sortcode accountnumber" or as 14 digits), the opening (:60F:/:60M:) and
closing (:62F:/:62M:) balances and per :61: line its amount (signed by C/D, RC/RD reversals
included), booking date, the customer's and the bank's references, and the :86: narrative,
where a structured :86: (/ORDP/, /NAME/, /REMI/, ?20..?33 subfields) gives the payer's name,
account and remittance text. SWIFT envelope blocks ({1:}{2:}{4:...-}) are removed first.
"""

import re
from datetime import date

import mt940

from core.money import MoneyError, normalise_currency, to_decimal
from payments.sources.statement_rows import (
    ParsedStatement,
    RowError,
    StatementEntry,
    StatementError,
    StatementHeader,
    payer_account_text,
)

_ENVELOPE = re.compile(r"\{[1-3]:[^{}]*(\{[^{}]*\}[^{}]*)*\}")
_FIELD_SLASH = re.compile(r"/(ORDP|NAME|REMI|EREF|IBAN|BENM|ACCW|ADDR)/+([^/]*)")
_GERMAN = re.compile(r"\?(\d\d)([^?]*)")


def _clean(text: str) -> str:
    text = _ENVELOPE.sub("", text)
    text = text.replace("{4:", "").replace("-}", "")
    # a few banks end lines with CR only, or start with blank lines
    return (
        "\n".join(
            line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        ).strip()
        + "\n"
    )


def _details(text: str) -> dict:
    """Payer name/account and remittance from a structured :86:, else the text as narrative."""
    found = {}
    flat = (text or "").replace("\n", "")
    for code, value in _FIELD_SLASH.findall(flat):
        found.setdefault(code, value.strip())
    german = (
        dict(_GERMAN.findall(flat))
        if flat.startswith(("?", "0", "1", "2", "8", "9")) and "?" in flat
        else {}
    )
    name = (
        found.get("ORDP")
        or found.get("NAME")
        or " ".join(german.get(k, "") for k in ("32", "33")).strip()
    )
    account = found.get("IBAN") or german.get("31", "")
    remittance = found.get("REMI") or "".join(german.get(f"{n}", "") for n in range(20, 30)).strip()
    return {
        "payer_name": name,
        "payer_account": payer_account_text(other=account),
        "remittance": remittance or re.sub(r"\s+", " ", text or "").strip(),
        "end_to_end_id": found.get("EREF", ""),
    }


def _balance(value):
    if value is None:
        return None, ""
    return to_decimal(value.amount.amount), normalise_currency(value.amount.currency)


def read_mt940(content: bytes) -> tuple[ParsedStatement, list[StatementEntry]]:
    text = None
    for encoding in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            text = content.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    try:
        blocks = mt940.parse_statements(_clean(text))
    except Exception as error:  # noqa: BLE001 - the library raises many types on bad input
        raise StatementError(f"The MT940 file cannot be read: {error}") from None
    parsed = ParsedStatement(file_format="mt940")
    entries: list[StatementEntry] = []
    number = 0
    for block in blocks:
        data = block.data
        if not data.get("account_identification") and not len(block):
            continue
        try:
            opening, currency = _balance(
                data.get("final_opening_balance") or data.get("intermediate_opening_balance")
            )
            closing, closing_currency = _balance(
                data.get("final_closing_balance") or data.get("intermediate_closing_balance")
            )
        except MoneyError as error:
            raise StatementError(f"The MT940 file has a bad balance: {error}") from None
        header = StatementHeader(
            account_id=(data.get("account_identification") or "").strip(),
            currency=currency or closing_currency,
            statement_id="/".join(
                p for p in (data.get("transaction_reference"), data.get("statement_number")) if p
            ),
            opening_balance=opening,
            closing_balance=closing,
            opening_currency=currency or "",
            closing_currency=closing_currency or "",
        )
        index = len(parsed.statements)
        parsed.statements.append(header)
        dates = []
        for transaction in block:
            number += 1
            t = transaction.data
            try:
                amount = to_decimal(t["amount"].amount)
                entry_currency = normalise_currency(t["amount"].currency or header.currency)
            except (MoneyError, KeyError, AttributeError) as error:
                parsed.errors.append(RowError(number, "amount", f"transaction {number}: {error}"))
                continue
            booked = t.get("entry_date") or t.get("date")
            if booked is None:
                parsed.errors.append(RowError(number, "date", f"transaction {number} has no date"))
                continue
            booked = _as_date(booked)
            dates.append(booked)
            details = _details(t.get("transaction_details") or "")
            # "NONREF" is SWIFT's word for "no reference" in either place (PostFinance writes
            # //NONREF as the bank's reference): never shown or sent to AIQ as one
            customer = _reference(t.get("customer_reference"))
            bank_ref = _reference(t.get("bank_reference"))
            remittance = details["remittance"]
            if customer and customer not in remittance:
                remittance = f"{customer} {remittance}".strip()
            entries.append(
                StatementEntry(
                    row=number,
                    booked=booked,
                    amount=amount,
                    currency=entry_currency,
                    transaction_id="",  # :61: bank references are not unique across days
                    bank_reference=bank_ref or customer,
                    payer_name=details["payer_name"],
                    payer_account=details["payer_account"],
                    remittance=remittance,
                    end_to_end_id=details["end_to_end_id"],
                    statement=index,
                    raw={"transaction": number, "extra": (t.get("extra_details") or "")[:200]},
                )
            )
        if dates:
            header.start_date, header.end_date = min(dates), max(dates)
    if not parsed.statements:
        raise StatementError("The MT940 file holds no statement (:20: ... :62F:).")
    parsed.row_count = number
    return parsed, entries


def _reference(value) -> str:
    text = (value or "").strip()
    return "" if text.upper() == "NONREF" else text


def _as_date(value) -> date:
    return date(value.year, value.month, value.day)  # mt940's Date is a date subclass
