"""Refunds and credit notes: requested by a clerk, approved by somebody else, written once.

Kinds (payments.models.Refund.Kind) and what each may take back:
- cancel_invoice: an unpaid (or part-paid) invoice is reduced by a credit note, up to what is
  still outstanding and not held by a live allocation plan or another pending credit.
- refund_invoice: money paid for an invoice goes back through the payment it came from, up to
  what that payment's receipt paid on the invoice (less earlier refunds) and what the payment
  still has (less what Stripe has refunded already).
- refund_on_account: money a receipt left unallocated goes back. An allocated receipt is refused
  (ReceiptAllocated) until the allocation is reversed: Sage's rule, and AIQ's books would not
  balance otherwise. `refund_unallocate_first` is the one-click way there.
- external: a refund made in the Stripe dashboard, proposed by the webhook hook, approved like
  any other so the books follow the money.

Checks are made under row locks (payment, then receipt, then invoice), in the service and by the
database (refund_amount_gt_0, refund_approver_is_not_maker, refund_stripe_id_unique). The maker
is whoever asked for the refund or last changed it (refund_edit; staff/maker_checker.py).
Approval queues every step in the same transaction (payments/services/refund_steps.py).
"""

from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from core.money import MoneyError, exact, format_money
from core.stripe_money import stripe_from_minor
from ledger.models import Allocation, BankAccount, CreditNote, Invoice, OutboxCommand, Receipt
from ledger.outbox.services import outbox_enqueue
from payments.models import Payment, Refund, Unallocation
from payments.services.contact_allocations import credit_note_open, held_on_receipts
from payments.services.credit_notes import (
    CreditNoteRefused,
    LinePick,
    credit_lines_for,
    credit_note_draft,
)
from payments.services.plan_lines import reserved_elsewhere
from payments.services.refund_steps import (
    ORIGIN,
    RefundStepError,
    reference,
    refund_compensation_step,
    refund_steps,
)
from payments.services.unallocations import allocation_unallocate
from staff.maker_checker import check_approver, is_maker, record_approval, record_change
from staff.models import Role
from staff.services import audit_log, user_has_role

Kind, State = Refund.Kind, Refund.State
ZERO = Decimal(0)
# decided or asked for, not yet in the books (one parked for a person may still get there)
LIVE = (State.REQUESTED, State.APPROVED, State.SENT, State.NEEDS_PERSON)
HOLDING = (*LIVE, State.COMPLETED)  # everything that takes money back from a payment
STRIPE_METADATA_KEY = "aiqrecon_refund"


class RefundRefused(ValidationError):
    """A refund that would break a rule; the message says which, for a person to read."""


class ReceiptAllocated(RefundRefused):
    """The money is allocated to invoices; `allocations` are what must be reversed first."""

    def __init__(self, message: str, allocations: list[Allocation]):
        super().__init__(message)
        self.allocations = allocations


def _total(rows) -> Decimal:
    return sum((r.amount for r in rows), ZERO)


def _others(refunds, excluding: Refund | None):
    """`excluding`: the refund being edited, whose own old amount must not limit its new one."""
    return refunds.exclude(pk=excluding.pk) if excluding is not None else refunds


def payment_refundable(payment: Payment, excluding: Refund | None = None) -> Decimal:
    """What can still go back: refunds recorded here and what Stripe says it refunded overlap
    (ours are both), so the larger of the two is taken."""
    held = _total(_others(payment.refunds.filter(state__in=HOLDING), excluding))
    return max(payment.amount - max(payment.amount_refunded, held), ZERO)


def receipt_refundable(receipt: Receipt, excluding: Refund | None = None) -> Decimal:
    """Money on account not yet asked for: by a refund, or by a later allocation to invoices."""
    pending = _total(_others(receipt.refunds.filter(state__in=LIVE), excluding))
    held = held_on_receipts([receipt.pk]).get(receipt.pk, ZERO)
    return max(receipt.unallocated_amount - pending - held, ZERO)


def invoice_paid_by(invoice: Invoice, receipt: Receipt, excluding: Refund | None = None) -> Decimal:
    """Cash this receipt paid on the invoice, less refunds of it already asked for or made."""
    paid = _total(invoice.allocations.filter(receipt=receipt, state=Allocation.State.ACTIVE))
    refunds = invoice.refunds.filter(
        receipt=receipt, kind__in=[Kind.REFUND_INVOICE, Kind.EXTERNAL], state__in=HOLDING
    )
    refunded = _total(_others(refunds, excluding))
    return max(paid - refunded, ZERO)


def invoice_creditable(invoice: Invoice, excluding: Refund | None = None) -> Decimal:
    held = reserved_elsewhere([invoice.pk]).get(invoice.pk, ZERO)
    pending = sum(
        (
            r.credit_note.gross_amount if r.credit_note_id else r.amount
            for r in _others(
                invoice.refunds.filter(kind=Kind.CANCEL_INVOICE, state__in=LIVE), excluding
            )
        ),
        ZERO,
    )
    return max(invoice.outstanding_amount - held - pending, ZERO)


def invoice_payments(invoice: Invoice):
    """Payments whose receipts are allocated to the invoice: where its money came from."""
    return Payment.objects.filter(
        receipt__allocations__invoice=invoice,
        receipt__allocations__state=Allocation.State.ACTIVE,
    ).distinct()


def _amount(value, currency: str) -> Decimal:
    try:
        amount = exact(value, currency)
    except MoneyError as error:
        raise RefundRefused(str(error)) from None
    if amount <= 0:
        raise RefundRefused("The amount must be greater than zero.")
    return amount


def _too_much(amount, limit, currency, what: str) -> RefundRefused:
    return RefundRefused(
        f"{format_money(amount, currency)} is more than {what} ({format_money(limit, currency)})."
    )


def _snapshot(refund: Refund) -> dict:
    return {
        "kind": refund.kind,
        "state": refund.state,
        "amount": refund.amount,
        "currency": refund.currency,
        "invoice": str(refund.invoice) if refund.invoice_id else None,
        "payment": refund.payment.external_id if refund.payment_id else None,
        "receipt": refund.receipt.check_reference if refund.receipt_id else None,
        "credit_note": refund.credit_note.external_reference if refund.credit_note_id else None,
        "stripe_refund_id": refund.stripe_refund_id,
    }


def _picked_amount(invoice: Invoice, picks: list[LinePick]):
    """What the picked lines (a quantity or an amount of each) add up to, gross."""
    try:
        drafts = credit_lines_for(invoice=invoice, picks=picks)
    except CreditNoteRefused as error:
        raise RefundRefused(str(error)) from None
    return sum((draft.gross_amount for draft in drafts), ZERO)


def _draft_credit_note(refund: Refund, *, line_ids=None, amount=None, picks=None) -> None:
    try:
        lines = credit_lines_for(
            invoice=refund.invoice, line_ids=line_ids, amount=amount, picks=picks
        )
    except CreditNoteRefused as error:
        raise RefundRefused(str(error)) from None
    refund.credit_note = credit_note_draft(
        invoice=refund.invoice, reference=reference(refund, "cn"), lines=lines, reason=refund.reason
    )
    refund.save(update_fields=["credit_note", "updated_at"])


def _lock_payment(payment: Payment | None) -> Payment | None:
    if payment is None:
        return None
    return (
        Payment.objects.select_for_update(of=("self",)).select_related("receipt").get(pk=payment.pk)
    )


def refund_request(
    *,
    actor,
    kind: str,
    reason: str,
    amount=None,
    invoice: Invoice | None = None,
    payment: Payment | None = None,
    line_ids: list[int] | None = None,
    picks: list[LinePick] | None = None,
    credit_note: CreditNote | None = None,
    bank_account: BankAccount | None = None,
) -> Refund:
    """A clerk asks for a refund or a credit note; nothing reaches AIQ or Stripe until a second
    person approves it. `line_ids` chooses whole invoice lines (cancel_invoice); `picks` a
    quantity or an amount of chosen lines (cancel_invoice, refund_invoice); otherwise
    `amount`, spread over the invoice's lines."""
    if not user_has_role(actor, Role.CLERK):
        raise PermissionDenied("Requesting a refund needs the clerk role.")
    reason = (reason or "").strip()
    if not reason:
        raise RefundRefused("Say why the money goes back.")
    if kind not in (
        Kind.CANCEL_INVOICE,
        Kind.REFUND_INVOICE,
        Kind.REFUND_ON_ACCOUNT,
        Kind.REFUND_CREDIT_NOTE,
    ):
        raise RefundRefused(f"{kind!r} refunds cannot be requested by hand.")
    if picks and kind not in (Kind.CANCEL_INVOICE, Kind.REFUND_INVOICE):
        raise RefundRefused("Invoice lines can be picked only for an invoice's credit note.")
    with transaction.atomic():
        payment = _lock_payment(payment)
        if invoice is not None:
            invoice = (
                Invoice.objects.select_for_update().select_related("customer").get(pk=invoice.pk)
            )
        if kind == Kind.REFUND_ON_ACCOUNT:
            refund = _request_on_account(payment, amount)
        elif kind == Kind.REFUND_CREDIT_NOTE:
            refund = _request_credit_note(credit_note, amount)
        elif invoice is None:
            raise RefundRefused("Choose the invoice.")
        elif invoice.aiq_transaction_id is None:
            raise RefundRefused(f"Invoice {invoice} is not posted in AIQ; nothing to credit.")
        elif picks and (line_ids or amount not in (None, "")):
            raise RefundRefused(
                "Pick quantities or amounts of lines, or give one amount: not both."
            )
        elif kind == Kind.CANCEL_INVOICE:
            if picks:
                amount = _picked_amount(invoice, picks)
            refund = _request_cancel(invoice, amount, line_ids)
        else:
            if picks:
                amount = _picked_amount(invoice, picks)
            refund = _request_invoice_refund(invoice, payment, amount)
        refund.kind, refund.reason = kind, reason
        if bank_account is not None:
            if bank_account.entity_id != refund.customer.entity_id:
                raise RefundRefused("That bank account belongs to another company.")
            refund.bank_account = bank_account
        record_change(refund, actor=actor)
        refund.full_clean()
        refund.save()
        if kind in (Kind.CANCEL_INVOICE, Kind.REFUND_INVOICE):
            _draft_credit_note(
                refund,
                line_ids=line_ids if kind == Kind.CANCEL_INVOICE else None,
                amount=refund.amount,
                picks=picks,
            )
            refund.amount = refund.credit_note.gross_amount
            refund.save(update_fields=["amount", "updated_at"])
        audit_log(
            actor=actor,
            action="refund.request",
            obj=refund,
            summary=f"{refund.get_kind_display()}: {format_money(refund.amount, refund.currency)}"
            f" for {refund.customer.code}: {reason}",
            after=_snapshot(refund),
        )
    return refund


def _request_cancel(invoice: Invoice, amount, line_ids, excluding=None) -> Refund:
    limit = invoice_creditable(invoice, excluding)
    if line_ids:
        chosen = invoice.lines.filter(pk__in=line_ids)
        amount = sum((line.gross_amount for line in chosen), ZERO)
        if amount <= 0:
            raise RefundRefused(f"Choose lines of invoice {invoice} to credit.")
    amount = invoice.outstanding_amount if amount in (None, "") else amount
    amount = _amount(amount, invoice.currency)
    if amount > limit:
        raise _too_much(amount, limit, invoice.currency, f"invoice {invoice} has open to credit")
    return Refund(
        customer=invoice.customer, invoice=invoice, amount=amount, currency=invoice.currency
    )


def _request_invoice_refund(
    invoice: Invoice, payment: Payment | None, amount, excluding=None
) -> Refund:
    if payment is None:
        payers = list(invoice_payments(invoice)[:2])
        if not payers:
            raise RefundRefused(
                f"No payment recorded here paid invoice {invoice}: there is no money to send back "
                "from this app (cancel it with a credit note instead, if it is unpaid)."
            )
        if len(payers) > 1:
            raise RefundRefused(f"Several payments paid invoice {invoice}: choose which one.")
        payment = _lock_payment(payers[0])
    receipt = payment.receipt
    if receipt is None or receipt.aiq_transaction_id is None:
        raise RefundRefused(f"Payment {payment.external_id} is not in AIQ as a receipt yet.")
    limit = min(
        invoice_paid_by(invoice, receipt, excluding), payment_refundable(payment, excluding)
    )
    amount = _amount(limit if amount in (None, "") else amount, invoice.currency)
    if limit <= 0:
        raise RefundRefused(f"Nothing of invoice {invoice} paid by {payment.external_id} is left.")
    if amount > limit:
        raise _too_much(amount, limit, invoice.currency, "was paid and is not yet refunded")
    return Refund(
        customer=invoice.customer,
        invoice=invoice,
        payment=payment,
        receipt=receipt,
        amount=amount,
        currency=invoice.currency,
    )


def _request_on_account(payment: Payment | None, amount, excluding=None) -> Refund:
    if payment is None:
        raise RefundRefused("Choose the payment to refund.")
    receipt = Receipt.objects.select_for_update().filter(pk=payment.receipt_id).first()
    if receipt is None or receipt.aiq_transaction_id is None:
        raise RefundRefused(
            f"Payment {payment.external_id} is not in AIQ as a receipt yet; approve its "
            "allocation plan first (or reject it, if the money should simply go back)."
        )
    currency = receipt.currency
    refundable = receipt_refundable(receipt, excluding)
    amount = _amount(refundable if amount in (None, "") else amount, currency)
    limit = min(refundable, payment_refundable(payment, excluding))
    if amount > limit:
        allocations = list(
            receipt.allocations.filter(state=Allocation.State.ACTIVE).select_related("invoice")
        )
        if allocations and amount <= payment_refundable(payment, excluding):
            names = ", ".join(
                f"{a.invoice or a.transaction_id_2} ({format_money(a.amount, a.currency)})"
                for a in allocations
            )
            raise ReceiptAllocated(
                f"Only {format_money(limit, currency)} of this payment is on account; the rest "
                f"is allocated to {names}. Unallocate first, then refund.",
                allocations,
            )
        raise _too_much(amount, limit, currency, "is on account and not yet refunded")
    return Refund(
        customer=receipt.customer,
        payment=payment,
        receipt=receipt,
        amount=amount,
        currency=currency,
    )


def _request_credit_note(note: CreditNote | None, amount) -> Refund:
    """A posted credit note's open amount (less what refunds and later allocations already
    hold) is paid back to the customer."""
    if note is None:
        raise RefundRefused("Choose the credit note to refund.")
    note = CreditNote.objects.select_for_update().select_related("customer").get(pk=note.pk)
    if note.aiq_transaction_id is None:
        raise RefundRefused(f"Credit note {note} is not posted in AIQ yet.")
    limit = credit_note_open(note)
    if limit <= 0:
        raise RefundRefused(f"Credit note {note} has nothing open to refund.")
    amount = _amount(limit if amount in (None, "") else amount, note.currency)
    if amount > limit:
        raise _too_much(amount, limit, note.currency, f"credit note {note} has open")
    return Refund(customer=note.customer, credit_note=note, amount=amount, currency=note.currency)


def _lock(refund: Refund) -> Refund:
    # of=self: lock the refund row only (PostgreSQL refuses FOR UPDATE on outer-joined rows)
    return (
        Refund.objects.select_for_update(of=("self",))
        .select_related("customer__entity", "payment", "receipt", "invoice", "credit_note")
        .get(pk=refund.pk)
    )


def refund_approve(*, refund: Refund, actor) -> Refund:
    """A second person approves: the Stripe refund and the AIQ entries are queued, in order."""
    if not user_has_role(actor, Role.APPROVER):
        raise PermissionDenied("Approving a refund needs the approver role.")
    with transaction.atomic():
        refund = _lock(refund)
        check_approver(refund, actor=actor, what="this refund")
        if refund.state != State.REQUESTED:
            raise RefundRefused(f"This refund is {refund.get_state_display().lower()}.")
        before = _snapshot(refund)
        try:
            steps = refund_steps(refund)
        except RefundStepError as error:
            if refund.kind != Kind.EXTERNAL:
                raise RefundRefused(str(error)) from None
            steps = []  # made outside, never booked in AIQ: nothing to reverse there
        record_approval(refund, actor=actor, what="this refund")
        refund.state = State.SENT if steps else State.COMPLETED
        refund.full_clean()
        refund.save(update_fields=["approver", "approved_at", "state", "updated_at"])
        commands = _enqueue(refund, steps, actor)
        audit_log(
            actor=actor,
            action="refund.approve",
            obj=refund,
            summary=f"approved; {len(commands)} command(s) queued"
            if commands
            else "approved; the payment is not in AIQ, so nothing to book",
            before=before,
            after={**_snapshot(refund), "commands": [c.external_reference for c in commands]},
        )
    return refund


def _enqueue(refund: Refund, steps, actor) -> list[OutboxCommand]:
    entity = refund.customer.entity
    made: dict[str, OutboxCommand] = {}
    for step in steps:
        made[step.key] = outbox_enqueue(
            entity=entity,
            kind=step.kind,
            payload=step.payload,
            external_reference=step.reference,
            depends_on=made.get(step.depends) if step.depends else None,
            origin_type=ORIGIN,
            origin_id=refund.pk,
            created_by=actor,
        )
    return list(made.values())


def refund_reject(*, refund: Refund, actor, reason: str) -> Refund:
    """An approver rejects (or the requester withdraws) a refund that was not approved yet.
    Its draft credit note never reached AIQ and is removed; the audit entry keeps its lines."""
    reason = (reason or "").strip()
    if not reason:
        raise RefundRefused("Say why the refund is rejected.")
    with transaction.atomic():
        refund = _lock(refund)
        own = is_maker(refund, actor)
        if not (user_has_role(actor, Role.APPROVER) or (own and user_has_role(actor, Role.CLERK))):
            raise PermissionDenied("Rejecting a refund needs the approver role.")
        if refund.state != State.REQUESTED:
            raise RefundRefused(
                f"A {refund.get_state_display().lower()} refund cannot be rejected."
            )
        before = _snapshot(refund)
        refund.state = State.REJECTED
        _drop_draft_credit_note(refund, before)
        audit_log(
            actor=actor,
            action="refund.reject",
            obj=refund,
            summary=f"rejected: {reason}",
            before=before,
            after={"state": refund.state, "reason": reason},
        )
    return refund


def _drop_draft_credit_note(refund: Refund, before: dict) -> None:
    """Unlink (and save) the refund's draft credit note and remove it: it never reached AIQ.
    `before` (the audit snapshot) keeps its lines."""
    note = refund.credit_note
    if note is not None:
        before["credit_note_lines"] = list(
            note.lines.values("description", "net_amount", "tax_amount")
        )
    refund.credit_note = None
    refund.save()
    if note is not None and note.aiq_transaction_id is None:
        note.lines.all().delete()
        note.delete()


def refund_edit(*, refund: Refund, actor, amount, reason: str = "") -> Refund:
    """Change the amount (and the reason) of a refund still awaiting approval, within the same
    limits as a request. Whoever edits it is its maker from now on, so a different person must
    approve it: an approver who changes a clerk's refund cannot then approve it themselves."""
    if not user_has_role(actor, Role.CLERK):
        raise PermissionDenied("Changing a refund needs the clerk role.")
    reason = (reason or "").strip()
    with transaction.atomic():
        refund = _lock(refund)
        if refund.state != State.REQUESTED:
            raise RefundRefused(f"A {refund.get_state_display().lower()} refund cannot be changed.")
        if refund.kind == Kind.EXTERNAL:
            raise RefundRefused("A refund made in Stripe is for what Stripe refunded.")
        payment = _lock_payment(refund.payment)
        invoice = (
            Invoice.objects.select_for_update().get(pk=refund.invoice_id)
            if refund.invoice_id
            else None
        )
        if refund.kind == Kind.REFUND_ON_ACCOUNT:
            amount = _request_on_account(payment, amount, excluding=refund).amount
        elif refund.kind == Kind.CANCEL_INVOICE:
            amount = _request_cancel(invoice, amount, None, excluding=refund).amount
        else:
            amount = _request_invoice_refund(invoice, payment, amount, excluding=refund).amount
        before = _snapshot(refund)
        _drop_draft_credit_note(refund, before)
        refund.amount, refund.reason = amount, reason or refund.reason
        record_change(refund, actor=actor)
        refund.full_clean()
        refund.save()
        if refund.invoice_id:
            _draft_credit_note(refund, amount=refund.amount)
            refund.amount = refund.credit_note.gross_amount
            refund.save(update_fields=["amount", "updated_at"])
        audit_log(
            actor=actor,
            action="refund.edit",
            obj=refund,
            summary=f"changed to {format_money(refund.amount, refund.currency)} by its new maker;"
            " needs a different person's approval",
            before=before,
            after=_snapshot(refund),
        )
    return refund


def refund_unallocate_first(*, payment: Payment, actor, reason: str) -> list[Unallocation]:
    """The one-click path for an allocated receipt: undo its allocations in AIQ (each above the
    threshold waits for a second person), after which the money is on account and can be
    refunded."""
    receipt = payment.receipt
    if receipt is None:
        raise RefundRefused("This payment is not in AIQ as a receipt.")
    allocations = receipt.allocations.filter(state=Allocation.State.ACTIVE).order_by("pk")
    with transaction.atomic():
        return [
            allocation_unallocate(allocation=a, actor=actor, reason=f"to refund: {reason}")
            for a in allocations
        ]


def refund_external_propose(*, payment: Payment, stripe_refund: dict) -> Refund | None:
    """A refund made outside the app reached a payment: propose the AIQ entries for approval.
    One proposal per Stripe refund (refund_stripe_id_unique); our own refunds are recognised by
    their metadata and only linked. Returns None when there is nothing to propose."""
    refund_id = stripe_refund["id"]
    ours = (stripe_refund.get("metadata") or {}).get(STRIPE_METADATA_KEY)
    with transaction.atomic():
        if ours:
            Refund.objects.filter(pk=int(ours), stripe_refund_id="").update(
                stripe_refund_id=refund_id, updated_at=timezone.now()
            )
            return None
        existing = Refund.objects.filter(stripe_refund_id=refund_id).first()
        if existing is not None:
            return existing
        payment = _lock_payment(payment)
        receipt = payment.receipt
        customer = receipt.customer if receipt else payment.customer
        if customer is None:
            return None  # not matched to a customer: not in AIQ, nothing to book against
        amount = stripe_from_minor(int(stripe_refund.get("amount") or 0), payment.currency)
        if amount <= 0:
            return None
        refund = Refund(
            kind=Kind.EXTERNAL,
            customer=customer,
            payment=payment,
            amount=amount,
            currency=payment.currency,
            stripe_refund_id=refund_id,
            reason=f"Refunded in Stripe outside this app ({refund_id}"
            + (f", reason: {stripe_refund['reason']}" if stripe_refund.get("reason") else "")
            + ").",
        )
        invoice = None
        if receipt is not None and receipt.aiq_transaction_id:
            if receipt_refundable(receipt) >= amount:
                refund.receipt = receipt  # the money was on account: journal against it
            else:
                invoice = _paid_invoice(receipt, amount)
                refund.invoice, refund.receipt = invoice, receipt
        refund.full_clean()
        refund.save()
        if invoice is not None:
            _draft_credit_note(refund, amount=amount)
        audit_log(
            actor=None,
            action="refund.propose_external",
            obj=refund,
            summary=f"Stripe refund {refund_id} of {format_money(amount, refund.currency)} made "
            f"outside the app: AIQ entries proposed for approval",
            after=_snapshot(refund),
        )
        return refund


def _paid_invoice(receipt: Receipt, amount: Decimal) -> Invoice | None:
    """The invoice this receipt paid that can carry the credit (most recent first)."""
    allocations = receipt.allocations.filter(
        state=Allocation.State.ACTIVE, invoice__isnull=False
    ).select_related("invoice")
    for allocation in allocations.order_by("-allocation_date", "-pk"):
        if invoice_paid_by(allocation.invoice, receipt) >= amount:
            return allocation.invoice
    return None


def refund_stripe_update(*, stripe_refund: dict) -> Refund | None:
    """Stripe reports a refund as it is now. A refund that failed (or was canceled) after we
    booked it gets a compensating entry in AIQ; nothing is deleted. Repeats are harmless."""
    if stripe_refund.get("status") not in ("failed", "canceled"):
        return None
    with transaction.atomic():
        refund = (
            Refund.objects.select_for_update().filter(stripe_refund_id=stripe_refund["id"]).first()
        )
        if refund is None or refund.state in (State.FAILED, State.REJECTED):
            return refund
        before = _snapshot(refund)
        journal = OutboxCommand.objects.filter(
            origin_type=ORIGIN,
            origin_id=refund.pk,
            kind=OutboxCommand.Kind.POST_SALES_DEBIT_JOURNAL,
        ).first()
        compensation = None
        if journal is not None and journal.state != OutboxCommand.State.CANCELLED:
            step = refund_compensation_step(refund, journal)
            compensation = outbox_enqueue(
                entity=journal.entity,
                kind=step.kind,
                payload=step.payload,
                external_reference=step.reference,
                depends_on=journal,
                origin_type=ORIGIN,
                origin_id=refund.pk,
            )
        refund.state = State.FAILED
        refund.save(update_fields=["state", "updated_at"])
        audit_log(
            actor=None,
            action="refund.stripe_failed",
            obj=refund,
            summary=f"Stripe refund {refund.stripe_refund_id} {stripe_refund['status']}"
            + (
                f" ({stripe_refund['failure_reason']})"
                if stripe_refund.get("failure_reason")
                else ""
            )
            + (
                f"; {compensation.external_reference} queued to reverse the debit journal"
                if compensation
                else "; nothing was booked in AIQ"
            ),
            before=before,
            after={"state": refund.state},
        )
        return refund
