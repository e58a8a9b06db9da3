"""A selling system changed a customer's details: the mirror and AIQ follow, audited.

    sales_customer_update(entity=..., code=..., details={"Name": ..., "Email": ..., ...},
                          origin="stripe customer.updated cus_...", actor=None)

Only what differs from the mirror's last known details of the customer (the previous update's,
or the mirror's name and e-mail) is sent; nothing differing: nothing happens. A customer AIQ
does not have yet is created with the new details by its ensure_customer command (the mirror
row is updated); one AIQ has gets a sales_customer_update command (sales/outbox_customers.py),
one per distinct change, after any ensure_customer of the same customer still on its way.
"""

import hashlib
import json

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from ledger.customers import customer_ensure_reference
from ledger.models import Customer, Entity, OutboxCommand
from ledger.outbox.services import (
    CANCELLABLE,
    RETRYABLE,
    outbox_cancel,
    outbox_enqueue,
    outbox_retry,
)
from sales import outbox_customers as kind
from sales.models import CustomerUpdate
from staff.models import Role
from staff.services import audit_log, user_has_role

OPEN = (OutboxCommand.State.PENDING, OutboxCommand.State.UNCERTAIN, OutboxCommand.State.IN_FLIGHT)


def _known(entity: Entity, customer: Customer | None, code: str) -> dict:
    """The customer's details as we last knew them."""
    last = (
        CustomerUpdate.objects.filter(entity=entity, customer_code=code)
        .exclude(state__in=(CustomerUpdate.State.FAILED, CustomerUpdate.State.CANCELLED))
        .order_by("-pk")
        .first()
    )
    known = {}
    if customer is not None:
        known = {"Name": customer.name, "Email": customer.email}
    if last is not None:
        known = {**last.previous, **last.details}
    return known


def sales_customer_update(
    *, entity: Entity, code: str, details: dict, origin: str, actor=None
) -> CustomerUpdate | None:
    """Queue the change (None when nothing changed). Call it inside or outside a transaction."""
    code = code.upper()
    details = {k: (v or "").strip() for k, v in details.items() if k in kind.FIELDS}
    if "Name" in details and not details["Name"]:
        details.pop("Name")  # a source without a name never empties AIQ's
    with transaction.atomic():
        customer = Customer.objects.select_for_update().filter(entity=entity, code=code).first()
        known = _known(entity, customer, code)
        changed = {k: v for k, v in details.items() if known.get(k, None) != v}
        if customer is not None and not customer.aiq_account_id:
            # not in AIQ yet: its ensure_customer creates it with these details
            changed = {k: v for k, v in changed.items() if k not in ("Name", "Email")}
        if customer is not None:
            customer.name = details.get("Name") or customer.name
            customer.email = details.get("Email", customer.email)[:254]
            customer.save(update_fields=["name", "email", "updated_at"])
        if not changed:
            return None
        try:
            kind.CustomerUpdatePayload(code=code, details=changed)
        except ValueError as error:
            raise ValidationError(f"{code}: {error}") from None
        digest = hashlib.sha256(json.dumps(changed, sort_keys=True).encode()).hexdigest()[:16]
        waits_for = None
        if customer is not None:
            waits_for = OutboxCommand.objects.filter(
                entity=entity,
                external_reference=customer_ensure_reference(customer),
                state__in=OPEN,
            ).first()
        row = CustomerUpdate.objects.create(
            entity=entity,
            customer_code=code,
            origin=origin[:100],
            details=changed,
            previous={k: known.get(k, "") for k in changed},
        )
        command = outbox_enqueue(
            entity=entity,
            kind=kind.KIND,
            payload={"code": code, "details": changed},
            external_reference=f"CUPD-{code}-{digest}"[:100],
            depends_on=waits_for,
            origin_type=kind.ORIGIN,
            origin_id=row.pk,
            created_by=actor,
        )
        row.command = command
        row.save(update_fields=["command"])
        audit_log(
            actor=actor,
            action="customer.update_from_source",
            obj=row,
            summary=f"{code}: {', '.join(sorted(changed))} changed ({origin})"[:500],
            before=row.previous,
            after=changed,
        )
    return row


def customer_update_settle(*, command: OutboxCommand, failed_message: str) -> None:
    """The command's verdict: done, or failed with AIQ's message. Idempotent."""
    row = CustomerUpdate.objects.select_for_update().filter(pk=command.origin_id).first()
    if row is None or row.state != CustomerUpdate.State.QUEUED:
        return
    row.state = CustomerUpdate.State.FAILED if failed_message else CustomerUpdate.State.DONE
    row.error = failed_message
    row.save(update_fields=["state", "error", "updated_at"])
    audit_log(
        actor=None,
        action=f"customer.update_{row.state}",
        obj=row,
        summary=f"{row.customer_code}: {row.get_state_display()}"
        + (f" ({failed_message})" if failed_message else ""),
        after={"state": row.state},
    )


def customer_update_retry(*, update: CustomerUpdate, actor) -> CustomerUpdate:
    """An approver sends a change AIQ refused again (its command, read back first)."""
    if not user_has_role(actor, Role.APPROVER):
        raise PermissionDenied("Only an approver can send a customer change again.")
    with transaction.atomic():
        row = (
            CustomerUpdate.objects.select_for_update(of=("self",))
            .select_related("command")
            .get(pk=update.pk)
        )
        if row.state != CustomerUpdate.State.FAILED:
            raise ValidationError(f"The change to {row.customer_code} was not refused by AIQ.")
        if row.command is None or row.command.state not in RETRYABLE:
            raise ValidationError(f"The change to {row.customer_code} cannot be sent again.")
        outbox_retry(command=row.command, actor=actor)
        before, row.state, row.error = row.error, CustomerUpdate.State.QUEUED, ""
        row.save(update_fields=["state", "error", "updated_at"])
        audit_log(
            actor=actor,
            action="customer.update_retry",
            obj=row,
            summary=f"{row.customer_code}: change sent again after: {before}"[:500],
            before={"state": CustomerUpdate.State.FAILED},
            after={"state": row.state},
        )
    return row


def customer_update_cancel(*, update: CustomerUpdate, actor) -> CustomerUpdate:
    """An approver drops a change AIQ refused: AIQ keeps the customer as it is."""
    if not user_has_role(actor, Role.APPROVER):
        raise PermissionDenied("Only an approver can cancel a customer change.")
    with transaction.atomic():
        row = (
            CustomerUpdate.objects.select_for_update(of=("self",))
            .select_related("command")
            .get(pk=update.pk)
        )
        if row.state != CustomerUpdate.State.FAILED:
            raise ValidationError(
                f"The change to {row.customer_code} is {row.get_state_display().lower()}: "
                "only a refused change can be cancelled."
            )
        if row.command is not None and row.command.state in CANCELLABLE:
            outbox_cancel(command=row.command, actor=actor, reason="customer change cancelled")
        row.state = CustomerUpdate.State.CANCELLED
        row.save(update_fields=["state", "updated_at"])
        audit_log(
            actor=actor,
            action="customer.update_cancel",
            obj=row,
            summary=f"{row.customer_code}: change cancelled ({', '.join(sorted(row.details))})",
            before={"state": CustomerUpdate.State.FAILED},
            after={"state": row.state},
        )
    return row
