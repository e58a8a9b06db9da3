from django.contrib.auth.decorators import login_not_required
from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.permissions import AllowAny

from api import views_read, views_write

app_name = "api"
PUBLIC = {"authentication_classes": [], "permission_classes": [AllowAny], "throttle_classes": []}

urlpatterns = [
    # the published schema and its interactive docs are public (no secrets in them)
    path("schema/", login_not_required(SpectacularAPIView.as_view(**PUBLIC)), name="schema"),
    path(
        "docs/",
        login_not_required(SpectacularSwaggerView.as_view(url_name="api:schema", **PUBLIC)),
        name="docs",
    ),
    path("contact_payments", views_write.ContactPayments.as_view()),
    path("contact_payments/<str:payment_id>", views_write.ContactPaymentDetail.as_view()),
    path("contact_allocations", views_write.ContactAllocations.as_view()),
    path("contact_allocations/<str:allocation_id>", views_write.ContactAllocationDetail.as_view()),
    path("other_payments", views_write.OtherPayments.as_view()),
    path("other_payments/<str:other_id>", views_write.OtherPaymentDetail.as_view()),
    path("invoices", views_read.InvoiceList.as_view()),
    path("invoices/<str:artefact_id>", views_read.InvoiceDetail.as_view()),
    path("sales_invoices", views_write.SalesInvoices.as_view()),
    path(
        "sales_invoices/<str:artefact_id>",
        views_write.SalesInvoiceDetailWithSubmissions.as_view(),
    ),
    path("sales_credit_notes", views_read.SalesCreditNoteList.as_view()),
    path("sales_credit_notes/<str:artefact_id>", views_read.SalesCreditNoteDetail.as_view()),
    path("credit_notes", views_read.CreditNoteList.as_view()),
    path("credit_notes/<str:artefact_id>", views_read.CreditNoteDetail.as_view()),
    path("customers", views_read.CustomerList.as_view()),
    path("customers/<str:contact_id>", views_read.CustomerDetail.as_view()),
    path("bank_accounts", views_read.BankAccountList.as_view()),
]
