"""Two group companies for the several-companies tests: the UK company (the `entity` fixture,
GBP) and its Irish sister (EUR), each with a bank account, a Stripe account of its own (keys
and webhook secret by environment variable name) and an open INV-1001 of the same number."""

from decimal import Decimal

from ledger.models import BankAccount, Customer, Entity, EntityGrant
from payments.models_provider import ProviderAccount
from tests.test_plans_factories import make_invoice

IE_KEY_ENV, IE_SECRET_ENV = "STRIPE_IE_API_KEY", "STRIPE_IE_WEBHOOK_SECRET"
IE_SECRET = "whsec_ireland_only_0123456789"


def ireland() -> Entity:
    return Entity.objects.create(
        name="Demo Trading Ireland",
        company_id="demo-ie",
        region="sandbox",
        base_currency="EUR",
        credentials_key="DEMO",
    )


def stripe_account(
    entity: Entity, currency: str, *, key_env="", secret_env="", source="stripe"
) -> ProviderAccount:
    """A provider account (Stripe unless `source` says GoCardless) with its clearing and
    payout bank accounts in `entity`."""
    label, tail = ("Stripe", "") if source == "stripe" else ("GoCardless", "G")
    clearing = BankAccount.objects.create(
        entity=entity,
        bank_code=f"11{entity.pk}{tail}",
        bank_account_code=f"{label.upper()}{currency}",
        name=f"{label} clearing {currency}",
        currency=currency,
    )
    bank = BankAccount.objects.create(
        entity=entity,
        bank_code=f"12{entity.pk}{tail}",
        bank_account_code=f"BANK{currency}",
        name=f"Bank {currency}",
        currency=currency,
    )
    entity.default_bank_account = bank
    entity.save(update_fields=["default_bank_account"])
    return ProviderAccount.objects.create(
        entity=entity,
        source=source,
        currency=currency,
        name=f"{label} {currency} ({entity.name})",
        clearing_bank_account=clearing,
        payout_bank_account=bank,
        fees_gl_account_code="7700",
        statement_narrative="STRIPE",
        api_key_env=key_env,
        webhook_secret_env=secret_env,
    )


def group_books(uk: Entity) -> dict:
    """Both companies' customers and their INV-1001 (UK: GBP 120.00, Ireland: EUR 120.00)."""
    ie = ireland()
    uk_customer = Customer.objects.create(
        entity=uk, code="ACME", name="Acme Ltd", email="ap@acme.example", currency="GBP"
    )
    ie_customer = Customer.objects.create(
        entity=ie, code="ACME", name="Acme Ireland", email="ap@acme.example", currency="EUR"
    )
    return {
        "uk": uk,
        "ie": ie,
        "uk_customer": uk_customer,
        "ie_customer": ie_customer,
        "uk_invoice": make_invoice(uk_customer, Decimal("120.00"), number="INV-1001"),
        "ie_invoice": make_invoice(ie_customer, Decimal("120.00"), number="INV-1001"),
    }


def grant(user, entity: Entity) -> EntityGrant:
    return EntityGrant.objects.create(user=user, entity=entity)
