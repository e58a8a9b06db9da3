"""Writing payments: one row per (source, external id), in bulk, with audit entries.

Every source (Stripe webhooks and imports, GoCardless, statement files) ends here with a list
of NormalisedPayment. Lookups are batched (never one query per payment) and the write is one
INSERT ... ON CONFLICT DO UPDATE per chunk (payment_rows.py), so re-imports and repeated
webhooks update the same rows instead of adding new ones. Audit: one entry per call listing
the counts, plus one per status change or outside refund of a payment we already had; a new
payment does not get an entry of its own (at 100,000 rows that would double the write).
"""

import logging
from dataclasses import dataclass, field
from decimal import Decimal

from django.core.exceptions import PermissionDenied
from django.db import transaction

from core.gcpause import gc_paused
from core.money import format_money
from core.stripe_money import stripe_from_minor
from ledger.companies import NoDefaultCompany, default_entity
from ledger.models import Customer, Entity
from payments.models import Dispute, Fee, PayerMapping, Payment, Payout, Refund
from payments.services import payment_rows
from payments.services.payment_rows import fee_rows_insert, payment_rows_write
from payments.services.refunds import (
    STRIPE_METADATA_KEY,
    RefundRefused,
    refund_external_propose,
)
from payments.sources.normalised import NormalisedPayment
from payments.sources.stripe_source import DISPUTE_SETTLED_FOR_US
from staff.models import AuditEntry, Role
from staff.services import audit_log, user_has_role

log = logging.getLogger(__name__)

CHUNK = 500  # rows per IN (...) lookup and per INSERT; well below SQLite's variable limit
STATUSES = frozenset(Payment.Status.values)


# No company to book the payments to (none set up yet, or several and the money came through
# no account of its own): ledger/companies.py
PaymentsNotConfigured = NoDefaultCompany


@dataclass
class UpsertResult:
    created: int = 0
    updated: int = 0
    ids: dict[str, int] = field(default_factory=dict)  # external id -> Payment id


def _chunks(items: list, size: int = CHUNK):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _resolve_customers(entity: Entity, items: list[NormalisedPayment]) -> dict[str, int]:
    """external id -> Customer id, in this order: a code the payer gave us (metadata), a
    mapping staff confirmed (a person's decision beats a heuristic), a unique email match.
    Items are of one source (payments_upsert checks)."""
    if not items:
        return {}
    source = items[0].source
    codes = {i.customer_code_hint for i in items if i.customer_code_hint}
    keys = {i.payer_reference for i in items if i.payer_reference}
    emails = {i.payer_email.strip().lower() for i in items if i.payer_email}
    by_code = {
        code: pk for pk, code in payment_rows.customers_by_code(entity_id=entity.pk, codes=codes)
    }
    by_key = dict(
        payment_rows.payer_mappings(entity_id=entity.pk, source=source, keys=keys | emails)
    )
    by_email, ambiguous = {}, set()
    for pk, email in payment_rows.customers_by_email(entity_id=entity.pk, emails=emails):
        if email in by_email and by_email[email] != pk:
            ambiguous.add(email)  # two customers share it: let a person decide
        by_email[email] = pk
    result = {}
    for item in items:
        email = item.payer_email.strip().lower()
        customer_id = (
            by_code.get(item.customer_code_hint)
            or by_key.get(item.payer_reference)
            or by_key.get(email)
            or (by_email.get(email) if email not in ambiguous else None)
        )
        if customer_id:
            result[item.external_id] = customer_id
    return result


def _existing(source: str, external_ids: list[str]) -> dict[str, dict]:
    found = {}
    # which ids are there by one bare query per 500 (a new statement's 100,000 rows are all
    # new); the ORM reads the columns of those found only
    stored = payment_rows.existing_external_ids(source=source, external_ids=external_ids)
    for chunk in _chunks([i for i in external_ids if i in stored]):
        for row in Payment.objects.filter(source=source, external_id__in=chunk).values(
            "id", "external_id", "amount_refunded", "status", "customer_id"
        ):
            found[row["external_id"]] = row
    return found


def _open_dispute_payment_ids(payment_ids: list[int]) -> set[int]:
    open_ids = set()
    for chunk in _chunks(payment_ids):
        open_ids.update(
            Dispute.objects.filter(payment_id__in=chunk)
            .exclude(status__in=DISPUTE_SETTLED_FOR_US)
            .values_list("payment_id", flat=True)
        )
    return open_ids


def payments_upsert(
    *, items: list[NormalisedPayment], origin: str, actor=None, entity: Entity | None = None
) -> UpsertResult:
    """Create or refresh payments from one source. Idempotent: the same items twice change
    nothing the second time (apart from updated_at)."""
    result = UpsertResult()
    if not items:
        return result
    sources = {i.source for i in items}
    if len(sources) != 1:
        raise ValueError("payments_upsert takes items of one source at a time")
    source = sources.pop()
    # Last one wins when a page repeats a payment (the same charge listed twice).
    items = list({i.external_id: i for i in items}.values())
    for item in items:  # all checked before anything is written: the batch is all or nothing
        item.check()
        if item.status not in STATUSES:
            raise ValueError(
                f"{source} payment {item.external_id!r}: unknown status {item.status!r}"
            )
    # the company of the account the money came through (the caller knows it); money that
    # came through no account of its own belongs to the default company
    entity = entity or default_entity()
    with transaction.atomic():
        existing = _existing(source, [i.external_id for i in items])
        needs_customer = [
            i for i in items if not (existing.get(i.external_id) or {}).get("customer_id")
        ]
        customers = _resolve_customers(entity, needs_customer)
        disputed = _open_dispute_payment_ids([row["id"] for row in existing.values()])
        statuses = {}
        for item in items:
            before = existing.get(item.external_id)
            status = item.status
            if before and before["id"] in disputed and status != "failed":
                status = Payment.Status.DISPUTED  # an open or lost dispute outranks the charge
            statuses[item.external_id] = status
        with gc_paused():  # a row of parameters per payment: see core.gcpause
            result.ids = payment_rows_write(
                entity_id=entity.pk, items=items, statuses=statuses, customers=customers
            )
        _replace_fees(items, result.ids, existing)
        result.created = len(items) - len(existing)
        result.updated = len(existing)
        _audit_changes(items, existing, result.ids, statuses, actor=actor)
        audit_log(
            actor=actor,
            action=f"{origin}",
            object_type="payments.payment",
            object_id=next(iter(result.ids.values())) if len(items) == 1 else "",
            summary=f"{source}: {result.created} new, {result.updated} refreshed payment(s)",
            entity_id=entity.pk,
        )
    return result


def _replace_fees(items: list[NormalisedPayment], ids: dict[str, int], existing: dict) -> None:
    # Fees are replaced only when the source reported them this time: an object fetched without
    # its balance transaction says nothing about fees, so the ones we have stay.
    with_fees = [i for i in items if i.fees]
    if not with_fees:
        return
    # only payments we had before can have Fee rows to replace
    payment_ids = [ids[i.external_id] for i in with_fees if i.external_id in existing]
    for chunk in _chunks(payment_ids):
        Fee.objects.filter(payment_id__in=chunk).delete()
    fee_rows_insert(items=with_fees, ids=ids)


def _audit_changes(items, existing, ids, statuses, *, actor) -> None:
    """Status changes and refunds on payments we already had get their own audit entries;
    refunds we did not make ourselves go to the refunds hook."""
    refund_candidates = []
    for item in items:
        before = existing.get(item.external_id)
        new_status = statuses[item.external_id]
        if before and before["status"] != new_status:
            audit_log(
                actor=actor,
                action="payment.status",
                object_type="payments.payment",
                object_id=ids[item.external_id],
                summary=f"{item.source} {item.external_id}: {before['status']} -> {new_status}",
                before={"status": before["status"], "amount_refunded": before["amount_refunded"]},
                after={"status": new_status, "amount_refunded": item.amount_refunded},
            )
        refunded_before = before["amount_refunded"] if before else Decimal(0)
        if item.refunds and item.amount_refunded != refunded_before:
            refund_candidates.append(item)
    if not refund_candidates:
        return
    payment_ids = [ids[i.external_id] for i in refund_candidates]
    seen_refund_ids = _seen_refund_ids(payment_ids)
    all_refund_ids = [r["id"] for i in refund_candidates for r in i.refunds if r.get("id")]
    ours = set(
        Refund.objects.filter(stripe_refund_id__in=all_refund_ids).values_list(
            "stripe_refund_id", flat=True
        )
    )
    for item in refund_candidates:
        payment = Payment.objects.get(pk=ids[item.external_id])
        for refund in item.refunds:
            refund_id = refund.get("id")
            if not refund_id or refund_id in ours or refund_id in seen_refund_ids:
                continue
            if refund.get("status") in ("failed", "canceled"):
                continue
            on_external_refund(payment, refund)


def _seen_refund_ids(payment_ids: list[int]) -> set[str]:
    return set(
        AuditEntry.objects.filter(action="payment.external_refund", object_type="stripe.refund")
        .filter(after__payment_id__in=payment_ids)
        .values_list("object_id", flat=True)
    )


def on_external_refund(payment: Payment, stripe_refund: dict) -> None:
    """A refund made outside the app (e.g. in the Stripe dashboard) reached a payment.

    It is recorded once in the audit log (which is also how we remember having seen it) and
    becomes a refund proposal for staff: the AIQ entries (credit note and/or debit journal) that
    bring the books in step, approved like any refund (payments/services/refunds.py). A refund
    the app made itself (our metadata on it) is only linked, never proposed again.
    """
    if (stripe_refund.get("metadata") or {}).get(STRIPE_METADATA_KEY):
        refund_external_propose(payment=payment, stripe_refund=stripe_refund)
        return
    currency = payment.currency
    amount = stripe_from_minor(stripe_refund.get("amount") or 0, currency)
    audit_log(
        actor=None,
        action="payment.external_refund",
        object_type="stripe.refund",
        object_id=stripe_refund["id"],
        summary=f"Refund {stripe_refund['id']} of {format_money(amount, currency)} made outside the app "
        f"on {payment.external_id}",
        after={
            "payment_id": payment.pk,
            "amount": amount,
            "currency": currency,
            "status": stripe_refund.get("status") or "",
            "reason": stripe_refund.get("reason") or "",
        },
    )
    try:
        refund_external_propose(payment=payment, stripe_refund=stripe_refund)
    except RefundRefused as error:
        # the money went back all the same: the payment is still brought up to date, and the
        # AIQ entries are left to a person, who is told why (never a webhook retried forever)
        audit_log(
            actor=None,
            action="refund.propose_external_refused",
            object_type="stripe.refund",
            object_id=stripe_refund["id"],
            summary=f"Refund {stripe_refund['id']} on {payment.external_id}: no AIQ entries "
            f"proposed ({'; '.join(error.messages)}); book it by hand",
            entity_id=payment.entity_id,
        )


def dispute_upsert(*, source: str, dispute: dict, payment: Payment) -> Dispute:
    """Record a dispute as the provider reports it; the payment shows DISPUTED while it is open
    or lost, and goes back to its refund-based status once it is won or closed."""
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        row = (
            Dispute.objects.select_for_update()
            .filter(source=source, external_id=dispute["external_id"])
            .first()
        )
        before = {"status": row.status, "amount": row.amount} if row else None
        if row is None:
            row = Dispute(source=source, external_id=dispute["external_id"], payment=payment)
        row.amount = dispute["amount"]
        row.currency = dispute["currency"]
        row.status = dispute["status"]
        row.reason = dispute["reason"]
        row.raw = dispute["raw"]
        row.full_clean()
        row.save()
        after = {"status": row.status, "amount": row.amount}
        if before != after:
            audit_log(
                actor=None,
                action="dispute.update" if before else "dispute.create",
                obj=row,
                summary=f"Dispute {row.external_id} on {payment.external_id}: {row.status}",
                before=before,
                after=after,
            )
        _refresh_dispute_status(payment)
        return row


def _refresh_dispute_status(payment: Payment) -> None:
    if payment.status in (Payment.Status.FAILED, Payment.Status.CANCELED):
        return
    open_dispute = payment.disputes.exclude(status__in=DISPUTE_SETTLED_FOR_US).exists()
    if open_dispute:
        status = Payment.Status.DISPUTED
    elif payment.amount_refunded and payment.amount_refunded >= payment.amount:
        status = Payment.Status.REFUNDED
    elif payment.amount_refunded:
        status = Payment.Status.PARTIALLY_REFUNDED
    else:
        status = Payment.Status.SUCCEEDED
    if status != payment.status:
        audit_log(
            actor=None,
            action="payment.status",
            obj=payment,
            summary=f"{payment.external_id}: {payment.status} -> {status}",
            before={"status": payment.status},
            after={"status": status},
        )
        Payment.objects.filter(pk=payment.pk).update(status=status)


def payout_upsert(*, source: str, payout: dict) -> Payout:
    with transaction.atomic():
        row, created = Payout.objects.select_for_update().get_or_create(
            source=source,
            external_id=payout["external_id"],
            defaults={"amount": payout["amount"], "currency": payout["currency"]},
        )
        before = None if created else {"status": row.status, "amount": row.amount}
        row.amount = payout["amount"]
        row.currency = payout["currency"]
        row.arrival_amount = payout.get("arrival_amount")
        row.arrival_currency = payout.get("arrival_currency") or ""
        row.status = payout["status"]
        row.arrival_date = payout["arrival_date"]
        row.raw = payout["raw"]
        row.save()
        after = {"status": row.status, "amount": row.amount}
        if before != after:
            audit_log(
                actor=None,
                action="payout.create" if created else "payout.update",
                obj=row,
                summary=f"{source} payout {row.external_id}: "
                f"{format_money(row.amount, row.currency)} {row.status}",
                before=before,
                after=after,
            )
        return row


def payout_link_payments(*, payout: Payout, payment_keys: list[str], net_total: Decimal) -> int:
    """Attach the payments settled in a payout; record whether their net adds up to it."""
    with transaction.atomic():
        linked = 0
        for chunk in _chunks(payment_keys):
            linked += Payment.objects.filter(source=payout.source, external_id__in=chunk).update(
                payout=payout
            )
        balanced = net_total == payout.amount
        audit_log(
            actor=None,
            action="payout.reconcile",
            obj=payout,
            summary=f"{linked} payment(s) linked; net {format_money(net_total, payout.currency)} vs "
            f"payout {format_money(payout.amount, payout.currency)}: "
            f"{'balanced' if balanced else 'DIFFERENCE'}",
            after={"linked": linked, "net_total": net_total, "balanced": balanced},
        )
        return linked


def payer_mapping_confirm(*, user, source: str, payer_key: str, customer: Customer):
    """Staff confirm that a payer (source customer id or email) is this AIQ customer. Remembered
    for next time, and applied to that payer's payments that have no customer yet."""
    if not user_has_role(user, Role.CLERK):
        raise PermissionDenied("Confirming a payer needs the clerk role.")
    key = payer_key.strip()
    if "@" in key:
        key = key.lower()
    if not key:
        raise ValueError("A payer key (customer id or email) is required.")
    with transaction.atomic():
        mapping = PayerMapping.objects.select_for_update().filter(source=source, payer_key=key)
        mapping = mapping.first()
        before = {"customer": mapping.customer.code} if mapping else None
        if mapping is None:
            mapping = PayerMapping(source=source, payer_key=key, confirmed_by=user)
        mapping.customer = customer
        mapping.confirmed_by = user
        mapping.full_clean()
        mapping.save()
        field_name = "payer_email__iexact" if "@" in key else "payer_reference"
        applied = Payment.objects.filter(
            source=source, customer__isnull=True, entity=customer.entity, **{field_name: key}
        ).update(customer=customer)
        audit_log(
            actor=user,
            action="payer_mapping.confirm",
            obj=mapping,
            summary=f"{source} payer {key} is AIQ customer {customer.code} "
            f"({applied} payment(s) updated)",
            before=before,
            after={"customer": customer.code},
        )
        return mapping
