from django.urls import path

from payments.views import approvals, detail, inbox

app_name = "payments"

urlpatterns = [
    path("payments/", inbox.inbox, name="inbox"),
    path("payments/export.csv", inbox.export_csv, name="export"),
    path("payments/bulk-approve", inbox.bulk_approve, name="bulk_approve"),
    path("payments/<int:payment_id>/", detail.detail, name="detail"),
    path("payments/<int:payment_id>/invoices", detail.invoice_search, name="invoice_search"),
    path("payments/<int:payment_id>/editor-row", detail.editor_row, name="editor_row"),
    path("payments/<int:payment_id>/allocate", detail.allocate, name="allocate"),
    path("payments/<int:payment_id>/reject", detail.reject, name="reject"),
    path("approvals/", approvals.approvals, name="approvals"),
    path("approvals/<int:plan_id>/approve", approvals.approve, name="approve"),
    path("approvals/<int:plan_id>/reject", approvals.reject, name="reject_plan"),
]
