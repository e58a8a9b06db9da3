"""Bacs Direct Debit reports as Bacs (and SmartDebit, which passes them on) publish them in
XML: ARUDD (Automated Return of Unpaid Direct Debits: ReturnedDebitItem with the payer's
reference, amount `valueOf`, `returnCode` and `returnDescription`, `originalProcessingDate`,
and the PayerAccount), ADDACS (Automated Direct Debit Amendment and Cancellation Service:
MessagingAdvice with `reference`, `payer-name`, `reason-code`, `effective-date`) and AUDDIS
(instructions refused: FailedAccount / Failure with the reference and reason). Read with
lxml, by local name (Bacs and bureaux wrap them differently), never resolving entities.
"""

import io
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from lxml import etree

from core.money import MoneyError, normalise_currency, to_decimal
from payments.sources.statement_rows import StatementError, payer_account_text

# ARUDD return codes (Bacs service user guide): 0 refer to payer, 1 instruction cancelled,
# 2 payer deceased, 3 account transferred, 5 no account, 6 no instruction, B account closed…
ADDACS_REASONS = {
    "0": "Instruction cancelled by the payer's bank (refer to payer)",
    "1": "Instruction cancelled by the payer",
    "2": "Payer deceased",
    "3": "Account transferred to another bank",
    "B": "Account closed",
    "C": "Account transferred to a new branch",
    "D": "Advance notice disputed",
    "E": "Instruction amended",
    "R": "Instruction re-instated",
}


@dataclass
class BacsNotice:
    kind: str  # arudd, addacs, auddis
    payer_reference: str
    payer_name: str = ""
    payer_account: str = ""
    code: str = ""
    description: str = ""
    amount: Decimal | None = None
    currency: str = ""
    effective_date: date | None = None
    raw: dict = field(default_factory=dict)


def _local(element) -> str:
    return element.tag.rpartition("}")[2] if isinstance(element.tag, str) else ""


def _attr(element, *names) -> str:
    """The first of these attributes present, matched case- and dash-insensitively."""
    wanted = {n.lower().replace("-", "").replace("_", "") for n in names}
    for key, value in element.attrib.items():
        if key.rpartition("}")[2].lower().replace("-", "").replace("_", "") in wanted:
            return (value or "").strip()
    return ""


def _date(text: str) -> date | None:
    return date.fromisoformat(text[:10]) if text else None


def bacs_report_read(content: bytes, *, kind: str = "") -> tuple[str, list[BacsNotice]]:
    """The notices of a Bacs report. `kind` "auddis" when the source says so (SmartDebit's
    AUDDIS endpoint): AUDDIS and ADDACS advices are both MessagingAdvice elements."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        root = etree.parse(io.BytesIO(content), parser).getroot()
    except etree.XMLSyntaxError as error:
        raise StatementError(f"The Bacs report cannot be read: {error}") from None
    notices: list[BacsNotice] = []
    kinds = set()
    for element in root.iter():
        name = _local(element)
        if name == "ReturnedDebitItem":
            kinds.add("arudd")
            account = next((c for c in element if _local(c) == "PayerAccount"), None)
            try:
                amount = (
                    to_decimal(_attr(element, "valueOf")) if _attr(element, "valueOf") else None
                )
                currency = normalise_currency(_attr(element, "currency") or "GBP")
            except MoneyError as error:
                raise StatementError(f"ARUDD item {_attr(element, 'ref')}: {error}") from None
            notices.append(
                BacsNotice(
                    kind="arudd",
                    payer_reference=_attr(element, "ref")
                    or (_attr(account, "ref") if account is not None else ""),
                    payer_name=_attr(account, "name") if account is not None else "",
                    payer_account=payer_account_text(
                        sort_code=_attr(account, "sortCode") if account is not None else "",
                        account_number=_attr(account, "number") if account is not None else "",
                    ),
                    code=_attr(element, "returnCode"),
                    description=_attr(element, "returnDescription"),
                    amount=amount,
                    currency=currency,
                    effective_date=_date(_attr(element, "originalProcessingDate")),
                    raw=dict(element.attrib),
                )
            )
        elif name == "MessagingAdvice":
            advice = "auddis" if kind == "auddis" else "addacs"
            kinds.add(advice)
            code = _attr(element, "reason-code", "reasonCode")
            notices.append(
                BacsNotice(
                    kind=advice,
                    payer_reference=_attr(element, "reference"),
                    payer_name=_attr(element, "payer-name", "payerName"),
                    payer_account=payer_account_text(
                        sort_code=_attr(element, "payer-sort-code", "payerSortCode"),
                        account_number=_attr(element, "payer-account-number", "payerAccountNumber"),
                    ),
                    code=code,
                    description=(
                        ADDACS_REASONS.get(code, "Instruction changed")
                        if advice == "addacs"
                        else _attr(element, "reason", "description") or "Instruction refused"
                    ),
                    effective_date=_date(_attr(element, "effective-date", "effectiveDate")),
                    raw=dict(element.attrib),
                )
            )
        elif name in ("FailedAccount", "Failure") and _attr(element, "reference", "ref"):
            kinds.add("auddis")
            notices.append(
                BacsNotice(
                    kind="auddis",
                    payer_reference=_attr(element, "reference", "ref"),
                    payer_name=_attr(element, "payer-name", "payerName", "name"),
                    code=_attr(element, "reason-code", "reasonCode", "code"),
                    description=_attr(element, "reason", "description") or "Instruction refused",
                    effective_date=_date(_attr(element, "effective-date", "effectiveDate")),
                    raw=dict(element.attrib),
                )
            )
    if not notices:
        raise StatementError(
            "This XML file holds no Bacs ARUDD, ADDACS or AUDDIS items (ReturnedDebitItem, "
            "MessagingAdvice or FailedAccount)."
        )
    return "/".join(sorted(kinds)), notices
