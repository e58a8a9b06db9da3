"""What follows an invoice's posting in AIQ, inside the verdict's transaction:

- the mirror learns the invoice at once (ledger Invoice with its kind, batch or item, and AIQ's
  transaction id), so a payment for it can be matched before the next pull;
- its breakdown (the invoice's own rows, as CSV) is attached in AIQ with AttachDocument, through
  the outbox (ledger/documents.py: document_attach; read back by file name);
- where the company says so, the AIQ invoice PDF is e-mailed to the customer after commit
  (sales/tasks.py).
"""

import csv
import io
from decimal import Decimal

from django.db import transaction

from ledger.documents import document_attach
from ledger.models import Customer, DocumentStatus, Invoice
from sales.models import InvoiceType, SalesInvoice

CENT = Decimal("0.01")


def breakdown_csv(row: SalesInvoice) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["Invoice", "Line", "Description", "Item", "Order", "Delivered", "Quantity", "Net",
         "VAT code", "VAT", "Currency"]
    )  # fmt: skip
    for line in row.lines.order_by("line_number"):
        writer.writerow(
            [
                row.external_reference, line.line_number, line.description, line.item_code,
                line.order_number,
                line.delivery_date.strftime("%d/%m/%Y") if line.delivery_date else "",
                line.quantity.normalize(), line.net_amount.quantize(CENT),
                line.tax_code, line.tax_amount.quantize(CENT),
                row.currency,
            ]
        )  # fmt: skip
    return out.getvalue().encode()


def _mirror(row: SalesInvoice) -> Invoice | None:
    found = (
        Invoice.objects.filter(
            entity=row.entity_id, aiq_transaction_id=row.aiq_transaction_id
        ).first()
        or Invoice.objects.filter(
            entity=row.entity_id, external_reference=row.external_reference
        ).first()
    )
    if found is not None or row.state != SalesInvoice.State.POSTED:
        return found  # a linked invoice: the pull mirrors it as AIQ has it
    customer = Customer.objects.get(entity=row.entity_id, code=row.customer_code)
    return Invoice.objects.create(
        entity_id=row.entity_id,
        customer=customer,
        kind=Invoice.Kind.ITEM if row.invoice_type == InvoiceType.ITEM else Invoice.Kind.BATCH,
        external_reference=row.external_reference,
        aiq_transaction_id=row.aiq_transaction_id,
        aiq_invoice_id=row.aiq_invoice_id,
        status=DocumentStatus.PAID if row.receipt_transaction_id else DocumentStatus.POSTED,
        currency=row.currency,
        invoice_date=row.invoice_date,
        due_date=row.due_date,
        net_amount=row.net_amount,
        tax_amount=row.tax_amount,
        gross_amount=row.gross_amount,
        # an already-paid order was settled by its receipt in the same AIQ call
        outstanding_amount=0 if row.receipt_transaction_id else row.gross_amount,
        notes=f"From {row.source.name}",
    )


def sales_invoices_after_posting(rows: list[SalesInvoice]) -> None:
    # local: sales.services.invoices imports this module
    from sales.services.invoices import settings_for

    emails = []
    for row in rows:
        invoice = _mirror(row)
        if invoice is None or row.state != SalesInvoice.State.POSTED:
            continue
        maker = row.created_by or (row.batch.created_by if row.batch_id else None)
        if row.source.attach_breakdown and maker is not None:
            document_attach(
                invoice=invoice,
                actor=maker,
                filename=f"{row.external_reference}-breakdown.csv",
                content=breakdown_csv(row),
                description=f"Breakdown of {row.external_reference}",
            )
        if row.customer_email and settings_for(row.entity).email_invoices:
            emails.append(row.pk)
    if emails:
        # local: sales.tasks imports this module (breakdown_csv)
        from sales.tasks import invoice_emails_soon

        transaction.on_commit(lambda: invoice_emails_soon(emails))


def receipt_email_after_posting(command) -> None:
    """A sales receipt is confirmed in AIQ (post_receipt): its PDF goes to the customer after
    commit, where the company says so and the mirror knows the customer's e-mail."""
    # local: sales.services.invoices imports this module
    from sales.services.invoices import settings_for

    if not (command.result or {}).get("transaction_id"):
        return
    if not settings_for(command.entity).email_receipts:
        return
    code = (command.payload.get("customer_code") or "").upper()
    customer = Customer.objects.filter(entity_id=command.entity_id, code=code).first()
    if customer is None or not customer.email:
        return
    # local: sales.tasks imports this module (breakdown_csv)
    from sales.tasks import receipt_email_soon

    transaction.on_commit(lambda: receipt_email_soon(command.pk))
