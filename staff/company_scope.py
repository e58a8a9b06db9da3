"""Lists show the companies the screen is on (aiqrecon/companies.py sets them on the request).

`company_ids(request)`: a page's own `?company=<id>` filter when the person may see that
company, else the header's choice; None for every company. `company_scope(queryset, request,
field)` filters a list by it. Staff knows no company model: ids only.
"""

SESSION_KEY = "company"


def company_id_from(value) -> int | None:
    """A company id as a form or the session gave it, or None (anything else: "all", "²",
    a number too long for a database integer)."""
    text = str(value) if value is not None else ""
    if text.isascii() and text.isdigit() and len(text) < 10:
        return int(text)
    return None


def company_ids(request) -> list[int] | None:
    visible = getattr(request, "visible_company_ids", None)
    wanted = company_id_from(request.GET.get("company"))
    if wanted is not None and (visible is None or wanted in visible):
        return [wanted]
    return getattr(request, "company_ids", None)


def company_scope(queryset, request, field: str = "entity_id"):
    """The queryset cut to the companies the screen shows (unchanged for every company)."""
    ids = company_ids(request)
    return queryset if ids is None else queryset.filter(**{f"{field}__in": ids})


def visible_scope(queryset, request, field: str = "entity_id"):
    """The queryset cut to every company the person may act on (for actions on ids a form
    sent: whatever the screen shows, another company's rows are never touched)."""
    visible = getattr(request, "visible_company_ids", None)
    return queryset if visible is None else queryset.filter(**{f"{field}__in": sorted(visible)})
