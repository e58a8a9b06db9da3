"""Invoices: a keyset-paged list with filters, and the detail page."""

from collections.abc import Callable

from django.shortcuts import render

from core.paging import keyset_page
from ledger import selectors
from ledger.forms import AttachmentForm, InvoiceFilter
from ledger.models import Document, Invoice
from staff.company_scope import company_scope
from staff.views import clerk_required, get_or_404

# What apps above the ledger add to an invoice's page, each fn(invoice) -> template context
# (payments: the plans in flight on it); registered in their AppConfig.ready().
INVOICE_PAGE: list[Callable[[Invoice], dict]] = []


def invoice_page_extend(extend: Callable[[Invoice], dict]) -> None:
    if extend not in INVOICE_PAGE:
        INVOICE_PAGE.append(extend)


@clerk_required
def invoice_list(request):
    filterset = InvoiceFilter(
        request.GET or None,
        queryset=company_scope(selectors.invoice_list(), request),
        request=request,
    )
    queryset = (
        filterset.qs if (not filterset.is_bound or filterset.is_valid()) else Invoice.objects.none()
    )
    page = keyset_page(
        queryset, order=("invoice_date", "id"), after=request.GET.get("after"), size=50
    )
    template = (
        "ledger/_invoice_rows.html"
        if request.htmx and request.GET.get("after")
        else ("ledger/invoices.html")
    )
    context = {"filter": filterset, "page": page}
    if template == "ledger/invoices.html":
        totals = selectors.invoice_totals(queryset)
        context.update(totals=totals, count=sum(row["n"] for row in totals))
    return render(request, template, context)


@clerk_required
def invoice_detail(request, invoice_id):
    invoice = get_or_404(Invoice.objects.select_related("customer", "entity"), pk=invoice_id)
    allocations = list(selectors.invoice_allocations(invoice))
    receipts = {a.receipt for a in allocations if a.receipt_id}
    cached = set(
        Document.objects.filter(entity=invoice.entity_id)
        .filter(
            aiq_transaction_id__in=[invoice.aiq_transaction_id or 0]
            + [r.aiq_transaction_id for r in receipts if r.aiq_transaction_id]
        )
        .values_list("kind", "aiq_transaction_id")
    )
    context = {
        "invoice": invoice,
        "lines": invoice.lines.all(),
        "allocations": allocations,
        "credit_notes": invoice.credit_notes.all(),
        "cached": cached,
        "attach_form": AttachmentForm(),
    }
    for extend in INVOICE_PAGE:
        context.update(extend(invoice))
    return render(request, "ledger/invoice_detail.html", context)
