from django.urls import path

from ledger.views import customers, departments, documents, invoices, sync

app_name = "ledger"

urlpatterns = [
    path("invoices/", invoices.invoice_list, name="invoices"),
    path("invoices/<id:invoice_id>/", invoices.invoice_detail, name="invoice"),
    path("invoices/<id:invoice_id>/pdf", documents.invoice_pdf, name="invoice_pdf"),
    path("invoices/<id:invoice_id>/attach", documents.invoice_attach, name="invoice_attach"),
    path("receipts/<id:receipt_id>/pdf", documents.receipt_pdf, name="receipt_pdf"),
    path("customers/", customers.customer_list, name="customers"),
    path("customers/<id:customer_id>/", customers.customer_detail, name="customer"),
    path(
        "customers/<id:customer_id>/statement",
        customers.customer_statement,
        name="customer_statement",
    ),
    path("bi-codes/", departments.department_list, name="departments"),
    path(
        "bi-codes/<id:department_id>/update",
        departments.department_update,
        name="department_update",
    ),
    path("sync/", sync.sync_overview, name="sync"),
    path("sync/now", sync.sync_now, name="sync_now"),
    path("sync/progress", sync.sync_progress, name="sync_progress"),
    path("sync/commands/<id:command_id>/retry", sync.command_retry, name="command_retry"),
    path("sync/commands/<id:command_id>/cancel", sync.command_cancel, name="command_cancel"),
    path("sync/duplicates/<id:flag_id>/reverse", sync.duplicate_reverse, name="duplicate_reverse"),
    path("sync/duplicates/<id:flag_id>/dismiss", sync.duplicate_dismiss, name="duplicate_dismiss"),
]
