"""Compare AIQ with what the product wrote in the last N days (scheduled nightly)."""

from django.conf import settings
from django.core.management.base import BaseCommand

from ledger.aiq.client import AiqClient
from ledger.models import Entity
from ledger.outbox.drift import drift_check


class Command(BaseCommand):
    help = "Read back every write confirmed in the last N days; flag duplicates and missing ones."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=settings.AIQ_DRIFT_DAYS)

    def handle(self, *args, days, **options):
        for entity in Entity.objects.order_by("pk"):
            counts = drift_check(entity=entity, days=days, client=AiqClient.for_entity(entity))
            self.stdout.write(
                f"{entity.name}: {counts['checked']} checked, {counts['duplicates']} duplicated, "
                f"{counts['missing']} missing, {counts['unreadable']} not readable"
            )
