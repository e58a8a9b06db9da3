"""What sales tells the apps above it (the API's webhooks) without knowing them: they connect
in their AppConfig.ready()."""

from django.dispatch import Signal

# Sent inside the transaction that moved sales invoices into AIQ (posted, linked) or out of
# its way (failed), after their rows and audit entries are written: `rows`, the changed
# SalesInvoice rows (bulk updates send no post_save).
sales_invoices_settled = Signal()
