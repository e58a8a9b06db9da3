"""The decision cycle shared by later allocations and other receipts (payments/models_money_later.py).

A clerk makes one (the maker). At or below APPROVAL_THRESHOLD it is approved by the making
itself and its AIQ commands are queued in the same transaction; above it, it waits for an
approver who is not the maker (checked here and by the database). Approve and reject lock the
row and re-read its state, so a double click or two approvers at once decide once. The outbox
moves it to confirmed when all of its commands are confirmed, to failed when one is refused
(`later_confirmed` / `later_failed`, called for their origin types by ledger/outbox/mirror.py).
"""

from collections.abc import Callable
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from core.money import MoneyError, exact
from ledger.models import OutboxCommand
from ledger.outbox.origins import Origin, origin_register
from ledger.outbox.services import NewCommand, outbox_enqueue_many
from payments.models_money_later import (
    ContactAllocation,
    CrossCompanyReceipt,
    LaterState,
    OtherReceipt,
)
from staff.maker_checker import check_approver, record_approval
from staff.models import Role
from staff.services import audit_log, user_has_role

State = LaterState


class LaterRefused(ValidationError):
    """A request that breaks a rule; the message says which, for a person (or an API client)
    to read. `field` names the input it is about, when there is one."""

    def __init__(self, message: str, field: str = ""):
        super().__init__(message)
        self.field = field


def later_money(value, currency: str, field: str, *, zero_ok: bool = False) -> Decimal:
    """An amount typed or sent: exact in the currency, above zero (or zero where allowed)."""
    try:
        amount = exact(value, currency)
    except MoneyError as error:
        raise LaterRefused(f"{field}: {error}", field) from None
    if amount < 0 or (amount == 0 and not zero_ok):
        raise LaterRefused(f"{field}: the amount must be greater than zero.", field)
    return amount


def require_clerk(actor, what: str) -> None:
    if not user_has_role(actor, Role.CLERK):
        raise PermissionDenied(f"{what} needs the clerk role.")


def require_customer_fits(customer, payment) -> None:
    """The customer can take this payment's money: same company, billed in its currency."""
    if customer.entity_id != payment.entity_id:
        raise LaterRefused("That customer belongs to another company.", "customer")
    if customer.currency != payment.currency:
        raise LaterRefused(
            f"{customer.code} is billed in {customer.currency}; the payment is in "
            f"{payment.currency}.",
            "customer",
        )


def needs_approval(amount: Decimal) -> bool:
    return amount > settings.APPROVAL_THRESHOLD


# origin type -> (model, audit prefix, fn(row, actor) -> the row's outbox commands)
ORIGINS: dict[str, tuple[type, str, Callable]] = {}
# origin type -> fn(row): what else follows the row's state (e.g. its payment's state)
FOLLOW: dict[str, Callable] = {}


def origin_of(row) -> str:
    return {
        ContactAllocation: "contact_allocation",
        OtherReceipt: "other_receipt",
        CrossCompanyReceipt: "cross_company_receipt",
    }[type(row)]


def hand_to_outbox(row, actor) -> list[int]:
    _model, _prefix, commands = ORIGINS[origin_of(row)]
    built: list[NewCommand] = commands(row, actor)
    return outbox_enqueue_many(built)


def open_or_send(row, *, actor, snapshot: dict) -> None:
    """Just made (and saved) by `actor`: send it now or leave it for an approver."""
    _model, prefix, _commands = ORIGINS[origin_of(row)]
    if row.needs_approval:
        summary = "waits for an approver (above the approval threshold)"
    else:
        ids = hand_to_outbox(row, actor)
        summary = f"at or below the approval threshold: {len(ids)} AIQ command(s) queued"
    audit_log(actor=actor, action=f"{prefix}.create", obj=row, summary=summary, after=snapshot)


def _lock(row):
    return type(row).objects.select_for_update().get(pk=row.pk)


def later_approve(*, row, actor, snapshot: Callable):
    """A second person approves: the AIQ commands are queued in the same transaction."""
    if not user_has_role(actor, Role.APPROVER):
        raise PermissionDenied("Approving needs the approver role.")
    _model, prefix, _commands = ORIGINS[origin_of(row)]
    with transaction.atomic():
        row = _lock(row)
        check_approver(row, actor=actor)
        if row.state != State.AWAITING_APPROVAL:
            raise LaterRefused(f"This is {row.get_state_display().lower()}; nothing to approve.")
        before = snapshot(row)
        record_approval(row, actor=actor)
        row.state = State.SENT
        row.save(update_fields=["state", "approver", "approved_at", "updated_at"])
        ids = hand_to_outbox(row, actor)
        audit_log(
            actor=actor,
            action=f"{prefix}.approve",
            obj=row,
            summary=f"approved; {len(ids)} AIQ command(s) queued",
            before=before,
            after=snapshot(row),
        )
    return row


def later_reject(*, row, actor, reason: str, snapshot: Callable):
    """An approver rejects it, or its maker withdraws it, before it was approved."""
    reason = (reason or "").strip()
    if not reason:
        raise LaterRefused("Say why.", "reason")
    _model, prefix, _commands = ORIGINS[origin_of(row)]
    with transaction.atomic():
        row = _lock(row)
        own = row.maker_id == actor.pk and user_has_role(actor, Role.CLERK)
        if not (own or user_has_role(actor, Role.APPROVER)):
            raise PermissionDenied("Rejecting needs the approver role.")
        if row.state != State.AWAITING_APPROVAL:
            raise LaterRefused(f"This is {row.get_state_display().lower()}; it cannot be rejected.")
        before = snapshot(row)
        row.state, row.rejection_reason = State.REJECTED, reason
        row.save(update_fields=["state", "rejection_reason", "updated_at"])
        audit_log(
            actor=actor,
            action=f"{prefix}.reject",
            obj=row,
            summary=("withdrawn: " if own else "rejected: ") + reason,
            before=before,
            after=snapshot(row),
        )
    return row


def _follow(command: OutboxCommand, *, expected: tuple, to: str, action: str, summary: str):
    """Move the row that caused `command` from one of `expected` to `to` (locked, followed by
    its FOLLOW handler, audited); nothing if it is gone or no longer in `expected`."""
    if command.origin_type not in ORIGINS or command.origin_id is None:
        return
    model, prefix, _commands = ORIGINS[command.origin_type]
    row = model.objects.select_for_update().filter(pk=command.origin_id).first()
    if row is None or row.state not in expected:
        return
    before = row.state
    row.state = to
    row.save(update_fields=["state", "updated_at"])
    if command.origin_type in FOLLOW:
        FOLLOW[command.origin_type](row)
    audit_log(
        actor=None,
        action=f"{prefix}.{action}",
        obj=row,
        summary=summary[:500],
        before={"state": before},
        after={"state": row.state},
    )


def later_confirmed(command: OutboxCommand) -> None:
    """After a confirmed command: the row is confirmed once all of its commands are."""
    siblings = OutboxCommand.objects.filter(
        origin_type=command.origin_type, origin_id=command.origin_id
    )
    if siblings.exclude(state=OutboxCommand.State.CONFIRMED).exists():
        return
    _follow(
        command,
        expected=(State.SENT, State.FAILED, State.NEEDS_PERSON),
        to=State.CONFIRMED,
        action="confirm",
        summary="every AIQ command is confirmed",
    )


def later_failed(command: OutboxCommand) -> None:
    """AIQ refused a command for good, or a person cancelled it."""
    _follow(
        command,
        expected=(State.SENT, State.NEEDS_PERSON),
        to=State.FAILED,
        action="fail",
        summary=f"{command.external_reference} was cancelled"
        if command.state == OutboxCommand.State.CANCELLED
        else f"AIQ refused {command.external_reference}: {command.last_error_message}",
    )


def later_parked(command: OutboxCommand) -> None:
    """A command was parked for a person (attempts used up, a duplicate, a bad payload): the row
    (and an other receipt's payment) says a person must act instead of "sent" for ever. It
    stays live and holds its money: a retry that confirms it confirms the row; a cancel fails
    it."""
    _follow(
        command,
        expected=(State.SENT,),
        to=State.NEEDS_PERSON,
        action="park",
        summary=f"{command.external_reference} needs a person: {command.last_error_code} "
        f"{command.last_error_message}",
    )


def later_outbox_register() -> None:
    """Later allocations and other receipts follow their AIQ commands (ledger/outbox/origins.py);
    called from PaymentsConfig.ready() once the services have filled ORIGINS."""
    # local: both import this module; importing them registers their origins (ORIGINS)
    from payments.services import contact_allocations, cross_company, other_receipts  # noqa: F401

    for name in ORIGINS:
        origin_register(
            name,
            Origin(
                confirmed=lambda command, payload, notes: later_confirmed(command),
                failed=later_failed,
                parked=later_parked,
            ),
        )
