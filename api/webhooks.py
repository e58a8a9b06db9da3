"""Outgoing webhooks: signed events to each API client's subscriber URL (docs/api.md).

- Events. A receipt's plan, a contact allocation, an other receipt or a refund that changes
  state (sent to AIQ, confirmed in AIQ, failed, waiting for a person, rejected...) makes one
  WebhookEvent, and one WebhookDelivery per active subscription of that company that wants the
  type, in the same transaction as the change (post_save hooks connected in ApiConfig.ready():
  payments knows nothing of the API). A change rolled back sends nothing.
- Durable queue. The delivery rows are the queue. After commit a django-q task is woken
  (`api.tasks.webhooks_deliver_task`); the one-minute schedule `api-webhooks` runs the same
  task, so a lost wake or a worker that died only delays a delivery.
- Exactly one attempt at a time. A worker claims a due row with a conditional UPDATE that sets
  a lease (attempts + 1); only the claimer posts. A crash mid-post leaves the lease to run out,
  and the row is due again: delivery is at least once, so receivers de-duplicate on the event
  id (the `id` in the body, also the `Aiqrecon-Event-Id` header).
- Retries. Anything but a 2xx (or no answer in WEBHOOK_TIMEOUT_SECONDS) is retried after
  WEBHOOK_RETRY_SECONDS × 2^(attempt-1) (capped at 6 h), up to WEBHOOK_MAX_ATTEMPTS; then the
  delivery is failed and a person can replay it (`webhook_delivery_replay`, the admin's action).
- Log. Every POST is a WebhookAttempt row: when, the status code or the error, how long.
- Signature, as Stripe signs: header `Aiqrecon-Signature: t=<unix seconds>,v1=<hex>` where
  v1 = HMAC-SHA256(subscription secret, "<t>.<raw body>"). `webhook_signature_verify` is the
  check a receiver makes (tests/webhook_receiver.py uses it): recompute, compare in constant
  time, refuse a timestamp older than the tolerance (replayed captures).
"""

import hashlib
import hmac
import json
import logging
import secrets
import time
from datetime import timedelta

import requests
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django_q.tasks import async_task

from api.models import ApiClient, WebhookAttempt, WebhookDelivery, WebhookEvent, WebhookSubscription
from staff.models import Role
from staff.services import audit_log, user_has_role

log = logging.getLogger(__name__)

SECRET_PREFIX = "whsec_"  # noqa: S105 (what every signing secret starts with, not a secret)
SIGNATURE_HEADER = "Aiqrecon-Signature"
TASK = "api.tasks.webhooks_deliver_task"
MAX_BACKOFF = timedelta(hours=6)
EVENT_TYPES = [
    f"{kind}.{state}"
    for kind, states in (
        ("contact_payment", ("awaiting_approval", "sent", "confirmed", "failed", "needs_person",
                             "rejected", "void")),
        ("contact_allocation", ("awaiting_approval", "sent", "confirmed", "failed",
                                "needs_person", "rejected")),
        ("other_payment", ("awaiting_approval", "sent", "confirmed", "failed", "needs_person",
                           "rejected")),
        ("refund", ("requested", "sent", "completed", "failed", "needs_person", "rejected")),
        ("sales_invoice", ("posted", "linked", "failed")),
    )
    for state in states
]  # fmt: skip


# --- subscriptions -----------------------------------------------------------------------------


def webhook_subscription_create(
    *, actor, client: ApiClient, url: str, event_types: list[str] | None = None
):
    """A subscriber URL for a client and its signing secret, returned this once."""
    if not user_has_role(actor, Role.ADMIN):
        raise PermissionDenied("Adding webhook subscriptions needs the admin role.")
    url = (url or "").strip()
    if not url.startswith(("https://", "http://")):
        raise ValidationError("The URL starts with https://.")
    if settings.PRODUCTION and not url.startswith("https://"):
        raise ValidationError("Events are sent over https only.")
    unknown = sorted(set(event_types or []) - set(EVENT_TYPES))
    if unknown:
        raise ValidationError(f"Unknown event types: {', '.join(unknown)}.")
    secret = f"{SECRET_PREFIX}{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        row = WebhookSubscription(
            client=client, url=url, secret=secret, event_types=event_types or [], created_by=actor
        )
        row.full_clean()
        row.save()
        audit_log(
            actor=actor,
            action="webhook_subscription.create",
            obj=row,
            summary=f"webhooks of API client {client.name} to {url}",
            after={"url": url, "event_types": row.event_types, "client": client.pk},
        )
    return row, secret


def webhook_subscription_disable(*, actor, subscription: WebhookSubscription):
    if not user_has_role(actor, Role.ADMIN):
        raise PermissionDenied("Disabling webhook subscriptions needs the admin role.")
    with transaction.atomic():
        row = WebhookSubscription.objects.select_for_update().get(pk=subscription.pk)
        if row.disabled_at is None:
            row.disabled_at = timezone.now()
            row.save(update_fields=["disabled_at"])
            audit_log(
                actor=actor,
                action="webhook_subscription.disable",
                obj=row,
                summary=f"webhooks to {row.url} stopped",
                before={"active": True},
                after={"active": False},
            )
    return row


def webhook_subscriptions_active(entity_id: int) -> list[WebhookSubscription]:
    return list(_active(entity_id))


def _active(entity_id: int):
    return WebhookSubscription.objects.filter(
        disabled_at__isnull=True, client__revoked_at__isnull=True, client__entity_id=entity_id
    )


# --- events ------------------------------------------------------------------------------------


def webhook_event_record(
    *, entity_id: int, type: str, object_id: str, data, active=None
) -> WebhookEvent | None:
    """One event and its deliveries, in the caller's transaction; None when nobody listens.
    `active`: the company's active subscriptions when the caller read them already (many
    events of one company)."""
    subscriptions = [s for s in (_active(entity_id) if active is None else active) if s.wants(type)]
    if not subscriptions:
        return None
    event = WebhookEvent.objects.create(
        entity_id=entity_id, type=type, object_id=object_id, data=_jsonable(data)
    )
    now = timezone.now()
    WebhookDelivery.objects.bulk_create(
        WebhookDelivery(event=event, subscription=s, next_attempt_at=now) for s in subscriptions
    )
    transaction.on_commit(wake)
    return event


def _jsonable(data):
    """Dates, datetimes and Decimals as the API's JSON shows them."""
    from rest_framework.renderers import JSONRenderer

    return json.loads(JSONRenderer().render(data))


def wake() -> None:
    try:
        async_task(TASK, task_name="webhooks-deliver", group="webhooks", save=False)
    except Exception:  # noqa: BLE001 - the rows are committed; the schedule will find them
        log.exception("webhooks: could not enqueue a delivery run")


def envelope(event: WebhookEvent) -> dict:
    return {
        "id": f"evt_{event.pk}",
        "type": event.type,
        "created": event.created_at.isoformat(),
        "data": {"object": event.data},
    }


# --- signing -----------------------------------------------------------------------------------


def webhook_signature(secret: str, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


class SignatureInvalid(Exception):
    pass


def webhook_signature_verify(
    body: bytes, header: str, secret: str, *, tolerance: int = 300, now: float | None = None
) -> None:
    """What a receiver checks (raises SignatureInvalid): a v1 signature of `t.body` with the
    secret, and `t` within `tolerance` seconds of now."""
    parts: dict[str, list[str]] = {}
    for item in (header or "").split(","):
        key, _, value = item.strip().partition("=")
        parts.setdefault(key, []).append(value)
    try:
        timestamp = int(parts["t"][0])
    except (KeyError, ValueError):
        raise SignatureInvalid("no timestamp") from None
    if abs((now or time.time()) - timestamp) > tolerance:
        raise SignatureInvalid("timestamp outside the tolerance")
    expected = webhook_signature(secret, body, timestamp).split("v1=", 1)[1]
    if not any(hmac.compare_digest(expected, given) for given in parts.get("v1", [])):
        raise SignatureInvalid("no matching v1 signature")


# --- delivery ----------------------------------------------------------------------------------


def _due(now):
    return WebhookDelivery.objects.filter(
        state=WebhookDelivery.State.PENDING, next_attempt_at__lte=now
    ).filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))


def _claim(delivery_id: int) -> bool:
    now = timezone.now()
    lease = now + timedelta(seconds=2 * settings.WEBHOOK_TIMEOUT_SECONDS + 30)
    return bool(
        _due(now)
        .filter(pk=delivery_id)
        .update(lease_until=lease, attempts=F("attempts") + 1, updated_at=now)
    )


def backoff(attempt: int) -> timedelta:
    return min(timedelta(seconds=settings.WEBHOOK_RETRY_SECONDS * 2 ** (attempt - 1)), MAX_BACKOFF)


def webhook_deliver(delivery_id: int, session=None) -> str | None:
    """Claim and post one delivery; its new state, or None if another worker has it."""
    if not _claim(delivery_id):
        return None
    delivery = WebhookDelivery.objects.select_related("event", "subscription").get(pk=delivery_id)
    body = json.dumps(envelope(delivery.event), separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "aiqrecon-webhooks/1",
        "Aiqrecon-Event-Id": f"evt_{delivery.event_id}",
        SIGNATURE_HEADER: webhook_signature(delivery.subscription.secret, body, int(time.time())),
    }
    started = time.monotonic()
    status, error = None, ""
    try:
        answer = (session or requests).post(
            delivery.subscription.url,
            data=body,
            headers=headers,
            timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
            allow_redirects=False,
        )
        status = answer.status_code
        if not 200 <= status < 300:
            error = f"HTTP {status}: {answer.text[:200]}"
    except requests.RequestException as failure:
        error = f"{type(failure).__name__}: {failure}"[:500]
    milliseconds = int((time.monotonic() - started) * 1000)
    now = timezone.now()
    with transaction.atomic():
        row = WebhookDelivery.objects.select_for_update().get(pk=delivery_id)
        WebhookAttempt.objects.create(
            delivery=row,
            number=row.attempt_log.count() + 1,  # replays go on counting
            status_code=status,
            error=error[:500],
            milliseconds=milliseconds,
        )
        row.last_status_code, row.last_error, row.lease_until = status, error[:500], None
        if not error:
            row.state, row.delivered_at = WebhookDelivery.State.DELIVERED, now
        elif row.attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
            row.state = WebhookDelivery.State.FAILED
        else:
            row.next_attempt_at = now + backoff(row.attempts)
        row.save()
    return row.state


def webhooks_deliver_due(*, budget_seconds: float = 50, batch: int = 50) -> dict[str, int]:
    """Post every due delivery (oldest first) until none is due or the budget is spent."""
    counts = {"delivered": 0, "pending": 0, "failed": 0}
    started = time.monotonic()
    with requests.Session() as session:
        while time.monotonic() - started < budget_seconds:
            ids = list(
                _due(timezone.now())
                .order_by("next_attempt_at", "pk")
                .values_list("pk", flat=True)[:batch]
            )
            if not ids:
                break
            for delivery_id in ids:
                state = webhook_deliver(delivery_id, session=session)
                if state is not None:
                    counts[state] += 1
                if time.monotonic() - started >= budget_seconds:
                    break
            if len(ids) < batch:
                break
    return counts


def webhook_delivery_replay(*, actor, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivery again now (a failed one, or a delivered one the receiver lost), with a
    fresh attempt budget; the event id stays the same, so the receiver de-duplicates."""
    if not user_has_role(actor, Role.ADMIN):
        raise PermissionDenied("Replaying webhooks needs the admin role.")
    with transaction.atomic():
        row = WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
        before = {"state": row.state, "attempts": row.attempts}
        row.state = WebhookDelivery.State.PENDING
        row.attempts, row.next_attempt_at, row.lease_until = 0, timezone.now(), None
        row.delivered_at = None
        row.save()
        audit_log(
            actor=actor,
            action="webhook_delivery.replay",
            obj=row,
            summary=f"evt_{row.event_id} to {row.subscription.url} sent again",
            before=before,
            after={"state": row.state},
        )
        transaction.on_commit(wake)
    return row
