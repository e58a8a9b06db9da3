"""OFX (1.x SGML and 2.x XML; what UK banks call "Money" or "Quicken OFX" downloads), read
with `ofxtools`.

Per statement (STMTRS, CCSTMTRS): the account (BANKID is the UK sort code, ACCTID the account
number), the currency (CURDEF), the period (DTSTART/DTEND) and the closing ledger balance
(LEDGERBAL). OFX has no opening balance, so the balance check cannot run; the closing balance
is kept. Per STMTTRN: signed TRNAMT, DTPOSTED, FITID (the bank's id, unique per account by the
OFX spec), NAME/PAYEE (payer), MEMO (narrative), REFNUM.
"""

import io
import logging
import re

from core.money import MoneyError, normalise_currency, to_decimal
from payments.sources.statement_rows import (
    ParsedStatement,
    RowError,
    StatementEntry,
    StatementError,
    StatementHeader,
)

# ofxtools logs every element it converts at INFO: 100,000 lines for a large file
logging.getLogger("ofxtools").setLevel(logging.WARNING)


def _sgml_fixups(content: bytes) -> bytes:
    """Quirks of banks' OFX 1.x seen in the wild that ofxtools refuses: blank lines or BOMs
    before the header, and `&` not escaped in names (A&B LTD)."""
    content = content.lstrip(b"\xef\xbb\xbf\r\n\t ")
    return re.sub(rb"&(?!(amp|lt|gt|quot|apos|#\d+);)", b"&amp;", content)


def _reference(value) -> str:
    """A REFNUM or CHECKNUM that says something: banks write CHECKNUM 0 (or 000000) on every
    transaction that is not a cheque, which is no reference."""
    text = (value or "").strip()
    return "" if not text.strip("0") else text


def read_ofx(content: bytes) -> tuple[ParsedStatement, list[StatementEntry]]:
    from ofxtools.Parser import OFXTree

    tree = OFXTree()
    try:
        tree.parse(io.BytesIO(_sgml_fixups(content)))
        document = tree.convert()
    except Exception as error:  # noqa: BLE001 - ofxtools raises many types on bad input
        raise StatementError(f"The OFX file cannot be read: {error}") from None
    parsed = ParsedStatement(file_format="ofx")
    entries: list[StatementEntry] = []
    number = 0
    for stmt in document.statements:
        account = stmt.account
        try:
            currency = normalise_currency(stmt.curdef)
        except MoneyError as error:
            raise StatementError(f"OFX statement currency: {error}") from None
        bank_id = getattr(account, "bankid", "") or ""
        tranlist = stmt.banktranlist
        ledger = getattr(stmt, "ledgerbal", None)
        header = StatementHeader(
            sort_code=bank_id if re.fullmatch(r"\d{6}", bank_id or "") else "",
            account_number=account.acctid if re.fullmatch(r"\d{6}", bank_id or "") else "",
            account_id=""
            if re.fullmatch(r"\d{6}", bank_id or "")
            else f"{bank_id} {account.acctid}".strip(),
            currency=currency,
            start_date=tranlist.dtstart.date()
            if tranlist is not None and tranlist.dtstart
            else None,
            end_date=tranlist.dtend.date() if tranlist is not None and tranlist.dtend else None,
            closing_balance=to_decimal(ledger.balamt) if ledger is not None else None,
        )
        index = len(parsed.statements)
        parsed.statements.append(header)
        for transaction in stmt.transactions:
            number += 1
            try:
                amount = to_decimal(transaction.trnamt)
                entry_currency = normalise_currency(
                    getattr(transaction, "currency", None)
                    and transaction.currency.cursym
                    or currency
                )
            except (MoneyError, AttributeError) as error:
                parsed.errors.append(RowError(number, "amount", f"transaction {number}: {error}"))
                continue
            payee = getattr(transaction, "payee", None)
            name = transaction.name or (payee.name if payee is not None else "") or ""
            entries.append(
                StatementEntry(
                    row=number,
                    booked=transaction.dtposted.date(),
                    amount=amount,
                    currency=entry_currency,
                    transaction_id=transaction.fitid or "",
                    bank_reference=_reference(transaction.refnum)
                    or _reference(transaction.checknum),
                    payer_name=name,
                    remittance=transaction.memo or name,
                    statement=index,
                    raw={"transaction": number, "type": transaction.trntype},
                )
            )
    if not parsed.statements:
        raise StatementError("The OFX file holds no bank or card statement.")
    parsed.row_count = number
    return parsed, entries
