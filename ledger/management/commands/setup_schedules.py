"""Create or update the django-q2 schedules (idempotent; scripts/run.sh runs it at start)."""

from datetime import datetime, time, timedelta

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone
from django_q.models import Schedule

DAILY = 24 * 60

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
    # Daily: each provider account's clearing balance in AIQ beside the provider's (kept,
    # charted on the provider books screen; a difference is listed there).
    "clearing-check": ("payments.tasks.clearing_checks_task", 24 * 60),
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


def nightly_runs(now: datetime) -> dict[str, datetime]:
    """When each daily schedule runs next: NIGHTLY_HOUR local time, ten minutes apart in the
    order of SCHEDULES (the drift check first). A daily schedule left to run 24 hours after it
    was first created would read back a week of writes in the middle of the working day."""
    today = timezone.localtime(now).date()
    daily = [name for name, (_func, minutes) in SCHEDULES.items() if minutes == DAILY]
    runs = {}
    for n, name in enumerate(daily):
        for day in (today, today + timedelta(days=1)):
            # naive arithmetic keeps local wall time, also on the nights the clocks change
            wall = datetime.combine(day, time(settings.NIGHTLY_HOUR)) + timedelta(minutes=10 * n)
            runs[name] = timezone.make_aware(wall)
            if runs[name] > now:
                break
    return runs


def _at_night(run: datetime | None, planned: datetime) -> bool:
    """`run` is at the planned local time of day (django-q2 keeps it there, day after day)."""
    return run is not None and timezone.localtime(run).time() == timezone.localtime(planned).time()


class Command(BaseCommand):
    help = "Create/update the outbox sweeper, AIQ pull and Stripe catch-up schedules."

    @transaction.atomic  # each schedule change and its audit entry commit together
    def handle(self, *args, **options):
        nightly = nightly_runs(timezone.now())
        for name, (func, minutes) in SCHEDULES.items():
            schedule, created = Schedule.objects.update_or_create(
                name=name,
                defaults={
                    "func": func,
                    "schedule_type": Schedule.MINUTES,
                    "minutes": minutes or settings.AIQ_SYNC_MINUTES,
                    "repeats": -1,
                },
            )
            if name in nightly and not _at_night(schedule.next_run, nightly[name]):
                schedule.next_run = nightly[name]  # from then on every 24 hours
                schedule.save(update_fields=["next_run"])
            self.stdout.write(f"{'created' if created else 'updated'} schedule {name}")
