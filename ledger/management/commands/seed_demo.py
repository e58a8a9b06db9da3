"""Register the AIQ sandbox's demo companies as entities (development only).

The books themselves come from AIQ: `aiq_sync` pulls them into the mirror afterwards.
"""

from django.conf import settings
from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from ledger.entities import entity_ensure
from ledger.models import EntityGrant
from staff.services import audit_log

DEMO_ENTITIES = [
    # the sandbox seeds these companies (sandbox/seed.py); both read AIQ_DEMO_* credentials
    dict(name="Demo Trading Ltd", company_id="demo", region="sandbox", api_version="1.1",
         base_currency="GBP", credentials_key="DEMO"),
    dict(name="Demo Trading Ireland", company_id="demo-ie", region="sandbox", api_version="2.0",
         base_currency="EUR", credentials_key="DEMO"),
]  # fmt: skip


# demo logins that work for one company only (staff/management/commands/create_demo_users.py)
DEMO_GRANTS = {"demo-ie": ("clerk-ie",)}


class Command(BaseCommand):
    help = "Create the demo entities that point at the local AIQ sandbox (development only)."

    def handle(self, *args, **options):
        if settings.PRODUCTION:
            raise CommandError("Demo entities are never created in production mode.")
        for fields in DEMO_ENTITIES:
            entity, created = entity_ensure(**fields)
            state = "created" if created else "exists"
            self.stdout.write(f"Entity {entity.company_id} ({entity.name}): {state}")
            for username in DEMO_GRANTS.get(entity.company_id, ()):
                self._grant(username, entity)

    def _grant(self, username, entity) -> None:
        """A demo login that works for this company only (ledger/companies.py)."""
        user = User.objects.filter(username=username).first()
        if user is None:
            return
        with transaction.atomic():
            grant, created = EntityGrant.objects.get_or_create(user=user, entity=entity)
            if created:
                audit_log(
                    actor=None,
                    action="entity_grant.create",
                    obj=grant,
                    summary=f"{username} works for {entity.name} only (demo)",
                    entity_id=entity.pk,
                )
        self.stdout.write(f"  {username} sees {entity.name} only")
