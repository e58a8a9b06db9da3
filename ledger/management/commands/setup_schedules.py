"""Create or update the django-q2 schedules (idempotent; scripts/run.sh runs it at start)."""

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django_q.models import Schedule

SCHEDULES = {
    # A lost or never-sent wake only delays a command by at most this long.
    "outbox-sweep": ("ledger.outbox.tasks.sweep", 1),
    "aiq-sync": ("ledger.sync.tasks.scheduled", None),
    # Re-match unmatched payments when payments or open invoices changed since the last run.
    "auto-match": ("payments.tasks.auto_match_changed_task", 5),
    # Stripe events we stored but could not process yet (object not fetchable): retried.
    "stripe-events-retry": ("payments.tasks.stripe_events_sweep_task", 5),
    # Nightly: AIQ compared with what we wrote in the last AIQ_DRIFT_DAYS (duplicates, losses).
    "aiq-drift-check": ("ledger.outbox.tasks.drift_check", 24 * 60),
    # Nightly catch-up: events missed while the webhook endpoint was down.
    "stripe-catch-up": ("payments.tasks.stripe_catch_up_task", 24 * 60),
    # Nightly: charges made without a PaymentIntent send no payment_intent.* event; the
    # incremental charge import (cursor on `created`) finds them.
    "stripe-import": ("payments.tasks.stripe_import_task", 24 * 60),
    # GoCardless events stored but not processed yet (GoCardless down, lost task): retried.
    "gocardless-events-retry": ("payments.tasks.gocardless_events_sweep_task", 5),
    # Nightly: GoCardless events missed while the webhook endpoint was down, and payments.
    "gocardless-catch-up": ("payments.tasks.gocardless_catch_up_task", 24 * 60),
    # Nightly where SmartDebit's API is configured: collection reports and Bacs reports.
    "smartdebit-pull": ("payments.tasks.smartdebit_pull_task", 24 * 60),
    # Hourly: API idempotency keys past API_IDEMPOTENCY_HOURS (never under 24) are forgotten.
    "api-idempotency-purge": ("api.tasks.idempotency_keys_purge_task", 60),
    # Webhook deliveries whose wake was lost, and retries whose backoff ran out.
    "api-webhooks": ("api.tasks.webhooks_deliver_task", 1),
    # Deferred revenue: each monthly release journal queued once its date has come (a release
    # is dated the last day of its month; an hour late at most).
    "deferred-revenue": ("sales.tasks.deferred_releases_task", 60),
}


class Command(BaseCommand):
    help = "Create/update the outbox sweeper, AIQ pull and Stripe catch-up schedules."

    @transaction.atomic  # each schedule change and its audit entry commit together
    def handle(self, *args, **options):
        for name, (func, minutes) in SCHEDULES.items():
            _, created = Schedule.objects.update_or_create(
                name=name,
                defaults={
                    "func": func,
                    "schedule_type": Schedule.MINUTES,
                    "minutes": minutes or settings.AIQ_SYNC_MINUTES,
                    "repeats": -1,
                },
            )
            self.stdout.write(f"{'created' if created else 'updated'} schedule {name}")
