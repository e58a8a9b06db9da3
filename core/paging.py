"""Keyset paging: hot lists page over an indexed (value, id) pair, newest first: no OFFSET
and no COUNT(*) over the whole table, so page 1 and page 10,000 cost the same."""

import base64
from dataclasses import dataclass, field
from datetime import date

from django.core import signing
from django.db.models import Q, QuerySet

from core.inputs import BadInput, parse_id


class BadCursor(BadInput):
    """A page cursor that was not made by keyset_page (edited by hand, or stale format)."""


@dataclass
class KeysetPage:
    items: list
    next_cursor: str | None
    size: int
    extra: dict = field(default_factory=dict)

    @property
    def has_next(self) -> bool:
        return self.next_cursor is not None


# Cursors are signed: a page link edited by hand (e.g. an extreme date, which overflowed the
# database driver) is refused as a whole instead of reaching a query.
def _signer() -> signing.Signer:
    return signing.Signer(salt="core.paging.cursor")


def _encode(values) -> str:
    return _signer().sign(
        base64.urlsafe_b64encode("|".join(str(v) for v in values).encode()).decode()
    )


def _decode(queryset: QuerySet, order: tuple[str, str], cursor: str):
    """The one parser of page cursors: (value, id) as keyset_page wrote them, or BadCursor."""
    try:
        raw = base64.urlsafe_b64decode(_signer().unsign(cursor).encode()).decode()
        first, last_id = raw.rsplit("|", 1)
        model_field = queryset.model._meta.get_field(order[0])
        value = model_field.to_python(first)
        if isinstance(value, date) and not 1 < value.year < 9999:
            raise ValueError("a date at the edge of the calendar")  # overflows once shifted
        return value, parse_id(last_id, field="after")
    except Exception as error:  # any malformed cursor is the user's input, not our bug
        raise BadCursor(
            "Page link: it is not valid any more; start from the first page."
        ) from error


def _beyond(queryset: QuerySet, key: str, pk: str, value, last_id: int, descending: bool):
    """The rows that come after (value, last_id) in the page order.

    Written as `v <= x AND (v < x OR id < y)` (or >= / > ascending) so the database can use
    the first column as an index range instead of scanning an OR.
    """
    wide, strict = ("lte", "lt") if descending else ("gte", "gt")
    return queryset.filter(
        Q(**{f"{key}__{wide}": value})
        & (Q(**{f"{key}__{strict}": value}) | Q(**{f"{pk}__{strict}": last_id}))
    )


def keyset_page(
    queryset: QuerySet,
    *,
    order: tuple[str, str],
    after: str | None,
    size: int = 50,
    descending: bool = True,
    count_rest: bool = False,
    total: int | None = None,
):
    """One page by (order[0], id), newest first unless descending=False, starting after the
    cursor. count_rest=True also counts the rows beyond this page (extra["rest"]), so a
    screen can say how many it has not shown yet instead of cutting silently; on the first
    page a caller that counted all the rows already (total) saves that second count.
    """
    key, pk = order
    sign = "-" if descending else ""
    queryset = queryset.order_by(f"{sign}{key}", f"{sign}{pk}")
    page_rows = queryset
    if after:
        value, last_id = _decode(queryset, order, after)
        page_rows = _beyond(queryset, key, pk, value, last_id, descending)
    rows = list(page_rows[: size + 1])
    next_cursor = None
    extra = {}
    if len(rows) > size:
        rows = rows[:size]
        last = rows[-1]
        last_value, last_pk = getattr(last, key), getattr(last, pk)
        next_cursor = _encode((last_value, last_pk))
        if count_rest and total is not None and not after:
            extra["rest"] = total - size
        elif count_rest:
            extra["rest"] = _beyond(queryset, key, pk, last_value, last_pk, descending).count()
    elif count_rest:
        extra["rest"] = 0
    return KeysetPage(items=rows, next_cursor=next_cursor, size=size, extra=extra)
