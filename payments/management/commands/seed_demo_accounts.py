"""Give each demo company its own Stripe account (development only; scripts/run.sh).

After `aiq_sync` has pulled the companies' bank accounts: Demo Trading Ltd's Stripe GBP
account clears through STRIPE-GBP and pays out to BANK-GBP, Demo Trading Ireland's Stripe EUR
account clears through STRIPE-EUR-IE and pays out to BANK-EUR-IE (the sandbox's
`demo-clearing` adds the two clearing accounts). Each account reads its key, API address and
webhook secret from STRIPE_UK_* / STRIPE_IE_* (set by scripts/services/localstripe.sh: one
localstripe per company); a company whose variables are not set gets no account. With
--webhooks URL each account's localstripe is told to deliver to that account's own address.
"""

import os
import urllib.parse
import urllib.request

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.urls import reverse

from ledger.models import BankAccount, Entity
from payments.services.provider_accounts import (
    account_api_base,
    account_webhook_secrets,
    stripe_account_ensure,
)
from staff.services import audit_log

# (AIQ company, currency, clearing bank, payout bank, environment prefix)
DEMO_STRIPE_ACCOUNTS = (
    ("demo", "GBP", "STRIPE-GBP", "BANK-GBP", "STRIPE_UK"),
    ("demo-ie", "EUR", "STRIPE-EUR-IE", "BANK-EUR-IE", "STRIPE_IE"),
)


class Command(BaseCommand):
    help = "Create each demo company's Stripe account (development only)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--webhooks",
            metavar="URL",
            default="",
            help="the web app's address: each account's localstripe delivers to its own path",
        )

    def handle(self, *args, webhooks="", **options):
        if settings.PRODUCTION:
            raise CommandError("Demo accounts are never created in production mode.")
        for company_id, currency, clearing_code, payout_code, prefix in DEMO_STRIPE_ACCOUNTS:
            entity = Entity.objects.filter(company_id=company_id).first()
            if entity is None or not os.environ.get(f"{prefix}_API_KEY"):
                self.stdout.write(f"{company_id}: no Stripe account ({prefix}_* not set)")
                continue
            banks = {
                bank.bank_account_code: bank
                for bank in BankAccount.objects.filter(
                    entity=entity, bank_account_code__in=[clearing_code, payout_code]
                )
            }
            if len(banks) < 2:
                self.stdout.write(
                    f"{entity.name}: bank accounts {clearing_code} and {payout_code} are not "
                    "pulled from AIQ yet; no Stripe account"
                )
                continue
            self._default_bank(entity, banks[payout_code])
            account, created = stripe_account_ensure(
                entity=entity,
                currency=currency,
                clearing=banks[clearing_code],
                payout=banks[payout_code],
                env_prefix=prefix,
            )
            self.stdout.write(f"{account}: {'created' if created else 'exists'}")
            if webhooks:
                self._webhook(account, webhooks.rstrip("/"))

    def _default_bank(self, entity, bank) -> None:
        """The bank the company's other money lands in (two in its currency: the pull left it
        for a person to choose)."""
        if entity.default_bank_account_id is not None:
            return
        with transaction.atomic():
            entity.default_bank_account = bank
            entity.save(update_fields=["default_bank_account"])
            audit_log(
                actor=None,
                action="entity.change",
                obj=entity,
                summary=f"default bank account {bank.bank_account_code} (demo)",
                before={"default_bank_account": None},
                after={"default_bank_account": bank.bank_account_code},
                entity_id=entity.pk,
            )

    def _webhook(self, account, web: str) -> None:
        base = account_api_base(account) or settings.STRIPE_API_BASE
        address = web + reverse("webhook-stripe-account", args=[account.pk])
        data = urllib.parse.urlencode(
            {"url": address, "secret": account_webhook_secrets(account, [])[0]}
        ).encode()
        request = urllib.request.Request(f"{base}/_config/webhooks/aiqrecon", data=data)
        try:
            with urllib.request.urlopen(request, timeout=10):  # noqa: S310 (localstripe)
                pass
        except OSError as error:
            self.stderr.write(f"{account}: localstripe at {base} did not answer ({error})")
            return
        self.stdout.write(f"  {base} delivers its webhooks to {address}")
