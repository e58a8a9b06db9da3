"""Money in per company: each Stripe account belongs to one company, with its own key and
webhook secret; a payment belongs to the company of the account it arrived through, and is
matched only with that company's invoices."""

import json
from decimal import Decimal

import pytest

from ledger.companies import NoDefaultCompany, default_entity
from payments.models import Payment, ProviderAccount, WebhookEvent
from payments.services import stripe_events
from payments.services.matching_runs import matching_run
from payments.services.provider_accounts import stripe_account_calls
from payments.sources import stripe_client
from payments.sources.stripe_demo import demo_customer_create, demo_payment_create
from tests.companies_support import (
    IE_KEY_ENV,
    IE_SECRET,
    IE_SECRET_ENV,
    group_books,
    stripe_account,
)
from tests.stripe_fixtures import SECRET, event, sign
from tests.test_plans_factories import make_invoice, make_payment


@pytest.fixture
def group(entity, monkeypatch, settings):
    books = group_books(entity)
    settings.STRIPE_WEBHOOK_SECRETS = [SECRET]  # the UK account uses the installation's
    monkeypatch.setenv(IE_KEY_ENV, "sk_test_ireland_localstripe")
    monkeypatch.setenv(IE_SECRET_ENV, IE_SECRET)
    books["uk_account"] = stripe_account(entity, "GBP")
    books["ie_account"] = stripe_account(
        books["ie"], "EUR", key_env=IE_KEY_ENV, secret_env=IE_SECRET_ENV
    )
    return books


def _deliver(client, account, payload: bytes, secret: str, captured):
    with captured(execute=True):
        return client.post(
            f"/webhooks/stripe/{account.pk}/",
            data=payload,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=sign(payload, secret),
        )


@pytest.mark.django_db
def test_a_eur_payment_through_the_irish_account_naming_inv_1001_matches_the_irish_invoice(
    localstripe, group, client, django_capture_on_commit_callbacks
):
    customer = demo_customer_create(email="ap@acme.example", name="Acme Ireland")
    intent = demo_payment_create(
        amount_minor=12000,
        currency="eur",
        customer_id=customer["id"],
        metadata={"invoice": "INV-1001"},
    )
    payload = event("payment_intent.succeeded", {"id": intent["id"], "object": "payment_intent"})

    # the Irish address refuses the UK (installation) secret, and takes the Irish one
    refused = _deliver(
        client, group["ie_account"], payload, SECRET, django_capture_on_commit_callbacks
    )
    assert refused.status_code == 400
    answer = _deliver(
        client, group["ie_account"], payload, IE_SECRET, django_capture_on_commit_callbacks
    )
    assert answer.status_code == 200

    stored = WebhookEvent.objects.get(event_id=event_id_of(payload))
    assert stored.provider_account == group["ie_account"]
    assert stored.state == WebhookEvent.State.PROCESSED
    payment = Payment.objects.get(external_id=intent["id"])
    assert (payment.entity, payment.currency, payment.amount) == (
        group["ie"],
        "EUR",
        Decimal("120.00"),
    )
    assert payment.customer == group["ie_customer"]

    matching_run(dry_run=False)
    payment.refresh_from_db()
    proposal = payment.proposals.order_by("rank").first()
    assert proposal is not None, payment.match_notes
    assert [int(line["invoice_id"]) for line in proposal.lines] == [group["ie_invoice"].pk]
    assert "currencies must match" not in str(payment.match_notes)


@pytest.mark.django_db
def test_a_reference_to_another_group_companys_invoice_is_explained_not_proposed(group):
    # money into the UK company naming an invoice only the Irish company has
    make_invoice(group["ie_customer"], "120.00", number="INV-2002")
    payment = make_payment(group["uk"], "120.00", currency="EUR", refs=["INV-2002"])

    matching_run(dry_run=False)
    payment.refresh_from_db()
    assert not payment.proposals.exists()
    notes = " ".join(payment.match_notes.get("notes", []))
    assert "INV-2002, which belongs to Demo Trading Ireland" in notes
    assert "arrived for Demo Ltd" in notes


@pytest.mark.django_db
def test_the_default_company_is_the_only_one_or_payments_entity_never_a_guess(entity, settings):
    settings.PAYMENTS_ENTITY = ""
    assert default_entity() == entity
    group_books(entity)
    with pytest.raises(NoDefaultCompany, match="Several AIQ companies"):
        default_entity()
    settings.PAYMENTS_ENTITY = "demo-ie"
    assert default_entity().company_id == "demo-ie"
    settings.PAYMENTS_ENTITY = "nowhere"
    with pytest.raises(NoDefaultCompany, match="not set up here"):
        default_entity()


@pytest.mark.django_db
def test_an_account_whose_secret_variable_is_unset_refuses_deliveries(
    group, client, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.delenv(IE_SECRET_ENV)
    payload = event("payment_intent.succeeded", {"id": "pi_x", "object": "payment_intent"})
    answer = _deliver(
        client, group["ie_account"], payload, IE_SECRET, django_capture_on_commit_callbacks
    )
    assert answer.status_code == 400
    assert IE_SECRET not in answer.content.decode()
    assert not WebhookEvent.objects.exists()
    # an address of no account is refused too
    other = client.post(
        "/webhooks/stripe/999999/",
        data=payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign(payload, SECRET),
    )
    assert other.status_code == 400
    # the import and catch-up go through each account's key (the UK one: the installation's)
    assert stripe_events.stripe_accounts() == [group["uk_account"], group["ie_account"]]


@pytest.mark.django_db
def test_a_payment_made_in_the_irish_stripe_account_arrives_in_the_irish_company_only(
    localstripe, localstripe_second, group, client, monkeypatch, django_capture_on_commit_callbacks
):
    """Each company's Stripe account is its own (the demo runs a localstripe for each): the
    Irish account names its own API address, so a payment made there is read from there and
    booked in the Irish company; the UK account (the installation's address) never sees it."""
    monkeypatch.setenv("STRIPE_IE_API_BASE", localstripe_second)
    ProviderAccount.objects.filter(pk=group["ie_account"].pk).update(
        api_base_env="STRIPE_IE_API_BASE"
    )
    ie_account = ProviderAccount.objects.get(pk=group["ie_account"].pk)
    with stripe_account_calls(ie_account):
        customer = demo_customer_create(email="ap@acme.example", name="Acme Ireland")
        intent = demo_payment_create(
            amount_minor=12000, currency="eur", customer_id=customer["id"],
            metadata={"invoice": "INV-1001"},
        )  # fmt: skip
    with pytest.raises(stripe_client.StripePermanent):  # not in the UK account
        stripe_client.payment_intent_retrieve(intent["id"])
    data = {"id": intent["id"], "object": "payment_intent"}

    # an event of it sent to the UK account's address: not found there, nothing booked
    uk = event("payment_intent.succeeded", data)
    answer = _deliver(client, group["uk_account"], uk, SECRET, django_capture_on_commit_callbacks)
    assert answer.status_code == 200
    assert WebhookEvent.objects.get().state != WebhookEvent.State.PROCESSED
    assert not Payment.objects.exists()

    payload = event("payment_intent.succeeded", data)

    answer = _deliver(client, ie_account, payload, IE_SECRET, django_capture_on_commit_callbacks)
    assert answer.status_code == 200
    stored = WebhookEvent.objects.get(provider_account=ie_account)
    assert stored.state == WebhookEvent.State.PROCESSED
    [payment] = Payment.objects.all()
    assert (payment.external_id, payment.entity, payment.currency, payment.amount) == (
        intent["id"], group["ie"], "EUR", Decimal("120.00"),
    )  # fmt: skip
    matching_run(dry_run=False)
    proposal = payment.proposals.order_by("rank").first()
    assert [int(line["invoice_id"]) for line in proposal.lines] == [group["ie_invoice"].pk]
    assert not Payment.objects.filter(entity=group["uk"]).exists()


def event_id_of(payload: bytes) -> str:
    return json.loads(payload)["id"]
