"""Stripe amounts as Stripe means them: its own zero-decimal and special currencies (never the
ISO exponent), money in only when captured and for the captured amount, and a first import
that reaches back before 2017 on Stripe itself."""

import copy
import json
from decimal import Decimal

import pytest

from core.stripe_money import stripe_from_minor, stripe_to_minor
from payments.models import Payment
from payments.services import stripe_events
from payments.services.payments import payments_upsert
from payments.sources import stripe_client, stripe_source
from tests.stripe_fixtures import fixture

# Stripe's "Supported currencies" page, as published: zero-decimal list, three-decimal list,
# special cases. Each row: currency, the API amount, what it means in major units.
STRIPE_ZERO_DECIMAL = "BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF".split()
STRIPE_THREE_DECIMAL = "BHD JOD KWD OMR TND".split()
SPECIAL = [
    ("ISK", 100, Decimal("1")),  # "an ISK amount of 100 will continue to represent 1 króna"
    ("ISK", 250000, Decimal("2500")),
    ("ISK", 4010, Decimal("40.10")),  # a fractional króna charge from before April 2023
    ("HUF", 123456, Decimal("1234.56")),  # two-decimal for charges
    ("TWD", 50000, Decimal("500.00")),
    ("UGX", 5000, Decimal("5000")),  # zero-decimal in Stripe's list
    ("MGA", 5000, Decimal("5000")),  # ISO says two decimals; Stripe says none
    ("IQD", 1000, Decimal("10.00")),  # three-decimal in ISO, not in Stripe's list
]


def _charge(currency: str, amount: int, **changes) -> dict:
    charge = copy.deepcopy(fixture("charge_with_fees.json"))
    charge.update(
        currency=currency.lower(), amount=amount, amount_captured=amount, amount_refunded=0
    )
    charge["balance_transaction"] = charge["balance_transaction"]["id"]  # not expanded
    charge.update(changes)
    return charge


@pytest.mark.parametrize("currency", STRIPE_ZERO_DECIMAL)
def test_every_zero_decimal_currency_stripe_lists_is_whole_units(currency):
    payment = stripe_source.normalise_charge(_charge(currency, 5000))
    assert payment.amount == Decimal(5000)
    assert stripe_to_minor(payment.amount, currency) == 5000


@pytest.mark.parametrize("currency", STRIPE_THREE_DECIMAL)
def test_every_three_decimal_currency_stripe_lists_has_three_places(currency):
    payment = stripe_source.normalise_charge(_charge(currency, 12340))
    assert payment.amount == Decimal("12.340")
    assert stripe_to_minor(payment.amount, currency) == 12340


@pytest.mark.parametrize(("currency", "minor", "major"), SPECIAL)
def test_stripe_special_cases(currency, minor, major):
    payment = stripe_source.normalise_charge(_charge(currency, minor))
    assert payment.amount == major
    assert stripe_from_minor(minor, currency) == major
    assert stripe_to_minor(major, currency) == minor


def test_an_isk_and_an_mga_charge_are_stored_at_their_real_value(entity):
    """The two currencies the reviewers saw wrong: ISK stored 100x too large, MGA 100x small."""
    items = [
        stripe_source.normalise_charge(_charge("isk", 1_500_000, id="ch_isk", payment_intent="")),
        stripe_source.normalise_charge(_charge("mga", 20_000, id="ch_mga", payment_intent="")),
    ]
    payments_upsert(items=items, origin="test")
    stored = {p.external_id: (p.amount, p.currency) for p in Payment.objects.all()}
    assert stored == {
        "ch_isk": (Decimal("15000"), "ISK"),
        "ch_mga": (Decimal("20000"), "MGA"),
    }


def test_an_uncaptured_charge_is_not_money_received(entity):
    """Stripe's documented shape of an authorisation not yet captured (capture_method=manual):
    status 'succeeded' (the authorisation did), captured false, amount_captured 0."""
    authorised = _charge(
        "gbp", 4200, id="ch_auth", payment_intent="", captured=False, amount_captured=0
    )
    payments_upsert(items=[stripe_source.normalise_charge(authorised)], origin="test")
    payment = Payment.objects.get(external_id="ch_auth")
    assert payment.status == Payment.Status.PENDING  # waiting for capture, not in the bank

    # captured in part: 30.00 of the 42.00 authorised is what came in
    captured = {**authorised, "captured": True, "amount_captured": 3000}
    payments_upsert(items=[stripe_source.normalise_charge(captured)], origin="test")
    payment.refresh_from_db()
    assert (payment.status, payment.amount) == (Payment.Status.SUCCEEDED, Decimal("30.00"))


def test_an_authorisation_released_without_capture_is_canceled():
    released = _charge(
        "eur",
        990,
        captured=False,
        amount_captured=0,
        amount_refunded=990,
        refunded=True,
        payment_intent={"id": "pi_x", "status": "canceled", "metadata": {}},
    )
    assert stripe_source.normalise_charge(released).status == "canceled"
    no_intent = {**released, "payment_intent": None}
    payment = stripe_source.normalise_charge(no_intent)
    assert payment.status == "canceled" and payment.amount_refunded <= payment.amount


def test_stripe_import_asks_stripe_for_charges_from_before_2017(entity, settings, monkeypatch):
    """On Stripe itself `--since 2010-01-01` lists charges from 2010; the localstripe floor
    (created[gt] > 1500000000) applies only to localstripe."""
    settings.STRIPE_API_BASE = "https://api.stripe.com"
    old = _charge("gbp", 1999, id="ch_2012", payment_intent="", created=1_330_000_000)
    asked = []

    def stripe_answers(method, path, **params):
        # Stripe's list endpoint: the charges created after created[gt], newest first
        asked.append(params["created"]["gt"])
        data = [old] if old["created"] > params["created"]["gt"] else []
        return json.loads(json.dumps({"object": "list", "data": data, "has_more": False}))

    monkeypatch.setattr(stripe_client, "request", stripe_answers)
    from datetime import UTC, datetime

    result = stripe_events.stripe_import(since=datetime(2010, 1, 1, tzinfo=UTC))
    assert asked == [int(datetime(2010, 1, 1, tzinfo=UTC).timestamp()) - 1]
    assert result["created"] == 1
    assert Payment.objects.get(external_id="ch_2012").amount == Decimal("19.99")


def test_the_localstripe_floor_is_only_for_localstripe(settings):
    settings.STRIPE_API_BASE = "http://127.0.0.1:8420"
    assert stripe_client.created_floor(0) == stripe_client.LOCALSTRIPE_CREATED_FLOOR
    settings.STRIPE_API_BASE = "https://api.stripe.com"
    assert stripe_client.created_floor(0) == 0
    assert stripe_client.created_floor(1_262_304_000) == 1_262_304_000
