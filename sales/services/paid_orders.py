"""Already-paid orders and the money that paid them.

An already-paid order (a web shop's or a checkout's sale, `NormalisedInvoice.paid`) goes into
AIQ as the invoice, its receipt and their allocation in one call (PostPayAndAllocateSalesInvoice,
sales/outbox.py). The payment itself reaches this product later, or earlier: a Stripe payment
whose id is the order's payment reference, a bank statement line carrying it as the bank's
reference. That payment *is* the order's receipt: it is linked to it and follows the order,
never matched and receipted a second time.

- the order on its way to AIQ (queued, held, waiting for its batch): the payment is "Approved,
  on its way to AIQ" (matching leaves it alone);
- the order in AIQ with its receipt: "Confirmed in AIQ", with the mirror's receipt;
- the order refused by AIQ: "Failed in AIQ" until a person retries or cancels the order;
- the order cancelled, or in AIQ without a receipt (AIQ held the invoice already): the payment
  goes back to matching, which records the money.

A payment is linked only when its amount and currency are the order's and nobody decided
anything about it yet (unmatched or only proposed, no live plan). Every link and every change
of a linked payment is audited.
"""

import logging
from datetime import date
from decimal import Decimal

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core.money import format_money
from ledger.models import BankAccount, Customer, Receipt
from payments.models import AllocationPlan, MatchProposal, Payment
from payments.services.auto_match import auto_match_soon
from sales.models import SalesInvoice
from staff.services import audit_entry, audit_log_many

log = logging.getLogger(__name__)
MatchState = Payment.MatchState
State = SalesInvoice.State
FREE = (MatchState.UNMATCHED, MatchState.PROPOSED)
# states this module itself puts a linked payment in
FOLLOWING = (MatchState.APPROVED, MatchState.SENT, MatchState.FAILED)
NOTE = "paid_order"  # Payment.match_notes key: the order's external reference


def _references(payment: Payment) -> set[str]:
    """What a source may call this payment: its id (pi_…, ch_…), the charge behind a Stripe
    payment intent, the bank's reference of a statement line."""
    found = {payment.external_id, payment.bank_reference}
    raw = payment.raw if isinstance(payment.raw, dict) else {}
    for key in ("latest_charge", "id"):
        if isinstance(raw.get(key), str):
            found.add(raw[key])
    return {ref.strip() for ref in found if ref and ref.strip()}


def _target(row: SalesInvoice) -> str | None:
    """The state a payment linked to this order is in; None: back to matching."""
    if row.state in SalesInvoice.IN_AIQ:
        return MatchState.SENT if row.receipt_transaction_id else None
    if row.state == State.FAILED:
        return MatchState.FAILED
    if row.state in (State.CANCELLED, State.REFUSED):
        return None
    return MatchState.APPROVED


def _mirror_receipt(row: SalesInvoice) -> Receipt | None:
    """The mirror's row of the order's receipt in AIQ (made now when the pull has not read it
    yet; the pull finds it by AIQ's transaction id). None when its customer or bank account is
    not in the mirror: the pull brings it."""
    if not row.receipt_transaction_id:
        return None
    found = Receipt.objects.filter(
        entity=row.entity_id, aiq_transaction_id=row.receipt_transaction_id
    ).first()
    if found is not None:
        return found
    customer = Customer.objects.filter(entity=row.entity_id, code=row.customer_code).first()
    bank = BankAccount.objects.filter(
        entity=row.entity_id, bank_account_code=row.paid["bank_account_code"]
    ).first()
    if customer is None or bank is None:
        return None
    reference = row.paid["reference"][:100]
    if Receipt.objects.filter(entity=row.entity_id, check_reference=reference).exists():
        reference = f"AIQ-{row.receipt_transaction_id}"
    return Receipt.objects.create(
        entity_id=row.entity_id,
        customer=customer,
        bank_account=bank,
        check_reference=reference,
        aiq_transaction_id=row.receipt_transaction_id,
        currency=row.currency,
        payment_date=row.paid["paid_on"],
        amount=Decimal(row.paid["amount"]),
        unallocated_amount=0,
        description=f"Paid order {row.external_reference}"[:500],
        last_synced_at=timezone.now(),
    )


def _explain(row: SalesInvoice, target: str) -> str:
    amount = format_money(Decimal(row.paid["amount"]), row.currency)
    if target == MatchState.SENT:
        return (
            f"The receipt of paid order {row.external_reference} ({amount}): AIQ posted it with "
            f"the invoice and allocated it (receipt transaction {row.receipt_transaction_id}); "
            "not matched again."
        )
    if target == MatchState.FAILED:
        return (
            f"The receipt of paid order {row.external_reference} ({amount}): AIQ refused the "
            f"order ({row.error or 'see the invoice'}); retry or cancel the invoice."
        )
    return (
        f"The receipt of paid order {row.external_reference} ({amount}): on its way to AIQ "
        "with the invoice; not matched."
    )


def _apply(row: SalesInvoice, payments: list[Payment], entries: list, rematch: list) -> set[int]:
    """Put each payment of this order in the order's step (payments already locked)."""
    target = _target(row)
    receipt = _mirror_receipt(row) if target == MatchState.SENT else None
    changed = set()
    for payment in payments:
        ours = (payment.match_notes or {}).get(NOTE) == row.external_reference
        if payment.match_state in FOLLOWING and not ours:
            continue  # decided by a person or another flow: never taken over
        if payment.match_state not in FREE + FOLLOWING:
            continue
        if target is None and not ours:
            continue
        if not ours and (
            payment.currency != row.currency
            or payment.amount != Decimal(row.paid["amount"])
            or payment.plans.filter(state__in=AllocationPlan.LIVE).exists()
        ):
            log.info("payment %s names paid order %s but is not its money", payment.pk, row)
            continue
        before = (payment.match_state, payment.receipt_id)
        if target is None:
            payment.match_state, payment.match_notes, payment.receipt = (
                MatchState.UNMATCHED,
                {},
                None,
            )
            summary = (
                f"{payment} back to matching: paid order {row.external_reference} is "
                f"{row.get_state_display().lower()} without its receipt in AIQ"
            )
            rematch.append(payment.pk)
        else:
            explanation = _explain(row, target)
            payment.match_state = target
            payment.match_notes = {NOTE: row.external_reference, "notes": [explanation]}
            payment.receipt = receipt if target == MatchState.SENT else None
            summary = f"{payment}: {explanation}"
        if ours and before == (payment.match_state, payment.receipt_id):
            continue  # told twice (a repeated verdict): nothing changes, nothing audited
        payment.proposals.filter(state=MatchProposal.State.OPEN).update(
            state=MatchProposal.State.SUPERSEDED
        )
        payment.save(update_fields=["match_state", "match_notes", "receipt", "updated_at"])
        entries.append(
            audit_entry(
                actor=None,
                action="payment.paid_order",
                obj=payment,
                summary=summary[:500],
                before={"match_state": before[0]},
                after={
                    "match_state": payment.match_state,
                    "paid_order": row.external_reference,
                    "receipt_transaction_id": row.receipt_transaction_id,
                },
            )
        )
        changed.add(payment.pk)
    return changed


CHUNK = 500


def paid_orders_link(payment_ids: list[int]) -> set[int]:
    """payments' linker (payments/services/linkers.py): payments just stored that are an
    already-paid order's money, linked to it; the ids linked. Nothing to read when no order
    of any company was paid (a statement of 100,000 lines costs one query then)."""
    if not payment_ids or not SalesInvoice.objects.filter(paid__isnull=False).exists():
        return set()
    linked: set[int] = set()
    with transaction.atomic():
        for start in range(0, len(payment_ids), CHUNK):
            linked |= _link_chunk(payment_ids[start : start + CHUNK])
    return linked


def _link_chunk(payment_ids: list[int]) -> set[int]:
    payments = list(
        Payment.objects.select_for_update()
        .filter(pk__in=payment_ids, match_state__in=FREE)
        .order_by("pk")
    )
    refs = {ref: p for p in payments for ref in _references(p)}
    if not refs:
        return set()
    orders = SalesInvoice.objects.filter(
        entity__in={p.entity_id for p in payments}, paid__reference__in=list(refs)
    ).order_by("pk")
    entries, rematch, linked = [], [], set()
    for row in orders:
        payment = refs.get(row.paid["reference"])
        if payment is None or payment.entity_id != row.entity_id or payment.pk in linked:
            continue
        linked |= _apply(row, [payment], entries, rematch)
    audit_log_many(entries)
    return linked


def _payments_of(row: SalesInvoice):
    reference = row.paid["reference"]
    return Payment.objects.filter(
        Q(external_id=reference) | Q(bank_reference=reference), entity=row.entity_id
    )


DECIDED = (
    MatchState.AWAITING_APPROVAL,
    MatchState.APPROVED,
    MatchState.SENT,
    MatchState.FAILED,
    MatchState.NEEDS_PERSON,
)


def paid_order_problems(entity_id: int, invoices: list) -> list[str]:
    """Already-paid orders (NormalisedInvoice) whose payment this product has recorded, or is
    recording, in AIQ another way (a person allocated it, a rule did): posting the order with
    its own receipt would put the money in AIQ twice. One query for all of them."""
    paid = {i.paid.reference.strip(): i for i in invoices if i.paid is not None}
    if not paid:
        return []
    refs = list(paid)
    problems = []
    found = Payment.objects.filter(
        Q(external_id__in=refs) | Q(bank_reference__in=refs),
        entity=entity_id,
        match_state__in=DECIDED,
    ).order_by("pk")
    for payment in found:
        for ref in {payment.external_id, payment.bank_reference} & set(refs):
            invoice = paid[ref]
            if (payment.match_notes or {}).get(NOTE) == invoice.external_reference:
                continue  # linked to this very order (the order sent again)
            problems.append(
                f"{invoice.external_reference}: its payment {ref} is recorded here already "
                f"({payment.get_match_state_display()}): send the order without its payment, "
                "so the money is not in AIQ twice"
            )
    return problems


def paid_order_context(row: SalesInvoice) -> dict:
    """The invoice page's figures of an already-paid order: its payment date, and the
    payments linked to its receipt."""
    if not row.paid:
        return {}
    return {
        "paid_on": date.fromisoformat(row.paid["paid_on"]),
        "paid_payments": [
            p
            for p in _payments_of(row).order_by("pk")[:5]
            if (p.match_notes or {}).get(NOTE) == row.external_reference
        ],
    }


def paid_orders_follow(rows: list[SalesInvoice]) -> None:
    """The orders moved (posted, linked, failed, sent again, cancelled): their payments, found
    by the order's payment reference, follow. Inside the caller's transaction."""
    entries, rematch = [], []
    for row in rows:
        if not row.paid:
            continue
        payments = list(
            _payments_of(row)
            .select_for_update()
            .filter(match_state__in=FREE + FOLLOWING)
            .order_by("pk")
        )
        _apply(row, payments, entries, rematch)
    audit_log_many(entries)
    auto_match_soon(payment_ids=rematch)


def paid_orders_settled(sender, rows, **kwargs) -> None:
    """sales_invoices_settled: orders posted, linked or refused."""
    paid_orders_follow([row for row in rows if row.paid])
