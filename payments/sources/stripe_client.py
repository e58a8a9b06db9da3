"""Every call to Stripe goes through this module (named so it never shadows the `stripe` SDK).

One `stripe.StripeClient` per process, key and address, pointed at settings.STRIPE_API_BASE
(localstripe in the embedded default and in tests, api.stripe.com in production) with the key
from settings, or, inside `with using_key(...)`, the key (and address, where it has its own) of
the Stripe account being worked on (each company's account has its own:
payments/services/provider_accounts.py; the demo runs one localstripe per company).
Failures become one of two errors: StripeTemporary (network, 429, 5xx: try again later) or
StripePermanent (bad request, not found, auth: a person must look). Responses are parsed into
plain dicts: the normaliser, the fixtures and the benchmark all work on the same shape.
"""

import contextlib
import contextvars
import json
import logging
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

import stripe
from django.conf import settings

log = logging.getLogger(__name__)

# Expansions for one payment: the balance transaction (fee, net, exchange rate), the
# PaymentIntent (its metadata: localstripe does not copy it onto the charge as Stripe does at
# confirmation) and the customer (name, email, metadata for the AIQ customer code).
CHARGE_EXPAND = ["balance_transaction", "payment_intent", "customer", "refunds"]
LIST_CHARGE_EXPAND = ["data.balance_transaction", "data.payment_intent", "data.customer"]
PAGE_SIZE = 100  # Stripe's maximum

_lock = threading.Lock()
_clients: dict[tuple, stripe.StripeClient] = {}
# the key and address of the account the current work is for; empty: settings.STRIPE_API_KEY
# and settings.STRIPE_API_BASE
_account: contextvars.ContextVar[tuple[str, str]] = contextvars.ContextVar(
    "stripe_account", default=("", "")
)


@contextlib.contextmanager
def using_key(api_key: str, api_base: str = ""):
    """Every call inside the block uses this account's secret key and address (empty: the
    installation's)."""
    token = _account.set((api_key or "", api_base or ""))
    try:
        yield
    finally:
        _account.reset(token)


def api_base() -> str:
    """The address calls go to now: the current account's, else the installation's."""
    return _account.get()[1] or settings.STRIPE_API_BASE


class StripeError(Exception):
    """Base of our two Stripe errors. The message never contains the API key."""


class StripeTemporary(StripeError):
    """Network trouble, rate limiting or a Stripe-side error: retry later."""


class StripePermanent(StripeError):
    """The request itself is wrong or the object does not exist: retrying will not help."""

    def __init__(self, message: str, *, http_status: int | None = None):
        super().__init__(message)
        self.http_status = http_status


def client() -> stripe.StripeClient:
    """The client of the current account's key, built once per key and address (tests point
    the address at their localstripe)."""
    api_key, base = _account.get()
    api_key, base = api_key or settings.STRIPE_API_KEY, base or settings.STRIPE_API_BASE
    key = (api_key, base)
    with _lock:
        found = _clients.get(key)
        if found is None:
            if len(_clients) > 32:  # addresses change per test; a few accounts in production
                _clients.clear()
            found = _clients[key] = stripe.StripeClient(
                api_key,
                base_addresses={"api": base},
                # The SDK retries network errors and 409/5xx inside one call (with its own
                # idempotency key); 429 is NOT retried: the caller backs off (README).
                max_network_retries=2,
                http_client=stripe.RequestsClient(timeout=20),
            )
        return found


def _translate(error: stripe.StripeError) -> StripeError:
    status = getattr(error, "http_status", None)
    text = f"{type(error).__name__} (HTTP {status}): {error.user_message or 'no message'}"
    if isinstance(error, stripe.APIConnectionError | stripe.RateLimitError) or (
        status is not None and status >= 500
    ):
        return StripeTemporary(text)
    if status is None and isinstance(error, stripe.APIError):
        return StripeTemporary(text)
    return StripePermanent(text, http_status=status)


def request(method: str, path: str, **params) -> dict:
    """One API call; the JSON answer as a dict."""
    try:
        response = client().raw_request(method, path, **params)
    except stripe.StripeError as error:
        raise _translate(error) from None
    return json.loads(response.body)


def retrieve(path: str, *, expand: list[str] | None = None) -> dict:
    params = {"expand": expand} if expand else {}
    return request("get", path, **params)


def list_pages(path: str, **params) -> Iterator[list[dict]]:
    """Auto-pagination: yields each page's `data` until has_more is false (starting_after)."""
    params = {"limit": PAGE_SIZE, **params}
    while True:
        page = request("get", path, **params)
        items = page.get("data") or []
        if items:
            yield items
        if not page.get("has_more") or not items:
            return
        params["starting_after"] = items[-1]["id"]


def charge_retrieve(charge_id: str) -> dict:
    return retrieve(f"/v1/charges/{charge_id}", expand=CHARGE_EXPAND)


def payment_intent_retrieve(payment_intent_id: str) -> dict:
    return retrieve(
        f"/v1/payment_intents/{payment_intent_id}",
        expand=["latest_charge.balance_transaction", "latest_charge.refunds", "customer"],
    )


def refund_retrieve(refund_id: str) -> dict:
    return retrieve(f"/v1/refunds/{refund_id}")


def dispute_retrieve(dispute_id: str) -> dict:
    return retrieve(f"/v1/disputes/{dispute_id}")


def payout_retrieve(payout_id: str) -> dict:
    return retrieve(f"/v1/payouts/{payout_id}")


def payout_balance_transactions(payout_id: str) -> Iterator[list[dict]]:
    """The balance transactions settled in a payout, each with its source charge expanded."""
    return list_pages("/v1/balance_transactions", payout=payout_id, expand=["data.source"])


def balance_retrieve() -> dict:
    """What Stripe holds for the account now: available and pending amounts per currency."""
    return retrieve("/v1/balance")


def event_retrieve(event_id: str) -> dict:
    return retrieve(f"/v1/events/{event_id}")


def events_since(created_gt: int) -> Iterator[list[dict]]:
    return list_pages("/v1/events", created={"gt": created_gt})


# localstripe refuses created[gt] at or before 2017-07-14 (1500000000); Stripe does not.
LOCALSTRIPE_CREATED_FLOOR = 1500000001


def is_real_stripe() -> bool:
    """True when the API base is Stripe's own (api.stripe.com), not localstripe or a stand-in."""
    host = urlsplit(api_base()).hostname or ""
    return host == "stripe.com" or host.endswith(".stripe.com")


def created_floor(created_gt: int) -> int:
    """The `created[gt]` to ask for: as asked on Stripe (charges from 2010 on are listed);
    raised to what localstripe accepts only when talking to localstripe."""
    if is_real_stripe():
        return max(created_gt, 0)
    return max(created_gt, LOCALSTRIPE_CREATED_FLOOR)


def charges_since(created_gt: int) -> Iterator[list[dict]]:
    return list_pages("/v1/charges", created={"gt": created_gt}, expand=LIST_CHARGE_EXPAND)
