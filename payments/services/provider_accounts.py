"""A provider account's company and secrets.

Each Stripe or GoCardless account (ProviderAccount) belongs to one AIQ company and names the
environment variables holding its API key, webhook signing secret and (Stripe, optional) API
address; the values are read
here, when used, and are never stored, shown or logged. An account without its own names uses
the installation's (STRIPE_API_KEY, STRIPE_WEBHOOK_SECRETS, GOCARDLESS_ACCESS_TOKEN,
GOCARDLESS_WEBHOOK_SECRETS): a single-company installation configures nothing per account.
Money that came through no account (the default webhook address) belongs to the default
company (ledger/companies.py: default_entity).
"""

import contextlib
import os

from django.conf import settings
from django.db import transaction
from django.views.decorators.debug import sensitive_variables

from ledger.companies import NoDefaultCompany, default_entity
from ledger.models import BankAccount, Entity
from payments.models_provider import ProviderAccount
from payments.sources import stripe_client
from staff.services import audit_log


class AccountSecretMissing(NoDefaultCompany):
    """The account names an environment variable that is not set: a set-up fault a person
    fixes (events wait and are retried, nothing is booked to another company)."""


def account_entity(account: ProviderAccount | None) -> Entity:
    return account.entity if account is not None else default_entity()


@sensitive_variables()
def account_api_key(account: ProviderAccount | None, default: str | None) -> str | None:
    """The account's API key from its environment variable, else the installation's."""
    name = account.api_key_env if account is not None else ""
    if not name:
        return default
    value = os.environ.get(name, "").strip()
    if not value:
        raise AccountSecretMissing(f"{account}: the environment variable {name} is not set")
    return value


@sensitive_variables()
def account_webhook_secrets(account: ProviderAccount | None, default: list[str]) -> list[str]:
    """The signing secrets a delivery to this account's address may carry (several while
    one is rotated); an account without its own uses the installation's."""
    name = account.webhook_secret_env if account is not None else ""
    if not name:
        return list(default)
    secrets = [part.strip() for part in os.environ.get(name, "").split(",") if part.strip()]
    if not secrets:
        raise AccountSecretMissing(f"{account}: the environment variable {name} is not set")
    return secrets


def account_api_base(account: ProviderAccount | None) -> str:
    """The account's Stripe API address from its environment variable; '' (the installation's
    STRIPE_API_BASE) when it names none."""
    name = account.api_base_env if account is not None else ""
    if not name:
        return ""
    value = os.environ.get(name, "").strip()
    if not value:
        raise AccountSecretMissing(f"{account}: the environment variable {name} is not set")
    return value


@contextlib.contextmanager
def stripe_account_calls(account: ProviderAccount | None):
    """Every Stripe call inside the block goes to this account (its key and address; an
    account without its own: the installation's)."""
    key = account_api_key(account, settings.STRIPE_API_KEY)
    with stripe_client.using_key(key, account_api_base(account)):
        yield


def stripe_account_ensure(
    *, entity: Entity, currency: str, clearing: BankAccount, payout: BankAccount, env_prefix: str
) -> tuple[ProviderAccount, bool]:
    """The company's Stripe account in this currency, made if missing (audited): its key,
    address and webhook secret are read from <env_prefix>_API_KEY, _API_BASE and
    _WEBHOOK_SECRET. An existing account is left as it is."""
    with transaction.atomic():
        account, created = ProviderAccount.objects.get_or_create(
            entity=entity,
            source="stripe",
            currency=currency,
            defaults=dict(
                name=f"Stripe {currency} ({entity.name})",
                clearing_bank_account=clearing,
                payout_bank_account=payout,
                fees_gl_account_code="7510",
                statement_narrative="STRIPE PAYMENTS",
                api_key_env=f"{env_prefix}_API_KEY",
                api_base_env=f"{env_prefix}_API_BASE",
                webhook_secret_env=f"{env_prefix}_WEBHOOK_SECRET",
            ),
        )
        if created:
            audit_log(
                actor=None,
                action="provider_account.create",
                obj=account,
                summary=f"{account}: clearing {clearing.bank_account_code}, payouts to "
                f"{payout.bank_account_code}; key, address and webhook secret from "
                f"{env_prefix}_*",
                entity_id=entity.pk,
            )
    return account, created
