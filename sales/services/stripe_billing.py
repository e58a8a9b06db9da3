"""Stripe Billing as an invoice source: webhooks in, sales invoices, credit notes and customer
changes into AIQ through the same services as every other source.

Registered with payments' Stripe webhook (payments/services/stripe_events.py: the signature,
the event stored once, the sweep and the nightly events catch-up are payments'), so a missed
delivery is caught up like a payment's. Each event only names its object; the object is fetched
from Stripe as it is now (RELIABILITY.md), so repeats and any order end the same:

- invoice.finalized / invoice.paid / invoice.payment_succeeded: an open or paid invoice becomes
  a sales invoice (external reference = the Stripe invoice id: once, whichever comes first; a
  draft is not an invoice yet). Its payment comes in as the payment it is (payment_intent.*)
  and, naming the invoice (`invoice` on the charge or its payment intent), settles it with
  no matching run: its plan made at once (approved under the threshold, like an auto-approve
  rule), or as soon as AIQ has the invoice when the payment came first.
- invoice.voided: the voided invoice, when AIQ has it (or it is on its way), gets a credit note
  of what its credit notes have not credited yet, allocated to it (AIQ has no void); one still
  held is cancelled.
- credit_note.created: the Stripe credit note, against its invoice, posted once and allocated;
  one paid back to the card is booked by the payment's refund instead (one credit, not two).
- customer.updated: the customer's name, e-mail, phone and address (sales_customer_update).

What cannot become an AIQ document (a negative proration line, a taxed line without a VAT code,
an invoice changed after AIQ has it) marks the event failed with the reason, for a person.
"""

import logging

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q

from ledger.models import Entity, Invoice
from payments.models import PayerMapping, Payment, Source
from payments.services.plan_lines import PlanRefused
from payments.services.plans import plan_for_invoice
from payments.services.stripe_events import (
    EventUnreadable,
    stripe_event_handler_register,
    stripe_payment_handler_register,
)
from payments.sources import stripe_client as api
from sales import stripe_billing as shapes
from sales.models import InvoiceSource, InvoiceType, SalesCreditNote, SalesInvoice
from sales.normalised import NormalisedCreditNote, NormalisedLine
from sales.services.credit_notes import (
    NOT_IN_AIQ,
    invoice_remainder,
    sales_credit_note_submit,
)
from sales.services.customers import sales_customer_update
from sales.services.invoices import sales_invoice_submit
from sales.signals import sales_invoices_settled
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
        voided_at = (invoice.get("status_transitions") or {}).get("voided_at")
        note = _void_credit_note(row, voided_at)
        if note is not None:
            sales_credit_note_submit(entity=entity, source=source, note=note)
    return row


def _void_credit_note(row: SalesInvoice, voided_at) -> NormalisedCreditNote | None:
    """The credit note of a voided invoice: what its credit notes have not credited yet, line
    by line (a partly credited invoice is credited only for the rest); None when nothing is
    left (credited in full already, or its void credit note made before)."""
    if SalesCreditNote.objects.filter(
        entity=row.entity_id, external_reference=f"{row.external_reference}-VOID"
    ).exists():
        return None  # a repeat of the event: sales_credit_note_submit would return it
    remainder = [
        (
            line.line_number,
            NormalisedLine(
                net_amount=net,
                tax_amount=tax,
                tax_code=line.tax_code,
                description=line.description,
                department=line.department,
                gl_account_code=line.gl_account_code,
            ),
        )
        for line, net, tax in invoice_remainder(row)
    ]
    if not remainder:
        return None
    return shapes.voided_credit_note(row.external_reference, remainder, voided_at)


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
    """A Stripe credit note, posted once and allocated to its invoice. One paid back to the
    card (its refunds) is booked by that refund of the payment (charge.refunded: payments'
    refund, credit note and money out, approved by a person), so it is stored as refunded and
    not posted a second time. One part refunded, part credited is left to a person."""
    source = stripe_billing_source(entity)
    note = _with_all_lines(note, "/v1/credit_notes")
    refunded, refunds = shapes.credit_note_refunds(note)
    total = int(note.get("amount") or note.get("total") or 0)
    if 0 < refunded < total:
        currency = (note.get("currency") or "").upper()
        raise shapes.StripeShapeError(
            f"credit note {note['id']} is part refunded "
            f"({shapes.stripe_from_minor(refunded, currency)} {currency} of "
            f"{shapes.stripe_from_minor(total, currency)}): the refund books its part; "
            "credit the rest in AIQ by hand"
        )
    invoice_id = shapes.object_id(note.get("invoice"))
    invoice = _with_all_lines(api.retrieve(f"/v1/invoices/{invoice_id}"), "/v1/invoices")
    return sales_credit_note_submit(
        entity=entity,
        source=source,
        note=shapes.normalise_credit_note(
            note,
            default_tax_code=source.default_tax_code,
            line_numbers=shapes.invoice_line_numbers(invoice),
        ),
        refunds=refunds if refunded else None,
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


# --- a paid Stripe invoice and its payment -----------------------------------------------------

PAID_BY_INVOICE = "settled by its Stripe invoice {ref} (no matching run)"


def _settle_payment(row: SalesInvoice, payment: Payment) -> bool:
    """The payment's plan: the invoice AIQ has (the mirror's row of it), settled by the
    payment; True when a plan was made."""
    invoice = Invoice.objects.filter(
        entity=row.entity_id, aiq_transaction_id=row.aiq_transaction_id
    ).first()
    if invoice is None:
        return False  # linked, and the pull has not mirrored it yet: the matching run will
    try:
        plan = plan_for_invoice(
            payment=payment, invoice=invoice, how=PAID_BY_INVOICE.format(ref=row.external_reference)
        )
    except PlanRefused as error:
        log.warning("payment %s for %s left to matching: %s", payment.pk, row, error.messages)
        return False
    return plan is not None


def stripe_invoice_payment(payment: Payment) -> bool:
    """payments' hook for a Stripe payment just written: one that paid a Stripe invoice this
    app sent to AIQ settles it at once; one whose invoice is on its way waits for it (settled
    when AIQ has the invoice, stripe_invoices_in_aiq). False: the matching run's as usual."""
    reference = shapes.paid_invoice_id(payment.raw or {})
    if not reference:
        return False
    row = SalesInvoice.objects.filter(
        entity=payment.entity_id, external_reference=reference
    ).first()
    if row is None or row.state in NOT_IN_AIQ:
        return False
    if row.state in SalesInvoice.IN_AIQ:
        return _settle_payment(row, payment)
    return True


def stripe_invoices_in_aiq(sender, rows, **kwargs) -> None:
    """sales_invoices_settled: Stripe invoices AIQ has now settle the payments that paid them
    and came first (inside the verdict's transaction)."""
    in_aiq = [row for row in rows if row.state in SalesInvoice.IN_AIQ]
    if not in_aiq:
        return
    stripe = set(
        InvoiceSource.objects.filter(
            pk__in={row.source_id for row in in_aiq}, code=SOURCE_CODE
        ).values_list("pk", flat=True)
    )
    for row in in_aiq:
        if row.source_id not in stripe:
            continue
        waiting = Payment.objects.filter(
            Q(raw__invoice=row.external_reference)
            | Q(raw__payment_intent__invoice=row.external_reference),
            entity=row.entity_id,
            source=Source.STRIPE,
            match_state__in=(Payment.MatchState.UNMATCHED, Payment.MatchState.PROPOSED),
        )
        for payment in waiting.order_by("pk"):
            _settle_payment(row, payment)


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
    stripe_payment_handler_register(stripe_invoice_payment)
    sales_invoices_settled.connect(stripe_invoices_in_aiq, dispatch_uid="sales.stripe_payments")
