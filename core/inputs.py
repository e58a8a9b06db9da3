"""Ids from people and links: one parser, used by every view, form and URL.

`str.isdigit()` is true for "²" and other Unicode digits (int() then raises), and a 26-digit
id overflows SQLite's 64-bit INTEGER (OverflowError at query time): both answered 500 before.
An id here is 1 to 18 ASCII digits (every primary key is a 64-bit BigAutoField,
so 18 digits always fit). Anything else is BadInput: a 400 page saying which field was wrong.
"""

from collections.abc import Iterable

from django.core.exceptions import BadRequest

MAX_ID_DIGITS = 18


class BadInput(BadRequest):
    """Input that cannot be used as it is: answered 400 with this message, which names the
    field. Nothing has been written when it is raised."""


def is_id(value) -> bool:
    text = value if isinstance(value, str) else ""
    return 0 < len(text) <= MAX_ID_DIGITS and text.isascii() and text.isdigit()


def parse_id(value, *, field: str) -> int:
    """The id in `value` (text from a form, query string or link), or BadInput naming field."""
    text = value.strip() if isinstance(value, str) else value
    if not is_id(text):
        shown = repr(value)[:40] if value not in (None, "") else "nothing"
        raise BadInput(f"{field}: {shown} is not a record number.")
    return int(text)


def parse_optional_id(value, *, field: str) -> int | None:
    """As parse_id, but empty means None (an optional choice left blank)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return parse_id(value, field=field)


def parse_ids(values: Iterable, *, field: str) -> list[int]:
    """Every id of a repeated field (checkboxes), in order, without repeats."""
    ids: list[int] = []
    for value in values:
        number = parse_id(value, field=field)
        if number not in ids:
            ids.append(number)
    return ids


class IdConverter:
    """The `<id:name>` URL part: what parse_id accepts. A longer number is no URL of ours
    (404), where `<int:...>` passed it on to overflow the database."""

    regex = f"[0-9]{{1,{MAX_ID_DIGITS}}}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value) -> str:
        return str(int(value))


def parse_next(value, request) -> str | None:
    """A "back to" address from a form or link: a path of this site, or None. Only a path
    ("/payments/?tab=all"): redirect() would take a bare word for a view name and raise."""
    from django.utils.http import url_has_allowed_host_and_scheme

    if not (isinstance(value, str) and value.startswith("/") and not value.startswith("//")):
        return None
    allowed = url_has_allowed_host_and_scheme(
        value, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return value if allowed else None
