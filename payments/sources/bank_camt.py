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
    return etree.QName(element).localname


def _child(element, *path):
    """The first descendant along `path` of local names, or None."""
    for name in path:
        if element is None:
            return None
        element = next((c for c in element if isinstance(c.tag, str) and _local(c) == name), None)
    return element


def _children(element, name):
    return [c for c in element if isinstance(c.tag, str) and _local(c) == name]


def _text(element, *path) -> str:
    found = _child(element, *path)
    return (found.text or "").strip() if found is not None and found.text else ""


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


def _balances(stmt) -> tuple[Decimal | None, Decimal | None, str]:
    opening = closing = None
    currency = ""
    for bal in _children(stmt, "Bal"):
        code = _text(bal, "Tp", "CdOrPrtry", "Cd") or _text(bal, "Tp", "CdOrPrtry", "Prtry")
        found = _amount(_child(bal, "Amt"))
        if found is None:
            continue
        value = _signed(found[0], _text(bal, "CdtDbtInd"))
        currency = currency or found[1]
        if code in OPENING and opening is None:
            opening = value
        elif code in CLOSING:
            closing = value
    return opening, closing, currency


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
    number = 0
    for stmt in [
        c for c in message if isinstance(c.tag, str) and _local(c) in ("Stmt", "Rpt", "Ntfctn")
    ]:
        acct = _account(_child(stmt, "Acct"))
        opening, closing, balance_currency = _balances(stmt)
        period = _child(stmt, "FrToDt")
        header = StatementHeader(
            iban=acct.get("iban", ""),
            account_id=acct.get("other", ""),
            account_name=acct.get("name", ""),
            currency=acct.get("currency") or balance_currency,
            statement_id=_text(stmt, "Id"),
            start_date=_date(period, "FrDtTm") if period is not None else None,
            end_date=_date(period, "ToDtTm") if period is not None else None,
            opening_balance=opening,
            closing_balance=closing,
        )
        index = len(parsed.statements)
        parsed.statements.append(header)
        for ntry in _children(stmt, "Ntry"):
            number += 1
            status = _text(ntry, "Sts", "Cd") or _text(ntry, "Sts")
            if status and status != "BOOK":
                parsed.skipped += 1  # pending or information only: not booked money
                continue
            try:
                found = _amount(_child(ntry, "Amt"))
                if found is None:
                    raise MoneyError("no amount")
            except MoneyError as error:
                parsed.errors.append(RowError(number, "amount", f"entry {number}: {error}"))
                continue
            indicator = _text(ntry, "CdtDbtInd")
            booked = _date(ntry, "BookgDt") or _date(ntry, "ValDt")
            if booked is None:
                if indicator == "DBIT":
                    booked = header.end_date or date.min
                else:
                    parsed.errors.append(
                        RowError(number, "date", f"entry {number} has no booking date")
                    )
                    continue
            entry_ref = _text(ntry, "AcctSvcrRef") or _text(ntry, "NtryRef")
            narrative = _text(ntry, "AddtlNtryInf")
            details = [d for dtls in _children(ntry, "NtryDtls") for d in _children(dtls, "TxDtls")]
            if not details:
                entries.append(
                    StatementEntry(
                        row=number,
                        booked=booked,
                        amount=_signed(found[0], indicator),
                        currency=found[1],
                        transaction_id=entry_ref,
                        bank_reference=entry_ref,
                        remittance=narrative,
                        statement=index,
                        raw={"entry": number},
                    )
                )
                continue
            share_total = Decimal(0)
            batch = []
            for position, detail in enumerate(details, start=1):
                amount = _amount(_child(detail, "Amt")) or _amount(
                    _child(detail, "AmtDtls", "TxAmt", "Amt")
                )
                if amount is None and len(details) == 1:
                    amount = found
                if amount is None:
                    parsed.errors.append(
                        RowError(
                            number, "amount", f"entry {number}, detail {position} has no amount"
                        )
                    )
                    continue
                detail_indicator = _text(detail, "CdtDbtInd") or indicator
                share_total += amount[0]
                role = "Cdtr" if detail_indicator == "DBIT" else "Dbtr"
                name, account = _party(detail, role)
                refs = _child(detail, "Refs")
                detail_ref = (
                    _text(refs, "AcctSvcrRef") or _text(refs, "TxId") if refs is not None else ""
                )
                end_to_end = _text(refs, "EndToEndId") if refs is not None else ""
                if end_to_end == "NOTPROVIDED":
                    end_to_end = ""
                transaction_id = detail_ref or (
                    f"{entry_ref}/{position}" if entry_ref and len(details) > 1 else entry_ref
                )
                batch.append(
                    StatementEntry(
                        row=number,
                        booked=booked,
                        amount=_signed(amount[0], detail_indicator),
                        currency=amount[1],
                        transaction_id=transaction_id,
                        bank_reference=detail_ref or entry_ref,
                        payer_name=name,
                        payer_account=account,
                        remittance=_remittance(detail) or _text(detail, "AddtlTxInf") or narrative,
                        end_to_end_id=end_to_end,
                        statement=index,
                        raw={"entry": number, "detail": position},
                    )
                )
            if len(details) > 1 and share_total != found[0] and len(batch) == len(details):
                parsed.errors.append(
                    RowError(
                        number,
                        "amount",
                        f"entry {number} is a batch of {found[0]} {found[1]} but its "
                        f"{len(details)} details add up to {share_total}",
                    )
                )
                continue
            entries.extend(batch)
    if not parsed.statements:
        raise StatementError("The camt file holds no statement.")
    parsed.row_count = number
    return parsed, entries
