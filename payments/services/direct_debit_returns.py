"""Bacs reports applied to the books: a Direct Debit returned unpaid (ARUDD) after it was
booked is reversed by a compensating entry, never deleted; ADDACS and AUDDIS flag the payer.

Per ARUDD item: the SmartDebit payment it returns is found by the payer's reference, amount
and collection date (within a few days); its status becomes Failed (audited, before and
after). If it was already booked in AIQ (a receipt), a refund of kind "made outside" is
proposed for that receipt: a second person approves it and the outbox writes the debit journal
and allocation that bring AIQ back in step (payments/services/refunds.py), exactly as for a
Stripe refund made in Stripe's dashboard. Every notice is kept (DirectDebitNotice); applying
the same report twice changes nothing.
"""

from dataclasses import dataclass, field
from datetime import timedelta

from django.db import transaction

from core.money import format_money
from payments.models import DirectDebitNotice, Payment, Refund, Source
from payments.services.refunds import _draft_credit_note, _paid_invoice, receipt_refundable
from payments.sources.bacs_reports import BacsNotice
from staff.services import audit_log

MATCH_DAYS = 5  # a collection's date in the report vs the date we booked it


@dataclass
class ReturnsApplied:
    notices: int = 0
    already_known: int = 0
    reversed: list[int] = field(default_factory=list)  # payment ids marked failed
    refunds: list[int] = field(default_factory=list)  # compensating refunds proposed
    unmatched: list[str] = field(default_factory=list)  # ARUDD items with no payment here


def _returned_payment(notice: BacsNotice) -> Payment | None:
    candidates = Payment.objects.select_for_update().filter(
        source__in=[Source.SMARTDEBIT, Source.BANK, Source.GOCARDLESS],
        payer_reference=notice.payer_reference,
    )
    if notice.amount is not None:
        candidates = candidates.filter(amount=notice.amount)
    if notice.effective_date:
        day = notice.effective_date
        candidates = candidates.filter(
            received_at__date__gte=day - timedelta(days=MATCH_DAYS),
            received_at__date__lte=day + timedelta(days=MATCH_DAYS),
        )
    return candidates.exclude(status=Payment.Status.FAILED).order_by("received_at").first()


def _compensating_refund(payment: Payment, notice: BacsNotice) -> Refund | None:
    receipt = payment.receipt
    if receipt is None or not receipt.aiq_transaction_id:
        return None  # never booked in AIQ: marking it failed is the whole reversal
    amount = payment.amount
    refund = Refund(
        kind=Refund.Kind.EXTERNAL,
        customer=receipt.customer,
        payment=payment,
        receipt=receipt,
        amount=amount,
        currency=payment.currency,
        reason=f"Direct Debit returned unpaid by the payer's bank (ARUDD code {notice.code}: "
        f"{notice.description or 'no reason given'}); the money never stayed with us.",
    )
    invoice = None
    if receipt_refundable(receipt) < amount:
        invoice = _paid_invoice(receipt, amount)
        refund.invoice = invoice
    refund.full_clean()
    refund.save()
    if invoice is not None:
        _draft_credit_note(refund, amount=amount)
    return refund


def direct_debit_notices_apply(
    *, notices: list[BacsNotice], actor=None, filename=""
) -> ReturnsApplied:
    result = ReturnsApplied()
    with transaction.atomic():
        for notice in notices:
            kept, created = DirectDebitNotice.objects.get_or_create(
                kind=notice.kind,
                payer_reference=notice.payer_reference[:100],
                effective_date=notice.effective_date,
                code=notice.code[:10],
                amount=notice.amount,
                defaults={
                    "payer_name": notice.payer_name[:200],
                    "payer_account": notice.payer_account[:70],
                    "description": notice.description[:200],
                    "currency": notice.currency[:3],
                    "raw": {**notice.raw, "file": filename[:255]},
                },
            )
            if not created:
                result.already_known += 1
                continue
            result.notices += 1
            if notice.kind != "arudd":
                audit_log(
                    actor=actor,
                    action="directdebit.flag",
                    obj=kept,
                    summary=f"{kept.get_kind_display()} for payer {notice.payer_reference}: "
                    f"{notice.code} {notice.description}",
                )
                continue
            payment = _returned_payment(notice)
            if payment is None:
                result.unmatched.append(notice.payer_reference)
                audit_log(
                    actor=actor,
                    action="directdebit.return_unmatched",
                    obj=kept,
                    summary=f"ARUDD {notice.payer_reference} "
                    f"{format_money(notice.amount, notice.currency) if notice.amount else ''}: "
                    "no collection found here",
                )
                continue
            before = payment.status
            payment.status = Payment.Status.FAILED
            payment.save(update_fields=["status", "updated_at"])
            refund = _compensating_refund(payment, notice)
            kept.payment, kept.refund = payment, refund
            kept.save(update_fields=["payment", "refund"])
            result.reversed.append(payment.pk)
            if refund is not None:
                result.refunds.append(refund.pk)
            audit_log(
                actor=actor,
                action="payment.status",
                obj=payment,
                summary=f"Direct Debit {payment.shown_reference} returned unpaid (ARUDD "
                f"{notice.code}): {before} -> failed"
                + (f"; reversal proposed as refund {refund.pk}" if refund else ""),
                before={"status": before},
                after={"status": "failed", "refund_id": refund.pk if refund else None},
            )
    return result
