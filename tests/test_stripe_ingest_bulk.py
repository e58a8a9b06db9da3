"""The bulk write under the Stripe import (payments_upsert -> payment_rows): one row per
(source, external id), exact money, the raw payload as received, idempotent re-import, our own
columns left alone, and a bad item stopping the batch before anything is written."""

import copy
import sqlite3
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from ledger.models import Customer
from payments.models import Fee, PayerMapping, Payment
from payments.services import stripe_events
from payments.services.payments import payments_upsert
from payments.sources import stripe_source
from staff.models import AuditEntry
from tests.stripe_fixtures import fixture

# (currency, exponent): two-, zero- and three-decimal currencies
CURRENCIES = [("gbp", 2), ("jpy", 0), ("kwd", 3), ("usd", 2)]


def charges(count: int, *, refunded_every: int = 0) -> list[dict]:
    """Stripe-shaped charges built from the documented fixture, each with its own ids, amount,
    currency and payer; the balance transaction settles in the charge's own currency."""
    base = fixture("charge_with_fees.json")
    out = []
    for n in range(count):
        currency, _ = CURRENCIES[n % len(CURRENCIES)]
        amount = 1001 + n * 7
        fee = 30 + n % 11
        charge = copy.deepcopy(base)
        charge.update(
            id=f"ch_bulk{n:06d}",
            payment_intent=f"pi_bulk{n:06d}",
            amount=amount,
            amount_captured=amount,
            amount_refunded=amount // 2 if refunded_every and n % refunded_every == 0 else 0,
            currency=currency,
            created=1_700_000_000 + n,
            customer=f"cus_bulk{n % 50:03d}",
            metadata={"invoice": f"INV-{n}"},
        )
        charge["billing_details"]["email"] = f"payer{n % 50}@example.com"
        txn = charge["balance_transaction"]
        txn.update(
            id=f"txn_bulk{n:06d}",
            amount=amount,
            currency=currency,
            exchange_rate=None,
            fee=fee,
            net=amount - fee,
            source=charge["id"],
        )
        txn["fee_details"] = [{**txn["fee_details"][0], "amount": fee, "currency": currency}]
        out.append(charge)
    return out


def pages(items: list[dict], size: int = 100):
    return [items[start : start + size] for start in range(0, len(items), size)]


def snapshot() -> dict:
    """Every stored column except updated_at (which a refresh sets), per external id."""
    rows = Payment.objects.values()
    return {row["external_id"]: {k: v for k, v in row.items() if k != "updated_at"} for row in rows}


def fees() -> set:
    return set(
        Fee.objects.values_list("payment__external_id", "kind", "description", "amount", "currency")
    )


@pytest.mark.django_db
def test_each_charge_becomes_one_payment_with_exact_money_its_fee_and_its_raw_payload(entity):
    listed = charges(1_234)  # more than one 500-row INSERT and one 1,000-row import batch
    result = stripe_events.stripe_import(pages=pages(listed))

    assert result == {"created": 1_234, "updated": 0}
    assert Payment.objects.count() == 1_234 and Fee.objects.count() == 1_234
    stored = {p.external_id: p for p in Payment.objects.all()}
    fee_by_payment = {f.payment_id: f for f in Fee.objects.all()}
    for charge in listed:
        payment = stored[charge["payment_intent"]]
        currency, places = CURRENCIES[int(charge["id"][-6:]) % len(CURRENCIES)]
        txn = charge["balance_transaction"]
        assert payment.currency == currency.upper()
        assert payment.amount == Decimal(charge["amount"]).scaleb(-places)
        assert payment.fee_amount == Decimal(txn["fee"]).scaleb(-places)
        assert payment.net_amount == Decimal(txn["net"]).scaleb(-places)
        assert payment.raw == charge  # as received, nothing added or dropped
        assert payment.references[0] == {
            "source": "metadata.invoice",
            "value": charge["metadata"]["invoice"],
        }
        fee = fee_by_payment[payment.pk]
        assert (fee.amount, fee.currency) == (payment.fee_amount, payment.currency)
    # one audit entry per import batch, with the counts
    summaries = list(
        AuditEntry.objects.filter(action="stripe.import")
        .order_by("id")
        .values_list("summary", flat=True)
    )
    assert summaries == [
        "stripe: 1000 new, 0 refreshed payment(s)",
        "stripe: 234 new, 0 refreshed payment(s)",
    ]


@pytest.mark.django_db
def test_reimporting_the_same_pages_changes_nothing_but_updated_at(entity):
    listed = charges(600)
    stripe_events.stripe_import(pages=pages(listed))
    before, fees_before = snapshot(), fees()

    again = stripe_events.stripe_import(pages=pages(listed))

    assert again == {"created": 0, "updated": 600}
    assert snapshot() == before
    assert fees() == fees_before and Fee.objects.count() == 600
    assert not AuditEntry.objects.filter(action="payment.status").exists()


@pytest.mark.django_db
def test_a_refresh_updates_what_stripe_reports_and_keeps_what_is_ours(entity, alice):
    acme = Customer.objects.create(entity=entity, code="ACME", name="Acme", currency="GBP")
    other = Customer.objects.create(entity=entity, code="OTHER", name="Other", currency="GBP")
    listed = charges(8)
    for charge in listed[:4]:
        charge["customer"] = "cus_bulk000"
    stripe_events.stripe_import(pages=[listed])
    kept = Payment.objects.get(external_id="pi_bulk000000")
    Payment.objects.filter(pk=kept.pk).update(
        customer=acme, match_state=Payment.MatchState.PROPOSED
    )
    # staff now say this payer is OTHER: fills payments without a customer, never replaces one
    PayerMapping.objects.create(
        source="stripe", payer_key="cus_bulk000", customer=other, confirmed_by=alice
    )
    for charge in listed:
        charge["amount_refunded"] = charge["amount"]
        charge["refunds"] = {"object": "list", "data": []}

    stripe_events.stripe_import(pages=[listed])

    kept.refresh_from_db()
    assert kept.status == Payment.Status.REFUNDED and kept.amount_refunded == kept.amount
    assert kept.customer == acme and kept.match_state == Payment.MatchState.PROPOSED
    assert Payment.objects.filter(status=Payment.Status.REFUNDED).count() == 8
    # the other charges of cus_bulk000 had no customer: now they have the confirmed one
    others = Payment.objects.filter(payer_reference="cus_bulk000").exclude(pk=kept.pk)
    assert others and all(p.customer == other for p in others)
    assert AuditEntry.objects.filter(action="payment.status").count() == 8


def _items(count: int):
    return [stripe_source.normalise_charge(c) for c in charges(count)]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "field, value, error",
    [
        ("external_id", "pi_" + "x" * 98, "external_id must be text of at most 100"),
        ("payer_reference", "cus_" + "x" * 97, "payer_reference must be text of at most 100"),
        ("amount", 12.5, "amount must be a Decimal"),
        ("received_at", None, "received_at must be a timezone-aware datetime"),
        ("status", "paid", "unknown status 'paid'"),
    ],
)
def test_a_bad_item_stops_the_batch_with_an_error_naming_it_and_writes_nothing(
    entity, field, value, error
):
    items = _items(20)
    setattr(items[13], field, value)
    with pytest.raises(ValueError, match=error):
        payments_upsert(items=items, origin="test")
    assert not Payment.objects.exists() and not Fee.objects.exists()
    assert not AuditEntry.objects.exists()


@pytest.mark.django_db
def test_an_amount_finer_than_a_thousandth_is_refused_and_nothing_is_written(entity):
    items = _items(20)
    items[7].amount = Decimal("10.0001")
    with pytest.raises(ValidationError, match="more than 3 decimal places"):
        payments_upsert(items=items, origin="test")
    assert not Payment.objects.exists() and not Fee.objects.exists()


@pytest.mark.django_db
def test_ids_returned_are_the_rows_stored_for_each_external_id(entity):
    items = _items(1_100)
    first = payments_upsert(items=items, origin="test")
    second = payments_upsert(items=list(reversed(items)), origin="test")
    stored = dict(Payment.objects.values_list("external_id", "id"))
    assert first.ids == stored == second.ids
    assert (first.created, first.updated, second.created, second.updated) == (1_100, 0, 0, 1_100)


@pytest.mark.django_db
def test_customers_are_found_by_code_then_confirmed_mapping_then_a_unique_email(entity, alice):
    def customer(code, email=""):
        return Customer.objects.create(
            entity=entity, code=code, name=code, email=email, currency="GBP"
        )

    by_code, by_key, by_mail_key = customer("BYCODE"), customer("BYKEY"), customer("BYMAILKEY")
    unique = customer("UNIQUE", "Only@Example.com")
    customer("TWIN1", "twin@example.com"), customer("TWIN2", "Twin@example.com")
    PayerMapping.objects.create(
        source="stripe", payer_key="cus_mapped", customer=by_key, confirmed_by=alice
    )
    PayerMapping.objects.create(
        source="stripe", payer_key="mapped@example.com", customer=by_mail_key, confirmed_by=alice
    )
    # (customer code hint, payer reference, payer email) -> the customer expected
    cases = [
        (("BYCODE", "cus_mapped", "mapped@example.com"), by_code),
        (("", "cus_mapped", "mapped@example.com"), by_key),
        (("", "cus_other", "Mapped@Example.com"), by_mail_key),
        (("NOSUCHCODE", "", " Only@example.COM"), unique),
        (("", "cus_other", "nobody@example.com"), None),
        (("", "cus_other", "twin@example.com"), None),  # two customers share it: a person decides
    ]
    items = _items(len(cases))
    for item, ((code, key, email), _) in zip(items, cases, strict=True):
        item.customer_code_hint, item.payer_reference, item.payer_email = code, key, email

    payments_upsert(items=items, origin="test")

    found = {p.external_id: p.customer for p in Payment.objects.select_related("customer")}
    assert [found[i.external_id] for i in items] == [expected for _, expected in cases]


@pytest.mark.django_db
def test_a_sqlite_built_with_the_old_999_variable_limit_gets_smaller_statements(entity):
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's variable limit")
    connection.ensure_connection()
    limit = sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER
    before = connection.connection.setlimit(limit, 999)
    try:
        result = payments_upsert(items=_items(600), origin="test")
    finally:
        connection.connection.setlimit(limit, before)
    assert result.created == 600 and Payment.objects.count() == 600 == len(result.ids)
