"""The operation registry: every SOAP operation the sandbox answers, and how handlers reply.

A handler receives the request body already parsed against the WSDL (plain dicts, lists, int,
Decimal, datetime, bool, str) and returns a `Reply`, or raises `AiqFailure`, which the
dispatcher turns into AIQ's own error shape: HTTP 200, `Status=Failure`, `ErrorCode`,
`ErrorMessage`. Handlers never build XML; the WSDL codec does that from the schema.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# AIQ's ErrorCode values. The published samples only ever show SUCCESS; the failures below are
# the sandbox's own names, sent in the same element with the explanation in ErrorMessage.
SUCCESS = "SUCCESS"
FAILURE = "FAILURE"
TOKEN_EXPIRED = "TOKEN_EXPIRED"  # noqa: S105 - an error code, not a secret
INVALID_TOKEN = "INVALID_TOKEN"  # noqa: S105 - an error code, not a secret
NOT_FOUND = "NOT_FOUND"
VALIDATION = "VALIDATION_ERROR"
DUPLICATE = "DUPLICATE"
CONCURRENCY = "CONCURRENCY_ERROR"
OVER_ALLOCATION = "OVER_ALLOCATION"
ACCESS_DENIED = "ACCESS_DENIED"
SERVER_ERROR = "SERVER_ERROR"


class AiqFailure(Exception):
    """An AIQ business error: answered as Status=Failure in an HTTP 200 body."""

    def __init__(self, message: str, code: str = VALIDATION, *, has_expired: bool = False):
        super().__init__(message)
        self.message = message
        self.code = code
        self.has_expired = has_expired


@dataclass
class Reply:
    """A successful answer: `result` goes in `<OpResult><Result>`, `siblings` next to
    `<OpResult>` (transactionID, invoiceID, creditNoteIDs ...)."""

    result: Any = None
    siblings: dict[str, Any] = field(default_factory=dict)
    # Only for the few operations whose wrapper is not the usual Status/ErrorCode/... shape
    # (Login, TokenGet/TokenRefresh): the whole response element content.
    raw: dict[str, Any] | None = None


@dataclass(frozen=True)
class Operation:
    name: str
    handler: Callable
    write: bool  # changes books: subject to commit-then-drop fault injection
    auth: bool  # needs a session token (1.1) or an AiqSoapHeader access token (2.0)


OPERATIONS: dict[str, Operation] = {}


def operation(name: str, *, write: bool = False, auth: bool = True):
    def register(handler):
        if name in OPERATIONS:
            raise RuntimeError(f"operation {name} registered twice")
        OPERATIONS[name] = Operation(name=name, handler=handler, write=write, auth=auth)
        return handler

    return register


def load_all() -> dict[str, Operation]:
    """Import every handler module so their @operation decorators run."""
    from sandbox.ops import (  # noqa: F401
        auth,
        banks,
        credit_notes,
        customers,
        documents,
        invoices,
        journals,
        purchase_payments,
        queries,
        receipts,
        setup,
        sundry,
    )

    return OPERATIONS
