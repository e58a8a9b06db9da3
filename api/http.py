"""Errors as RFC 9457 problem documents with field names (the API's exception handler)."""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

PROBLEM = "application/problem+json"


def _flatten(detail, prefix="") -> list[dict]:
    if isinstance(detail, dict):
        out = []
        for key, value in detail.items():
            if isinstance(key, int):  # a list's errors by position (DRF's ListSerializer)
                out += _flatten(value, f"{prefix}[{key}]")
                continue
            name = key if key != "non_field_errors" else ""
            out += _flatten(value, f"{prefix}.{name}" if prefix and name else (name or prefix))
        return out
    if isinstance(detail, list):
        if all(not isinstance(v, (dict, list)) for v in detail):
            return [{"field": prefix, "message": str(v)} for v in detail]
        out = []
        for index, value in enumerate(detail):
            if value:
                out += _flatten(value, f"{prefix}[{index}]")
        return out
    return [{"field": prefix, "message": str(detail)}]


def problem(status_code: int, title: str, detail: str = "", errors=None, headers=None):
    body = {"type": "about:blank", "title": title, "status": status_code, "detail": detail}
    if errors:
        body["errors"] = errors
    return Response(body, status=status_code, content_type=PROBLEM, headers=headers)


class Refused(Exception):
    """A business rule said no (HTTP 422), with the field it is about."""

    def __init__(self, message: str, field: str = "", status_code: int = 422):
        super().__init__(message)
        self.message, self.field, self.status_code = message, field, status_code


def problem_handler(exc, context):
    """Every error as a problem document; never a stack trace (a 500 says only that)."""
    if isinstance(exc, Refused):
        errors = [{"field": exc.field, "message": exc.message}]
        return problem(exc.status_code, "Refused", exc.message, errors)
    if isinstance(exc, DjangoValidationError):
        messages = exc.messages
        field = getattr(exc, "field", "")
        errors = [{"field": field, "message": m} for m in messages]
        return problem(422, "Refused", "; ".join(messages), errors)
    if isinstance(exc, (Http404,)):
        exc = exceptions.NotFound()
    if isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = exception_handler(exc, context)
    if response is None:
        return None  # unexpected: Django's 500 handler (logged, no details shown)
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
        detail = "; ".join(
            f"{e['field']}: {e['message']}" if e["field"] else e["message"] for e in errors
        )
        return problem(status.HTTP_400_BAD_REQUEST, "Invalid request", detail, errors)
    detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
    title = {
        401: "Not authenticated",
        403: "Forbidden",
        404: "Not found",
        405: "Method not allowed",
        406: "Not acceptable",
        415: "Unsupported media type",
        429: "Too many requests",
    }.get(response.status_code, "Error")
    headers = {
        k: v for k, v in response.items() if k in ("WWW-Authenticate", "Retry-After", "Allow")
    }
    return problem(response.status_code, title, str(detail), headers=headers)
