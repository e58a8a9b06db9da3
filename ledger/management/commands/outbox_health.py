"""Say whether the outbox is making progress (ledger/outbox/health.py); exit status 1 when it is
wedged, for a monitor or a supervisor."""

import sys

from django.core.management.base import BaseCommand

from ledger.outbox.health import outbox_health


class Command(BaseCommand):
    help = "Exit 1 if outbox rows are due and nothing has progressed for OUTBOX_STALL_SECONDS."

    def add_arguments(self, parser):
        parser.add_argument("--stall", type=int, default=None, help="seconds (default: setting)")

    def handle(self, *args, stall=None, **options):
        health = outbox_health(stall)
        (self.stderr if health.wedged else self.stdout).write(str(health))
        if health.wedged:
            sys.exit(1)
