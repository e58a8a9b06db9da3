"""Invoices: a keyset-paged list with filters, and the detail page."""

from django.shortcuts import render

from core.paging import keyset_page
from ledger import selectors
from ledger.forms import AttachmentForm, InvoiceFilter
from ledger.models import Document, Invoice
from staff.views import clerk_required, get_or_404


@clerk_required
def invoice_list(request):
    filterset = InvoiceFilter(request.GET or None, queryset=selectors.invoice_list())
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
    return render(request, template, {"filter": filterset, "page": page})


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
        "plan_lines": invoice_plan_lines(invoice),
        "cached": cached,
        "attach_form": AttachmentForm(),
    }
    return render(request, "ledger/invoice_detail.html", context)


def invoice_plan_lines(invoice):
    """Allocation plans touching the invoice that are not yet in AIQ (what is in flight)."""
    from payments.models import AllocationPlanLine

    return (
        AllocationPlanLine.objects.filter(invoice=invoice)
        .select_related("plan", "plan__payment", "plan__maker")
        .exclude(plan__state__in=["confirmed", "void", "rejected"])
        .order_by("-plan__created_at")
    )
