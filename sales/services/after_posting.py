"""What follows an invoice's posting in AIQ (inside the verdict's transaction)."""

from sales.models import SalesInvoice


def sales_invoices_after_posting(rows: list[SalesInvoice]) -> None:
    """Attachments and e-mails of posted invoices: see sales/services/documents.py."""
    return None
