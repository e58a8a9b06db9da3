"""Demo payments in localstripe: real PaymentIntents, confirmed with a test card, so that
webhooks actually flow. Used by `manage.py stripe_demo_payments` and by the tests."""

from payments.sources.stripe_client import request

TEST_CARD = "4242424242424242"  # localstripe (like Stripe) accepts it
DECLINED_CARD = "4000000000000341"  # attaches, then declines when charged


def demo_customer_create(*, email: str = "", name: str = "", metadata: dict | None = None):
    params = {"name": name} if name else {}
    if email:
        params["email"] = email
    if metadata:
        params["metadata"] = metadata
    return request("post", "/v1/customers", **params)


def demo_payment_create(
    *,
    amount_minor: int,
    currency: str = "gbp",
    customer_id: str | None = None,
    metadata: dict | None = None,
    card: str = TEST_CARD,
) -> dict:
    """Create and confirm a PaymentIntent. Returns it as Stripe answered."""
    method = request(
        "post",
        "/v1/payment_methods",
        type="card",
        card={"number": card, "exp_month": 12, "exp_year": 2034, "cvc": "123"},
    )
    params = {
        "amount": amount_minor,
        "currency": currency,
        "payment_method": method["id"],
        "confirm": True,
        "capture_method": "automatic",
    }
    if customer_id:
        params["customer"] = customer_id
    if metadata:
        params["metadata"] = metadata
    return request("post", "/v1/payment_intents", **params)
