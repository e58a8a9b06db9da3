"""Allocate money already in AIQ to invoices later (Sage `contact_allocations`, issue 16.3).

The credit side is a receipt with money on account (one the app posted, after an Undo, or one
pulled from AIQ) or a credit note with an open amount; the debit side is one or more invoices
of the same customer and currency. What each side has open is what AIQ's mirror says less what
live requests already hold: later allocations waiting or sent, allocation plans not yet
confirmed, refunds asked for. Either side fully paid is refused with Sage's words ("You can
only pay unpaid or part-paid invoices."). Rows are locked credit side first, then invoices by
id (plans lock payment then invoices: no cycle).

Each invoice is one AIQ `AllocateTransactions` (credit side's transaction, invoice's
transaction, allocationReference CALLOC-<allocation id>-<invoice id>), queued on approval and
read back before any resend (ledger/outbox/executors.py); the mirror's receipt/credit note and
invoice amounts move when each is confirmed (ledger/outbox/mirror.py).

Across customers of one group (issue 16.5: a parent paying its subsidiary's invoices): the
invoices may all be another member's of the credit's customer's CustomerGroup. AIQ allocates
within one account only, so the money moves by two journals to GROUP_TRANSFER_GL_ACCOUNT_CODE
(which they leave at zero), each allocated as AIQ allocates: GXFR-<id>-DR, a sales debit
journal on the paying customer, allocated against its receipt or credit note (GXFR-<id>-A);
GXFR-<id>-CR, a sales credit journal on the customer paid for, allocated against each of its
invoices (GXFR-<id>-<invoice id>). The allocations wait for their journal (the outbox fills
the journal's transaction id in); every command is queued once, on a second person's approval,
which a transfer always needs.
"""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import BigIntegerField, F, Sum
from django.utils import timezone

from core.money import format_money
from ledger.models import (
    CreditNote,
    Customer,
    DocumentStatus,
    Invoice,
    OutboxCommand,
    Receipt,
)
from ledger.outbox.services import NewCommand
from payments.models import Refund
from payments.models_money_later import (
    HOLDING_STATES,
    ContactAllocation,
    ContactAllocationLine,
    CrossCompanyReceipt,
    CustomerGroup,
    CustomerGroupMember,
)
from payments.services.later import (
    ORIGINS,
    LaterRefused,
    later_approve,
    later_money,
    later_reject,
    needs_approval,
    open_or_send,
    require_clerk,
)
from staff.maker_checker import record_change
from staff.models import Role
from staff.services import audit_log, user_has_role

ZERO = Decimal(0)
ORIGIN = "contact_allocation"
FULLY_PAID = "You can only pay unpaid or part-paid invoices."


def _thousandths(value) -> Decimal:
    return Decimal(int(value or 0)).scaleb(-3)


def held_on_receipts(receipt_ids) -> dict[int, Decimal]:
    rows = (
        ContactAllocation.objects.filter(receipt_id__in=receipt_ids, state__in=HOLDING_STATES)
        .values("receipt_id")
        .annotate(held=Sum("amount", output_field=BigIntegerField()))
    )
    return {r["receipt_id"]: _thousandths(r["held"]) for r in rows}


def held_on_invoices(invoice_ids):
    """What later allocations and cross-company receipts waiting or sent hold on these
    invoices, as a values_list queryset of (invoice id, thousandths), one row per source and
    invoice (plans count it too, and add theirs: payments/services/plan_lines.py
    reserved_elsewhere)."""
    by_allocations = (
        ContactAllocationLine.objects.filter(
            invoice_id__in=invoice_ids, allocation__state__in=HOLDING_STATES
        )
        .values("invoice_id")
        .annotate(held=Sum(F("amount"), output_field=BigIntegerField()))
        .values_list("invoice_id", "held")
        .order_by()
    )
    # cross-company receipts waiting or sent hold the other company's invoice the same way
    across = (
        CrossCompanyReceipt.objects.filter(invoice_id__in=invoice_ids, state__in=HOLDING_STATES)
        .values("invoice_id")
        .annotate(held=Sum("amount", output_field=BigIntegerField()))
        .values_list("invoice_id", "held")
        .order_by()
    )
    return by_allocations, across


def receipt_open(receipt: Receipt) -> Decimal:
    """Money on account that can still be allocated or refunded (less live refunds and later
    allocations holding it)."""
    # local: payments.services.refunds imports this module (holdings on receipts/notes)
    from payments.services.refunds import receipt_refundable

    return receipt_refundable(receipt)


def credit_note_open(note: CreditNote) -> Decimal:
    """A posted credit note's open amount, less what later allocations and refunds hold."""
    # local: payments.services.refunds imports this module (holdings on receipts/notes)
    from payments.services.refunds import LIVE

    if note.aiq_transaction_id is None or note.status == DocumentStatus.DRAFT:
        return ZERO
    held = ContactAllocation.objects.filter(credit_note=note, state__in=HOLDING_STATES)
    refunds = note.refunds.filter(kind=Refund.Kind.REFUND_CREDIT_NOTE, state__in=LIVE)
    taken = sum((r.amount for r in held), ZERO) + sum((r.amount for r in refunds), ZERO)
    return max(note.outstanding_amount - taken, ZERO)


def invoice_open(invoice: Invoice) -> Decimal:
    """An invoice's outstanding amount less plans, credits and later allocations holding it
    (invoice_creditable counts plans and credits; reserved_elsewhere counts ours)."""
    # local: payments.services.refunds imports this module (holdings on receipts/notes)
    from payments.services.refunds import invoice_creditable

    return invoice_creditable(invoice)


@dataclass
class Line:
    invoice: Invoice
    amount: Decimal


def _lock_credit_side(receipt, credit_note):
    if (receipt is None) == (credit_note is None):
        raise LaterRefused(
            "Give exactly one credit: a payment on account or a credit note.", "allocated_artefacts"
        )
    if receipt is not None:
        return Receipt.objects.select_for_update().select_related("customer").get(pk=receipt.pk)
    return CreditNote.objects.select_for_update().select_related("customer").get(pk=credit_note.pk)


def contact_allocation_create(
    *,
    actor,
    lines: list[tuple[Invoice, object]],
    receipt: Receipt | None = None,
    credit_note: CreditNote | None = None,
    allocation_date: date | None = None,
) -> ContactAllocation:
    """Allocate a receipt's money on account, or a credit note's open amount, to invoices.
    `lines` are (invoice, amount); the credit side gives their total."""
    require_clerk(actor, "Allocating money on account")
    if not lines:
        raise LaterRefused("Choose at least one invoice to allocate to.", "allocated_artefacts")
    with transaction.atomic():
        credit = _lock_credit_side(receipt, credit_note)
        currency, customer = credit.currency, credit.customer
        if credit.aiq_transaction_id is None:
            raise LaterRefused(f"{credit} is not in AIQ yet; it cannot be allocated.")
        ids = sorted({invoice.pk for invoice, _ in lines})
        if len(ids) != len(lines):
            raise LaterRefused("An invoice is listed twice.", "allocated_artefacts")
        invoices = {
            i.pk: i for i in Invoice.objects.select_for_update().filter(pk__in=ids).order_by("pk")
        }
        available = (
            receipt_open(credit) if isinstance(credit, Receipt) else credit_note_open(credit)
        )
        if available <= 0:
            raise LaterRefused(FULLY_PAID, "allocated_artefacts")
        parsed, total = [], ZERO
        paid_for = {invoice.customer_id for invoice in invoices.values()}
        transfer_to = _group_transfer_to(customer, paid_for)
        for number, (given, value) in enumerate(lines, start=1):
            invoice = invoices[given.pk]
            field = f"allocated_artefacts[{number}].amount"
            amount = later_money(value, currency, field)
            if invoice.currency != currency:
                raise LaterRefused(
                    f"Invoice {invoice} is in {invoice.currency}; the credit is in {currency}.",
                    field,
                )
            if invoice.aiq_transaction_id is None:
                raise LaterRefused(f"Invoice {invoice} is not posted in AIQ yet.", field)
            open_amount = invoice_open(invoice)
            if invoice.outstanding_amount <= 0 or open_amount <= 0:
                raise LaterRefused(FULLY_PAID, field)
            if amount > open_amount:
                raise LaterRefused(
                    f"{format_money(amount, currency)} is more than invoice {invoice} has open "
                    f"({format_money(open_amount, currency)}).",
                    field,
                )
            parsed.append(Line(invoice, amount))
            total += amount
        if total > available:
            raise LaterRefused(
                f"The invoices take {format_money(total, currency)}; {credit} has only "
                f"{format_money(available, currency)} open.",
                "allocated_artefacts",
            )
        allocation = ContactAllocation(
            entity_id=credit.entity_id,
            customer=customer,
            transfer_to=transfer_to,
            receipt=credit if isinstance(credit, Receipt) else None,
            credit_note=credit if isinstance(credit, CreditNote) else None,
            amount=total,
            currency=currency,
            allocation_date=allocation_date or timezone.localdate(),
            # money moved to another customer always waits for a second person
            needs_approval=transfer_to is not None or needs_approval(total),
        )
        allocation.state = (
            ContactAllocation.State.AWAITING_APPROVAL
            if allocation.needs_approval
            else ContactAllocation.State.SENT
        )
        record_change(allocation, actor=actor)
        allocation.full_clean()
        allocation.save()
        ContactAllocationLine.objects.bulk_create(
            [
                ContactAllocationLine(
                    allocation=allocation, invoice=line.invoice, amount=line.amount
                )
                for line in parsed
            ]
        )
        open_or_send(allocation, actor=actor, snapshot=snapshot(allocation))
    return allocation


def _group_transfer_to(customer, paid_for: set[int]):
    """None when the invoices are the credit's own customer's; the other customer when they are
    all one other member's of the customer's group; refused otherwise."""
    if paid_for == {customer.pk}:
        return None
    if len(paid_for) != 1:
        raise LaterRefused(
            "The invoices belong to more than one customer; allocate to one customer's "
            "invoices at a time.",
            "contact_id",
        )
    (other_id,) = paid_for
    groups = dict(
        CustomerGroupMember.objects.filter(customer_id__in=[customer.pk, other_id]).values_list(
            "customer_id", "group_id"
        )
    )
    other = Customer.objects.get(pk=other_id)
    if groups.get(customer.pk) is None or groups.get(customer.pk) != groups.get(other_id):
        raise LaterRefused(
            f"The invoices belong to {other.code}, not {customer.code}, and the two are not "
            "customers of one group.",
            "contact_id",
        )
    if other.currency != customer.currency:
        raise LaterRefused(
            f"{other.code} is billed in {other.currency}, {customer.code} in {customer.currency}.",
            "contact_id",
        )
    return other


def snapshot(allocation: ContactAllocation) -> dict:
    credit = allocation.credit_side
    return {
        "state": allocation.state,
        "customer": allocation.customer.code,
        "transfer_to": allocation.transfer_to.code if allocation.transfer_to_id else None,
        "credit": str(credit),
        "amount": allocation.amount,
        "currency": allocation.currency,
        "lines": [
            {"invoice": str(line.invoice), "amount": line.amount}
            for line in allocation.lines.select_related("invoice")
        ],
    }


def contact_allocation_approve(*, allocation: ContactAllocation, actor) -> ContactAllocation:
    return later_approve(row=allocation, actor=actor, snapshot=snapshot)


def contact_allocation_reject(*, allocation: ContactAllocation, actor, reason: str):
    return later_reject(row=allocation, actor=actor, reason=reason, snapshot=snapshot)


def reference(allocation: ContactAllocation, invoice_id: int) -> str:
    return f"CALLOC-{allocation.pk}-{invoice_id}"


def _commands(allocation: ContactAllocation, actor) -> list[NewCommand]:
    if allocation.transfer_to_id is not None:
        return _transfer_commands(allocation, actor)
    credit = allocation.credit_side
    entity = allocation.entity
    return [
        NewCommand(
            entity=entity,
            kind=OutboxCommand.Kind.ALLOCATE,
            external_reference=reference(allocation, line.invoice_id),
            payload={
                "paying_transaction_id": credit.aiq_transaction_id,
                "settled_transaction_id": line.invoice.aiq_transaction_id,
                "invoice_id": line.invoice_id,
                "credit_note_id": allocation.credit_note_id,
                "amount": str(line.amount),
                "allocation_date": allocation.allocation_date.isoformat(),
                "currency": allocation.currency,
            },
            origin_type=ORIGIN,
            origin_id=allocation.pk,
            created_by=actor,
        )
        for line in allocation.lines.select_related("invoice").order_by("invoice_id")
    ]


def transfer_reference(allocation: ContactAllocation, key: str) -> str:
    return f"GXFR-{allocation.pk}-{key}"


def _transfer_commands(allocation: ContactAllocation, actor) -> list[NewCommand]:
    """The journal pair that moves the money to the group member, and the allocations on
    each side (each waits for its journal, whose transaction id the outbox fills in)."""
    credit = allocation.credit_side
    entity, payer, paid_for = allocation.entity, allocation.customer, allocation.transfer_to
    common = {"origin_type": ORIGIN, "origin_id": allocation.pk, "created_by": actor}
    day, amount = allocation.allocation_date.isoformat(), str(allocation.amount)
    journal = {
        "gl_account_code": settings.GROUP_TRANSFER_GL_ACCOUNT_CODE,
        "amount": amount,
        "journal_date": day,
        "currency": allocation.currency,
    }
    debit = NewCommand(
        entity=entity,
        kind=OutboxCommand.Kind.POST_SALES_DEBIT_JOURNAL,
        external_reference=transfer_reference(allocation, "DR"),
        payload={
            **journal,
            "customer_code": payer.code,
            "description": f"Paid for {paid_for.code} (group), allocation #{allocation.pk}",
        },
        **common,
    )
    credit_journal = NewCommand(
        entity=entity,
        kind=OutboxCommand.Kind.POST_WRITE_OFF,  # AIQ's sales credit journal
        external_reference=transfer_reference(allocation, "CR"),
        payload={
            **journal,
            "customer_code": paid_for.code,
            "description": f"Paid by {payer.code} (group), allocation #{allocation.pk}",
        },
        **common,
    )
    commands = [
        debit,
        NewCommand(
            entity=entity,
            kind=OutboxCommand.Kind.ALLOCATE,
            external_reference=transfer_reference(allocation, "A"),
            payload={
                "paying_transaction_id": credit.aiq_transaction_id,
                "settled_transaction_id": None,  # the debit journal's, filled in
                "credit_note_id": allocation.credit_note_id,
                "amount": amount,
                "allocation_date": day,
                "currency": allocation.currency,
            },
            depends_on=debit,
            **common,
        ),
        credit_journal,
    ]
    for line in allocation.lines.select_related("invoice").order_by("invoice_id"):
        commands.append(
            NewCommand(
                entity=entity,
                kind=OutboxCommand.Kind.ALLOCATE,
                external_reference=transfer_reference(allocation, str(line.invoice_id)),
                payload={
                    "paying_transaction_id": None,  # the credit journal's, filled in
                    "settled_transaction_id": line.invoice.aiq_transaction_id,
                    "invoice_id": line.invoice_id,
                    "amount": str(line.amount),
                    "allocation_date": day,
                    "currency": allocation.currency,
                },
                depends_on=credit_journal,
                **common,
            )
        )
    return commands


ORIGINS[ORIGIN] = (ContactAllocation, "contact_allocation", _commands)


# --- customer groups --------------------------------------------------------------------------


def customer_group_others(customer) -> list:
    """The other customers of the customer's group (none when it is in no group)."""
    return list(
        Customer.objects.filter(
            group_membership__group__members__customer=customer, currency=customer.currency
        )
        .exclude(pk=customer.pk)
        .order_by("code")
    )


def customer_group_set(*, actor, entity, name: str, customers) -> CustomerGroup:
    """Make or change a group of customers who may pay each other's invoices (admin only,
    audited). A customer is in one group at most."""
    if not user_has_role(actor, Role.ADMIN):
        raise PermissionDenied("Customer groups need the admin role.")
    name = (name or "").strip()
    if not name:
        raise LaterRefused("Name the group.", "name")
    customers = list(customers)
    if any(c.entity_id != entity.pk for c in customers):
        raise LaterRefused("Every customer of a group is of the group's company.", "customers")
    with transaction.atomic():
        group, _made = CustomerGroup.objects.get_or_create(entity=entity, name=name)
        before = sorted(group.members.values_list("customer__code", flat=True))
        elsewhere = CustomerGroupMember.objects.filter(customer__in=customers).exclude(group=group)
        if elsewhere.exists():
            raise LaterRefused(
                f"{elsewhere.first().customer.code} is in another group already.", "customers"
            )
        group.members.exclude(customer__in=customers).delete()
        have = set(group.members.values_list("customer_id", flat=True))
        CustomerGroupMember.objects.bulk_create(
            CustomerGroupMember(group=group, customer=c) for c in customers if c.pk not in have
        )
        audit_log(
            actor=actor,
            action="customer_group.set",
            obj=group,
            summary=f"customer group {name}: {', '.join(sorted(c.code for c in customers))}",
            before={"customers": before},
            after={"customers": sorted(c.code for c in customers)},
        )
    return group
