"""Writes to AIQ, for people: every outbox command with the customer, the amount and the
payment or refund it is for, paged and filtered by state, customer and payment. Approvers
retry or cancel from here (the actions are the Sync screen's, ledger/views/sync.py)."""

from decimal import Decimal, InvalidOperation

from django.db.models import Q
from django.shortcuts import render
from django.urls import reverse

from core.inputs import is_id
from core.paging import keyset_page
from ledger.models import Allocation, Customer, OutboxCommand
from ledger.selectors import outbox_state_counts
from payments import selectors
from payments.models import AllocationPlan, Payment, Refund
from staff.company_scope import company_ids, company_scope
from staff.forms import ReasonForm
from staff.models import Role
from staff.services import user_has_role
from staff.views import clerk_required

# what a person can still do something about: retry and cancel are offered on these
ACTIONABLE = ("pending", "uncertain", "failed", "needs_person")


def _customers(text: str):
    if not text:
        return None
    return Customer.objects.filter(Q(code__iexact=text) | Q(name__icontains=text))


def _payments(text: str):
    if not text:
        return None
    match = Q(external_id=text)
    if is_id(text):
        match |= Q(pk=int(text))
    return Payment.objects.filter(match)


def _ids(commands, origin_type):
    return {c.origin_id for c in commands if c.origin_type == origin_type and c.origin_id}


def _amount(payload: dict):
    try:
        return Decimal(str(payload["amount"])), payload.get("currency", "")
    except (KeyError, InvalidOperation):
        return None, ""


def _decorate(commands) -> None:
    """Each command's customer, amount and the page it is about, read in one query per kind
    of origin for the whole page."""
    plans = AllocationPlan.objects.select_related("payment", "customer").in_bulk(
        _ids(commands, "allocation_plan")
    )
    refunds = Refund.objects.select_related("payment", "customer").in_bulk(_ids(commands, "refund"))
    customers = Customer.objects.in_bulk(_ids(commands, "customer"))
    allocations = Allocation.objects.select_related("invoice__customer").in_bulk(
        _ids(commands, "allocation")
    )
    codes = {c.payload.get("customer_code") for c in commands} - {None, ""}
    by_code = {(row.entity_id, row.code): row for row in Customer.objects.filter(code__in=codes)}
    for command in commands:
        customer, link = None, None
        origin = command.origin_id
        if command.origin_type == "allocation_plan" and origin in plans:
            plan = plans[origin]
            customer = plan.customer
            link = (
                reverse("payments:detail", args=[plan.payment_id]),
                f"Payment {plan.payment.external_id}",
            )
        elif command.origin_type == "refund" and origin in refunds:
            refund = refunds[origin]
            customer = refund.customer
            link = (reverse("payments:refund", args=[refund.pk]), f"Refund #{refund.pk}")
        elif command.origin_type == "customer" and origin in customers:
            customer = customers[origin]
        elif command.origin_type == "allocation" and origin in allocations:
            invoice = allocations[origin].invoice
            if invoice is not None:
                customer = invoice.customer
                link = (reverse("ledger:invoice", args=[invoice.pk]), f"Invoice {invoice}")
        if customer is None:
            customer = by_code.get((command.entity_id, command.payload.get("customer_code")))
        command.customer = customer
        command.link = link
        command.amount, command.currency = _amount(command.payload)


@clerk_required
def outbox(request):
    state = request.GET.get("state") or ""
    if state not in OutboxCommand.State.values:
        state = ""
    customer_text = request.GET.get("customer", "").strip()[:100]
    payment_text = request.GET.get("payment", "").strip()[:100]
    commands = selectors.outbox_commands(
        state=state, customers=_customers(customer_text), payments=_payments(payment_text)
    )
    page = keyset_page(
        company_scope(commands, request),
        order=("created_at", "id"),
        after=request.GET.get("after"),
        size=50,
    )
    _decorate(page.items)
    counts = outbox_state_counts(company_ids(request))
    context = {
        "state": state,
        "customer": customer_text,
        "payment": payment_text,
        "states": [
            (value, label, counts.get(value, 0)) for value, label in OutboxCommand.State.choices
        ],
        "total": sum(counts.values()),
        "page": page,
        "actionable": ACTIONABLE,
        "can_act": user_has_role(request.user, Role.APPROVER),
        "reason_form": ReasonForm(),
    }
    return render(request, "payments/outbox.html", context)
