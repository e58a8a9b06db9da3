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
from ledger.models import Customer, DocumentStatus, Invoice, InvoiceLine
from ledger.models.invoices import set_invoice_keys
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


def _mirrors(rows: list[SalesInvoice]) -> dict[int, Invoice]:
    """The mirror's invoice of each row (by row pk): the one already there (by AIQ transaction
    id or external reference: a linked invoice, mirrored by the pull as AIQ has it), else a new
    one for a posted row. A few queries and one multi-row INSERT for a whole bulk command."""
    if not rows:
        return {}
    entity_id = rows[0].entity_id
    ids = [row.aiq_transaction_id for row in rows]
    refs = [row.external_reference for row in rows]
    by_txn, by_ref = {}, {}
    for invoice in Invoice.objects.filter(entity=entity_id, aiq_transaction_id__in=ids):
        by_txn[invoice.aiq_transaction_id] = invoice
    for invoice in Invoice.objects.filter(entity=entity_id, external_reference__in=refs):
        by_ref[invoice.external_reference] = invoice
    customers = {
        c.code: c
        for c in Customer.objects.filter(entity=entity_id, code__in={r.customer_code for r in rows})
    }
    found, new = {}, []
    for row in rows:
        invoice = by_txn.get(row.aiq_transaction_id) or by_ref.get(row.external_reference)
        if invoice is not None or row.state != SalesInvoice.State.POSTED:
            if invoice is not None:
                found[row.pk] = invoice
            continue
        invoice = Invoice(
            entity_id=entity_id,
            customer=customers[row.customer_code],
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
        set_invoice_keys(invoice)  # what Invoice.save() sets; bulk_create skips save()
        new.append((row.pk, invoice))
    Invoice.objects.bulk_create([invoice for _, invoice in new], batch_size=500)
    found.update(new)
    return found


def mirror_lines_of(invoice: Invoice) -> list[InvoiceLine]:
    """payments' line source: the lines of an invoice this app posted in AIQ, as it sent them
    (unsaved), for a credit note or refund to copy; [] for any other invoice."""
    if invoice.aiq_transaction_id is None:
        return []
    row = SalesInvoice.objects.filter(
        entity=invoice.entity_id,
        aiq_transaction_id=invoice.aiq_transaction_id,
        state__in=SalesInvoice.IN_AIQ,
    ).first()
    if row is None or row.gross_amount != invoice.gross_amount:
        return []  # not ours, or AIQ's copy differs (a linked invoice): AIQ's own lines
    return [
        InvoiceLine(
            invoice=invoice,
            line_number=line.line_number,
            stock_item_id=line.item_code,
            description=line.description,
            gl_account_code=line.deferred_gl_account_code
            if line.deferred_months
            else line.gl_account_code,
            department_id=line.department,
            tax_code=line.tax_code,
            tax_rate=(line.tax_amount * 100 / line.net_amount).quantize(Decimal("0.0001")),
            quantity=line.quantity,
            unit_price=(line.net_amount / line.quantity).quantize(Decimal("0.001"))
            if line.quantity
            else line.net_amount,
            net_amount=line.net_amount,
            tax_amount=line.tax_amount,
            gross_amount=line.net_amount + line.tax_amount,
        )
        for line in row.lines.order_by("line_number")
    ]


def sales_invoices_after_posting(rows: list[SalesInvoice]) -> None:
    # local: sales.services.invoices imports this module
    from sales.services.invoices import settings_for

    emails = []
    mirrors = _mirrors(rows)
    email_invoices = bool(rows) and settings_for(rows[0].entity).email_invoices
    for row in rows:
        invoice = mirrors.get(row.pk)
        if invoice is None or row.state != SalesInvoice.State.POSTED:
            continue
        maker = None
        if row.source.attach_breakdown:
            maker = row.created_by or (row.batch.created_by if row.batch_id else None)
        if maker is not None:
            document_attach(
                invoice=invoice,
                actor=maker,
                filename=f"{row.external_reference}-breakdown.csv",
                content=breakdown_csv(row),
                description=f"Breakdown of {row.external_reference}",
            )
        if row.customer_email and email_invoices:
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
