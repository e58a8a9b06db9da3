from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("webhooks/", include("payments.webhook_urls")),
    path("api/v1/", include("api.urls")),
    path("", include("staff.urls")),
    path("", include("ledger.urls")),
    path("", include("payments.urls")),
]
