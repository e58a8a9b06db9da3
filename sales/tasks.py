"""Tasks of sales invoicing: e-mail posted invoices' PDFs to customers (thin: load, call)."""

from django.conf import settings
from django.core.mail import EmailMessage
from django_q.tasks import async_task

from ledger.documents import document_pdf
from ledger.models import Document
from sales.models import SalesInvoice
from sales.services.after_posting import breakdown_csv
from sales.services.deferred import deferred_releases_run


def invoice_emails_soon(invoice_ids: list[int]) -> None:
    for pk in invoice_ids:
        async_task("sales.tasks.invoice_email", pk, task_name="sales-invoice-email", save=False)


def invoice_email(invoice_id: int) -> bool:
    """Send the AIQ PDF of one posted invoice, with its breakdown, to the customer. A failure
    raises (django-q retries the task); sending twice is the worst case, never losing it."""
    row = SalesInvoice.objects.select_related("entity").get(pk=invoice_id)
    if not row.aiq_transaction_id or not row.customer_email:
        return False
    pdf = document_pdf(
        entity=row.entity,
        kind=Document.Kind.INVOICE_PDF,
        transaction_id=row.aiq_transaction_id,
        filename=f"{row.external_reference}.pdf",
    )
    message = EmailMessage(
        subject=f"Invoice {row.external_reference} from {row.entity.name}",
        body=(
            f"Dear {row.customer_name},\n\nPlease find attached invoice {row.external_reference} "
            f"for {row.gross_amount:.2f} {row.currency}, with its breakdown.\n"
        ),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[row.customer_email],
    )
    message.attach(f"{row.external_reference}.pdf", bytes(pdf.content), "application/pdf")
    message.attach(f"{row.external_reference}-breakdown.csv", breakdown_csv(row), "text/csv")
    message.send()
    return True


def deferred_releases_task() -> int:
    """Scheduled hourly ("deferred-revenue"): queue the deferred revenue releases that are due."""
    return deferred_releases_run()
