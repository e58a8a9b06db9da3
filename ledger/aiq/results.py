"""Turn zeep's answer to an AIQ operation into an `AiqResult` of plain Python values.

Every AIQ answer is `<OpResponse><OpResult>...</OpResult>[siblings]</OpResponse>` where OpResult is
usually a status wrapper (Status, ErrorCode, ErrorMessage, HasExpired, Result) and the siblings
carry ids (transactionID, invoiceID, creditNoteID, transactionIDs ...). A few operations answer a
list of WSResultStatus instead (PostCreditNotesGetBackTransactionIDs ...). Values stay what zeep
decodes from the WSDL types: Decimal for amounts, int ids, datetime, bool, bytes for PDFs; `ArrayOfX`
wrappers become Python lists, objects become dicts keyed by AIQ's element names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from zeep.xsd.valueobjects import CompoundValue

# Sibling element -> AiqResult attribute.
SIBLINGS = {
    "transactionID": "transaction_id",
    "transactionIDs": "transaction_ids",
    "invoiceID": "invoice_id",
    "invoiceIDs": "invoice_ids",
    "creditNoteID": "credit_note_id",
    "creditNoteIDs": "credit_note_ids",
    "orderID": "order_id",
}


@dataclass(frozen=True, slots=True)
class AiqResult:
    operation: str
    status: str  # "Success" or "Failure"
    error_code: str = ""
    error_message: str = ""
    has_expired: bool = False
    result: Any = None
    transaction_id: int | None = None
    transaction_ids: list[int] | None = None
    invoice_id: int | None = None
    invoice_ids: list[int] | None = None
    credit_note_id: int | None = None
    credit_note_ids: list[int] | None = None
    order_id: int | None = None
    # Every element of the response beside OpResult, by AIQ's name (incl. the ones above).
    siblings: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "Success"


def _is_array(xsd_type: Any) -> bool:
    return (getattr(xsd_type, "name", None) or "").startswith("ArrayOf")


def to_plain(value: Any) -> Any:
    """zeep objects -> dicts/lists; `ArrayOfX` wrappers -> lists (empty list when absent items)."""
    if isinstance(value, CompoundValue):
        xsd_type = getattr(value, "_xsd_type", None)
        values = value.__values__
        if xsd_type is not None and _is_array(xsd_type) and len(values) == 1:
            inner = next(iter(values.values()))
            return [to_plain(v) for v in (inner or [])]
        # zeep decodes an empty array element (`<AllocationEntries/>`, `<Result/>`) as None,
        # which would reach callers as "no such field"; the schema says it is an empty list.
        arrays = (
            {name for name, element in xsd_type.elements if _is_array(element.type)}
            if xsd_type is not None and hasattr(xsd_type, "elements")
            else set()
        )
        return {k: [] if v is None and k in arrays else to_plain(v) for k, v in values.items()}
    if isinstance(value, list):
        return [to_plain(v) for v in value]
    return value


class MalformedReply(Exception):
    """The answer parsed as XML but is not an AIQ result (no status wrapper)."""


def interpret(operation: str, response: dict) -> AiqResult:
    """`response` maps each child of <OpResponse> to its plain value."""
    wrapper = response.get(operation + "Result")
    siblings = {k: v for k, v in response.items() if k != operation + "Result"}
    ids = {attr: siblings.get(name) for name, attr in SIBLINGS.items() if name in siblings}
    if isinstance(wrapper, list):
        # A list of WSResultStatus, one per item posted: the call failed if any item failed.
        failed = [w for w in wrapper if (w or {}).get("Status") != "Success"]
        first = failed[0] if failed else {}
        return AiqResult(
            operation=operation,
            status="Failure" if failed else "Success",
            error_code=first.get("ErrorCode") or "",
            error_message=first.get("ErrorMessage") or "",
            has_expired=any(bool((w or {}).get("HasExpired")) for w in failed),
            result=wrapper,
            siblings=siblings,
            **ids,
        )
    if not isinstance(wrapper, dict) or not wrapper.get("Status"):
        raise MalformedReply(f"no {operation}Result status in the answer")
    return AiqResult(
        operation=operation,
        status=str(wrapper["Status"]),
        error_code=wrapper.get("ErrorCode") or "",
        error_message=wrapper.get("ErrorMessage") or "",
        has_expired=bool(wrapper.get("HasExpired")),
        result=wrapper.get("Result"),
        siblings=siblings,
        **ids,
    )


def result_statuses(items: Any) -> list[dict]:
    """Per-item WSResultStatus entries inside a Result (UnallocateTransactions) that failed."""
    if not isinstance(items, list):
        return []
    return [i for i in items if isinstance(i, dict) and i.get("Status") not in (None, "Success")]


# --- reading values out of an answer: one spelling for pull and push -----------------------


def get(obj: Any, name: str, default=None):
    """One element of an AIQ object, whether zeep's or a plain dict."""
    if obj is None:
        return default
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def unwrap(obj: Any, wrapper: str) -> list:
    """AIQ lists come wrapped (<Result><WSTransactionSummary>...); unwrap to a Python list.
    Accepts an AiqResult (its .result), a plain list, or a dict holding the wrapper element."""
    if obj is None:
        return []
    if hasattr(obj, "operation") and hasattr(obj, "result"):  # an AiqResult, or a test's own
        obj = obj.result
        if obj is None:
            return []
    inner = get(obj, wrapper, obj) if not isinstance(obj, list) else obj
    if inner is None:
        return []
    if isinstance(inner, list):
        return inner
    return [inner]


def as_decimal(value) -> Decimal:
    """An AIQ amount as a Decimal (zeep decodes xsd:decimal as Decimal already)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        # a float here is a bug upstream, but repr() keeps its shortest exact decimal form
        # instead of binary noise
        return Decimal(repr(value))
    return Decimal(str(value))


def as_date(value) -> date:
    """An AIQ date or datetime (or its ISO text) as a date."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return datetime.fromisoformat(str(value)).date()
