"""PDFs from AIQ (cached in ledger.Document) and CSV/Excel breakdowns attached to invoices.

The AIQ client does the SOAP calls (GetInvoicePDFByTransactionID,
GetSalesReceiptPDFByTransactionID); the first download stores the bytes so later ones do not
hit AIQ. Until the client offers those operations the page says "not available yet".
"""

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from ledger.forms import AttachmentForm
from ledger.models import Document, Invoice, Receipt
from staff.views import clerk_required, get_or_404, optional_service, run_service

DOCUMENTS = "ledger.documents"


def _pdf_response(document: Document) -> HttpResponse:
    response = HttpResponse(bytes(document.content), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{document.filename}"'
    return response


def _unavailable(request, what: str, back: str):
    messages.error(request, f"The {what} PDF is not available yet: {_reason()}")
    return redirect(back)


def _reason() -> str:
    if optional_service(DOCUMENTS, "document_pdf") is None:
        return "downloading PDFs from AIQ has not been installed."
    return "AIQ did not return it."


def _pdf(request, *, entity, kind, transaction_id, filename, back, what):
    if not transaction_id:
        messages.error(request, f"This {what} is not in AIQ yet, so it has no PDF.")
        return redirect(back)
    cached = Document.objects.filter(
        entity=entity, kind=kind, aiq_transaction_id=transaction_id
    ).first()
    if cached is not None:
        return _pdf_response(cached)
    outcome = run_service(
        DOCUMENTS,
        "document_pdf",
        entity=entity,
        kind=kind,
        aiq_transaction_id=transaction_id,
        filename=filename,
    )
    if not outcome.ok or outcome.value is None:
        messages.error(request, f"The {what} PDF could not be fetched: {outcome.message}")
        return redirect(back)
    return _pdf_response(outcome.value)


@clerk_required
def invoice_pdf(request, invoice_id):
    invoice = get_or_404(Invoice.objects.select_related("entity"), pk=invoice_id)
    name = invoice.invoice_number or f"invoice-{invoice.pk}"
    return _pdf(
        request,
        entity=invoice.entity,
        kind=Document.Kind.INVOICE_PDF,
        transaction_id=invoice.aiq_transaction_id,
        filename=f"{name}.pdf",
        back=f"/invoices/{invoice.pk}/",
        what="invoice",
    )


@clerk_required
def receipt_pdf(request, receipt_id):
    receipt = get_or_404(Receipt.objects.select_related("entity"), pk=receipt_id)
    back = request.GET.get("next", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        back = "/invoices/"  # only ever send people back within this site
    return _pdf(
        request,
        entity=receipt.entity,
        kind=Document.Kind.RECEIPT_PDF,
        transaction_id=receipt.aiq_transaction_id,
        filename=f"receipt-{receipt.check_reference}.pdf",
        back=back,
        what="receipt",
    )


@require_POST
@clerk_required
def invoice_attach(request, invoice_id):
    invoice = get_or_404(Invoice.objects.select_related("entity"), pk=invoice_id)
    form = AttachmentForm(request.POST, request.FILES)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, f"Attachment not sent: {error}")
        return redirect("ledger:invoice", invoice_id=invoice.pk)
    upload = form.cleaned_data["file"]
    outcome = run_service(
        DOCUMENTS,
        "document_attach",
        invoice=invoice,
        filename=upload.name,
        content=upload.read(),
        description=form.cleaned_data["description"],
        actor=request.user,
    )
    if outcome.ok:
        messages.success(request, f"{upload.name} is queued to be attached to {invoice} in AIQ.")
    else:
        messages.error(request, f"Attachment not sent: {outcome.message}")
    return redirect("ledger:invoice", invoice_id=invoice.pk)
