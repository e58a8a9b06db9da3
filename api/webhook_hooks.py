"""Which state changes make webhook events (connected in ApiConfig.ready(); payments knows
nothing of the API). post_init remembers the state a row was loaded with; post_save, inside the
transaction of the change, records an event when the state moved (api/webhooks.py)."""

from django.db.models.signals import post_init, post_save

from api import representations as shape
from api.models import WebhookSubscription
from api.webhooks import EVENT_TYPES, webhook_event_record
from payments.models import AllocationPlan, ContactAllocation, OtherReceipt, Payment, Refund

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


def _changed(sender, instance, created, raw=False, **kwargs):
    state = instance.__dict__.get("state")
    before = None if created else instance.__dict__.get(_SEEN)
    instance.__dict__[_SEEN] = state
    event_type = f"{KIND[sender]}.{state}"
    if raw or state == before or event_type not in EVENT_TYPES:
        return
    # nobody subscribed anywhere (the usual case): one small query, nothing else
    if not WebhookSubscription.objects.filter(disabled_at__isnull=True).exists():
        return
    entity_id, object_id, data = DESCRIBE[sender](instance)
    webhook_event_record(entity_id=entity_id, type=event_type, object_id=object_id, data=data)


def connect() -> None:
    for model in DESCRIBE:
        post_init.connect(_remember, sender=model, dispatch_uid=f"webhooks.seen.{model.__name__}")
        post_save.connect(_changed, sender=model, dispatch_uid=f"webhooks.{model.__name__}")
