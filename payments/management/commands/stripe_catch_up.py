"""Nightly: store and process Stripe events missed while the webhook endpoint was down."""

from django.core.management.base import BaseCommand, CommandError

from payments.services.payments import PaymentsNotConfigured
from payments.services.stripe_events import stripe_catch_up_all, stripe_events_retry_due
from payments.sources.stripe_client import StripeError


class Command(BaseCommand):
    help = "List Stripe events since the last one seen, store the missing ones, process them."

    def handle(self, *args, **options):
        try:
            result = stripe_catch_up_all()
            retried = stripe_events_retry_due()
        except (StripeError, PaymentsNotConfigured) as error:
            raise CommandError(str(error)) from None
        self.stdout.write(
            f"{result['stored']} missed event(s) stored, {result['processed']} processed, "
            f"{retried} earlier event(s) retried."
        )
