"""Send due outbox commands to AIQ from this process (no queue): for operators and tests."""

from django.conf import settings
from django.core.management.base import BaseCommand

from ledger.outbox.runner import drain


class Command(BaseCommand):
    help = "Claim and send due outbox commands until none are due or --seconds have passed."

    def add_arguments(self, parser):
        parser.add_argument("--seconds", type=float, default=settings.OUTBOX_DRAIN_SECONDS)
        parser.add_argument("--batch", type=int, default=settings.OUTBOX_BATCH_SIZE)

    def handle(self, *args, seconds, batch, **options):
        counts = drain(budget_seconds=seconds, batch_size=batch)
        self.stdout.write(", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "nothing due")
