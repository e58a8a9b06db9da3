"""Which state changes make webhook events (connected in ApiConfig.ready(); payments and sales
know nothing of the API). post_init remembers the state a row was loaded with; post_save,
inside the transaction of the change, records an event when the state moved (api/webhooks.py).
Sales invoices are settled by bulk updates (no post_save): sales sends sales_invoices_settled."""

from django.db.models.signals import post_init, post_save

from api import representations as shape
from api.models import WebhookSubscription
from api.webhooks import EVENT_TYPES, webhook_event_record, webhook_subscriptions_active
from core.prepared import prepared
from payments.models import AllocationPlan, ContactAllocation, OtherReceipt, Payment, Refund
from sales.models import SalesInvoice
from sales.signals import sales_invoices_settled

_SEEN = "_webhook_state"


def _remember(sender, instance, **kwargs):
    instance.__dict__[_SEEN] = instance.__dict__.get("state")


def _plan(plan: AllocationPlan):
    payment = (
        Payment.objects.select_related("customer", "receipt__bank_account", "bank_account")
        .prefetch_related("plans__lines", "plans__customer")
        .get(pk=plan.payment_id)
    )
    return payment.entity_id, f"pay_{payment.pk}", shape.contact_payment(payment)


def _refund(refund: Refund):
    row = Refund.objects.select_related(
        "customer__entity__default_bank_account", "receipt__bank_account", "bank_account"
    ).get(pk=refund.pk)
    return row.customer.entity_id, f"ref_{row.pk}", shape.refund(row)


def _allocation(row: ContactAllocation):
    row = ContactAllocation.objects.select_related("customer").get(pk=row.pk)
    return row.entity_id, f"calloc_{row.pk}", shape.contact_allocation(row)


def _other(row: OtherReceipt):
    row = OtherReceipt.objects.select_related("customer", "bank_account").get(pk=row.pk)
    return row.entity_id, f"orec_{row.pk}", shape.other_payment(row)


DESCRIBE = {
    AllocationPlan: _plan,
    Refund: _refund,
    ContactAllocation: _allocation,
    OtherReceipt: _other,
}
KIND = {
    AllocationPlan: "contact_payment",
    Refund: "refund",
    ContactAllocation: "contact_allocation",
    OtherReceipt: "other_payment",
}


@prepared
def _any_subscription():
    """An active subscription's id, if there is any (compiled once: core/prepared.py)."""
    return WebhookSubscription.objects.filter(disabled_at__isnull=True).values_list("pk")[:1]


def _changed(sender, instance, created, raw=False, **kwargs):
    state = instance.__dict__.get("state")
    before = None if created else instance.__dict__.get(_SEEN)
    instance.__dict__[_SEEN] = state
    event_type = f"{KIND[sender]}.{state}"
    if raw or state == before or event_type not in EVENT_TYPES:
        return
    # nobody subscribed anywhere (the usual case): one small query, nothing else
    if not _any_subscription():
        return
    entity_id, object_id, data = DESCRIBE[sender](instance)
    webhook_event_record(entity_id=entity_id, type=event_type, object_id=object_id, data=data)


def _sales_settled(sender, rows, **kwargs):
    """Sales invoices posted in AIQ, linked to the one AIQ had, or refused: an event each,
    `sales_invoice.<state>` with the invoice as GET /sales_invoices/{sinv_…} shows it."""
    wanted = [row.pk for row in rows if f"sales_invoice.{row.state}" in EVENT_TYPES]
    if not wanted or not _any_subscription():
        return
    fresh = list(SalesInvoice.objects.filter(pk__in=wanted).prefetch_related("lines"))
    mirrors = shape.sales_invoice_mirrors(fresh)
    active: dict[int, list] = {}
    for row in sorted(fresh, key=lambda row: row.pk):
        if row.entity_id not in active:
            active[row.entity_id] = webhook_subscriptions_active(row.entity_id)
        webhook_event_record(
            entity_id=row.entity_id,
            type=f"sales_invoice.{row.state}",
            object_id=f"sinv_{row.pk}",
            data=shape.sales_invoice(row, artefact_id=mirrors.get(row.pk)),
            active=active[row.entity_id],
        )


def connect() -> None:
    sales_invoices_settled.connect(_sales_settled, dispatch_uid="webhooks.sales_invoices")
    for model in DESCRIBE:
        post_init.connect(_remember, sender=model, dispatch_uid=f"webhooks.seen.{model.__name__}")
        post_save.connect(_changed, sender=model, dispatch_uid=f"webhooks.{model.__name__}")
