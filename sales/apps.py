from django.apps import AppConfig


class SalesConfig(AppConfig):
    name = "sales"
    verbose_name = "Sales invoicing into AIQ"

    def ready(self):
        # the outbox kinds this app owns and what their verdicts do to its invoices
        from sales import deferred_outbox, outbox, outbox_purchases

        outbox.register()
        deferred_outbox.register()
        outbox_purchases.register()
