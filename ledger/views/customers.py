"""Customers: list, and detail with AIQ statement and balance, credit check, open items."""

from django.shortcuts import render
from django.utils import timezone

from ledger import selectors
from ledger.aiq.errors import AiqError
from ledger.forms import CustomerFilter
from ledger.models import Customer
from staff.views import clerk_required, get_or_404


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


def _statement(customer):
    """The statement and balance as AIQ reports them now (reads; nothing is stored)."""
    from ledger.aiq.client import AiqClient

    client = AiqClient.for_entity(customer.entity)
    now = timezone.now()
    statements = client.get_customers_statement(
        up_to=now, customer_codes=[customer.code], show_zeros=True
    )
    balances = (
        client.get_account_balance_information(at=now, account_ids=[customer.aiq_account_id])
        if customer.aiq_account_id
        else []
    )
    state, rows = {}, []
    for statement in statements:
        if str(statement.get("CustomerState", {}).get("CustomerCode", "")).upper() == customer.code:
            state = statement["CustomerState"]
            listed = statement.get("TransactionList") or []
            if isinstance(listed, dict):  # the array wrapper kept by the decoder
                listed = listed.get("TransactionState") or []
            rows = listed if isinstance(listed, list) else [listed]
    return {"state": state, "rows": rows, "balance": balances[0] if balances else None}


@clerk_required
def customer_statement(request, customer_id):
    """htmx: the statement and balance from AIQ, fetched live when the page asks for it."""
    customer = get_or_404(Customer.objects.select_related("entity"), pk=customer_id)
    try:
        context = {"customer": customer, **_statement(customer), "error": ""}
    except AiqError as error:
        context = {"customer": customer, "error": error.message}
    return render(request, "ledger/_customer_statement.html", context)
