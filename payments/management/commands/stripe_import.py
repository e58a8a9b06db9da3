"""Incremental import of Stripe charges (with fees, intents and customers) into Payments."""

from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError

from payments.services.payments import PaymentsNotConfigured
from payments.services.stripe_events import stripe_import_all
from payments.sources.stripe_client import StripeError


class Command(BaseCommand):
    help = "Import Stripe charges created since the last run (or --since YYYY-MM-DD)."

    def add_arguments(self, parser):
        parser.add_argument("--since", help="start date (UTC), e.g. 2024-01-01; default: cursor")

    def handle(self, *args, since=None, **options):
        start = None
        if since:
            try:
                start = datetime.strptime(since, "%Y-%m-%d").replace(tzinfo=UTC)
            except ValueError:
                raise CommandError("--since must look like 2024-01-31") from None
        try:
            result = stripe_import_all(since=start)
        except (StripeError, PaymentsNotConfigured) as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"{result['created']} new, {result['updated']} refreshed payment(s).")
