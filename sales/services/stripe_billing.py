"""Stripe Billing as an invoice source: webhooks in, sales invoices, credit notes and customer
changes into AIQ through the same services as every other source.

Registered with payments' Stripe webhook (payments/services/stripe_events.py: the signature,
the event stored once, the sweep and the nightly events catch-up are payments'), so a missed
delivery is caught up like a payment's. Each event only names its object; the object is fetched
from Stripe as it is now (RELIABILITY.md), so repeats and any order end the same:

- invoice.finalized / invoice.paid / invoice.payment_succeeded: an open or paid invoice becomes
  a sales invoice (external reference = the Stripe invoice id: once, whichever comes first; a
  draft is not an invoice yet). Its payment comes in as the payment it is (payment_intent.*).
- invoice.voided: the voided invoice, when AIQ has it (or it is on its way), gets a credit note
  of all of it allocated to it (AIQ has no void); one still held is cancelled.
- credit_note.created: the Stripe credit note, against its invoice, posted once and allocated.
- customer.updated: the customer's name, e-mail, phone and address (sales_customer_update).

What cannot become an AIQ document (a negative proration line, a taxed line without a VAT code,
an invoice changed after AIQ has it) marks the event failed with the reason, for a person.
"""

import logging

from django.core.exceptions import ValidationError
from django.db import transaction

from ledger.models import Entity
from payments.models import PayerMapping, Source
from payments.services.stripe_events import EventUnreadable, stripe_event_handler_register
from payments.sources import stripe_client as api
from sales import stripe_billing as shapes
from sales.models import InvoiceSource, InvoiceType, SalesInvoice
from sales.services.credit_notes import sales_credit_note_submit
from sales.services.customers import sales_customer_update
from sales.services.invoices import sales_invoice_submit
from staff.services import audit_log

log = logging.getLogger(__name__)

SOURCE_CODE = "STRIPE"
INVOICE_EVENTS = ("invoice.finalized", "invoice.paid", "invoice.payment_succeeded")
EVENTS = (*INVOICE_EVENTS, "invoice.voided", "credit_note.created", "customer.updated")
HELD = (
    SalesInvoice.State.HELD_CREDIT,
    SalesInvoice.State.HELD_CUSTOMER,
    SalesInvoice.State.AWAITING_BATCH,
)


def stripe_billing_source(entity: Entity) -> InvoiceSource:
    source, _ = InvoiceSource.objects.get_or_create(
        entity=entity,
        code=SOURCE_CODE,
        defaults={
            "name": "Stripe Billing",
            "invoice_type": InvoiceType.BATCH,
            "type_reason": "Stripe computes VAT: batch invoices post its VAT to the cent.",
            "attach_breakdown": False,
        },
    )
    return source


def _with_all_lines(obj: dict, path: str) -> dict:
    """The object with every line: Stripe embeds the first page only (has_more)."""
    lines = obj.get("lines") or {}
    if lines.get("has_more"):
        data = [line for page in api.list_pages(f"{path}/{obj['id']}/lines") for line in page]
        obj = {**obj, "lines": {**lines, "data": data, "has_more": False}}
    return obj


def _customer(invoice: dict) -> dict:
    customer = invoice.get("customer")
    if isinstance(customer, dict):
        return customer
    return api.retrieve(f"/v1/customers/{customer}") if customer else {}


def _mapped_code(customer_id: str) -> str:
    mapping = (
        PayerMapping.objects.filter(source=Source.STRIPE, payer_key=customer_id)
        .select_related("customer")
        .first()
    )
    return mapping.customer.code if mapping else ""


def _normalised_invoice(source: InvoiceSource, invoice: dict):
    customer = _customer(invoice)
    return shapes.normalise_invoice(
        _with_all_lines(invoice, "/v1/invoices"),
        customer,
        default_tax_code=source.default_tax_code,
        mapped_code=_mapped_code(shapes.object_id(invoice.get("customer"))),
    )


def stripe_invoice_apply(*, entity: Entity, invoice: dict) -> SalesInvoice | None:
    """One Stripe invoice as it is now: sent to AIQ once it is final, credited when voided."""
    source = stripe_billing_source(entity)
    status = invoice.get("status")
    if status in ("open", "paid", "uncollectible"):
        return sales_invoice_submit(
            entity=entity, source=source, invoice=_normalised_invoice(source, invoice)
        )
    if status != "void":
        return None  # a draft: not an invoice yet
    row = SalesInvoice.objects.filter(entity=entity, external_reference=invoice["id"]).first()
    if row is None:
        return None  # voided before it was ever final for us: nothing in AIQ
    if row.state in HELD:
        _cancel_held(row)
    elif row.state in (*SalesInvoice.IN_AIQ, SalesInvoice.State.QUEUED):
        normalised = _normalised_invoice(source, invoice)
        voided_at = (invoice.get("status_transitions") or {}).get("voided_at")
        sales_credit_note_submit(
            entity=entity,
            source=source,
            note=shapes.voided_credit_note(normalised, voided_at),
        )
    return row


def _cancel_held(row: SalesInvoice) -> None:
    with transaction.atomic():
        row = SalesInvoice.objects.select_for_update().get(pk=row.pk)
        if row.state not in HELD:
            return
        before = row.state
        row.state = SalesInvoice.State.CANCELLED
        row.save(update_fields=["state", "updated_at"])
        audit_log(
            actor=None,
            action="sales_invoice.cancel",
            obj=row,
            summary=f"{row.external_reference} cancelled: voided in Stripe",
            before={"state": before},
            after={"state": row.state},
        )


def stripe_credit_note_apply(*, entity: Entity, note: dict):
    source = stripe_billing_source(entity)
    note = _with_all_lines(note, "/v1/credit_notes")
    return sales_credit_note_submit(
        entity=entity,
        source=source,
        note=shapes.normalise_credit_note(note, default_tax_code=source.default_tax_code),
    )


def stripe_customer_apply(*, entity: Entity, customer: dict):
    if customer.get("deleted"):
        return None
    code = shapes.customer_code(customer, {}, _mapped_code(customer["id"]))
    return sales_customer_update(
        entity=entity,
        code=code,
        details=shapes.customer_details(customer),
        origin=f"Stripe customer {customer['id']}",
    )


def stripe_billing_event(event_type: str, object_id: str, entity: Entity) -> None:
    """payments' webhook handler for EVENTS (api.StripeError: retried by payments' sweep)."""
    try:
        if event_type.startswith("invoice."):
            stripe_invoice_apply(entity=entity, invoice=api.retrieve(f"/v1/invoices/{object_id}"))
        elif event_type == "credit_note.created":
            stripe_credit_note_apply(
                entity=entity, note=api.retrieve(f"/v1/credit_notes/{object_id}")
            )
        elif event_type == "customer.updated":
            stripe_customer_apply(
                entity=entity, customer=api.retrieve(f"/v1/customers/{object_id}")
            )
    except (ValidationError, shapes.StripeShapeError) as error:
        text = "; ".join(error.messages) if isinstance(error, ValidationError) else str(error)
        raise EventUnreadable(f"{event_type} {object_id}: {text}") from None


def register() -> None:
    stripe_event_handler_register(EVENTS, stripe_billing_event)
