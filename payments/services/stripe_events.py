"""Stripe webhooks, event processing, the nightly catch-up and the incremental import.

Webhooks are triggers (RELIABILITY.md): verify the signature on the raw body, store the event
id once, answer 2xx, then act on the object as the API reports it now. Because every event is
processed from a fresh fetch, repeats and any order of a payment's events end in the same state.
"""

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

import stripe
from django.conf import settings
from django.db import DataError, IntegrityError, transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from core.stripe_money import stripe_from_minor as from_minor
from ledger.models import SyncState
from payments.models import Payment, Source, WebhookEvent
from payments.models_provider import ProviderAccount
from payments.services.auto_match import auto_match_soon
from payments.services.linkers import payments_link_booked
from payments.services.payments import (
    PaymentsNotConfigured,
    dispute_upsert,
    payments_upsert,
    payout_link_payments,
    payout_upsert,
)
from payments.services.provider_accounts import (
    AccountSecretMissing,
    account_entity,
    account_webhook_secrets,
    stripe_account_calls,
)
from payments.services.provider_books import payout_book
from payments.services.provider_disputes import dispute_book
from payments.services.refunds import refund_stripe_update
from payments.sources import stripe_client as api
from payments.sources import stripe_source

log = logging.getLogger(__name__)

HANDLED_EVENT_TYPES = frozenset(
    {
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "payment_intent.canceled",
        "charge.refunded",
        "charge.refund.updated",
        "refund.created",
        "refund.updated",
        "refund.failed",
        "charge.dispute.created",
        "charge.dispute.updated",
        "charge.dispute.closed",
        "charge.dispute.funds_withdrawn",
        "charge.dispute.funds_reinstated",
        "payout.paid",
        "payout.failed",
        "payout.canceled",
    }
)
# Event types an app above payments handles (sales: Stripe Billing's invoices, credit notes and
# customers), registered from its AppConfig.ready(): payments imports nothing above it.
# handler(event_type, object id, the company the account's events are for)
EVENT_HANDLERS: dict[str, Callable[[str, str, object], None]] = {}


# What an app above payments knows about a Stripe payment (sales: the Stripe Billing invoice it
# pays): handler(payment) -> True when it settles the payment itself (no matching run then).
PAYMENT_HANDLERS: list[Callable[[Payment], bool]] = []


def stripe_payment_handler_register(handler: Callable[[Payment], bool]) -> None:
    if handler not in PAYMENT_HANDLERS:
        PAYMENT_HANDLERS.append(handler)


def stripe_event_handler_register(event_types, handler: Callable[[str, str, object], None]):
    for event_type in event_types:
        if EVENT_HANDLERS.get(event_type, handler) is not handler:
            raise RuntimeError(f"Stripe event {event_type!r} has a handler already")
        EVENT_HANDLERS[event_type] = handler


def event_handled(event_type: str) -> bool:
    return event_type in HANDLED_EVENT_TYPES or event_type in EVENT_HANDLERS


# Nothing more will happen to an event in these states.
FINAL_STATES = (WebhookEvent.State.PROCESSED, WebhookEvent.State.IGNORED, WebhookEvent.State.FAILED)
MAX_ATTEMPTS = 12  # then the event stays in RETRY with its last error for a person to see
CATCH_UP_OVERLAP_SECONDS = 300
IMPORT_BATCH = 1000  # events of the same second may land after our last look


class WebhookRejected(Exception):
    """Unsigned, forged, stale or unreadable: answer 400 and store nothing."""


class EventUnreadable(Exception):
    """A stored event lacks what processing needs (a signed event of a shape the provider does
    not document): it is marked failed with this message, never retried, never a crash."""


def event_text(data, *path: str) -> str:
    """The non-empty string at data[path[0]][path[1]]..., or EventUnreadable naming the path."""
    value = data
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    if not isinstance(value, str) or not value.strip():
        raise EventUnreadable(f"the event has no {'.'.join(path)}")
    return value


def webhook_event_failed(event: WebhookEvent, error: EventUnreadable) -> str:
    WebhookEvent.objects.filter(pk=event.pk).exclude(state=WebhookEvent.State.PROCESSED).update(
        state=WebhookEvent.State.FAILED,
        attempts=event.attempts + 1,
        last_error=str(error)[:2000],
    )
    log.warning("%s event %s cannot be processed: %s", event.source, event.event_id, error)
    return WebhookEvent.State.FAILED


def signature_header(value: str | None, name: str) -> str:
    """The header as text the signature check can compare: a signature is hex and ASCII, so
    anything else (a non-ASCII byte made hmac.compare_digest raise TypeError) is refused."""
    if not value:
        raise WebhookRejected(f"missing {name} header")
    if not value.isascii() or "\x00" in value:
        raise WebhookRejected(f"{name} header is not ASCII")
    return value


@dataclass
class Received:
    event: WebhookEvent
    created: bool


@sensitive_variables()  # a debug page must never show the secrets it tries
def stripe_webhook_receive(
    *, payload: bytes, signature: str | None, account: ProviderAccount | None = None
) -> Received:
    """Verify and store one delivery to the account's address (None: the default address)
    with that account's signing secrets. Raises WebhookRejected; never logs a secret."""
    signature = signature_header(signature, "Stripe-Signature")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookRejected("body is not UTF-8 text") from None
    try:
        secrets = account_webhook_secrets(account, settings.STRIPE_WEBHOOK_SECRETS)
    except AccountSecretMissing as error:
        raise WebhookRejected(str(error)) from None
    verified = False
    for secret in secrets:
        # the signature alone; the body is read below (the SDK's event builder raises
        # AttributeError on a signed body that is JSON but not an object)
        try:
            stripe.WebhookSignature.verify_header(
                text, signature, secret, tolerance=settings.STRIPE_WEBHOOK_TOLERANCE_SECONDS
            )
        except stripe.SignatureVerificationError:
            continue
        verified = True
        break
    if not verified:
        raise WebhookRejected("no valid signature for any configured secret (or too old)")
    try:
        body = json.loads(payload)
    except ValueError:
        body = None
    event_id = event_type = None
    if isinstance(body, dict):
        event_id, event_type = body.get("id"), body.get("type")
    if not (isinstance(event_id, str) and event_id and isinstance(event_type, str)):
        raise WebhookRejected("signed body is not a Stripe event")
    return webhook_event_store(
        source=Source.STRIPE,
        event_id=event_id,
        event_type=event_type,
        payload=body,
        handled=event_handled(event_type),
        account=account,
    )


def webhook_event_store(
    *,
    source: str,
    event_id: str,
    event_type: str,
    payload: dict,
    handled: bool,
    account: ProviderAccount | None = None,
) -> Received:
    """Store the event once (unique per source). A repeat delivery is not an error."""
    state = WebhookEvent.State.RECEIVED if handled else WebhookEvent.State.IGNORED
    try:
        with transaction.atomic():
            event = WebhookEvent.objects.create(
                source=source,
                event_id=str(event_id)[:100],
                event_type=str(event_type)[:100],
                payload=payload,
                state=state,
                provider_account=account,
            )
    except IntegrityError:
        event = WebhookEvent.objects.get(source=source, event_id=str(event_id)[:100])
        return Received(event=event, created=False)
    except (DataError, ValueError):
        # PostgreSQL stores no NUL character in text or JSON; no provider documents sending one
        raise WebhookRejected("the event cannot be stored (it contains NUL characters)") from None
    return Received(event=event, created=True)


def enqueue_processing(event: WebhookEvent) -> None:
    """Wake a worker once the event row is committed. If the queue is down the sweep
    (stripe_events_retry_due) picks the event up later: nothing is lost."""
    if event.state != WebhookEvent.State.RECEIVED:
        return
    task = {
        Source.STRIPE: "payments.tasks.stripe_event_process_task",
        Source.GOCARDLESS: "payments.tasks.gocardless_event_process_task",
    }[event.source]

    def wake():
        from django_q.tasks import async_task

        try:
            async_task(task, event.pk, task_name=f"{event.source}-event-{event.pk}")
        except Exception:  # noqa: BLE001 - any broker failure: the sweep retries
            log.warning(
                "could not enqueue %s event %s; the sweep will retry",
                event.source,
                event.event_id,
                exc_info=True,
            )

    transaction.on_commit(wake)


def stripe_event_process(*, event_pk: int) -> str:
    """Act on one stored event. Returns the event's state afterwards."""
    event = WebhookEvent.objects.select_related("provider_account__entity").get(pk=event_pk)
    if event.state in FINAL_STATES:
        return event.state
    account = event.provider_account
    try:
        # the company and the key are those of the account whose address it came to
        entity = account_entity(account)
        with stripe_account_calls(account):
            _dispatch(event.event_type, event.payload, entity)
    except EventUnreadable as error:
        return webhook_event_failed(event, error)
    except (api.StripeError, PaymentsNotConfigured) as error:
        # Fetch failed (Stripe down, object not visible yet, no entity): keep it for the sweep.
        WebhookEvent.objects.filter(pk=event.pk).exclude(state=WebhookEvent.State.PROCESSED).update(
            state=WebhookEvent.State.RETRY,
            attempts=event.attempts + 1,
            last_error=str(error)[:2000],
        )
        log.warning(
            "stripe event %s (%s) will be retried: %s", event.event_id, event.event_type, error
        )
        return WebhookEvent.State.RETRY
    WebhookEvent.objects.filter(pk=event.pk).update(
        state=WebhookEvent.State.PROCESSED,
        attempts=event.attempts + 1,
        last_error="",
        processed_at=timezone.now(),
    )
    return WebhookEvent.State.PROCESSED


def _dispatch(event_type: str, payload: dict, entity) -> None:
    """Act on the event's object as the API reports it now. The event only names the object
    (data.object.id and, for charge and refund events, data.object.object)."""
    object_id = event_text(payload, "data", "object", "id")
    kind = payload["data"]["object"].get("object")
    if event_type in EVENT_HANDLERS:
        EVENT_HANDLERS[event_type](event_type, object_id, entity)
    elif event_type.startswith("payment_intent."):
        stripe_payment_sync(payment_intent_id=object_id, entity=entity)
    elif event_type.startswith("charge.dispute."):
        stripe_dispute_sync(dispute_id=object_id, entity=entity)
    elif event_type.startswith("payout."):
        stripe_payout_sync(payout_id=object_id)
    elif kind == "refund":
        refund = api.refund_retrieve(object_id)
        charge_id = stripe_source._id(refund.get("charge"))
        if not charge_id:
            raise api.StripePermanent(f"refund {object_id} names no charge")
        stripe_payment_sync(charge_id=charge_id, entity=entity)
        refund_stripe_update(stripe_refund=refund)  # a failed refund gets a reversing entry
    elif kind == "charge":
        stripe_payment_sync(charge_id=object_id, entity=entity)
    else:
        raise api.StripePermanent(f"cannot process {event_type} carrying a {kind!r}")


def stripe_payment_sync(
    *, payment_intent_id: str = "", charge_id: str = "", entity=None
) -> Payment | None:
    """Fetch one payment as Stripe reports it now and write it, for the company of the account
    it came through (None: the default company)."""
    if payment_intent_id:
        item = stripe_source.normalise_intent(api.payment_intent_retrieve(payment_intent_id))
    else:
        item = stripe_source.normalise_charge(api.charge_retrieve(charge_id))
    if item is None:
        return None  # canceled before any charge: no money moved
    result = payments_upsert(items=[item], origin="stripe.webhook", entity=entity)
    payment = Payment.objects.get(pk=result.ids[item.external_id])
    if payment.match_state == Payment.MatchState.UNMATCHED:
        # a payment booked already (an already-paid order's receipt) is linked to it; one
        # whose invoice its source names is settled without a matching run
        if payments_link_booked(payment_ids=[payment.pk]):
            return payment
        if not any(handler(payment) for handler in PAYMENT_HANDLERS):
            auto_match_soon(payment_ids=[payment.pk])
    return payment


def stripe_dispute_sync(*, dispute_id: str, entity=None):
    dispute = stripe_source.normalise_dispute(api.dispute_retrieve(dispute_id))
    key = dispute["payment_intent_id"]
    payment = Payment.objects.filter(source=Source.STRIPE, external_id=key).first() if key else None
    if payment is None:
        # The dispute may be our first sight of the payment: fetch the charge first.
        payment = stripe_payment_sync(charge_id=dispute["charge_id"], entity=entity)
    # money withdrawn, lost or reinstated is booked (each journal once)
    return dispute_book(
        dispute=dispute_upsert(source=Source.STRIPE, dispute=dispute, payment=payment)
    )


def stripe_payout_sync(*, payout_id: str):
    """Store the payout, then link the payments whose balance transactions it settled. The
    listing holds the payout's own balance transaction (`type: payout`): for a payout Stripe
    converted it says what left the balance (normalise_payout)."""
    body = api.payout_retrieve(payout_id)
    if body.get("status") != "paid":
        # a failed payout's transfer is reversed
        return payout_book(payout=stripe_payout_store(body, []))
    try:
        pages = list(api.payout_balance_transactions(payout_id))
    except api.StripePermanent as error:
        # localstripe cannot filter balance transactions by payout (400). On Stripe this is a
        # bug to look at, not a reason to re-fetch forever: keep the payout, say so.
        log.warning("payout %s stored without reconciliation: %s", payout_id, error)
        return stripe_payout_store(body, [])
    payout = stripe_payout_store(body, pages)
    stripe_payout_reconcile(payout=payout, pages=pages)
    return payout_book(payout=payout)


def stripe_payout_store(body: dict, pages):
    """Store a payout as Stripe answered it (`body`), its own balance transaction taken from
    the listing `pages` when the payout does not carry it expanded."""
    own = next((t for page in pages for t in page if t.get("type") == "payout"), None)
    if own is not None and not isinstance(body.get("balance_transaction"), dict):
        body = {**body, "balance_transaction": own}
    return payout_upsert(source=Source.STRIPE, payout=stripe_source.normalise_payout(body))


def stripe_payout_reconcile(*, payout, pages) -> int:
    """pages: balance transactions of the payout (source expanded). The sum of net of every
    transaction except the payout's own equals the payout amount."""
    keys, net_minor = [], 0
    for page in pages:
        for txn in page:
            if txn.get("type") == "payout":
                continue
            net_minor += txn["net"]
            source = txn.get("source")
            if isinstance(source, dict) and source.get("object") == "charge":
                keys.append(stripe_source.payment_key(source))
    net_total = from_minor(net_minor, payout.currency)
    return payout_link_payments(payout=payout, payment_keys=keys, net_total=net_total)


def stripe_events_retry_due(*, older_than_seconds: int = 30, limit: int = 500) -> int:
    """The sweep: events received but never processed (lost task) or waiting to retry."""
    cutoff = timezone.now() - timezone.timedelta(seconds=older_than_seconds)
    due = WebhookEvent.objects.filter(
        source=Source.STRIPE,
        state__in=[WebhookEvent.State.RECEIVED, WebhookEvent.State.RETRY],
        attempts__lt=MAX_ATTEMPTS,
        received_at__lt=cutoff,
    ).order_by("received_at")[:limit]
    done = 0
    for pk in list(due.values_list("pk", flat=True)):
        if stripe_event_process(event_pk=pk) == WebhookEvent.State.PROCESSED:
            done += 1
    return done


def _cursor(name: str, account: ProviderAccount | None) -> SyncState:
    # one cursor per account's key (the default one for the default company)
    if account is not None:
        name = f"{name}:{account.api_key_env or 'default'}"
    state, _ = SyncState.objects.get_or_create(entity=account_entity(account), object_type=name)
    return state


def stripe_accounts() -> list[ProviderAccount | None]:
    """The Stripe accounts to import and catch up, one per distinct key (an account without a
    key of its own uses the installation's); [None] (the installation's key, the default
    company) when no Stripe account is set up."""
    accounts = {}
    stripe = ProviderAccount.objects.filter(source=Source.STRIPE).select_related("entity")
    for account in stripe.order_by("id"):
        accounts.setdefault(account.api_key_env, account)
    return list(accounts.values()) or [None]


def stripe_events_catch_up(*, since=None, account: ProviderAccount | None = None) -> dict:
    """Nightly: list events since the last one seen, store the missing ones, process them."""
    with stripe_account_calls(account):
        return _catch_up(since=since, account=account)


def _catch_up(*, since, account) -> dict:
    state = _cursor("stripe.events", account)
    if since is None:
        since = state.last_modified_cursor
    created_gt = int(since.timestamp()) - CATCH_UP_OVERLAP_SECONDS if since else 0
    stored = processed = newest = 0
    for page in api.events_since(max(created_gt, 0)):
        for body in page:
            newest = max(newest, int(body.get("created") or 0))
            received = webhook_event_store(
                source=Source.STRIPE,
                event_id=body["id"],
                event_type=body["type"],
                payload=body,
                handled=event_handled(body["type"]),
                account=account,
            )
            stored += received.created
            if received.event.state in (WebhookEvent.State.RECEIVED, WebhookEvent.State.RETRY):
                processed += stripe_event_process(event_pk=received.event.pk) == "processed"
    if newest:
        SyncState.objects.filter(pk=state.pk).update(
            last_modified_cursor=stripe_source.timestamp(newest), last_finished_at=timezone.now()
        )
    return {"stored": stored, "processed": processed}


def stripe_import(*, since=None, pages=None, account: ProviderAccount | None = None) -> dict:
    """Incremental import of charges (with balance transactions, intents and customers).

    The cursor is the newest `created` seen; the next run starts one second before it, so
    charges created in that same second are not missed (the upsert makes the overlap harmless).
    `pages` lets the benchmark feed Stripe-shaped pages without the network.
    """
    with stripe_account_calls(account):
        return _import(since=since, pages=pages, account=account)


def _import(*, since, pages, account) -> dict:
    state = _cursor("stripe.charges", account)
    if since is None and state.last_modified_cursor:
        since = state.last_modified_cursor
    created_gt = int(since.timestamp()) - 1 if since else 0
    if pages is None:
        pages = api.charges_since(api.created_floor(created_gt))
    entity = account_entity(account)
    created = updated = newest = 0
    buffered: list = []

    def flush():
        nonlocal created, updated
        result = payments_upsert(items=buffered, origin="stripe.import", entity=entity)
        created += result.created
        updated += result.updated
        buffered.clear()

    for page in pages:
        buffered.extend(stripe_source.normalise_charge(charge) for charge in page)
        newest = max([newest, *(int(c["created"]) for c in page)])
        if len(buffered) >= IMPORT_BATCH:  # fewer, larger transactions: one per 1,000 rows
            flush()
    if buffered:
        flush()
    if newest:
        SyncState.objects.filter(pk=state.pk).update(
            last_modified_cursor=stripe_source.timestamp(newest), last_finished_at=timezone.now()
        )
    return {"created": created, "updated": updated}


def stripe_import_all(*, since=None) -> dict:
    """stripe_import for every Stripe account with a key of its own (and the default)."""
    totals = {"created": 0, "updated": 0}
    for account in stripe_accounts():
        result = stripe_import(since=since, account=account)
        totals = {key: totals[key] + result[key] for key in totals}
    return totals


def stripe_catch_up_all(*, since=None) -> dict:
    """stripe_events_catch_up for every Stripe account with a key of its own (and the default)."""
    totals = {"stored": 0, "processed": 0}
    for account in stripe_accounts():
        result = stripe_events_catch_up(since=since, account=account)
        totals = {key: totals[key] + result[key] for key in totals}
    return totals
