from django.urls import path

from payments import webhooks

urlpatterns = [
    path("stripe/", webhooks.stripe_webhook, name="webhook-stripe"),
    path("gocardless/", webhooks.gocardless_webhook, name="webhook-gocardless"),
    # one address per provider account (each company's own account, its own secret)
    path("stripe/<id:account_id>/", webhooks.stripe_webhook, name="webhook-stripe-account"),
    path(
        "gocardless/<id:account_id>/",
        webhooks.gocardless_webhook,
        name="webhook-gocardless-account",
    ),
]
