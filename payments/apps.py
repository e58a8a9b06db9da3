import importlib

from django.apps import AppConfig, apps
from django.db.models.signals import post_migrate


def ensure_default_rules(sender, **kwargs):
    """Migrations 0003, 0021 and 0035 make the default matching rules; this restores them after a
    flush (post_migrate runs again, data migrations do not). A table that has rules is never
    touched: an admin's configuration (a rule deleted on purpose included) stays as it is."""
    if apps.get_model("payments", "MatchRule").objects.exists():
        return
    for name, step in (
        ("0003_default_match_rules", "create_rules"),
        ("0021_settlement_terms_rule_monitor", "add_rules"),
        ("0035_calibrated_auto_approval", "switch_on"),
    ):
        getattr(importlib.import_module(f"payments.migrations.{name}"), step)(apps, None)


class PaymentsConfig(AppConfig):
    name = "payments"
    verbose_name = "Payments and matching"

    def ready(self):
        post_migrate.connect(
            ensure_default_rules, sender=self, dispatch_uid="payments.ensure_default_rules"
        )
        # what payments' rows do when the AIQ commands they caused reach a verdict
        # (models and services load only once the app registry is ready, hence here)
        from ledger.views.invoices import invoice_page_extend
        from payments import checks  # noqa: F401 - registers the provider books checks
        from payments.selectors import invoice_plan_lines
        from payments.services import (
            outbox_origins,
            provider_books,
            provider_currency,
            provider_disputes,
            stripe_refund_step,
        )
        from payments.services.later import later_outbox_register

        outbox_origins.register()
        provider_books.register()
        provider_currency.register()
        provider_disputes.register()
        later_outbox_register()
        stripe_refund_step.register()
        invoice_page_extend(lambda invoice: {"plan_lines": invoice_plan_lines(invoice)})
