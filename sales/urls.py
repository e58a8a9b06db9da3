from django.urls import path

from sales import views, views_pairs, views_records

app_name = "sales"

urlpatterns = [
    path("sales/", views.batch_list, name="batches"),
    path("sales/upload", views.upload_preview, name="upload_preview"),
    path("sales/import", views.upload_import, name="upload_import"),
    path("sales/batches/<id:batch_id>/", views.batch_detail, name="batch"),
    path("sales/batches/<id:batch_id>/approve", views.batch_approve, name="batch_approve"),
    path("sales/batches/<id:batch_id>/cancel", views.batch_cancel, name="batch_cancel"),
    path(
        "sales/batches/<id:batch_id>/retry-failed",
        views.batch_retry_failed,
        name="batch_retry_failed",
    ),
    path("sales/invoices/<id:invoice_id>/", views.invoice_detail, name="invoice"),
    path("sales/invoices/<id:invoice_id>/release", views.invoice_release, name="invoice_release"),
    path("sales/invoices/<id:invoice_id>/retry", views.invoice_retry, name="invoice_retry"),
    path("sales/invoices/<id:invoice_id>/cancel", views.invoice_cancel, name="invoice_cancel"),
    path("sales/deferred-revenue/", views.deferred_list, name="deferred"),
    path(
        "sales/deferred-revenue/<id:schedule_id>/", views.deferred_detail, name="deferred_schedule"
    ),
    path(
        "sales/deferred-revenue/releases/<id:release_id>/retry",
        views.deferred_release_retry,
        name="deferred_release_retry",
    ),
    path("sales/credit-notes/", views_records.credit_note_list, name="credit_notes"),
    path("sales/credit-notes/<id:note_id>/", views_records.credit_note_detail, name="credit_note"),
    path(
        "sales/credit-notes/<id:note_id>/retry",
        views_records.credit_note_retry,
        name="credit_note_retry",
    ),
    path(
        "sales/credit-notes/<id:note_id>/cancel",
        views_records.credit_note_cancel,
        name="credit_note_cancel",
    ),
    path("sales/customer-changes/", views_records.customer_update_list, name="customer_updates"),
    path(
        "sales/customer-changes/<id:update_id>/",
        views_records.customer_update_detail,
        name="customer_update",
    ),
    path(
        "sales/customer-changes/<id:update_id>/retry",
        views_records.customer_update_retry,
        name="customer_update_retry",
    ),
    path(
        "sales/customer-changes/<id:update_id>/cancel",
        views_records.customer_update_cancel,
        name="customer_update_cancel",
    ),
    path("sales/back-to-back/", views_pairs.back_to_back, name="back_to_back"),
    path("sales/back-to-back/new", views_pairs.back_to_back_new, name="back_to_back_new"),
    path("sales/intercompany/", views_pairs.intercompany, name="intercompany"),
    path("sales/intercompany/new", views_pairs.intercompany_new, name="intercompany_new"),
]
