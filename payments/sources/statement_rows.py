"""The one shape every statement file is read into, and from it the payments.

Each format's reader (CSV/Excel layouts, camt.052/053/054, MT940, BAI2, OFX, QIF) produces
StatementEntry rows (signed amounts: money in positive) and a StatementHeader per statement
in the file (the account, the period, opening and closing balances). `statement_items` turns
them into NormalisedPayments the same way for every format:

- money out is counted as skipped, never a payment;
- the balance check: opening + every entry = closing, or the file is refused with the numbers;
- a SmartDebit collection's id is its payer reference, debit date and amount, so the portal's
  report and SmartDebit's API make one payment of it, whichever arrives first;
- ids: a bank's transaction id is unique per bank account (the statement's account), not per
  bank, so two accounts' files never collide; an entry without one gets a stable hash of its
  date, amount, texts and account, counted per occurrence so two identical entries in one
  file stay two payments while the same entry in an overlapping statement is a duplicate.
"""

import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from functools import lru_cache

from core.gcpause import gc_paused
from core.money import MoneyError, exact, exponent, normalise_currency
from payments.sources.normalised import NormalisedPayment

MAX_ENTRIES = 200_000


class StatementError(ValueError):
    """The file as a whole cannot be read (wrong type, missing columns, empty, unbalanced)."""


@dataclass
class RowError:
    row: int
    field: str
    message: str

    def as_dict(self) -> dict:
        return {"row": self.row, "field": self.field, "message": self.message}

    def __str__(self) -> str:
        if not self.row:
            return f"{self.field}: {self.message}"
        return f"Row {self.row}, {self.field}: {self.message}"


@dataclass(slots=True)
class StatementEntry:
    row: int  # where a person finds it: spreadsheet row, line of the file, or entry number
    booked: date
    amount: Decimal  # signed: money in > 0, money out < 0
    currency: str
    transaction_id: str = ""  # the bank's unique id for it, when the file has one
    bank_reference: str = ""  # the bank's reference shown to people (may not be unique)
    payer_name: str = ""
    payer_account: str = ""
    payer_reference: str = ""  # a Direct Debit payer's reference (SmartDebit, Bacs)
    remittance: str = ""  # narrative / remittance information / memo
    end_to_end_id: str = ""
    statement: int = 0  # index into ParsedStatement.statements
    raw: dict = field(default_factory=dict)
    amount_field: str = "amount"  # how an error about the amount names it (a CSV's column)


@dataclass
class StatementHeader:
    """One statement as the bank describes it. Balances are None when the format has none."""

    iban: str = ""
    sort_code: str = ""
    account_number: str = ""
    account_id: str = ""  # any other identifier the bank uses (BAI2, OFX ACCTID, MT940 :25:)
    account_name: str = ""
    currency: str = ""
    statement_id: str = ""
    start_date: date | None = None
    end_date: date | None = None
    opening_balance: Decimal | None = None
    closing_balance: Decimal | None = None
    # the currencies the balances are written in, where the file says (camt Bal/Amt/@Ccy,
    # MT940 :60F:/:62F:): each must be the account's and its entries'
    opening_currency: str = ""
    closing_currency: str = ""
    entry_count: int = 0
    # what the file's entries add up to (statement_items fills them): money in and out, and
    # the number of credits, for "the bank says X, we hold Y"
    money_in: Decimal = Decimal(0)
    money_out: Decimal = Decimal(0)
    credit_count: int = 0

    @property
    def account_key(self) -> str:
        return account_key(
            iban=self.iban,
            sort_code=self.sort_code,
            account_number=self.account_number,
            account_id=self.account_id,
        )


@dataclass
class ParsedStatement:
    file_format: str = "csv"
    items: list[NormalisedPayment] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    skipped: int = 0  # money-out and empty rows
    row_count: int = 0
    statements: list[StatementHeader] = field(default_factory=list)

    @property
    def account_keys(self) -> list[str]:
        return sorted({s.account_key for s in self.statements if s.account_key})


_SPACES = re.compile(r"[\s\-/.]")
_IBAN = re.compile(r"^[A-Z]{2}\d{2}[A-Z0-9]{10,30}$")
_ACCOUNT_THEN_SORT_CODE = re.compile(r"(\d{8})[ /](\d{2}-?\d{2}-?\d{2})")


def normalise_iban(value: str) -> str:
    if not value:
        return ""
    if _IBAN.match(value):  # already compact and upper case, as camt and most files give it
        return value
    text = _SPACES.sub("", value).upper()
    return text if _IBAN.match(text) else ""


@lru_cache(maxsize=65536)
def account_key(*, iban="", sort_code="", account_number="", account_id="") -> str:
    """The one spelling of an account: its IBAN; else "sortcode accountnumber" (digits only);
    else the identifier the file gives (an IBAN hidden in it is found)."""
    found = normalise_iban(iban) or normalise_iban(account_id)
    if found:
        return found
    sort_digits = re.sub(r"\D", "", sort_code or "")
    number = re.sub(r"\s", "", account_number or "")
    if sort_digits and number:
        return f"{sort_digits} {number}"[:70]
    text = re.sub(r"\s+", " ", (account_id or number or "").strip())
    # NatWest's BAI2 and some MT940 :25: give "account sortcode" (8 digits, then 6), kept
    # apart by a space or slash: the same account as "sortcode account"
    swapped = _ACCOUNT_THEN_SORT_CODE.fullmatch(text)
    if swapped:
        return f"{re.sub(r'[-]', '', swapped.group(2))} {swapped.group(1)}"
    compact = re.sub(r"[\s\-]", "", text)
    # LloydsLink's "SWIFT MT940" writes the sort code as 8 digits ("00309950/12345678")
    padded = re.fullmatch(r"00(\d{6})/(\d{8})", compact)
    if padded:
        return f"{padded.group(1)} {padded.group(2)}"
    # MT940 :25: is often "sortcode/account" or "sortcodeaccount" (14 digits, UK)
    if re.fullmatch(r"\d{6}/?\d{8}", compact):
        digits = compact.replace("/", "")
        return f"{digits[:6]} {digits[6:]}"
    return text[:70]


def payer_account_text(*, iban="", sort_code="", account_number="", other="") -> str:
    """The payer's account as one text: IBAN, or "sortcode accountnumber", or what was given."""
    if iban and _IBAN.match(iban):  # the usual case, without account_key's cache (one a payer)
        return iban
    return account_key(
        iban=iban, sort_code=sort_code, account_number=account_number, account_id=other
    )


def _stable_id(source: str, values: tuple, occurrence: int) -> str:
    digest = hashlib.sha256(repr((source, values, occurrence)).encode()).hexdigest()
    return f"row:{digest[:40]}"


def row_external_id(source: str, values: tuple, occurrence: int) -> str:
    """Stable id of a row: the same transaction in two overlapping statements gets the same
    id (duplicate), two identical rows in one file do not (occurrence counts them)."""
    return _stable_id(source, values, occurrence)


def bank_id_external_id(account: str, transaction_id: str, occurrence: int) -> str:
    """A bank's own transaction id, per account (without an account: as the file gives it)."""
    text = f"{account}|{transaction_id}" if account else f"id:{transaction_id}"
    if occurrence > 1:
        text += f"#{occurrence}"
    if len(text) <= 100:
        return text
    return "id:" + hashlib.sha256(text.encode()).hexdigest()[:60]


def smartdebit_external_id(
    payer_reference: str, booked: date, amount: Decimal, places: int, occurrence: int
) -> str:
    """One SmartDebit collection's id, the same whichever way it arrives (the portal's CSV or
    Bacs report, or SmartDebit's API): the payer's reference, the debit date and the amount,
    never the file's row or an id only one path gives. Two collections alike in all three
    (rare: the same payer debited twice the same day for the same amount) count by occurrence."""
    reference = " ".join(payer_reference.split()).upper()
    text = f"sd:{reference}|{booked.isoformat()}|{amount:.{places}f}"
    if occurrence > 1:
        text += f"#{occurrence}"
    if len(text) <= 100:
        return text
    return "sd:" + hashlib.sha256(text.encode()).hexdigest()[:60]


def balance_errors(parsed: ParsedStatement, entries: list[StatementEntry]) -> list[RowError]:
    """Opening + every entry (in and out) = closing, per statement that gives both, all in the
    one currency: a balance in another currency than the account or its entries is refused
    with the numbers (a sum across currencies would prove nothing)."""
    totals = Counter()
    currencies: dict[int, set[str]] = {}
    for entry in entries:
        totals[entry.statement] += entry.amount
        currencies.setdefault(entry.statement, set()).add(entry.currency.upper())
    errors = []
    for number, header in enumerate(parsed.statements):
        if header.opening_balance is None and header.closing_balance is None:
            continue
        moved = Decimal(totals[number])
        name = header.statement_id or header.account_key or f"statement {number + 1}"
        both = header.opening_balance is not None and header.closing_balance is not None
        # a lone closing balance in no stated currency (OFX LEDGERBAL) checks nothing, and an
        # OFX entry may be in its own currency (STMTTRN/CURRENCY): not a mix to refuse
        stated = header.opening_currency or header.closing_currency
        mixed = _currency_mismatch(header, currencies.get(number, set()), moved)
        if mixed and (both or stated):
            errors.append(RowError(0, "currency", f"{name}: {mixed}"))
            continue
        if header.opening_balance is None or header.closing_balance is None:
            continue
        expected = header.opening_balance + moved
        if expected != header.closing_balance:
            currency = header.currency or ""
            errors.append(
                RowError(
                    0,
                    "balance",
                    f"{name}: opening balance {header.opening_balance} + entries {moved} "
                    f"= {expected} {currency}, but the bank's closing balance is "
                    f"{header.closing_balance} {currency} (difference "
                    f"{header.closing_balance - expected}); is the file complete?",
                )
            )
    return errors


def _currency_mismatch(header: StatementHeader, entry_currencies: set[str], moved) -> str:
    """What is wrong when a statement's balances, account and entries are not all in one
    currency (empty when they are)."""
    stated = {
        "account": header.currency.upper(),
        "opening balance": header.opening_currency.upper(),
        "closing balance": header.closing_currency.upper(),
    }
    written = {c for c in stated.values() if c} | entry_currencies
    if len(written) <= 1:
        return ""
    parts = []
    if header.opening_balance is not None:
        parts.append(
            f"opening balance {header.opening_balance} "
            f"{stated['opening balance'] or stated['account']}"
        )
    parts.append(f"entries {moved} {'/'.join(sorted(entry_currencies)) or stated['account']}")
    if header.closing_balance is not None:
        parts.append(
            f"closing balance {header.closing_balance} "
            f"{stated['closing balance'] or stated['account']}"
        )
    return (
        f"the statement mixes currencies ({', '.join(sorted(written))}): "
        f"{', '.join(parts)}, account in {stated['account'] or 'no stated currency'}. "
        "A balance in another currency than the account's entries cannot be checked; is this "
        "the statement of the right account?"
    )


def _too_precise(entry: StatementEntry, file_format: str, places: int) -> str:
    """An amount with more decimals than its currency has, said where the clerk finds it."""
    where = {"csv": "row", "qif": "line"}.get(file_format, "entry")
    code = normalise_currency(entry.currency)
    written = -entry.amount.as_tuple().exponent
    like = f"{Decimal(1234).scaleb(-places)}" if places else "1234"
    return (
        f"{where} {entry.row}: {entry.amount} {code} has {written} decimal places, but {code} "
        f"amounts have {places} (like {like}); nothing is rounded: check the file's currency "
        "and its decimal separator."
    )


def statement_items(
    parsed: ParsedStatement,
    entries: list[StatementEntry],
    *,
    source: str,
    filename: str = "",
    fallback_account: str = "",
    account_ids: dict[str, int] | None = None,
) -> ParsedStatement:
    """Fill parsed.items from the entries (money in only) and add the balance check's errors.

    `fallback_account` is the account key of the bank account the clerk chose, for files that
    do not say; `account_ids` maps account keys to StatementAccount ids."""
    parsed.errors.extend(balance_errors(parsed, entries))
    account_ids = account_ids or {}
    if len(entries) > MAX_ENTRIES:
        raise StatementError(f"The file has more than {MAX_ENTRIES} entries; split it.")
    seen: Counter = Counter()
    # per statement once, not per entry: its account, and each currency's places
    accounts = [header.account_key or fallback_account for header in parsed.statements]
    headers = parsed.statements
    places: dict[str, int] = {}
    noon: dict[date, datetime] = {}  # received_at per booking day: a file has few days
    file_name = filename[:255]
    items = parsed.items
    periods: dict[int, tuple[date, date]] = {}  # statement -> first and last booking day
    with gc_paused():
        for entry in entries:
            amount = entry.amount
            header = headers[entry.statement] if entry.statement < len(headers) else None
            if header is not None:
                header.entry_count += 1
                booked = entry.booked
                if booked != date.min:
                    first, last = periods.get(entry.statement, (booked, booked))
                    periods[entry.statement] = (min(first, booked), max(last, booked))
                if amount > 0:
                    header.money_in += amount
                    header.credit_count += 1
                else:
                    header.money_out -= amount
            if amount <= 0:
                parsed.skipped += 1  # money out (or a zero line): not a payment to us
                continue
            try:
                currency = entry.currency
                if currency not in places:
                    places[normalise_currency(currency)] = places[currency] = exponent(currency)
                if -amount.as_tuple().exponent > places[currency]:  # more places than it has
                    amount = exact(amount, currency)
                currency = normalise_currency(currency) if len(currency) != 3 else currency.upper()
            except MoneyError as error:
                message = str(error)
                if currency in places:  # a good code: the amount has more places than it allows
                    message = _too_precise(entry, parsed.file_format, places[currency])
                parsed.errors.append(RowError(entry.row, entry.amount_field, message))
                continue
            account = (accounts[entry.statement] if accounts else "") or fallback_account
            remittance = " ".join(entry.remittance.split()) if entry.remittance else ""
            if source == "smartdebit" and entry.payer_reference.strip():
                # a collection: one spelling for the report file and the API (not per account)
                key = (" ".join(entry.payer_reference.split()).upper(), entry.booked, amount)
                seen[key] += 1
                external_id = smartdebit_external_id(
                    entry.payer_reference, entry.booked, amount, places[currency], seen[key]
                )
            elif entry.transaction_id:
                key = (account, entry.transaction_id)
                seen[key] += 1
                external_id = bank_id_external_id(account, entry.transaction_id, seen[key])
            else:
                cells = entry.raw.get("cells")
                if cells is not None:  # a spreadsheet row: its every cell (ids as before accounts)
                    key = (
                        entry.booked.isoformat(),
                        str(amount),
                        currency,
                        entry.remittance,
                        tuple(cells),
                    )
                else:
                    key = (
                        entry.booked.isoformat(),
                        str(amount),
                        currency,
                        remittance,
                        entry.bank_reference,
                        entry.payer_name,
                        entry.payer_account,
                    )
                if account:
                    key = (*key, account)
                seen[key] += 1
                external_id = _stable_id(source, key, seen[key])
            end_to_end, bank_reference = entry.end_to_end_id, entry.bank_reference
            if bank_reference and not bank_reference.strip("0 "):
                # "0" / "000000": banks' placeholder when there is no cheque number or
                # reference (Barclays' Number, OFX CHECKNUM): no reference, never one to match
                bank_reference = ""
            references = []
            if remittance:
                references.append({"source": "bank.narrative", "value": remittance[:500]})
            if end_to_end and end_to_end != remittance:
                references.append({"source": "bank.end_to_end_id", "value": end_to_end[:500]})
            if bank_reference and bank_reference != remittance and bank_reference != end_to_end:
                references.append({"source": "bank.reference", "value": bank_reference[:500]})
            booked = entry.booked
            received_at = noon.get(booked)
            if received_at is None:
                received_at = noon[booked] = datetime.combine(booked, time(12, 0), tzinfo=UTC)
            raw = {"file": file_name, "row": entry.row}
            if account:
                raw["account"] = account
            if entry.raw:
                raw.update(entry.raw)
            items.append(
                NormalisedPayment(
                    source=source,
                    external_id=external_id,
                    amount=amount,
                    currency=currency,
                    received_at=received_at,
                    payer_name=(entry.payer_name or "").strip()[:200],
                    payer_account=(entry.payer_account or "")[:70],
                    payer_reference=(entry.payer_reference or "").strip()[:100],
                    bank_reference=(bank_reference or "").strip()[:140],
                    end_to_end_id=(end_to_end or "").strip()[:140],
                    statement_account_id=account_ids.get(account),
                    description=remittance[:2000],
                    references=references,
                    raw=raw,
                )
            )
    for number, (first, last) in periods.items():
        # a file without a stated period (CSV, QIF): its entries' first and last days, so
        # overlapping uploads of one account are noticed for every format
        header = headers[number]
        if header.start_date is None and header.end_date is None:
            header.start_date, header.end_date = first, last
    parsed.errors.sort(key=lambda e: e.row)
    return parsed
