"""Other receipts and payments (Sage `other_payments`: OTHER_RECEIPT, OTHER_PAYMENT,
OTHER_RECEIPT_REFUND, OTHER_PAYMENT_REFUND) and unidentified money (issue 16.4).

Money into a bank account that is not a customer's (interest, a grant, a transfer between own
accounts) is booked straight to a GL account, with VAT where it applies: one AIQ
`SaveSundryReceiptPaymentsGetBackTransactionIDs` entry per line, external reference
OREC-<receipt id>-<line number>, read back by that reference before any resend. Money out of
it (an expense paid from the bank, a one-off sale refunded) is the same with the entry's Value
negative: AIQ books a sundry bank payment, the GL account and VAT debited.

A payment nobody can identify yet can be
- put on a chosen customer's account: an allocation plan with no lines (payments/services/
  plans.py; `payment_put_on_account` here is the one-step way),
- parked on the suspense account: an other receipt to SUSPENSE_GL_ACCOUNT_CODE, no VAT,
- marked "Not for AIQ" with a reason (and taken back), which changes no books.
Each is audited; the first two go through the same maker-checker as every booking.
"""

from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.money import format_money, quantize
from ledger.models import BankAccount, Customer, GLAccount, OutboxCommand, TaxCode
from ledger.outbox.services import NewCommand
from payments.models import AllocationPlan, Payment
from payments.models_money_later import OtherReceipt, OtherReceiptLine
from payments.services.later import (
    FOLLOW,
    ORIGINS,
    LaterRefused,
    later_approve,
    later_money,
    later_reject,
    needs_approval,
    open_or_send,
    require_clerk,
    require_customer_fits,
)
from payments.services.plan_lines import available_amount
from payments.services.plan_outbox import payment_bank
from payments.services.plans import plan_propose, plan_submit
from staff.maker_checker import record_change
from staff.services import audit_log

ZERO = Decimal(0)
ORIGIN = "other_receipt"
MatchState = Payment.MatchState
# a payment in one of these states has been decided on elsewhere (a plan, a booking)
DECIDED = (MatchState.AWAITING_APPROVAL, MatchState.APPROVED, MatchState.SENT)


def _line(entity, currency: str, number: int, given: dict) -> OtherReceiptLine:
    """One line: GL account, optional tax code, net; the tax is the code's rate of the net
    unless given (Sage sends net, tax and total; they must agree)."""
    prefix = f"payment_lines[{number}]"
    code = str(given.get("gl_account_code") or "").strip()
    if not GLAccount.objects.filter(entity=entity, code=code).exists():
        raise LaterRefused(
            f"{prefix}: GL account {code!r} is not in AIQ.", f"{prefix}.ledger_account_id"
        )
    tax_code = str(given.get("tax_code") or "").strip()
    rate = ZERO
    if tax_code:
        tax = TaxCode.objects.filter(entity=entity, code=tax_code).first()
        if tax is None:
            raise LaterRefused(
                f"{prefix}: tax code {tax_code!r} is not in AIQ.", f"{prefix}.tax_rate_id"
            )
        rate = tax.rate
    net = later_money(given.get("net_amount"), currency, f"{prefix}.net_amount")
    computed = quantize(net * rate / 100, currency, ROUND_HALF_UP)
    tax_amount = computed
    if given.get("tax_amount") not in (None, ""):
        tax_amount = later_money(
            given["tax_amount"], currency, f"{prefix}.tax_amount", zero_ok=True
        )
        if rate == 0 and tax_amount:
            raise LaterRefused(f"{prefix}: tax without a tax rate.", f"{prefix}.tax_amount")
    total = net + tax_amount
    if given.get("total_amount") not in (None, ""):
        stated = later_money(given["total_amount"], currency, f"{prefix}.total_amount")
        if stated != total:
            raise LaterRefused(
                f"{prefix}: net {net} + tax {tax_amount} is {total}, not {stated}.",
                f"{prefix}.total_amount",
            )
    return OtherReceiptLine(
        line_number=number,
        gl_account_code=code,
        tax_code=tax_code,
        tax_rate=rate,
        net_amount=net,
        tax_amount=tax_amount,
        total_amount=total,
        description=str(given.get("description") or "")[:250],
    )


def _lock_payment(payment: Payment) -> Payment:
    payment = Payment.objects.select_for_update().get(pk=payment.pk)
    if (
        payment.match_state in DECIDED
        or payment.plans.filter(state__in=AllocationPlan.LIVE).exists()
    ):
        raise LaterRefused(
            f"Payment {payment.external_id} is already being allocated or booked; "
            "reject or undo that first."
        )
    if payment.match_state == MatchState.IGNORED:
        raise LaterRefused(f"Payment {payment.external_id} is marked Not for AIQ.")
    return payment


def other_receipt_create(
    *,
    actor,
    bank_account: BankAccount,
    lines: list[dict],
    description: str,
    receipt_date: date | None = None,
    reference: str = "",
    total_amount=None,
    customer: Customer | None = None,
    payment: Payment | None = None,
    purpose: str = OtherReceipt.Purpose.OTHER,
    kind: str = OtherReceipt.Kind.OTHER_RECEIPT,
) -> OtherReceipt:
    """Money into `bank_account` booked to GL accounts (or, for the money-out kinds
    OTHER_PAYMENT and OTHER_RECEIPT_REFUND, money out of it: the same lines, a sundry payment
    in AIQ). With `payment`, the lines' total must be the payment's amount (the payment is then
    booked, not allocated); a payment is money in, so never with a money-out kind."""
    if kind not in OtherReceipt.Kind.values:
        raise LaterRefused(f"{kind!r} is not a kind of other payment.", "transaction_type_id")
    money_out = kind in OtherReceipt.MONEY_OUT
    require_clerk(
        actor, "Recording an other payment" if money_out else "Recording an other receipt"
    )
    if money_out and (payment is not None or purpose != OtherReceipt.Purpose.OTHER):
        raise LaterRefused(
            "Money that came in cannot be booked as money out.", "transaction_type_id"
        )
    description = (description or "").strip()
    if not description:
        raise LaterRefused("Say what the money is.", "description")
    if not lines:
        raise LaterRefused("Give at least one line.", "payment_lines")
    entity, currency = bank_account.entity, bank_account.currency
    with transaction.atomic():
        if payment is not None:
            payment = _lock_payment(payment)
            if payment.currency != currency:
                raise LaterRefused(
                    f"The payment is in {payment.currency}; bank account "
                    f"{bank_account.bank_account_code} is in {currency}.",
                    "bank_account_id",
                )
        built = [_line(entity, currency, n, dict(given)) for n, given in enumerate(lines, 1)]
        total = sum((line.total_amount for line in built), ZERO)
        if total_amount not in (None, ""):
            stated = later_money(total_amount, currency, "total_amount")
            if stated != total:
                raise LaterRefused(
                    f"total_amount {stated} is not the lines' total {total}.", "total_amount"
                )
        if payment is not None and total != available_amount(payment):
            raise LaterRefused(
                f"The lines come to {format_money(total, currency)}; the payment is "
                f"{format_money(available_amount(payment), currency)}.",
                "payment_lines",
            )
        row = OtherReceipt(
            entity=entity,
            purpose=purpose,
            kind=kind,
            payment=payment,
            customer=customer,
            bank_account=bank_account,
            receipt_date=receipt_date
            or (timezone.localdate(payment.received_at) if payment else timezone.localdate()),
            reference=(reference or "")[:25],
            description=description[:250],
            total_amount=total,
            currency=currency,
            needs_approval=needs_approval(total),
        )
        row.state = row.State.AWAITING_APPROVAL if row.needs_approval else row.State.SENT
        record_change(row, actor=actor)
        row.full_clean()
        row.save()
        for line in built:
            line.receipt = row
        OtherReceiptLine.objects.bulk_create(built)
        if payment is not None:
            _payment_state(payment, row.state)
        open_or_send(row, actor=actor, snapshot=snapshot(row))
    return row


def payment_to_suspense(*, payment: Payment, actor, reason: str) -> OtherReceipt:
    """Park unidentified money on the suspense account until somebody knows whose it is."""
    reason = (reason or "").strip()
    if not reason:
        raise LaterRefused("Say why the money goes to suspense.", "reason")
    try:
        bank = payment_bank(payment)
    except Exception as error:  # PlanRefused: no bank to receive into
        raise LaterRefused(str(error)) from None
    return other_receipt_create(
        actor=actor,
        bank_account=bank,
        payment=payment,
        purpose=OtherReceipt.Purpose.SUSPENSE,
        description=f"Unidentified: {payment.get_source_display()} {payment.external_id}: {reason}",
        lines=[
            {
                "gl_account_code": settings.SUSPENSE_GL_ACCOUNT_CODE,
                "net_amount": available_amount(payment),
            }
        ],
    )


def _payment_state(payment: Payment, state: str) -> None:
    match_state = {
        OtherReceipt.State.AWAITING_APPROVAL: MatchState.AWAITING_APPROVAL,
        OtherReceipt.State.SENT: MatchState.APPROVED,
        OtherReceipt.State.CONFIRMED: MatchState.SENT,
        OtherReceipt.State.FAILED: MatchState.FAILED,
        OtherReceipt.State.NEEDS_PERSON: MatchState.NEEDS_PERSON,
        OtherReceipt.State.REJECTED: MatchState.UNMATCHED,
    }[state]
    Payment.objects.filter(pk=payment.pk).update(match_state=match_state, updated_at=timezone.now())


def snapshot(row: OtherReceipt) -> dict:
    return {
        "state": row.state,
        "kind": row.kind,
        "purpose": row.purpose,
        "bank_account": row.bank_account.bank_account_code,
        "payment": row.payment.external_id if row.payment_id else None,
        "total_amount": row.total_amount,
        "currency": row.currency,
        "lines": [
            {
                "gl_account": line.gl_account_code,
                "tax_code": line.tax_code,
                "net": line.net_amount,
                "tax": line.tax_amount,
            }
            for line in row.lines.all()
        ],
    }


def other_receipt_approve(*, receipt: OtherReceipt, actor) -> OtherReceipt:
    row = later_approve(row=receipt, actor=actor, snapshot=snapshot)
    if row.payment_id:
        _payment_state(row.payment, row.state)
    return row


def other_receipt_reject(*, receipt: OtherReceipt, actor, reason: str) -> OtherReceipt:
    row = later_reject(row=receipt, actor=actor, reason=reason, snapshot=snapshot)
    if row.payment_id:
        _payment_state(row.payment, row.state)
    return row


def _commands(row: OtherReceipt, actor) -> list[NewCommand]:
    return [
        NewCommand(
            entity=row.entity,
            kind=OutboxCommand.Kind.OTHER_RECEIPT,
            external_reference=f"OREC-{row.pk}-{line.line_number}",
            payload={
                "bank_account_code": row.bank_account.bank_account_code,
                "gl_account_code": line.gl_account_code,
                "tax_code": line.tax_code,
                "tax_rate": str(line.tax_rate),
                "net_amount": str(line.net_amount),
                "tax_amount": str(line.tax_amount),
                "amount": str(line.total_amount),
                "currency": row.currency,
                "receipt_date": row.receipt_date.isoformat(),
                "description": (line.description or row.description)[:250],
                "lodgment_number": row.reference,
                "money_out": row.money_out,
            },
            origin_type=ORIGIN,
            origin_id=row.pk,
            created_by=actor,
        )
        for line in row.lines.all()
    ]


ORIGINS[ORIGIN] = (OtherReceipt, "other_receipt", _commands)


def other_receipt_followed(row: OtherReceipt) -> None:
    """The outbox confirmed or failed it: its payment follows (called by the origin hooks)."""
    if row.payment_id:
        _payment_state(row.payment, row.state)


FOLLOW[ORIGIN] = other_receipt_followed


# --- unidentified money: not for AIQ, or on a chosen customer's account ----------------------


def payment_mark_not_for_aiq(*, payment: Payment, actor, reason: str) -> Payment:
    """Nothing of this payment goes to AIQ (e.g. a transfer between own accounts that AIQ
    already has, a test payment); the reason is kept and audited. Changes no books."""
    require_clerk(actor, "Marking a payment Not for AIQ")
    reason = (reason or "").strip()
    if not reason:
        raise LaterRefused("Say why this payment is not for AIQ.", "reason")
    with transaction.atomic():
        payment = _lock_payment(payment)
        before = {"match_state": payment.match_state}
        payment.proposals.filter(state="open").update(state="superseded")
        Payment.objects.filter(pk=payment.pk).update(
            match_state=MatchState.IGNORED, not_for_aiq_reason=reason, updated_at=timezone.now()
        )
        payment.refresh_from_db()
        audit_log(
            actor=actor,
            action="payment.not_for_aiq",
            obj=payment,
            summary=f"marked Not for AIQ: {reason}",
            before=before,
            after={"match_state": payment.match_state, "reason": reason},
        )
    return payment


def payment_back_to_inbox(*, payment: Payment, actor) -> Payment:
    """Undo "Not for AIQ": the payment is unmatched again (audited)."""
    require_clerk(actor, "Taking a payment back")
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        if payment.match_state != MatchState.IGNORED:
            raise LaterRefused("This payment is not marked Not for AIQ.")
        Payment.objects.filter(pk=payment.pk).update(
            match_state=MatchState.UNMATCHED, not_for_aiq_reason="", updated_at=timezone.now()
        )
        audit_log(
            actor=actor,
            action="payment.back_to_inbox",
            obj=payment,
            summary="taken back from Not for AIQ",
            before={"match_state": MatchState.IGNORED, "reason": payment.not_for_aiq_reason},
            after={"match_state": MatchState.UNMATCHED},
        )
        payment.refresh_from_db()
    return payment


def payment_put_on_account(*, payment: Payment, customer: Customer, actor) -> AllocationPlan:
    """All of an unidentified payment onto a chosen customer's account: a plan with no lines,
    submitted at once (an approver approves it above the threshold, as any plan)."""
    require_clerk(actor, "Putting money on a customer's account")
    require_customer_fits(customer, payment)
    with transaction.atomic():
        if payment.match_state == MatchState.IGNORED:
            raise LaterRefused(f"Payment {payment.external_id} is marked Not for AIQ.")
        plan = plan_propose(payment=payment, lines=[], actor=actor, customer=customer)
        return plan_submit(plan=plan, actor=actor)
