"""Customers services: a customer known only to this app is created in AIQ through the outbox."""

from django.core.exceptions import PermissionDenied
from django.db import transaction

from ledger.models import Customer, OutboxCommand
from ledger.outbox.services import outbox_enqueue
from staff.models import Role
from staff.services import audit_log, user_has_role


def customer_ensure_reference(customer: Customer) -> str:
    # the code is AIQ's unique key for a customer, so one command per code is enough
    return f"CUST-{customer.code.upper()}"[:100]


def customer_ensure_payload(customer: Customer) -> dict:
    """The ensure_customer payload of a mirror customer (ledger/outbox/executors_customers.py)."""
    return {
        "customer_id": customer.pk,
        "code": customer.code.upper(),
        "name": customer.name,
        "email": customer.email,
        "currency": customer.currency,
    }


def customer_ensure_in_aiq(*, customer: Customer, actor=None) -> OutboxCommand | None:
    """Queue an ensure_customer command (None when AIQ already gave us the customer's account
    id). Call inside the transaction of the decision that needs the customer, and make the
    receipt depend on the returned command, so it waits until the customer exists in AIQ.

    `actor=None` is the system (a plan approved by an auto-approve rule)."""
    if actor is not None and not user_has_role(actor, Role.CLERK):
        raise PermissionDenied("Only staff can create customers in AIQ.")
    if customer.aiq_account_id:
        return None
    with transaction.atomic():
        command = outbox_enqueue(
            entity=customer.entity,
            kind=OutboxCommand.Kind.ENSURE_CUSTOMER,
            external_reference=customer_ensure_reference(customer),
            payload=customer_ensure_payload(customer),
            origin_type="customer",
            origin_id=customer.pk,
            created_by=actor,
        )
        audit_log(
            actor=actor,
            action="customer.ensure_in_aiq",
            obj=customer,
            summary=f"queued {command.external_reference} to create {customer.code} in AIQ",
            after={"outbox_id": command.pk, "state": command.state},
        )
    return command
