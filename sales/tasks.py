"""Tasks of sales invoicing: e-mail posted invoices' PDFs to customers (thin: load, call)."""

from django.conf import settings
from django.core.mail import EmailMessage
from django_q.tasks import async_task

from ledger.documents import document_pdf
from ledger.models import Customer, Document, OutboxCommand
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
    _email_pdf(
        entity=row.entity,
        kind=Document.Kind.INVOICE_PDF,
        transaction_id=row.aiq_transaction_id,
        filename=f"{row.external_reference}.pdf",
        to=row.customer_email,
        subject=f"Invoice {row.external_reference} from {row.entity.name}",
        body=(
            f"Dear {row.customer_name},\n\nPlease find attached invoice {row.external_reference} "
            f"for {row.gross_amount:.2f} {row.currency}, with its breakdown.\n"
        ),
        extra=[(f"{row.external_reference}-breakdown.csv", breakdown_csv(row), "text/csv")],
    )
    return True


def receipt_email_soon(command_id: int) -> None:
    async_task("sales.tasks.receipt_email", command_id, task_name="sales-receipt-email", save=False)


def receipt_email(command_id: int) -> bool:
    """Send the AIQ PDF of one posted sales receipt (a confirmed post_receipt) to its customer.
    A failure raises (django-q retries the task)."""
    command = OutboxCommand.objects.select_related("entity").get(pk=command_id)
    transaction_id = (command.result or {}).get("transaction_id")
    code = (command.payload.get("customer_code") or "").upper()
    customer = Customer.objects.filter(entity=command.entity, code=code).first()
    if not transaction_id or customer is None or not customer.email:
        return False
    reference = command.external_reference
    amount = command.payload.get("amount", "")
    currency = command.payload.get("currency", "")
    _email_pdf(
        entity=command.entity,
        kind=Document.Kind.RECEIPT_PDF,
        transaction_id=int(transaction_id),
        filename=f"receipt-{reference}.pdf",
        to=customer.email,
        subject=f"Payment received by {command.entity.name}",
        body=(
            f"Dear {customer.name},\n\nThank you for your payment of {amount} {currency} "
            f"(reference {reference}). Please find the receipt attached.\n"
        ),
    )
    return True


def _email_pdf(*, entity, kind, transaction_id, filename, to, subject, body, extra=()) -> None:
    """One AIQ PDF (cached by ledger.documents), e-mailed with any extra attachments."""
    pdf = document_pdf(entity=entity, kind=kind, transaction_id=transaction_id, filename=filename)
    message = EmailMessage(
        subject=subject, body=body, from_email=settings.DEFAULT_FROM_EMAIL, to=[to]
    )
    message.attach(filename, bytes(pdf.content), "application/pdf")
    for attachment in extra:
        message.attach(*attachment)
    message.send()


def deferred_releases_task() -> int:
    """Scheduled hourly ("deferred-revenue"): queue the deferred revenue releases that are due."""
    return deferred_releases_run()
