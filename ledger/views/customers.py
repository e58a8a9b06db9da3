"""Customers: list, and detail with AIQ statement and balance, credit check, open items."""

from django.shortcuts import render

from ledger import selectors
from ledger.forms import CustomerFilter
from ledger.models import Customer
from staff.views import clerk_required, get_or_404, run_service


@clerk_required
def customer_list(request):
    filterset = CustomerFilter(request.GET or None, queryset=selectors.customer_list())
    queryset = (
        filterset.qs
        if (not filterset.is_bound or filterset.is_valid())
        else Customer.objects.none()
    )
    customers = list(queryset.order_by("code", "id")[:200])
    return render(request, "ledger/customers.html", {"filter": filterset, "customers": customers})


@clerk_required
def customer_detail(request, customer_id):
    customer = get_or_404(Customer.objects.select_related("entity"), pk=customer_id)
    context = {
        "customer": customer,
        "exposure": selectors.customer_exposure(customer),
        "open_items": list(selectors.customer_open_items(customer)[:200]),
        "payments": list(customer.payments.order_by("-received_at", "-id")[:50]),
    }
    return render(request, "ledger/customer_detail.html", context)


@clerk_required
def customer_statement(request, customer_id):
    """htmx: the statement and balance as AIQ reports them, fetched live (may be slow)."""
    customer = get_or_404(Customer.objects.select_related("entity"), pk=customer_id)
    statement = run_service("ledger.aiq.statements", "customer_statement", customer=customer)
    balance = run_service("ledger.aiq.statements", "customer_balance", customer=customer)
    return render(
        request,
        "ledger/_customer_statement.html",
        {"customer": customer, "statement": statement, "balance": balance},
    )
