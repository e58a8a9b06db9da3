"""Pull customers, invoices, receipts, allocations ... from AIQ into the mirror, now."""

from django.core.management.base import BaseCommand, CommandError

from ledger.models import Entity
from ledger.sync.services import SyncAlreadyRunning, sync_claim, sync_run


class Command(BaseCommand):
    help = "Pull from AIQ into the mirror for every entity (or --entity COMPANY_ID), in-process."

    def add_arguments(self, parser):
        parser.add_argument("--entity", help="AIQ company id of one entity")

    def handle(self, *args, entity=None, **options):
        entities = Entity.objects.all()
        if entity:
            entities = entities.filter(company_id=entity)
            if not entities.exists():
                raise CommandError(f"No entity with company id {entity!r}.")
        failed = False
        for row in entities:
            try:
                sync_claim(entity=row)
            except SyncAlreadyRunning as exc:
                self.stderr.write(str(exc))
                failed = True
                continue
            counts = sync_run(entity=row)
            row.refresh_from_db()
            state = row.syncstate_set.get(object_type="all")
            if state.last_error:
                failed = True
                self.stderr.write(f"{row.name}: {state.last_error}")
            self.stdout.write(f"{row.name}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        if failed:
            raise CommandError("The pull from AIQ did not complete; see the messages above.")
