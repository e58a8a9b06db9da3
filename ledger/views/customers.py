"""Customers: list, and detail with the statement mirrored from AIQ, credit check, open items.

Both lists page by keyset (code or invoice date, then id) with a "more" link, and say how many
rows match and how many are not shown yet: a finance team with 20,000 customers must reach
every one, and nothing is cut silently.
"""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from core.paging import keyset_page
from ledger import selectors
from ledger.aiq.errors import AiqError
from ledger.forms import CustomerFilter
from ledger.models import Customer, CustomerStatement
from ledger.sync import services as sync_services
from staff.company_scope import company_scope
from staff.views import clerk_required, get_or_404

CUSTOMERS_PER_PAGE = 200
OPEN_ITEMS_PER_PAGE = 200


@clerk_required
def customer_list(request):
    filterset = CustomerFilter(
        request.GET or None, queryset=company_scope(selectors.customer_list(), request)
    )
    queryset = (
        filterset.qs
        if (not filterset.is_bound or filterset.is_valid())
        else Customer.objects.none()
    )
    after = request.GET.get("after")
    more_rows_only = bool(request.htmx and after)  # the "more" link: no total shown
    total = None if more_rows_only else queryset.count()
    page = keyset_page(
        queryset,
        order=("code", "id"),
        after=after,
        size=CUSTOMERS_PER_PAGE,
        descending=False,
        count_rest=True,
        total=total,
    )
    if more_rows_only:
        return render(request, "ledger/_customer_rows.html", {"page": page})
    context = {"filter": filterset, "page": page, "total": total}
    return render(request, "ledger/customers.html", context)


STATEMENT_LINES_SHOWN = 500


def _statement_context(customer, statement, error: str = "") -> dict:
    lines = list(statement.lines.all()[:STATEMENT_LINES_SHOWN]) if statement else []
    total = statement.lines.count() if len(lines) == STATEMENT_LINES_SHOWN else len(lines)
    return {
        "customer": customer,
        "statement": statement,
        "lines": lines,
        "lines_total": total,
        "error": error,
    }


@clerk_required
def customer_detail(request, customer_id):
    customer = get_or_404(Customer.objects.select_related("entity"), pk=customer_id)
    after = request.GET.get("after")
    more_rows_only = bool(request.htmx and after)  # the "more open items" link
    exposure = None if more_rows_only else selectors.customer_exposure(customer)
    open_items = keyset_page(
        selectors.customer_open_items(customer),
        order=("invoice_date", "id"),
        after=after,
        size=OPEN_ITEMS_PER_PAGE,
        descending=False,
        count_rest=True,
        total=exposure["open_count"] if exposure else None,
    )
    if more_rows_only:
        return render(
            request, "ledger/_customer_open_items.html", {"customer": customer, "page": open_items}
        )
    statement = CustomerStatement.objects.filter(customer=customer).first()
    context = {
        "customer": customer,
        "exposure": exposure,
        "page": open_items,
        "payments": list(customer.payments.order_by("-received_at", "-id")[:50]),
        "credits": selectors.customer_credits(customer),
        # payer keys payments are identified by (learned from people's allocations, or confirmed)
        "payer_aliases": list(
            customer.payermapping_set.select_related("confirmed_by").order_by("source", "payer_key")
        ),
    }
    if statement is not None:  # none yet: the page asks the statement view, which pulls it
        context.update(_statement_context(customer, statement))
    return render(request, "ledger/customer_detail.html", context)


@require_http_methods(["GET", "POST"])
@clerk_required
def customer_statement(request, customer_id):
    """htmx partial: the customer's statement as last pulled from AIQ. POST ("Refresh from
    AIQ") pulls it again now; a GET for a customer never pulled pulls it once. When AIQ fails,
    its message is shown with the statement stored before (if any)."""
    customer = get_or_404(Customer.objects.select_related("entity"), pk=customer_id)
    statement = CustomerStatement.objects.filter(customer=customer).first()
    error = ""
    if request.method == "POST" or statement is None:
        try:
            statement = sync_services.statement_refresh(customer=customer, actor=request.user)
        except AiqError as exc:  # AIQ's own message; the client keeps credentials out of it
            error = exc.message
    if request.method == "POST" and not request.htmx:
        if error:
            messages.error(request, f"Statement not refreshed: AIQ did not answer: {error}")
        else:
            messages.success(request, "Statement refreshed from AIQ.")
        return redirect("ledger:customer", customer.pk)
    return render(
        request, "ledger/_customer_statement.html", _statement_context(customer, statement, error)
    )
