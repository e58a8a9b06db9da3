"""How payments' rows follow the AIQ commands they caused (registered in PaymentsConfig.ready()
with ledger/outbox/origins.py; the outbox itself knows nothing of payments).

- a confirmed receipt that names a payment is linked to it (whatever its origin);
- a confirmed Stripe refund: the Refund learns its Stripe id, the payment its refunded total;
- origin "allocation_plan": the plan is confirmed once every command it caused is (its payment
  shows "Sent to AIQ"); a command refused for good fails the plan (the payment shows "Failed");
- origin "refund": each confirmed step brings the mirror's debit journal and cancelled invoice
  in line; the refund is completed once all its steps are, failed when one is refused.

Every handler is idempotent (it only moves a row forward), as the sweeper may run it again.
"""

from django.utils import timezone

from core.stripe_money import stripe_from_minor
from ledger.aiq.results import as_decimal
from ledger.models import Allocation, DocumentStatus, Invoice, Journal, OutboxCommand, Receipt
from ledger.outbox.origins import Origin, on_confirmed, origin_register
from payments.models import AllocationPlan, Payment, Refund
from staff.services import audit_log

Kind = OutboxCommand.Kind
PLAN = "allocation_plan"
REFUND = "refund"


def _siblings_confirmed(command: OutboxCommand) -> bool:
    siblings = OutboxCommand.objects.filter(
        origin_type=command.origin_type, origin_id=command.origin_id
    )
    return not siblings.exclude(state=OutboxCommand.State.CONFIRMED).exists()


# --- kinds, whatever their origin ---------------------------------------------------------------


def receipt_link_payment(command: OutboxCommand, payload: dict, notes: list[str]) -> None:
    if not payload.get("payment_id"):
        return
    receipt_id = (
        Receipt.objects.filter(
            entity_id=command.entity_id, check_reference=command.external_reference
        )
        .values_list("pk", flat=True)
        .first()
    )
    if receipt_id is not None:
        Payment.objects.filter(pk=payload["payment_id"], receipt__isnull=True).update(
            receipt_id=receipt_id
        )


def stripe_refund_confirmed(command: OutboxCommand, payload: dict, notes: list[str]) -> None:
    """Stripe's figures are absolute, so a webhook arriving before or after agrees with them."""
    result = command.result
    refund = Refund.objects.select_for_update().filter(pk=payload.get("refund_id")).first()
    if refund is None:
        notes.append(f"refund {payload.get('refund_id')} not found")
        return
    if not refund.stripe_refund_id:
        refund.stripe_refund_id = result["stripe_refund_id"]
        refund.save(update_fields=["stripe_refund_id", "updated_at"])
    payment = Payment.objects.select_for_update().filter(pk=refund.payment_id).first()
    if payment is None or "amount_refunded_minor" not in result:
        return
    total = min(
        stripe_from_minor(int(result["amount_refunded_minor"]), payment.currency), payment.amount
    )
    if total > payment.amount_refunded:
        payment.amount_refunded = total
        if payment.status in (Payment.Status.SUCCEEDED, Payment.Status.PARTIALLY_REFUNDED):
            payment.status = (
                Payment.Status.REFUNDED
                if total >= payment.amount
                else Payment.Status.PARTIALLY_REFUNDED
            )
        payment.save(update_fields=["amount_refunded", "status", "updated_at"])


# --- allocation plans ------------------------------------------------------------------------


def _payment_state(plan: AllocationPlan, confirmed: bool, parked: bool = False) -> None:
    state = Payment.MatchState.SENT if confirmed else Payment.MatchState.FAILED
    if parked:
        state = Payment.MatchState.NEEDS_PERSON
    Payment.objects.filter(pk=plan.payment_id).update(match_state=state, updated_at=timezone.now())


def _advance(model, pk, *, expected: tuple, to: str, action: str, summary: str):
    """Move an origin row on (locked, audited); None if it is gone or no longer `expected`
    (a repeated verdict, or a person moved it meanwhile)."""
    row = model.objects.select_for_update().filter(pk=pk).first()
    if row is None or row.state not in expected:
        return None
    before, row.state = row.state, to
    row.save(update_fields=["state", "updated_at"])
    audit_log(
        actor=None,
        action=action,
        obj=row,
        summary=summary[:500],
        before={"state": before},
        after={"state": to},
    )
    return row


def plan_confirmed(command: OutboxCommand, payload: dict, notes: list[str]) -> None:
    """An approved plan is confirmed once every command it caused is."""
    if command.origin_id is None or not _siblings_confirmed(command):
        return
    State = AllocationPlan.State
    plan = _advance(
        AllocationPlan,
        command.origin_id,
        expected=(State.SENT, State.FAILED, State.NEEDS_PERSON),
        to=State.CONFIRMED,
        action="plan.confirm",
        summary="every AIQ command of the plan is confirmed",
    )
    if plan is not None:
        _payment_state(plan, confirmed=True)  # the inbox's "Sent to AIQ" tab
        # a foreign-currency payment whose payout was booked before this allocation was
        # confirmed: its realised FX is booked now (issue 17.5); provider_fx imports the
        # plan outbox, which imports this module's neighbours: imported here
        from payments.services.provider_fx import plan_realised_fx_book

        plan_realised_fx_book(plan_id=plan.pk)


def plan_failed(command: OutboxCommand) -> None:
    """AIQ refused a command for good, or a person cancelled it: the plan will not complete."""
    if command.origin_id is None:
        return
    why = (
        "was cancelled"
        if command.state == OutboxCommand.State.CANCELLED
        else f"was refused by AIQ: {command.last_error_message}"
    )
    plan = _advance(
        AllocationPlan,
        command.origin_id,
        expected=(AllocationPlan.State.SENT, AllocationPlan.State.NEEDS_PERSON),
        to=AllocationPlan.State.FAILED,
        action="plan.fail",
        summary=f"{command.external_reference} {why}",
    )
    if plan is not None:
        _payment_state(plan, confirmed=False)  # the inbox's "Failed" tab: a person must look


def plan_parked(command: OutboxCommand) -> None:
    """A write of a sent plan was parked for a person (attempts used up, duplicates, a bad
    payload): the plan and its payment say a person must act, instead of "sent" for ever. It
    stays live: a retry that confirms it confirms the plan; a cancel fails it."""
    if command.origin_id is None:
        return
    plan = _advance(
        AllocationPlan,
        command.origin_id,
        expected=(AllocationPlan.State.SENT,),
        to=AllocationPlan.State.NEEDS_PERSON,
        action="plan.park",
        summary=(
            f"{command.external_reference} needs a person: {command.last_error_code} "
            f"{command.last_error_message}"
        ),
    )
    if plan is not None:
        _payment_state(plan, confirmed=False, parked=True)


# --- refunds -----------------------------------------------------------------------------------


def _journal_side(command: OutboxCommand, payload: dict) -> None:
    """The shared allocation mirror knows receipts, credit notes and invoices; a refund's
    allocation settles a debit journal, whose open amount is brought down here."""
    journal = (
        Journal.objects.select_for_update()
        .filter(
            entity_id=command.entity_id, aiq_transaction_id=payload.get("settled_transaction_id")
        )
        .first()
    )
    allocation = Allocation.objects.filter(
        entity_id=command.entity_id, reference=command.external_reference
    ).first()
    if journal is None or allocation is None or allocation.journal_id:
        return
    allocation.journal = journal
    allocation.save(update_fields=["journal", "updated_at"])
    journal.outstanding_amount = max(journal.outstanding_amount - as_decimal(payload["amount"]), 0)
    journal.save(update_fields=["outstanding_amount", "updated_at"])


def _credited(payload: dict) -> None:
    """An invoice settled only by credit notes was cancelled, not paid."""
    invoice = Invoice.objects.filter(pk=payload.get("invoice_id")).first()
    if invoice is None or invoice.outstanding_amount != 0 or not payload.get("credit_note_id"):
        return
    paid = invoice.allocations.filter(state=Allocation.State.ACTIVE, receipt__isnull=False)
    if not paid.exists():
        Invoice.objects.filter(pk=invoice.pk).update(
            status=DocumentStatus.CREDITED, updated_at=timezone.now()
        )


def refund_confirmed(command: OutboxCommand, payload: dict, notes: list[str]) -> None:
    if command.origin_id is None:
        return
    if command.kind == Kind.ALLOCATE:
        _journal_side(command, payload)
        _credited(payload)
    if not _siblings_confirmed(command):
        return
    stripe_id = (
        Refund.objects.filter(pk=command.origin_id)
        .values_list("stripe_refund_id", flat=True)
        .first()
    )
    _advance(
        Refund,
        command.origin_id,
        expected=(Refund.State.SENT, Refund.State.NEEDS_PERSON),
        to=Refund.State.COMPLETED,
        action="refund.complete",
        summary="every step of the refund is confirmed"
        + (f" (Stripe refund {stripe_id})" if stripe_id else ""),
    )


def refund_failed(command: OutboxCommand) -> None:
    """A step was refused for good: the refund is failed (its later steps wait for a person)."""
    if command.origin_id is None:
        return
    _advance(
        Refund,
        command.origin_id,
        expected=(Refund.State.SENT, Refund.State.NEEDS_PERSON),
        to=Refund.State.FAILED,
        action="refund.fail",
        summary=f"{command.kind} {command.external_reference} refused: "
        f"{command.last_error_message}",
    )


def refund_parked(command: OutboxCommand) -> None:
    """A step was parked for a person: the refund says so instead of "sent" for ever. It stays
    live: a retry that confirms every step completes it; a cancel fails it."""
    if command.origin_id is None:
        return
    _advance(
        Refund,
        command.origin_id,
        expected=(Refund.State.SENT,),
        to=Refund.State.NEEDS_PERSON,
        action="refund.park",
        summary=f"{command.kind} {command.external_reference} needs a person: "
        f"{command.last_error_code} {command.last_error_message}",
    )


def register() -> None:
    on_confirmed(Kind.POST_RECEIPT, receipt_link_payment)
    on_confirmed(Kind.STRIPE_REFUND, stripe_refund_confirmed)
    origin_register(PLAN, Origin(confirmed=plan_confirmed, failed=plan_failed, parked=plan_parked))
    origin_register(
        REFUND, Origin(confirmed=refund_confirmed, failed=refund_failed, parked=refund_parked)
    )
