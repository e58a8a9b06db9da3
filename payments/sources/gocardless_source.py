"""GoCardless through the official gocardless-pro SDK: payments and payouts, signed webhooks.

Every call to GoCardless goes through `gc_client()`. Webhooks carry a batch of events signed
with HMAC-SHA256 of the raw body (`Webhook-Signature`, hex); like Stripe's, each event is
stored once and then acted on from the resource as the API reports it.

A payment names only its mandate; who paid (name, email) is the mandate's customer, fetched
through MandatePayers once per mandate per import or event.
"""

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import gocardless_pro
from django.conf import settings
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from core.money import exponent, from_minor, normalise_currency, quantize, to_decimal
from ledger.models import SyncState
from payments.models import Payment, Source, WebhookEvent
from payments.models_provider import ProviderAccount
from payments.services.auto_match import auto_match_soon
from payments.services.payments import (
    PaymentsNotConfigured,
    payments_upsert,
    payout_link_payments,
    payout_upsert,
)
from payments.services.provider_accounts import (
    AccountSecretMissing,
    account_api_key,
    account_entity,
    account_webhook_secrets,
)
from payments.services.provider_books import payout_book
from payments.services.provider_disputes import gocardless_taken_back
from payments.services.stripe_events import (
    CATCH_UP_OVERLAP_SECONDS,
    FINAL_STATES,
    MAX_ATTEMPTS,
    EventUnreadable,
    WebhookRejected,
    event_text,
    signature_header,
    webhook_event_failed,
    webhook_event_store,
)
from payments.sources.normalised import NormalisedPayment

log = logging.getLogger(__name__)
SOURCE = Source.GOCARDLESS
HANDLED_RESOURCES = frozenset({"payments", "payouts", "refunds"})

# GoCardless payment status -> ours (https://developer.gocardless.com/api-reference/#payments)
_STATUS = {
    "pending_customer_approval": "pending",
    "pending_submission": "pending",
    "submitted": "pending",
    "confirmed": "succeeded",
    "paid_out": "succeeded",
    "cancelled": "canceled",
    "customer_approval_denied": "failed",
    "failed": "failed",
    "charged_back": "disputed",
}


class GoCardlessUnavailable(Exception):
    """The API could not be reached or answered with an error: the event is retried later."""


@sensitive_variables()
def gc_client(
    base_url: str | None = None, account: ProviderAccount | None = None
) -> gocardless_pro.Client:
    """A client with the account's own access token (None: GOCARDLESS_ACCESS_TOKEN)."""
    token = account_api_key(account, settings.GOCARDLESS_ACCESS_TOKEN)
    if not token:
        raise GoCardlessUnavailable("GOCARDLESS_ACCESS_TOKEN is not set.")
    base_url = base_url or getattr(settings, "GOCARDLESS_API_BASE", "")
    if base_url:
        return gocardless_pro.Client(access_token=token, base_url=base_url, timeout=20)
    return gocardless_pro.Client(
        access_token=token,
        environment=settings.GOCARDLESS_ENVIRONMENT,
        timeout=20,
    )


@dataclass(frozen=True, slots=True)
class Payer:
    name: str = ""
    email: str = ""


NO_PAYER = Payer()


def payer_from_customer(customer: dict) -> Payer:
    """A company pays under its company name; a person under "given family"."""
    person = " ".join(
        part.strip() for part in (customer.get("given_name"), customer.get("family_name")) if part
    )
    name = (customer.get("company_name") or "").strip() or person
    return Payer(name=name[:200], email=(customer.get("email") or "").strip()[:254])


class MandatePayers:
    """The customer behind each mandate, asked of GoCardless once per mandate (and customer)
    for as long as this object lives: one import, or one webhook event.

    None means not known: the lookup failed, and the payment is stored without its payer.
    After a network failure (the SDK has already retried) the API is taken as unreachable
    for the rest of the batch, so a page of payments does not wait out a timeout per mandate.
    """

    def __init__(self, client):
        self._client = client
        self._by_mandate: dict[str, Payer | None] = {}
        self._by_customer: dict[str, Payer] = {}
        self._unreachable = False

    def of_mandate(self, mandate_id: str) -> Payer | None:
        if not mandate_id:
            return NO_PAYER  # nothing to ask about: an empty payer is the whole truth
        if mandate_id not in self._by_mandate:
            self._by_mandate[mandate_id] = None if self._unreachable else self._fetch(mandate_id)
        return self._by_mandate[mandate_id]

    def _fetch(self, mandate_id: str) -> Payer | None:
        try:
            customer_id = self._client.mandates.get(mandate_id).links.customer
            if customer_id not in self._by_customer:
                customer = self._client.customers.get(customer_id).attributes
                self._by_customer[customer_id] = payer_from_customer(customer)
            return self._by_customer[customer_id]
        except (gocardless_pro.errors.GoCardlessProError, OSError) as error:
            if isinstance(error, OSError):
                self._unreachable = True
            # the error's text may quote the request; its type and the mandate id are enough
            log.warning(
                "gocardless payer of mandate %s not fetched (payments keep the one stored): %s",
                mandate_id,
                type(error).__name__,
            )
            return None


def normalise_payments(payments: list[dict], payers: MandatePayers) -> list[NormalisedPayment]:
    """Payments with their payers. Where a payer could not be fetched the payer already stored
    is kept, so a refresh during an outage does not blank a name an earlier one filled in."""
    items, unknown = [], []
    for payment in payments:
        payer = payers.of_mandate((payment.get("links") or {}).get("mandate") or "")
        item = normalise_payment(payment, payer or NO_PAYER)
        items.append(item)
        if payer is None:
            unknown.append(item)
    _keep_stored_payers(unknown)
    return items


def _keep_stored_payers(items: list[NormalisedPayment]) -> None:
    if not items:
        return
    stored = Payment.objects.filter(
        source=SOURCE, external_id__in=[item.external_id for item in items]
    ).values_list("external_id", "payer_name", "payer_email")
    by_id = {external_id: (name, email) for external_id, name, email in stored}
    for item in items:
        item.payer_name, item.payer_email = by_id.get(item.external_id, ("", ""))


def normalise_payment(payment: dict, payer: Payer = NO_PAYER) -> NormalisedPayment:
    currency = normalise_currency(payment["currency"])
    amount = from_minor(payment["amount"], currency)
    refunded = from_minor(payment.get("amount_refunded") or 0, currency)
    status = _STATUS.get(payment.get("status") or "", "pending")
    if status == "succeeded" and refunded:
        status = "refunded" if refunded >= amount else "partially_refunded"
    links = payment.get("links") or {}
    refs = []
    for label in ("reference", "description"):
        if payment.get(label):
            refs.append({"source": label, "value": str(payment[label])})
    for key, value in sorted((payment.get("metadata") or {}).items()):
        if value:
            refs.append({"source": f"metadata.{key}", "value": str(value)})
    received = payment.get("charge_date") or payment.get("created_at")
    received_at = datetime.fromisoformat(received.replace("Z", "+00:00"))
    if timezone.is_naive(received_at):
        received_at = timezone.make_aware(received_at, timezone.get_fixed_timezone(0))
    metadata = payment.get("metadata") or {}
    return NormalisedPayment(
        source=SOURCE,
        external_id=payment["id"],
        amount=amount,
        currency=currency,
        amount_refunded=refunded,
        received_at=received_at,
        status=status,
        payer_name=payer.name,
        payer_email=payer.email,
        # the mandate, not the customer: payer mappings staff confirmed are keyed on it
        payer_reference=links.get("mandate") or "",
        description=payment.get("description") or "",
        references=refs,
        raw=payment,
        customer_code_hint=(metadata.get("aiq_customer_code") or "").upper(),
    )


def gocardless_import(
    *, client=None, created_after: str | None = None, account: ProviderAccount | None = None
) -> dict:
    """Import payments (auto-paginated by the SDK's cursor) created after an ISO timestamp,
    for the account's company (None: the default company)."""
    client = client or gc_client(account=account)
    entity = account_entity(account)
    payers = MandatePayers(client)
    params = {"limit": 500}
    if created_after:
        params["created_at[gt]"] = created_after
    created = updated = 0
    batch = []

    def store(batch):
        return payments_upsert(
            items=normalise_payments(batch, payers), origin="gocardless.import", entity=entity
        )

    try:
        for payment in client.payments.all(params=params):
            batch.append(payment.attributes)
            if len(batch) == 500:
                result, batch = store(batch), []
                created, updated = created + result.created, updated + result.updated
    except gocardless_pro.errors.GoCardlessProError as error:
        raise GoCardlessUnavailable(f"GoCardless: {type(error).__name__}") from None
    if batch:
        result = store(batch)
        created, updated = created + result.created, updated + result.updated
    return {"created": created, "updated": updated}


def gocardless_payout_sync(*, payout_id: str, client=None):
    """Store a payout and link the payments its items settled (payment_paid_out items)."""
    client = client or gc_client()
    payout = client.payouts.get(payout_id).attributes
    currency = normalise_currency(payout["currency"])
    row = payout_upsert(
        source=SOURCE,
        payout={
            "external_id": payout["id"],
            "amount": from_minor(payout["amount"], currency),
            "currency": currency,
            "status": payout.get("status") or "",
            "arrival_date": datetime.fromisoformat(payout["arrival_date"]).date()
            if payout.get("arrival_date")
            else None,
            "raw": payout,
        },
    )
    keys, net_minor = [], to_decimal(0)
    for item in client.payout_items.all(params={"payout": payout_id}):
        data = item.attributes
        # item amounts are strings in fractional currency to one decimal place ("1000.0")
        net_minor += to_decimal(data["amount"])
        payment_id = (data.get("links") or {}).get("payment")
        if data.get("type") == "payment_paid_out" and payment_id:
            keys.append(payment_id)
    net_total = quantize(net_minor.scaleb(-exponent(currency)), currency)
    payout_link_payments(payout=row, payment_keys=keys, net_total=net_total)
    return payout_book(payout=row)


@sensitive_variables()  # a debug page must never show the secrets it tries
def gocardless_webhook_receive(
    *, payload: bytes, signature: str | None, account: ProviderAccount | None = None
):
    """Verify and store one delivery to the account's address (None: the default address)."""
    signature = signature_header(signature, "Webhook-Signature")
    try:
        secrets = account_webhook_secrets(account, settings.GOCARDLESS_WEBHOOK_SECRETS)
    except AccountSecretMissing as error:
        raise WebhookRejected(str(error)) from None
    valid = any(
        hmac.compare_digest(
            hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest(), signature.strip()
        )
        for secret in secrets
    )
    if not valid:
        raise WebhookRejected("signature does not match any configured secret")
    try:
        events = json.loads(payload)["events"]
    except (ValueError, KeyError, TypeError):
        raise WebhookRejected("signed body is not a GoCardless event batch") from None
    if not isinstance(events, list) or not all(
        isinstance(e, dict) and isinstance(e.get("id"), str) and e["id"] for e in events
    ):
        raise WebhookRejected("signed body is not a GoCardless event batch") from None
    return [
        webhook_event_store(
            source=SOURCE,
            event_id=e["id"],
            event_type=f"{e.get('resource_type')}.{e.get('action')}",
            payload=e,
            handled=isinstance(e.get("resource_type"), str)
            and e["resource_type"] in HANDLED_RESOURCES,
            account=account,
        )
        for e in events
    ]


def _event_payment_id(payload: dict, client_of) -> str:
    """The payment a payments or refunds event is about. A refund event's links may carry only
    the refund (refunds.created, as documented): the refund then names its payment."""
    links = payload.get("links")
    if payload.get("resource_type") == "refunds" and not (
        isinstance(links, dict) and isinstance(links.get("payment"), str) and links["payment"]
    ):
        refund_id = event_text(payload, "links", "refund")
        payment_id = client_of().refunds.get(refund_id).links.payment
        if not payment_id:
            raise EventUnreadable(f"refund {refund_id} names no payment")
        return payment_id
    return event_text(payload, "links", "payment")


def gocardless_event_process(*, event_pk: int, client=None) -> str:
    event = WebhookEvent.objects.select_related("provider_account__entity").get(pk=event_pk)
    if event.state in FINAL_STATES:
        return event.state
    account = event.provider_account  # its company and token (None: the default ones)
    try:
        payload = event.payload if isinstance(event.payload, dict) else {}
        # the event's shape is checked before GoCardless is asked anything
        client_of = (lambda: client) if client else (lambda: gc_client(account=account))
        if payload.get("resource_type") == "payouts":
            payout_id = event_text(payload, "links", "payout")
            gocardless_payout_sync(payout_id=payout_id, client=client_of())
        else:  # payments and refunds both change a payment
            payment_id = _event_payment_id(payload, client_of)
            client = client_of()
            payment = client.payments.get(payment_id).attributes
            items = normalise_payments([payment], MandatePayers(client))
            result = payments_upsert(
                items=items, origin="gocardless.webhook", entity=account_entity(account)
            )
            if payload.get("resource_type") == "payments":
                # paid out, then failed late or charged back: booked as a lost dispute
                details = payload.get("details") if isinstance(payload.get("details"), dict) else {}
                for stored in Payment.objects.filter(pk__in=result.ids.values()):
                    gocardless_taken_back(payment=stored, cause=str(details.get("cause") or ""))
            # matched as soon as it is stored, as Stripe's and statement payments are
            auto_match_soon(payment_ids=list(result.ids.values()))
    except EventUnreadable as error:
        return webhook_event_failed(event, error)
    except (
        gocardless_pro.errors.GoCardlessProError,
        GoCardlessUnavailable,
        PaymentsNotConfigured,
        OSError,
    ) as error:
        WebhookEvent.objects.filter(pk=event.pk).update(
            state=WebhookEvent.State.RETRY,
            attempts=event.attempts + 1,
            last_error=f"{type(error).__name__}: {error}"[:2000],
        )
        log.warning("gocardless event %s will be retried: %s", event.event_id, type(error).__name__)
        return WebhookEvent.State.RETRY
    WebhookEvent.objects.filter(pk=event.pk).update(
        state=WebhookEvent.State.PROCESSED,
        attempts=event.attempts + 1,
        last_error="",
        processed_at=timezone.now(),
    )
    return WebhookEvent.State.PROCESSED


def gocardless_events_retry_due(*, older_than_seconds: int = 30, limit: int = 500) -> int:
    """The sweep, as for Stripe: GoCardless events stored but never processed (a lost task)
    or waiting to retry (GoCardless was down) are processed again, oldest first."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    due = WebhookEvent.objects.filter(
        source=SOURCE,
        state__in=[WebhookEvent.State.RECEIVED, WebhookEvent.State.RETRY],
        attempts__lt=MAX_ATTEMPTS,
        received_at__lt=cutoff,
    ).order_by("received_at")[:limit]
    done = 0
    for pk in list(due.values_list("pk", flat=True)):
        done += gocardless_event_process(event_pk=pk) == WebhookEvent.State.PROCESSED
    return done


def gocardless_catch_up(
    *, since: datetime | None = None, client=None, account: ProviderAccount | None = None
) -> dict:
    """Nightly (and the backfill with `since`): list GoCardless events created after the last
    one seen (less an overlap), store the ones the webhook missed and process them; then the
    payments created since, so a payment whose events were all missed is still in the inbox.
    The cursor is kept per entity (SyncState "gocardless.events")."""
    client = client or gc_client(account=account)
    name = "gocardless.events" + (f":{account.api_key_env or 'default'}" if account else "")
    state, _ = SyncState.objects.get_or_create(entity=account_entity(account), object_type=name)
    since = since or state.last_modified_cursor
    params = {"limit": 500}
    if since:
        params["created_at[gt]"] = (since - timedelta(seconds=CATCH_UP_OVERLAP_SECONDS)).strftime(
            "%Y-%m-%dT%H:%M:%S.000Z"
        )
    stored = processed = 0
    newest = None
    try:
        for resource in client.events.all(params=params):
            event = resource.attributes
            if not isinstance(event.get("id"), str) or not event["id"]:
                continue
            created = event.get("created_at") or ""
            newest = max(newest or created, created)
            received = webhook_event_store(
                source=SOURCE,
                event_id=event["id"],
                event_type=f"{event.get('resource_type')}.{event.get('action')}",
                payload=event,
                handled=event.get("resource_type") in HANDLED_RESOURCES,
                account=account,
            )
            stored += received.created
            if received.event.state in (WebhookEvent.State.RECEIVED, WebhookEvent.State.RETRY):
                outcome = gocardless_event_process(event_pk=received.event.pk, client=client)
                processed += outcome == WebhookEvent.State.PROCESSED
    except gocardless_pro.errors.GoCardlessProError as error:
        raise GoCardlessUnavailable(f"GoCardless: {type(error).__name__}") from None
    imported = gocardless_import(
        client=client, created_after=params.get("created_at[gt]"), account=account
    )
    if newest:
        SyncState.objects.filter(pk=state.pk).update(
            last_modified_cursor=datetime.fromisoformat(newest.replace("Z", "+00:00")),
            last_finished_at=timezone.now(),
        )
    return {"stored": stored, "processed": processed, **imported}


def gocardless_accounts() -> list[ProviderAccount | None]:
    """The GoCardless accounts to catch up, one per distinct access token (an account without
    a token of its own uses the installation's); [None] (the installation's token, the
    default company) when no GoCardless account is set up."""
    accounts: dict[str, ProviderAccount] = {}
    rows = ProviderAccount.objects.filter(source=SOURCE).select_related("entity").order_by("id")
    for account in rows:
        accounts.setdefault(account.api_key_env, account)
    return list(accounts.values()) or [None]


def gocardless_catch_up_all(*, since: datetime | None = None) -> dict:
    """gocardless_catch_up for every GoCardless account, each with its own access token and
    cursor. One account that cannot be caught up (its token unset, GoCardless refusing it)
    does not stop the others: it is named in `problems` (never its token) and tried again
    the next night from its own cursor."""
    totals = {"stored": 0, "processed": 0, "created": 0, "updated": 0}
    problems = []
    accounts = gocardless_accounts()
    for account in accounts:
        try:
            result = gocardless_catch_up(since=since, account=account)
        except (
            GoCardlessUnavailable,
            PaymentsNotConfigured,
            gocardless_pro.errors.GoCardlessProError,
            OSError,
        ) as error:
            name = str(account) if account is not None else "GoCardless"
            problems.append(f"{name}: {type(error).__name__}: {error}")
            log.warning("gocardless catch-up skipped an account: %s", type(error).__name__)
            continue
        totals = {key: totals[key] + result[key] for key in totals}
    return {**totals, "accounts": len(accounts), "problems": problems}
