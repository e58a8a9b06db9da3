"""BAI2 cash management balance reports, read with the `bai2` library.

A file holds groups (02, with the as-of date and default currency), each of accounts (03, with
summary and status codes: 010 opening ledger, 015 closing ledger) and their transaction details
(16: type code, amount in the currency's minor unit, bank and customer references, text).
Type codes 100-399 are credits, 400-699 debits (the library knows each code's direction). BAI2
entries carry no date of their own: the group's as-of date is their booking date. Integrity
(control totals in 49/98/99) is checked by the library; a file that fails it is refused.

Continuation records (88) are joined as the BAI2 specification (version 2, "Continuation
records") says: a record that ends with "/" ends its last field there, so the 88 begins the next
field; a record that does not (only a 16's text field may do so) is continued by the 88
directly, character for character, when it filled its record (the 01 record's physical record
length): NatWest's 80-character "...INTERNATIONAL-5373 CLIE" + "88,NT SECCY" is "CLIENT". A continued record shorter than that length was padded with spaces,
which belong to the text: the word ended there (the specification's own example: "...CORP.
LOCKBOX" + "88,DEPOSIT-MISC." in 65-character records). Lines reach the library stripped, so
that space is put back here. A file that gives no record length is cut at 80 columns, as
NatWest's is (its "CLIE" record is 80 characters long); a shorter record there is a line of
text of its own, joined with a space: Citi's UK BAI2 sends "FR:FP SIP INCOMING",
"ENDT:20150715", "TRID:..." as 88 records, which must not run together ("INCOMINGENDT:").
The bai2 library joins such text with a space ("CLIE NT"), so a detail's text is rebuilt here
from the records the library kept for it, the library still checking the file's integrity.
"""

from core.money import MoneyError, from_minor, normalise_currency
from payments.sources.statement_rows import (
    ParsedStatement,
    RowError,
    StatementEntry,
    StatementError,
    StatementHeader,
)

CARD_COLUMNS = 80  # the record width of a BAI2 file that does not give its own


def continued_text(detail, record_length: int | None = None) -> str:
    """A 16 record's text with its 88 continuations joined as the specification says."""
    text = detail.text or ""
    rows = [part for _, part in getattr(detail, "rows", ())]
    if len(rows) < 2:
        return text
    logical = previous = rows[0]
    for part in rows[1:]:
        # after "/" the 88 starts the next field; else it continues the field directly,
        # after the padding of a short fixed-length record ("16," / "88," are 3 characters)
        if logical.endswith("/"):
            logical = f"{logical[:-1]},{part}"
        else:
            # a record shorter than its length ended where the bank's line of text ended;
            # a full one was cut there. Variable-length files are cut at BAI2's 80 columns
            # (NatWest's "...CLIE" is 80 characters), and a shorter record is a line of its
            # own (Citi's "FR:FP SIP INCOMING" / "ENDT:20150715"), never run together
            padded = len(previous) + 3 < (record_length or CARD_COLUMNS)
            logical = f"{logical} {part}" if padded else logical + part
        previous = part
    if logical.endswith("/"):
        logical = logical[:-1]
    # the text is the last field and may hold commas: the library's text has as many commas
    # as ours, so the fields before it are the rest
    before = logical.count(",") - text.count(",")
    if before < 0:
        return text
    fields = logical.split(",", before)
    return fields[before] if len(fields) > before else ""


def read_bai2(content: bytes) -> tuple[ParsedStatement, list[StatementEntry]]:
    from bai2 import bai2 as library
    from bai2.constants import TypeCodeTransaction

    text = content.decode("utf-8-sig", errors="replace")
    try:
        document = library.parse_from_string(text, check_integrity=True)
    except Exception as error:  # noqa: BLE001 - the library raises its own and ValueError
        raise StatementError(f"The BAI2 file cannot be read: {error}") from None
    parsed = ParsedStatement(file_format="bai2")
    entries: list[StatementEntry] = []
    number = 0
    try:
        record_length = int(document.header.physical_record_length or 0) or None
    except (TypeError, ValueError):
        record_length = None
    for group in document.children:
        as_of = group.header.as_of_date
        for account in group.children:
            header = account.header
            try:
                currency = normalise_currency(header.currency or group.header.currency or "USD")
            except MoneyError as error:
                raise StatementError(
                    f"BAI2 account {header.customer_account_number}: {error}"
                ) from None
            balances = {
                s.type_code.code: s.amount
                for s in header.summary_items
                if s.type_code is not None and s.amount is not None
            }
            statement = StatementHeader(
                account_id=str(header.customer_account_number or ""),
                currency=currency,
                statement_id=f"{group.header.originator_id or ''}/{as_of:%Y-%m-%d}"
                if as_of
                else "",
                start_date=as_of,
                end_date=as_of,
                opening_balance=from_minor(int(balances["010"]), currency)
                if "010" in balances
                else None,
                closing_balance=from_minor(int(balances["015"]), currency)
                if "015" in balances
                else None,
            )
            index = len(parsed.statements)
            parsed.statements.append(statement)
            for detail in account.children:
                number += 1
                direction = detail.type_code.transaction if detail.type_code else None
                if direction not in (TypeCodeTransaction.credit, TypeCodeTransaction.debit):
                    parsed.skipped += 1  # a memo or status line, not money
                    continue
                try:
                    amount = from_minor(int(detail.amount or 0), currency)
                except (MoneyError, ValueError) as error:
                    parsed.errors.append(RowError(number, "amount", f"detail {number}: {error}"))
                    continue
                if as_of is None:
                    parsed.errors.append(RowError(number, "date", "the group has no as-of date"))
                    continue
                bank_ref = (detail.bank_reference or "").strip()
                customer_ref = (detail.customer_reference or "").strip()
                entries.append(
                    StatementEntry(
                        row=number,
                        booked=as_of,
                        amount=amount if direction == TypeCodeTransaction.credit else -amount,
                        currency=currency,
                        transaction_id=bank_ref,
                        bank_reference=bank_ref,
                        remittance=" ".join(
                            p
                            for p in (customer_ref, continued_text(detail, record_length).strip())
                            if p
                        ),
                        statement=index,
                        raw={"detail": number, "type_code": detail.type_code.code},
                    )
                )
    if not parsed.statements:
        raise StatementError("The BAI2 file holds no account.")
    parsed.row_count = number
    return parsed, entries
