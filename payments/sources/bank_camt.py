"""ISO 20022 cash management: camt.053 (statement), camt.052 (intraday report) and camt.054
(debit/credit notification), any version (.001.02 to .001.13), read with lxml.

Elements are found by local name, so every version's namespace reads the same. Per statement
(Stmt / Rpt / Ntfctn): the account (IBAN, or Othr/Id: UK banks put sort code + account number
there), the currency, the period, and the balances (OPBD or PRCD opening, CLBD closing). Per
entry (Ntry): amount, CdtDbtInd, booking date, AcctSvcrRef; a batch booking (several TxDtls)
becomes one entry per detail, each with its own amount (TxDtls/Amt, else AmtDtls/TxAmt, else
the entry's amount when there is one detail), payer (RltdPties/Dbtr, DbtrAcct), remittance
(RmtInf/Ustrd, Strd/CdtrRefInf/Ref), end-to-end id and the bank's reference. Entries whose
status is not booked (Sts PDNG/INFO) are not money in yet and are left out of the balance.

The parser refuses DTDs and entities (XXE) and huge trees are parsed iteratively.
"""

import io
from datetime import date
from decimal import Decimal
from functools import lru_cache

from lxml import etree

from core.money import MoneyError, normalise_currency, to_decimal
from payments.sources.statement_rows import (
    ParsedStatement,
    RowError,
    StatementEntry,
    StatementError,
    StatementHeader,
    payer_account_text,
)

OPENING = ("OPBD", "PRCD", "ITBD")
CLOSING = ("CLBD",)


def _local(element) -> str:
    return element.tag.rpartition("}")[2]


@lru_cache(maxsize=512)
def _path(namespace: str, names: tuple) -> str:
    """ElementPath in Clark notation ({ns}Name/{ns}Name): lxml walks it in C."""
    return "/".join(f"{{{namespace}}}{name}" if namespace else name for name in names)


def _ns(element) -> str:
    tag = element.tag
    return tag[1 : tag.index("}")] if tag.startswith("{") else ""


def _child(element, *path):
    """The first descendant along `path` of local names (in the element's namespace), or None."""
    if element is None:
        return None
    return element.find(_path(_ns(element), path))


def _children(element, name):
    return element.findall(_path(_ns(element), (name,)))


def _text(element, *path) -> str:
    if element is None:
        return ""
    return (element.findtext(_path(_ns(element), path)) or "").strip()


def _date(element, *path) -> date | None:
    node = _child(element, *path)
    if node is None:
        return None
    text = _text(node, "Dt") or _text(node, "DtTm") or (node.text or "").strip()
    return date.fromisoformat(text[:10]) if text else None


def _amount(element) -> tuple[Decimal, str] | None:
    if element is None or not (element.text or "").strip():
        return None
    return to_decimal(element.text.strip()), normalise_currency(element.get("Ccy") or "")


def _signed(amount: Decimal, indicator: str) -> Decimal:
    return -amount if indicator == "DBIT" else amount


def _account(acct) -> dict:
    if acct is None:
        return {}
    return {
        "iban": _text(acct, "Id", "IBAN"),
        "other": _text(acct, "Id", "Othr", "Id"),
        "name": _text(acct, "Nm") or _text(acct, "Ownr", "Nm"),
        "currency": _text(acct, "Ccy"),
    }


def _remittance(details) -> str:
    info = _child(details, "RmtInf")
    if info is None:
        return ""
    parts = [(u.text or "").strip() for u in _children(info, "Ustrd")]
    for strd in _children(info, "Strd"):
        ref = _text(strd, "CdtrRefInf", "Ref")
        if ref:
            parts.append(ref)
        parts.extend((a.text or "").strip() for a in _children(strd, "AddtlRmtInf"))
    return " ".join(p for p in parts if p)


def _party(details, role: str) -> tuple[str, str]:
    """(name, account) of the debtor (payer) of a credit, creditor of a debit."""
    parties = _child(details, "RltdPties")
    if parties is None:
        return "", ""
    party = _child(parties, role)
    # camt.053.001.08+ wraps the party in Pty; earlier versions do not
    name = _text(party, "Pty", "Nm") or _text(party, "Nm") if party is not None else ""
    acct = _account(_child(parties, f"{role}Acct"))
    return name, payer_account_text(iban=acct.get("iban", ""), other=acct.get("other", ""))


def _balances(stmt) -> tuple[Decimal | None, Decimal | None, str, str]:
    """(opening, closing, the opening's currency, the closing's currency)."""
    opening = closing = None
    opening_currency = closing_currency = ""
    for bal in _children(stmt, "Bal"):
        code = _text(bal, "Tp", "CdOrPrtry", "Cd") or _text(bal, "Tp", "CdOrPrtry", "Prtry")
        found = _amount(_child(bal, "Amt"))
        if found is None:
            continue
        value = _signed(found[0], _text(bal, "CdtDbtInd"))
        if code in OPENING and opening is None:
            opening, opening_currency = value, found[1]
        elif code in CLOSING:
            closing, closing_currency = value, found[1]
    return opening, closing, opening_currency, closing_currency


def read_camt(content: bytes) -> tuple[ParsedStatement, list[StatementEntry]]:
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        dtd_validation=False,
        load_dtd=False,
        huge_tree=True,
    )
    try:
        root = etree.parse(io.BytesIO(content), parser).getroot()
    except etree.XMLSyntaxError as error:
        raise StatementError(f"The XML file cannot be read: {error}") from None
    message = next((c for c in root if isinstance(c.tag, str)), None)
    kind = {
        "BkToCstmrStmt": "camt.053",
        "BkToCstmrAcctRpt": "camt.052",
        "BkToCstmrDbtCdtNtfctn": "camt.054",
    }
    if message is None or _local(message) not in kind:
        raise StatementError(
            "This XML file is not an ISO 20022 bank statement (camt.052, camt.053 or camt.054)."
        )
    parsed = ParsedStatement(file_format=kind[_local(message)])
    entries: list[StatementEntry] = []
    for stmt in [
        c for c in message if isinstance(c.tag, str) and _local(c) in ("Stmt", "Rpt", "Ntfctn")
    ]:
        acct = _account(_child(stmt, "Acct"))
        opening, closing, opening_currency, closing_currency = _balances(stmt)
        period = _child(stmt, "FrToDt")
        header = StatementHeader(
            iban=acct.get("iban", ""),
            account_id=acct.get("other", ""),
            account_name=acct.get("name", ""),
            currency=acct.get("currency") or opening_currency or closing_currency,
            statement_id=_text(stmt, "Id"),
            start_date=_date(period, "FrDtTm") if period is not None else None,
            end_date=_date(period, "ToDtTm") if period is not None else None,
            opening_balance=opening,
            closing_balance=closing,
            opening_currency=opening_currency,
            closing_currency=closing_currency,
        )
        parsed.statements.append(header)
    number, index, pending = 0, -1, []
    for record in _entry_records(root):
        kind, fields = record[0], record[1:]
        if kind == "S":
            index += 1
            continue
        if kind == "N":
            number += 1
            entry = _Entry(number, index, fields, parsed.statements[index])
            pending.append(entry)
            continue
        pending[-1].details.append(fields)
    for entry in pending:
        entry.read(parsed, entries)
    if not parsed.statements:
        raise StatementError("The camt file holds no statement.")
    parsed.row_count = number
    return parsed, entries


# Entries are read by XSLT (libxslt, in C): one tab-separated line per statement (S), entry
# (N) and transaction detail (T), every value whitespace-normalised, so tabs and newlines in
# the bank's texts cannot shift a field. Elements are matched by local name: every camt
# version's namespace reads the same. Python then only splits lines (a 100,000-entry
# statement in about a second instead of a tree walk per field).
def _xp(*names: str) -> str:
    return "/".join(f"c:{n}" for n in names)


_ENTRY_FIELDS = [
    _xp("Amt"),
    _xp("Amt") + "/@Ccy",
    _xp("CdtDbtInd"),
    f"{_xp('Sts', 'Cd')}|{_xp('Sts')}[not(*)]",
    f"{_xp('BookgDt', 'Dt')}|{_xp('BookgDt', 'DtTm')}",
    f"{_xp('ValDt', 'Dt')}|{_xp('ValDt', 'DtTm')}",
    _xp("AcctSvcrRef"),
    _xp("NtryRef"),
    _xp("AddtlNtryInf"),
]
_DETAIL_FIELDS = [
    _xp("Amt"),
    _xp("Amt") + "/@Ccy",
    _xp("CdtDbtInd"),
    _xp("AmtDtls", "TxAmt", "Amt"),
    _xp("AmtDtls", "TxAmt", "Amt") + "/@Ccy",
    _xp("Refs", "AcctSvcrRef"),
    _xp("Refs", "TxId"),
    _xp("Refs", "EndToEndId"),
    f"{_xp('RltdPties', 'Dbtr', 'Pty', 'Nm')}|{_xp('RltdPties', 'Dbtr', 'Nm')}",
    _xp("RltdPties", "DbtrAcct", "Id", "IBAN"),
    _xp("RltdPties", "DbtrAcct", "Id", "Othr", "Id"),
    f"{_xp('RltdPties', 'Cdtr', 'Pty', 'Nm')}|{_xp('RltdPties', 'Cdtr', 'Nm')}",
    _xp("RltdPties", "CdtrAcct", "Id", "IBAN"),
    _xp("RltdPties", "CdtrAcct", "Id", "Othr", "Id"),
    _xp("AddtlTxInf"),
]


def _value_of(path: str) -> str:
    return f'<xsl:value-of select="normalize-space(({path})[1])"/><xsl:text>&#9;</xsl:text>'


_XSLT = f"""<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
  xmlns:c="{{namespace}}">
<xsl:output method="text" encoding="UTF-8"/>
<xsl:template match="/">
 <xsl:for-each select="/*/*/c:Stmt|/*/*/c:Rpt|/*/*/c:Ntfctn">
  <xsl:text>S&#10;</xsl:text>
  <xsl:for-each select="{_xp("Ntry")}">
   <xsl:text>N&#9;</xsl:text>{"".join(_value_of(f) for f in _ENTRY_FIELDS)}<xsl:text>&#10;</xsl:text>
   <xsl:for-each select="{_xp("NtryDtls", "TxDtls")}">
    <xsl:text>T&#9;</xsl:text>{"".join(_value_of(f) for f in _DETAIL_FIELDS)}
    <xsl:for-each select="{_xp("RmtInf", "Ustrd")}|{_xp("RmtInf", "Strd", "CdtrRefInf", "Ref")}|{_xp("RmtInf", "Strd", "AddtlRmtInf")}"><xsl:value-of select="normalize-space(.)"/><xsl:text> </xsl:text></xsl:for-each>
    <xsl:text>&#10;</xsl:text>
   </xsl:for-each>
  </xsl:for-each>
 </xsl:for-each>
</xsl:template>
</xsl:stylesheet>"""


@lru_cache(maxsize=32)
def _transform(namespace: str):
    """The stylesheet for one camt version's namespace: prefixed name tests are what lets
    libxslt match by name instead of calling local-name() on every child."""
    if not namespace:  # a camt file without its namespace: plain name tests
        text = _XSLT.replace('xmlns:c="{namespace}"', "").replace("c:", "")
    else:
        text = _XSLT.replace("{namespace}", namespace)
    return etree.XSLT(etree.XML(text.encode()))


def _entry_records(root):
    text = str(_transform(_ns(root))(root))
    for line in text.split("\n"):
        if line:
            yield line.split("\t")


_CURRENCIES: dict[str, str] = {}


def _money(text: str, currency: str):
    if not text:
        return None
    code = _CURRENCIES.get(currency)
    if code is None:
        code = normalise_currency(currency)  # a bad code raises here, every time
        _CURRENCIES[currency] = code
    return to_decimal(text), code


@lru_cache(maxsize=4096)
def _day(text: str) -> date:
    """A booking date (a statement has few distinct ones); ValueError when it is not one."""
    return date.fromisoformat(text[:10])


class _Entry:
    """One Ntry and its TxDtls lines, turned into statement entries (a batch: one each)."""

    __slots__ = ("number", "index", "fields", "header", "details")

    def __init__(self, number, index, fields, header):
        self.number, self.index, self.fields, self.header = number, index, fields, header
        self.details: list[list[str]] = []

    def read(self, parsed: ParsedStatement, entries: list) -> None:
        number = self.number
        amt, ccy, indicator, status, booked, value_date, svc_ref, ntry_ref, narrative = self.fields[
            :9
        ]
        if status and status != "BOOK":
            parsed.skipped += 1  # pending or information only: not booked money
            return
        try:
            found = _money(amt, ccy)
            if found is None:
                raise MoneyError("no amount")
        except MoneyError as error:
            parsed.errors.append(RowError(number, "amount", f"entry {number}: {error}"))
            return
        day = booked or value_date
        if day:
            try:
                day = _day(day)
            except ValueError:
                parsed.errors.append(RowError(number, "date", f"entry {number}: {day!r}"))
                return
        elif indicator == "DBIT":
            day = self.header.end_date or date.min
        else:
            parsed.errors.append(RowError(number, "date", f"entry {number} has no booking date"))
            return
        entry_ref = svc_ref or ntry_ref
        if not self.details:
            entries.append(
                StatementEntry(
                    row=number,
                    booked=day,
                    amount=_signed(found[0], indicator),
                    currency=found[1],
                    transaction_id=entry_ref,
                    bank_reference=entry_ref,
                    remittance=narrative,
                    statement=self.index,
                    raw={"entry": number},
                )
            )
            return
        batch, share_total, many = [], Decimal(0), len(self.details) > 1
        for position, detail in enumerate(self.details, start=1):
            (d_amt, d_ccy, d_ind, tx_amt, tx_ccy, d_ref, tx_id, e2e, dbtr, dbtr_iban,
             dbtr_other, cdtr, cdtr_iban, cdtr_other, addtl_tx, remittance) = detail[:16]  # fmt: skip
            try:
                amount = _money(d_amt, d_ccy) or _money(tx_amt, tx_ccy)
            except MoneyError as error:
                parsed.errors.append(RowError(number, "amount", f"entry {number}: {error}"))
                return
            if amount is None and not many:
                amount = found
            if amount is None:
                parsed.errors.append(
                    RowError(number, "amount", f"entry {number}, detail {position} has no amount")
                )
                return
            detail_indicator = d_ind or indicator
            share_total += amount[0]
            if detail_indicator == "DBIT":
                name, iban, other = cdtr, cdtr_iban, cdtr_other
            else:
                name, iban, other = dbtr, dbtr_iban, dbtr_other
            detail_ref = d_ref or tx_id
            transaction_id = detail_ref or (
                f"{entry_ref}/{position}" if entry_ref and many else entry_ref
            )
            batch.append(
                StatementEntry(
                    row=number,
                    booked=day,
                    amount=_signed(amount[0], detail_indicator),
                    currency=amount[1],
                    transaction_id=transaction_id,
                    bank_reference=detail_ref or entry_ref,
                    payer_name=name,
                    payer_account=payer_account_text(iban=iban, other=other),
                    remittance=remittance.strip() or addtl_tx or narrative,
                    end_to_end_id="" if e2e == "NOTPROVIDED" else e2e,
                    statement=self.index,
                    raw={"entry": number, "detail": position} if many else {"entry": number},
                )
            )
        if many and share_total != found[0]:
            parsed.errors.append(
                RowError(
                    number,
                    "amount",
                    f"entry {number} is a batch of {found[0]} {found[1]} but its "
                    f"{len(self.details)} details add up to {share_total}",
                )
            )
            return
        entries.extend(batch)
