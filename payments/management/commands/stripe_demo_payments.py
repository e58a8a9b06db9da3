"""Create demo payments in localstripe: some naming an invoice, some only a customer email,
some nothing. Webhooks then bring them into the app like real Stripe payments.

With Stripe accounts of their own (seed_demo_accounts: one localstripe per demo company), each
account gets its own company's payments, made with its key at its address, so they arrive
through that account's webhook in that company only."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from core.stripe_money import stripe_to_minor
from ledger.models import Invoice
from payments.models import Payment, ProviderAccount
from payments.services.provider_accounts import AccountSecretMissing, stripe_account_calls
from payments.sources import stripe_client
from payments.sources.stripe_demo import demo_customer_create, demo_payment_create


class Command(BaseCommand):
    help = "Create PaymentIntents in localstripe for demo customers (never against real Stripe)."

    def add_arguments(self, parser):
        parser.add_argument(
            "invoices",
            nargs="*",
            help="Invoice numbers to pay (default: open invoices in the "
            "ledger mirror, else INV-1001..INV-1003)",
        )
        parser.add_argument("--count", type=int, default=3, help="payments of each kind")
        parser.add_argument(
            "--if-empty", action="store_true", help="do nothing if Stripe payments exist"
        )

    def handle(self, *args, invoices, count, if_empty=False, **options):
        if if_empty and Payment.objects.filter(source="stripe").exists():
            self.stdout.write("Stripe payments exist already; no demo payments created.")
            return
        accounts = list(
            ProviderAccount.objects.filter(source="stripe")
            .exclude(api_key_env="", api_base_env="")
            .select_related("entity")
            .order_by("id")
        )
        for account in accounts or [None]:
            try:
                with stripe_account_calls(account):
                    made = self._create(account, invoices, count)
            except AccountSecretMissing as error:
                raise CommandError(str(error)) from None
            where = f" for {account.entity.name}" if account else ""
            self.stdout.write(f"Created {made} demo payment(s){where} in {self.base}.")

    def _create(self, account, invoices, count) -> int:
        self.base = stripe_client.api_base()
        if stripe_client.is_real_stripe() or settings.STRIPE_API_KEY.startswith("sk_live"):
            raise CommandError("Refusing to create demo payments outside localstripe.")
        targets = self._targets(invoices, count, account)
        made = 0
        try:
            for number, amount, currency, email, name in targets:
                customer = demo_customer_create(email=email, name=name)
                demo_payment_create(
                    amount_minor=stripe_to_minor(amount, currency),
                    currency=currency.lower(),
                    customer_id=customer["id"],
                    metadata={"invoice": number},
                )
                made += 1
            currency = account.currency.lower() if account else "gbp"
            for n in range(count):
                customer = demo_customer_create(
                    email=f"payer{n + 1}@example.com", name=f"Demo payer {n + 1}"
                )
                demo_payment_create(
                    amount_minor=10000 + 2500 * n, currency=currency, customer_id=customer["id"]
                )
                made += 1
                demo_payment_create(amount_minor=4200 + 100 * n, currency=currency)
                made += 1
        except stripe_client.StripeError as error:
            raise CommandError(f"localstripe at {self.base}: {error}") from None
        return made

    def _targets(self, numbers, count, account):
        from decimal import Decimal

        open_invoices = Invoice.objects.filter(outstanding_amount__gt=0).select_related("customer")
        if account is not None:  # the company's own invoices, in the account's currency
            open_invoices = open_invoices.filter(
                entity_id=account.entity_id, currency=account.currency
            )
        if numbers:
            open_invoices = open_invoices.filter(invoice_number__in=numbers)
        rows = [
            (i.invoice_number, i.outstanding_amount, i.currency, i.customer.email, i.customer.name)
            for i in open_invoices.order_by("invoice_number")[: max(count, len(numbers))]
        ]
        if rows:
            return rows
        numbers = numbers or [f"INV-{1001 + n}" for n in range(count)]
        currency = account.currency if account is not None else "GBP"
        return [(n, Decimal("120.00"), currency, "", "") for n in numbers]
