"""Webhook endpoints: no login, no CSRF (the provider signs the raw body instead).

Each view verifies the signature, stores the event once and answers 2xx only after the row is
committed; processing happens in a worker (and the sweep) from the object as the API reports it.
Rejections are logged with the reason only: never the body, the header or a secret.
"""

import logging

from django.contrib.auth.decorators import login_not_required
from django.db import transaction
from django.http import HttpResponse, HttpResponseBadRequest
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from payments.models_provider import ProviderAccount
from payments.services.stripe_events import (
    WebhookRejected,
    enqueue_processing,
    stripe_webhook_receive,
)
from payments.sources.gocardless_source import gocardless_webhook_receive

log = logging.getLogger(__name__)


def _client_ip(request) -> str:
    return request.META.get("REMOTE_ADDR", "?")


def _account(source: str, account_id: int | None) -> ProviderAccount | None:
    """The provider account whose address this is (None: the default address). Its secrets
    check the signature and its company owns the money."""
    if account_id is None:
        return None
    account = ProviderAccount.objects.filter(pk=account_id, source=source).first()
    if account is None:
        raise WebhookRejected(f"no {source} account {account_id}")
    return account


@csrf_exempt
@login_not_required
@require_POST
def stripe_webhook(request, account_id: int | None = None):
    try:
        with transaction.atomic():
            received = stripe_webhook_receive(
                payload=request.body,
                signature=request.headers.get("Stripe-Signature"),
                account=_account("stripe", account_id),
            )
            if received.created:
                enqueue_processing(received.event)
    except WebhookRejected as error:
        log.warning("stripe webhook rejected from %s: %s", _client_ip(request), error)
        return HttpResponseBadRequest("invalid webhook", content_type="text/plain")
    return HttpResponse("ok" if received.created else "duplicate", content_type="text/plain")


@csrf_exempt
@login_not_required
@require_POST
def gocardless_webhook(request, account_id: int | None = None):
    try:
        with transaction.atomic():
            events = gocardless_webhook_receive(
                payload=request.body,
                signature=request.headers.get("Webhook-Signature"),
                account=_account("gocardless", account_id),
            )
            for received in events:
                if received.created:
                    enqueue_processing(received.event)
    except WebhookRejected as error:
        log.warning("gocardless webhook rejected from %s: %s", _client_ip(request), error)
        # GoCardless documents 498 for an invalid signature.
        return HttpResponse("invalid webhook", status=498, content_type="text/plain")
    return HttpResponse("ok", status=204)
