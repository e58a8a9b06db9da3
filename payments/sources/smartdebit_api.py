"""SmartDebit's API (the Direct Debit bureau's own, https://secure.ddprocessing.co.uk): the
collection report of a day and the Bacs reports (ARUDD, ADDACS, AUDDIS) it passes on.

What the API answers, as SmartDebit documents it and its published clients use it (HTTP Basic
auth, `Accept: application/xml`, the service user's `query[service_user][pslid]` on every call):

- GET /api/get_successful_collection_report?query[collection_date]=YYYY-MM-DD:
  <CollectionReport><Successes><Success customer_id amount="4.99" debit_date="16/01/2015 00:00"
  account_name transaction_ref reference_number/>…</Successes><Rejects><Rejected … error_message/>
  </Rejects><Summary>…</Summary></CollectionReport>. Successes are money in; rejected
  collections never arrived and are counted, not stored.
- POST /api/arudd/list, /api/addac/list, /api/auddis/list with query[from_date],
  query[till_date], query[max_results], query[start_index]: one <arudd> (<addac>, <auddis>) per
  report with its <arudd_id> (…), dates and counts.
- GET /api/arudd/<id> (addac, auddis): the report itself, base64 in <file> (Bacs XML, read by
  payments.sources.bacs_reports).

Only this module talks to SmartDebit; tests fake the HTTP server, never this code.
"""

import base64
import binascii
import io
from dataclasses import dataclass
from datetime import date, datetime

import requests
from lxml import etree

from core.money import MoneyError, to_decimal
from payments.sources.statement_rows import (
    ParsedStatement,
    RowError,
    StatementEntry,
    StatementError,
    StatementHeader,
)

TIMEOUT = 60
PAGE = 100
REPORT_KINDS = {"arudd": "arudd", "addacs": "addac", "auddis": "auddis"}  # ours -> its path


class SmartDebitError(Exception):
    """SmartDebit refused or could not be reached; the message says which call and why."""


def _xml(content: bytes, what: str):
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        return etree.parse(io.BytesIO(content), parser).getroot()
    except etree.XMLSyntaxError as error:
        raise SmartDebitError(f"SmartDebit's {what} is not XML: {error}") from None


def _local(element) -> str:
    return element.tag.rpartition("}")[2] if isinstance(element.tag, str) else ""


@dataclass
class SmartDebitClient:
    base_url: str
    user: str
    password: str
    pslid: str
    timeout: int = TIMEOUT

    @classmethod
    def from_settings(cls) -> "SmartDebitClient | None":
        """The configured client, or None when SmartDebit's API is not configured."""
        from django.conf import settings

        values = [
            getattr(settings, name, "")
            for name in (
                "SMARTDEBIT_API_URL",
                "SMARTDEBIT_API_USER",
                "SMARTDEBIT_API_PASSWORD",
                "SMARTDEBIT_PSLID",
            )
        ]
        return cls(*values) if all(values) else None

    def _call(self, method: str, path: str, params: dict, what: str) -> bytes:
        url = self.base_url.rstrip("/") + path
        try:
            response = requests.request(
                method,
                url,
                params={"query[service_user][pslid]": self.pslid, **params},
                auth=(self.user, self.password),
                headers={"Accept": "application/xml", "User-Agent": "aiqrecon"},
                timeout=self.timeout,
            )
        except requests.RequestException as error:
            raise SmartDebitError(f"SmartDebit {what}: {type(error).__name__}") from None
        if response.status_code != 200:
            detail = ""
            try:
                root = _xml(response.content, what)
                detail = " ".join(
                    (e.text or "").strip() for e in root.iter() if _local(e) in ("error", "message")
                )
            except SmartDebitError:
                pass
            raise SmartDebitError(
                f"SmartDebit {what}: HTTP {response.status_code} {detail}".strip()[:500]
            )
        return response.content

    def collection_report(self, day: date) -> bytes:
        return self._call(
            "GET",
            "/api/get_successful_collection_report",
            {"query[collection_date]": day.isoformat()},
            f"collection report of {day:%d/%m/%Y}",
        )

    def report_ids(self, kind: str, since: date, until: date) -> list[str]:
        """The ids of the Bacs reports of one kind (arudd, addacs, auddis) in the window."""
        path = REPORT_KINDS[kind]
        ids: list[str] = []
        start = 0
        while True:
            params = {
                "query[from_date]": since.isoformat(),
                "query[till_date]": until.isoformat(),
                "query[max_results]": PAGE,
            }
            if start:
                params["query[start_index]"] = start
            root = _xml(self._call("POST", f"/api/{path}/list", params, f"{kind} list"), kind)
            page = [
                (item.findtext(f"{path}_id") or "").strip()
                for item in root.iter()
                if _local(item) == path
            ]
            ids.extend(i for i in page if i and i not in ids)
            if len(page) < PAGE:
                return ids
            start += PAGE

    def report_file(self, kind: str, report_id: str) -> bytes:
        """One Bacs report as Bacs wrote it (XML), from its base64 <file>."""
        path = REPORT_KINDS[kind]
        if not report_id.isdigit():
            raise SmartDebitError(f"SmartDebit {kind} id {report_id!r} is not a number.")
        root = _xml(self._call("GET", f"/api/{path}/{report_id}", {}, f"{kind} {report_id}"), kind)
        text = next((e.text or "" for e in root.iter() if _local(e) == "file"), "")
        try:
            # SmartDebit's base64 arrives with '+' turned into spaces by form decoding
            return base64.b64decode(text.strip().replace(" ", "+"), validate=True)
        except (binascii.Error, ValueError):
            raise SmartDebitError(
                f"SmartDebit {kind} {report_id}: the file is not base64."
            ) from None


def _debit_date(text: str) -> date:
    text = (text or "").strip()
    for pattern in ("%d/%m/%Y %H:%M", "%d/%m/%Y", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    raise ValueError(f"{text!r} is not a date")


def read_collection_report(content: bytes) -> tuple[ParsedStatement, list[StatementEntry]]:
    """A collection report's successful collections as statement entries (money in, GBP:
    Bacs collects only sterling), each with the payer's reference; rejected ones skipped."""
    try:
        root = _xml(content, "collection report")
    except SmartDebitError as error:
        raise StatementError(str(error)) from None
    if _local(root) != "CollectionReport":
        raise StatementError("This is not a SmartDebit collection report (CollectionReport).")
    parsed = ParsedStatement(file_format="smartdebit", statements=[StatementHeader(currency="GBP")])
    entries: list[StatementEntry] = []
    number = 0
    for element in root.iter():
        name = _local(element)
        if name == "Rejected" and element.get("reference_number") is not None:
            number += 1
            parsed.skipped += 1  # the collection failed: no money arrived
            continue
        if name != "Success":
            continue
        number += 1
        reference = (element.get("reference_number") or "").strip()
        try:
            amount = to_decimal(element.get("amount") or "")
            booked = _debit_date(element.get("debit_date") or "")
        except MoneyError as error:
            parsed.errors.append(RowError(number, "amount", f"collection {reference}: {error}"))
            continue
        except ValueError as error:
            parsed.errors.append(RowError(number, "debit_date", f"collection {reference}: {error}"))
            continue
        if not reference:
            parsed.errors.append(RowError(number, "reference_number", "no payer reference"))
            continue
        transaction_ref = (element.get("transaction_ref") or "").strip()
        entries.append(
            StatementEntry(
                row=number,
                booked=booked,
                amount=amount,
                currency="GBP",
                # the id is made from payer reference, debit date and amount (statement_items),
                # as for the portal's CSV report: the same collection both ways is one payment
                transaction_id=transaction_ref,
                bank_reference=transaction_ref,
                payer_name=(element.get("account_name") or "").strip(),
                payer_reference=reference,
                remittance=reference,
                raw={"customer_id": (element.get("customer_id") or "").strip()},
            )
        )
    parsed.row_count = number
    return parsed, entries
