from django.urls import path

from payments import webhooks

urlpatterns = [
    path("stripe/", webhooks.stripe_webhook, name="webhook-stripe"),
    path("gocardless/", webhooks.gocardless_webhook, name="webhook-gocardless"),
]
