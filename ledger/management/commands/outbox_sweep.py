"""Run the outbox sweeper once (what the schedule runs every minute)."""

from django.core.management.base import BaseCommand

from ledger.outbox.tasks import sweep


class Command(BaseCommand):
    help = "Park commands whose dependency died and wake drains for due or lease-expired rows."

    def handle(self, *args, **options):
        result = sweep()
        self.stdout.write(", ".join(f"{k} {v}" for k, v in result.items()))
