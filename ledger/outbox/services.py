"""Outbox services: the only way work toward AIQ is queued.

Payload formats per kind (amounts are decimal strings, dates ISO "YYYY-MM-DD"; never secrets):

- post_receipt: {"customer_code", "bank_account_code", "amount", "currency", "payment_date",
  "description", "payment_id"}; CheckReference = the command's external_reference.
  result: {"transaction_id": int}
- allocate / allocate_discount: {"paying_transaction_id": int | null, "settled_transaction_id": int,
  "invoice_id": mirror id | null, "credit_note_id": mirror id | null, "amount",
  "discount_amount" (allocate_discount only), "allocation_date", "currency"}; when
  paying_transaction_id is null it is taken from depends_on's result["transaction_id"]
  (likewise settled_transaction_id may be null and come from the dependency).
  allocationReference = external_reference. result: {"allocated": true}
- post_write_off: a sales credit journal to a GL account, allocated afterwards:
  {"customer_code", "gl_account_code", "amount", "currency", "journal_date", "description"}
  result: {"transaction_id": int}
- unallocate: {"transaction_ids": [int, ...], "allocation_id": mirror id}
- ensure_customer, create_credit_note, post_debit_journal, post_general_journal,
  attach_document, pay_and_allocate, stripe_refund: see ledger/outbox/executors.py.
"""

from django.db import IntegrityError, transaction

from ledger.models import Entity, OutboxCommand


def outbox_enqueue(
    *,
    entity: Entity,
    kind: str,
    payload: dict,
    external_reference: str,
    depends_on: OutboxCommand | None = None,
    origin_type: str = "",
    origin_id: int | None = None,
    created_by=None,
) -> OutboxCommand:
    """Queue one AIQ write; idempotent on (entity, external_reference).

    Call inside the transaction of the decision that causes the write, so the command exists
    if and only if the decision was committed. The worker is woken after commit.
    """
    existing = OutboxCommand.objects.filter(
        entity=entity, external_reference=external_reference
    ).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            command = OutboxCommand.objects.create(
                entity=entity,
                kind=kind,
                payload=payload,
                external_reference=external_reference,
                depends_on=depends_on,
                origin_type=origin_type,
                origin_id=origin_id,
                created_by=created_by,
            )
    except IntegrityError:
        return OutboxCommand.objects.get(entity=entity, external_reference=external_reference)
    transaction.on_commit(lambda: _wake_workers(command.pk))
    return command


def _wake_workers(command_id: int) -> None:
    """Nudge a worker; if this is lost the sweeper finds the row anyway."""
    try:
        from ledger.outbox import tasks
    except ImportError:  # executor not installed yet: the sweeper will pick it up
        return
    tasks.wake(command_id)
