from django.apps import AppConfig


class SalesConfig(AppConfig):
    name = "sales"
    verbose_name = "Sales invoicing into AIQ"

    def ready(self):
        # the outbox kinds this app owns and what their verdicts do to its invoices
        from payments.services.credit_notes import invoice_line_source_register
        from payments.services.linkers import payment_linker_register
        from sales import deferred_outbox, outbox, outbox_purchases
        from sales.services import stripe_billing
        from sales.services.after_posting import mirror_lines_of
        from sales.services.paid_orders import paid_orders_link, paid_orders_settled
        from sales.signals import sales_invoices_settled

        outbox.register()
        deferred_outbox.register()
        outbox_purchases.register()
        # Stripe Billing's invoices, credit notes and customers, through payments' webhook
        stripe_billing.register()
        # the lines of the invoices it posted, for payments' credit notes and refunds to copy
        invoice_line_source_register(mirror_lines_of)
        # an already-paid order's money, when it arrives, is linked to the receipt AIQ posted
        # with the order, never matched again
        payment_linker_register(paid_orders_link)
        sales_invoices_settled.connect(paid_orders_settled, dispatch_uid="sales.paid_orders")
