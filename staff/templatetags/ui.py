"""Template helpers for the staff screens: money per currency, state badges, query strings."""

from django import template
from django.utils.html import format_html

from core.money import MoneyError, format_money
from staff.audit_text import change_sentences

register = template.Library()


@register.filter
def money(amount, currency):
    """1234.5|money:"GBP" -> '1,234.50 GBP'; JPY without decimals, KWD with three."""
    if amount is None or amount == "":
        return ""
    try:
        return format_money(amount, currency)
    except MoneyError:
        return f"{amount} {currency}"


@register.filter
def money_plain(amount, currency):
    """The number only (for inputs and for cells whose column header names the currency)."""
    if amount is None or amount == "":
        return ""
    try:
        return format_money(amount, currency, with_code=False).replace(",", "")
    except MoneyError:
        return str(amount)


@register.simple_tag
def amount_cell(amount, currency, label=""):
    """A right-aligned amount cell a screen reader announces with its meaning."""
    text = money(amount, currency)
    if label:
        return format_html('<td class="num" aria-label="{}: {}">{}</td>', label, text, text)
    return format_html('<td class="num">{}</td>', text)


@register.filter
def badge(state):
    """CSS class for a state value (pending, failed, confirmed ...)."""
    return f"badge badge-{state}"


@register.simple_tag(takes_context=True)
def query(context, **changes):
    """The current query string with some parameters replaced (None/'' removes them)."""
    params = context["request"].GET.copy()
    for key, value in changes.items():
        if value is None or value == "":
            params.pop(key, None)
        else:
            params[key] = value
    encoded = params.urlencode()
    return f"?{encoded}" if encoded else "?"


@register.filter
def audit_change(entry):
    """The entry's change as sentences (staff/audit_text.py)."""
    return change_sentences(entry.before, entry.after)


@register.simple_tag(takes_context=True)
def company_name(context, entity_id):
    """A company's name from the header's choices (aiqrecon/companies.py), by its id."""
    for company_id, name, _currency in context.get("company_choices") or ():
        if company_id == entity_id:
            return name
    return ""
