"""Register the AIQ sandbox's demo companies as entities (development only).

The books themselves come from AIQ: `aiq_sync` pulls them into the mirror afterwards.
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ledger.entities import entity_ensure

DEMO_ENTITIES = [
    # the sandbox seeds these companies (sandbox/seed.py); both read AIQ_DEMO_* credentials
    dict(name="Demo Trading Ltd", company_id="demo", region="sandbox", api_version="1.1",
         base_currency="GBP", credentials_key="DEMO"),
    dict(name="Demo Trading Ireland", company_id="demo-ie", region="sandbox", api_version="2.0",
         base_currency="EUR", credentials_key="DEMO"),
]  # fmt: skip


class Command(BaseCommand):
    help = "Create the demo entities that point at the local AIQ sandbox (development only)."

    def handle(self, *args, **options):
        if settings.PRODUCTION:
            raise CommandError("Demo entities are never created in production mode.")
        for fields in DEMO_ENTITIES:
            entity, created = entity_ensure(**fields)
            state = "created" if created else "exists"
            self.stdout.write(f"Entity {entity.company_id} ({entity.name}): {state}")
