"""The errors every AIQ call can raise. Callers decide retry versus "show a person" by class alone.

    AiqError
    ├── AiqTemporaryError        retry later: network, timeout, HTTP 5xx, server fault, bad reply,
    │   │                        token problems
    │   ├── AiqAmbiguousError    a write was sent and no answer came back: it may have committed.
    │   │                        Read back by external reference before sending it again.
    │   └── AiqAuthError         Login/TokenGet failed, or a token expired on a write that the
    │                            caller did not mark replay-safe (the write did not happen)
    └── AiqPermanentError        AIQ answered Status=Failure (ErrorCode/ErrorMessage), or the
        │                        request itself is wrong (SOAP Client fault): retrying won't help
        └── AiqConfigurationError  the entity's credentials are missing from the environment

Messages never contain credentials or tokens (the client redacts them before raising).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ledger.aiq.results import AiqResult


class AiqError(Exception):
    def __init__(self, message: str, *, operation: str = ""):
        super().__init__(message)
        self.operation = operation
        self.message = message

    def __str__(self) -> str:
        return f"{self.operation}: {self.message}" if self.operation else self.message


class AiqTemporaryError(AiqError):
    """Worth retrying later; nothing is known to have been written."""


class AiqAmbiguousError(AiqTemporaryError):
    """A write reached (or may have reached) AIQ but its answer was lost."""


class AiqAuthError(AiqTemporaryError):
    """Could not obtain or use a session token."""


class AiqPermanentError(AiqError):
    def __init__(
        self,
        message: str,
        *,
        operation: str = "",
        error_code: str = "",
        result: AiqResult | None = None,
    ):
        super().__init__(message, operation=operation)
        self.error_code = error_code
        self.error_message = message
        self.result = result


class AiqConfigurationError(AiqPermanentError):
    """Missing or unusable configuration (e.g. an entity's key is not in the environment)."""
