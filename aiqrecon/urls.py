from django.contrib import admin
from django.urls import include, path

from aiqrecon.companies import company_switch
from payments.views.dashboard import dashboard

urlpatterns = [
    path("admin/", admin.site.urls),
    path("webhooks/", include("payments.webhook_urls")),
    path("api/v1/", include("api.urls")),
    path("", dashboard, name="dashboard"),
    path("company/", company_switch, name="company_switch"),
    path("", include("staff.urls")),
    path("", include("ledger.urls")),
    path("", include("payments.urls")),
    path("", include("sales.urls")),
]

handler400 = "aiqrecon.errors.bad_request"
