"""Screens for money already in AIQ and money that is not a customer's (issue 16.3, 16.4, 16.10):
allocate money on account or a credit note to invoices later, refund a credit note's open
amount, park unidentified money (a customer's account, suspense, not for AIQ), other receipts
to GL accounts, and their approvals. Views only call services; the rules live there."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from core.inputs import is_id
from ledger.models import BankAccount, CreditNote, Customer, GLAccount, Invoice, Receipt, TaxCode
from ledger.selectors import customer_search
from payments.models import ContactAllocation, CrossCompanyReceipt, OtherReceipt, Payment
from payments.models_money_later import LaterState
from payments.services import contact_allocations as allocations
from payments.services import cross_company, other_receipts
from payments.services.payer_change import payment_customer_change
from payments.services.refunds import refund_request
from staff.company_scope import company_scope
from staff.models import Role
from staff.services import user_has_role
from staff.views import approver_required, clerk_required, get_or_404

OPEN_INVOICES_SHOWN = 50


def _refused(error) -> str:
    return "; ".join(getattr(error, "messages", None) or [str(error)])


def _credit_side(request):
    receipt_id, note_id = request.GET.get("receipt", ""), request.GET.get("credit_note", "")
    if is_id(receipt_id):
        receipt = get_or_404(Receipt.objects.select_related("customer"), pk=receipt_id)
        return receipt, None, allocations.receipt_open(receipt)
    if is_id(note_id):
        note = get_or_404(CreditNote.objects.select_related("customer"), pk=note_id)
        return None, note, allocations.credit_note_open(note)
    raise ValidationError("Choose a receipt or a credit note.")


@clerk_required
def allocate_later(request):
    """Allocate a receipt's money on account, or a credit note's open amount, to invoices."""
    try:
        receipt, note, available = _credit_side(request)
    except ValidationError:
        return render(request, "400.html", status=400)
    credit = receipt or note
    open_invoices = Invoice.objects.filter(
        currency=credit.currency, outstanding_amount__gt=0, aiq_transaction_id__isnull=False
    ).order_by("invoice_date", "id")
    invoices = list(open_invoices.filter(customer=credit.customer)[:OPEN_INVOICES_SHOWN])
    # the other customers of its group: their invoices may be paid with it (approval always)
    members = allocations.customer_group_others(credit.customer)
    group_invoices = list(
        open_invoices.filter(customer__in=members).select_related("customer")[:OPEN_INVOICES_SHOWN]
    )
    invoices += group_invoices
    typed: dict[int, str] = {}
    error = ""
    if request.method == "POST":
        typed = {inv.pk: request.POST.get(f"amount-{inv.pk}", "").strip()[:30] for inv in invoices}
        lines = [(inv, typed[inv.pk]) for inv in invoices if typed[inv.pk]]
        try:
            made = allocations.contact_allocation_create(
                actor=request.user, receipt=receipt, credit_note=note, lines=lines
            )
        except (ValidationError, PermissionDenied) as refused:
            error = _refused(refused)
        else:
            messages.success(
                request,
                "Allocation waits for an approver."
                if made.state == LaterState.AWAITING_APPROVAL
                else "Allocation queued for AIQ.",
            )
            return redirect("payments:later")
    rows = [{"invoice": inv, "typed": typed.get(inv.pk, "")} for inv in invoices]
    own = len(invoices) - len(group_invoices)
    return render(
        request,
        "payments/later_allocate.html",
        {
            "receipt": receipt,
            "note": note,
            "credit": credit,
            "available": available,
            "rows": rows[:own],
            "group_rows": rows[own:],
            "members": members,
            "error": error,
        },
        status=400 if error else 200,
    )


@require_POST
@clerk_required
def refund_credit_note(request, credit_note_id):
    note = get_or_404(CreditNote.objects.all(), pk=credit_note_id)
    try:
        refund = refund_request(
            actor=request.user,
            kind="refund_credit_note",
            credit_note=note,
            amount=request.POST.get("amount", "").strip()[:30] or None,
            reason=request.POST.get("reason", "")[:1000],
        )
    except (ValidationError, PermissionDenied) as refused:
        messages.error(request, _refused(refused))
        return redirect(f"{_allocate_url()}?credit_note={note.pk}")
    messages.success(request, "Refund requested: it waits for an approver.")
    return redirect("payments:refund", refund_id=refund.pk)


def _allocate_url() -> str:
    from django.urls import reverse

    return reverse("payments:allocate_later")


def _back(payment_id):
    return redirect("payments:detail", payment_id=payment_id)


def _payment_action(request, payment_id, action, done: str):
    payment = get_or_404(Payment.objects.select_related("entity"), pk=payment_id)
    try:
        action(payment)
    except (ValidationError, PermissionDenied) as refused:
        messages.error(request, _refused(refused))
    else:
        messages.success(request, done)
    return _back(payment.pk)


@require_POST
@clerk_required
def not_for_aiq(request, payment_id):
    return _payment_action(
        request,
        payment_id,
        lambda p: other_receipts.payment_mark_not_for_aiq(
            payment=p, actor=request.user, reason=request.POST.get("reason", "")[:1000]
        ),
        "Marked Not for AIQ.",
    )


@require_POST
@clerk_required
def back_to_inbox(request, payment_id):
    return _payment_action(
        request,
        payment_id,
        lambda p: other_receipts.payment_back_to_inbox(payment=p, actor=request.user),
        "Back in the inbox.",
    )


@require_POST
@clerk_required
def to_suspense(request, payment_id):
    return _payment_action(
        request,
        payment_id,
        lambda p: other_receipts.payment_to_suspense(
            payment=p, actor=request.user, reason=request.POST.get("reason", "")[:1000]
        ),
        "Parked on the suspense account.",
    )


@require_POST
@clerk_required
def on_account(request, payment_id):
    def put(payment):
        code = request.POST.get("customer", "").strip().upper()[:50]
        customer = Customer.objects.filter(entity=payment.entity_id, code=code).first()
        if customer is None:
            raise ValidationError(f"No customer with code {code!r}.")
        other_receipts.payment_put_on_account(
            payment=payment, customer=customer, actor=request.user
        )

    return _payment_action(request, payment_id, put, "Put on the customer's account.")


@require_POST
@clerk_required
def change_customer(request, payment_id):
    """The payment is from another customer than it was taken for (issue 16.5)."""

    def change(payment):
        text = request.POST.get("customer", "").strip()[:200]
        customers = Customer.objects.filter(entity=payment.entity_id)
        found = list(customers.filter(code__iexact=text)[:1]) or list(
            customer_search(customers, text)[:2] if text else []
        )
        if len(found) != 1:
            many = "more than one customer" if found else "no customer"
            raise ValidationError(f"{many.capitalize()} matches {text!r}: type the code.")
        payment_customer_change(
            payment=payment,
            customer=found[0],
            actor=request.user,
            reason=request.POST.get("reason", "")[:1000],
        )

    return _payment_action(request, payment_id, change, "Customer changed; matching again.")


@clerk_required
def other_receipt_new(request):
    """An other receipt to a GL account (with VAT), for a payment or on its own."""
    payment_id = request.GET.get("payment", "")
    payment = (
        get_or_404(Payment.objects.select_related("entity"), pk=payment_id)
        if is_id(payment_id)
        else None
    )
    entity_id = payment.entity_id if payment else None
    banks = BankAccount.objects.filter(**({"entity": entity_id} if entity_id else {}))
    if payment is not None:
        banks = banks.filter(currency=payment.currency)
    form = {k: request.POST.get(k, "").strip()[:250] for k in request.POST}
    error = ""
    if request.method == "POST":
        bank = banks.filter(pk=form.get("bank", "") if is_id(form.get("bank", "")) else 0).first()
        try:
            if bank is None:
                raise ValidationError("Choose the bank account the money came into.")
            row = other_receipts.other_receipt_create(
                actor=request.user,
                bank_account=bank,
                payment=payment,
                description=form.get("description", ""),
                reference=form.get("reference", ""),
                lines=[
                    {
                        "gl_account_code": form.get("gl_account", ""),
                        "tax_code": form.get("tax_code", ""),
                        "net_amount": form.get("net_amount", ""),
                        "tax_amount": form.get("tax_amount", ""),
                    }
                ],
            )
        except (ValidationError, PermissionDenied) as refused:
            error = _refused(refused)
        else:
            messages.success(
                request,
                "Other receipt waits for an approver."
                if row.state == LaterState.AWAITING_APPROVAL
                else "Other receipt queued for AIQ.",
            )
            return _back(payment.pk) if payment else redirect("payments:later")
    return render(
        request,
        "payments/other_receipt_new.html",
        {
            "payment": payment,
            "banks": banks.order_by("bank_account_code"),
            "gl_accounts": GLAccount.objects.filter(active=True).order_by("code"),
            "tax_codes": TaxCode.objects.order_by("code"),
            "form": form,
            "error": error,
        },
        status=400 if error else 200,
    )


@clerk_required
def later_list(request):
    """Later allocations and other receipts: waiting for approval first, then recent ones."""
    waiting = LaterState.AWAITING_APPROVAL
    return render(
        request,
        "payments/later_list.html",
        {
            "allocations": company_scope(ContactAllocation.objects, request)
            .select_related(
                "customer", "transfer_to", "receipt", "credit_note", "maker", "approver"
            )
            .prefetch_related("lines__invoice")
            .order_by("-updated_at", "-id")[:50],
            "others": company_scope(OtherReceipt.objects, request)
            .select_related("bank_account", "payment", "maker", "approver")
            .prefetch_related("lines")
            .order_by("-updated_at", "-id")[:50],
            "across": company_scope(CrossCompanyReceipt.objects, request)
            .select_related("payment", "invoice__entity", "invoice__customer", "maker", "approver")
            .order_by("-updated_at", "-id")[:50],
            "waiting": waiting,
        },
    )


_DECIDE = {
    "allocation": (
        ContactAllocation,
        lambda row, actor: allocations.contact_allocation_approve(allocation=row, actor=actor),
        lambda row, actor, reason: allocations.contact_allocation_reject(
            allocation=row, actor=actor, reason=reason
        ),
    ),
    "other-receipt": (
        OtherReceipt,
        lambda row, actor: other_receipts.other_receipt_approve(receipt=row, actor=actor),
        lambda row, actor, reason: other_receipts.other_receipt_reject(
            receipt=row, actor=actor, reason=reason
        ),
    ),
    "cross-company": (
        CrossCompanyReceipt,
        lambda row, actor: cross_company.cross_company_receipt_approve(receipt=row, actor=actor),
        lambda row, actor, reason: cross_company.cross_company_receipt_reject(
            receipt=row, actor=actor, reason=reason
        ),
    ),
}


@require_POST
@approver_required
def later_approve(request, what, row_id):
    if what not in _DECIDE:
        return render(request, "404.html", status=404)
    model, approve, _reject = _DECIDE[what]
    row = get_or_404(model.objects.all(), pk=row_id)
    try:
        approve(row, request.user)
    except (ValidationError, PermissionDenied) as refused:
        messages.error(request, _refused(refused))
    else:
        messages.success(request, "Approved and queued for AIQ.")
    return redirect("payments:later")


@require_POST
@clerk_required
def later_reject(request, what, row_id):
    if what not in _DECIDE:
        return render(request, "404.html", status=404)
    model, _approve, reject = _DECIDE[what]
    row = get_or_404(model.objects.all(), pk=row_id)
    try:
        reject(row, request.user, request.POST.get("reason", "")[:1000])
    except (ValidationError, PermissionDenied) as refused:
        messages.error(request, _refused(refused))
    else:
        messages.success(request, "Rejected.")
    return redirect("payments:later")


@require_POST
@clerk_required
def cross_company_propose(request, payment_id):
    """Propose receiving this payment for another group company's invoice (it then waits for
    a second person); refused with the reason when the group does not allow it."""
    payment = get_or_404(Payment.objects.select_related("entity"), pk=payment_id)
    invoice_id = request.POST.get("invoice_id", "")
    if not is_id(invoice_id):
        return render(request, "400.html", {"message": "Choose an invoice."}, status=400)
    invoice = get_or_404(Invoice.objects.select_related("entity"), pk=invoice_id)
    visible = request.visible_company_ids
    if visible is not None and invoice.entity_id not in visible:
        return render(request, "404.html", status=404)  # not even confirmed to exist
    try:
        cross_company.cross_company_receipt_propose(
            actor=request.user, payment=payment, invoice=invoice
        )
    except (ValidationError, PermissionDenied) as refused:
        return render(request, "400.html", {"message": _refused(refused)}, status=400)
    messages.success(
        request,
        f"Cross-company receipt for {invoice.entity.name}'s {invoice.invoice_number} waits "
        "for an approver.",
    )
    return redirect("payments:detail", payment_id=payment.pk)


@approver_required
def group_policy(request):
    """The group's rules across its companies: whether money into one company may be
    received for another's invoice. Approvers see it; group finance (admin) changes it."""
    if request.method == "POST":
        wanted = request.POST.get("cross_company_receipts", "")
        if wanted not in ("on", "off"):
            return render(request, "400.html", {"message": "Choose on or off."}, status=400)
        try:
            cross_company.group_policy_set(
                actor=request.user, cross_company_receipts=wanted == "on"
            )
        except PermissionDenied as refused:
            return render(request, "403.html", {"message": _refused(refused)}, status=403)
        messages.success(
            request,
            "Cross-company receipts are "
            + ("allowed." if wanted == "on" else "no longer allowed."),
        )
        return redirect("payments:group_policy")
    return render(
        request,
        "payments/group_policy.html",
        {
            "allowed": cross_company.cross_company_receipts_allowed(),
            "can_change": user_has_role(request.user, Role.ADMIN),
        },
    )
