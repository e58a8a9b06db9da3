"""Downloads of AIQ's PDFs and uploads of CSV/Excel breakdowns; the work is in ledger.documents."""

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from core.inputs import parse_next
from ledger import documents
from ledger.aiq.errors import AiqError
from ledger.forms import AttachmentForm
from ledger.models import Document, Invoice, Receipt
from staff.views import clerk_required, get_or_404, run_service


def _pdf_response(document: Document) -> HttpResponse:
    response = HttpResponse(bytes(document.content), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{document.filename}"'
    return response


def _pdf(request, *, entity, kind, transaction_id, filename, back, what):
    if not transaction_id:
        messages.error(request, f"This {what} is not in AIQ yet, so it has no PDF.")
        return redirect(back)
    try:
        document = documents.document_pdf(
            entity=entity, kind=kind, transaction_id=transaction_id, filename=filename
        )
    except AiqError as error:
        # AIQ's own message (never credentials: the client redacts them) for a person to act on
        messages.error(request, f"The {what} PDF could not be fetched from AIQ: {error.message}")
        return redirect(back)
    return _pdf_response(document)


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
    # only ever send people back to a page of this site
    back = parse_next(request.GET.get("next"), request) or "/invoices/"
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
        documents.document_attach,
        invoice=invoice,
        upload=upload,  # the service reads at most its size limit
        description=form.cleaned_data["description"],
        actor=request.user,
    )
    if outcome.ok:
        messages.success(request, f"{upload.name} is queued to be attached to {invoice} in AIQ.")
    else:
        messages.error(request, f"Attachment not sent: {outcome.message}")
    return redirect("ledger:invoice", invoice_id=invoice.pk)
