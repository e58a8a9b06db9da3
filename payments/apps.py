import importlib

from django.apps import AppConfig, apps
from django.db.models.signals import post_migrate


def ensure_default_rules(sender, **kwargs):
    """Migration 0003 creates the default matching rules; this restores them after a flush
    (post_migrate runs again, data migrations do not). Existing rules are never touched."""
    migration = importlib.import_module("payments.migrations.0003_default_match_rules")
    migration.create_rules(apps, None)


class PaymentsConfig(AppConfig):
    name = "payments"
    verbose_name = "Payments and matching"

    def ready(self):
        post_migrate.connect(
            ensure_default_rules, sender=self, dispatch_uid="payments.ensure_default_rules"
        )
        # later allocations and other receipts follow their AIQ commands
        from ledger.outbox.executors import ORIGIN_HOOKS
        from payments.services import contact_allocations, other_receipts
        from payments.services.later import later_confirmed, later_failed

        for origin in (contact_allocations.ORIGIN, other_receipts.ORIGIN):
            ORIGIN_HOOKS[origin] = (later_confirmed, later_failed)
