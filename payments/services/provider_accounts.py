"""A provider account's company and secrets.

Each Stripe or GoCardless account (ProviderAccount) belongs to one AIQ company and names the
environment variables holding its API key and webhook signing secret; the values are read
here, when used, and are never stored, shown or logged. An account without its own names uses
the installation's (STRIPE_API_KEY, STRIPE_WEBHOOK_SECRETS, GOCARDLESS_ACCESS_TOKEN,
GOCARDLESS_WEBHOOK_SECRETS): a single-company installation configures nothing per account.
Money that came through no account (the default webhook address) belongs to the default
company (ledger/companies.py: default_entity).
"""

import os

from django.views.decorators.debug import sensitive_variables

from ledger.companies import NoDefaultCompany, default_entity
from ledger.models import Entity
from payments.models_provider import ProviderAccount


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
