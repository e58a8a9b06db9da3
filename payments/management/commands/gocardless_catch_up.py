"""Nightly, or a backfill with --since: GoCardless events and payments missed by the webhook."""

from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError

from payments.services.payments import PaymentsNotConfigured
from payments.sources.gocardless_source import (
    GoCardlessUnavailable,
    gocardless_catch_up_all,
    gocardless_events_retry_due,
)


class Command(BaseCommand):
    help = (
        "For each GoCardless account (its own access token), list events (and payments) since the "
        "last one seen, or since --since "
        "YYYY-MM-DD for a backfill; store the missing ones, process them, retry earlier ones."
    )

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
            result = gocardless_catch_up_all(since=start)
            retried = gocardless_events_retry_due()
        except (GoCardlessUnavailable, PaymentsNotConfigured) as error:
            raise CommandError(str(error)) from None
        if result["problems"] and result["accounts"] == len(result["problems"]):
            raise CommandError("; ".join(result["problems"]))
        for problem in result["problems"]:
            self.stderr.write(f"Not caught up: {problem}")
        self.stdout.write(
            f"{result['stored']} missed event(s) stored, {result['processed']} processed; "
            f"{result['created']} new, {result['updated']} refreshed payment(s); "
            f"{retried} earlier event(s) retried."
        )
