"""Refund screens: request (from an invoice or a payment), the plan an approver reads, change
before approval, approve or reject, the one-click "unallocate first" path, and the documents.

The services (payments/services/refunds.py) check roles, amounts and maker-checker again; a
forged POST gets their refusal as a message, never a 500 or a half-made refund.
"""

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from core.inputs import parse_ids, parse_optional_id
from core.money import MoneyError, amount_from_text
from ledger.models import Document, Invoice, OutboxCommand
from ledger.views.documents import _pdf
from payments.models import Payment, Refund, Unallocation
from payments.services import refunds as services
from payments.services.credit_notes import CreditNoteRefused, LinePick, invoice_lines_fetch
from payments.services.refund_steps import RefundStepError, refund_steps
from staff.company_scope import company_scope, visible_scope
from staff.forms import ReasonForm
from staff.maker_checker import is_maker
from staff.views import approver_required, clerk_required, get_or_404, run_service

KINDS = {
    "cancel_invoice": "Cancel or reduce the invoice with a credit note",
    "refund_invoice": "Refund money paid for the invoice",
    "refund_on_account": "Refund money the payment left on account",
}


class RefundForm(forms.Form):
    amount = forms.CharField(
        label="Amount (gross, leave empty for all that can go back)", required=False, max_length=30
    )
    reason = forms.CharField(label="Reason", max_length=1000, widget=forms.Textarea({"rows": 2}))

    def __init__(self, *args, currency: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.currency = currency

    def clean_amount(self):
        """Empty: all that can go back. Otherwise an exact amount in the currency."""
        try:
            return amount_from_text(self.cleaned_data["amount"], self.currency)
        except MoneyError as error:
            raise forms.ValidationError(str(error)) from None


def _line_picks(post, invoice, currency) -> list:
    """Per invoice line, the quantity (`qty_<line>`) or gross amount (`part_<line>`) to credit;
    a line with neither is not picked. ValueError names the line and what is wrong."""
    picks = []
    for line in invoice.lines.order_by("line_number") if invoice else []:
        name = line.description or f"line {line.line_number}"
        raw_quantity = (post.get(f"qty_{line.pk}") or "").strip()
        try:
            quantity = amount_from_text(raw_quantity) if raw_quantity else None
            part = amount_from_text(post.get(f"part_{line.pk}") or "", currency)
        except MoneyError as error:
            raise ValueError(f"{name}: {error}") from None
        if quantity is not None and quantity.as_tuple().exponent < -4:
            raise ValueError(f"{name}: a quantity has at most 4 decimal places.")
        if quantity is not None or part is not None:
            picks.append(LinePick(line_id=line.pk, quantity=quantity, amount=part))
    return picks


def _invoice_lines(request, invoice) -> list:
    """The invoice's lines to pick from: the mirror's, or read from AIQ the first time."""
    if invoice is None:
        return []
    lines = list(invoice.lines.order_by("line_number"))
    if lines or invoice.aiq_invoice_id is None:
        return lines
    try:
        return invoice_lines_fetch(invoice)
    except CreditNoteRefused as error:
        messages.warning(request, f"{error} Give an amount instead.")
        return []


def _refunds():
    return Refund.objects.select_related(
        "customer__entity", "invoice", "payment", "credit_note", "maker", "approver"
    )


@clerk_required
def refund_list(request):
    refunds = company_scope(_refunds(), request, "customer__entity_id")
    waiting = list(refunds.filter(state=Refund.State.REQUESTED).order_by("created_at", "id"))
    recent = list(refunds.exclude(state=Refund.State.REQUESTED).order_by("-updated_at")[:50])
    return render(request, "payments/refund_list.html", {"waiting": waiting, "recent": recent})


def _limit(kind, invoice, payment):
    if kind == "cancel_invoice" and invoice:
        return services.invoice_creditable(invoice)
    if kind == "refund_on_account" and payment and payment.receipt_id:
        return min(
            services.receipt_refundable(payment.receipt), services.payment_refundable(payment)
        )
    if kind == "refund_invoice" and invoice:
        payers = list(services.invoice_payments(invoice)[:2])
        payment = payment or (payers[0] if len(payers) == 1 else None)
        if payment and payment.receipt_id:
            return min(
                services.invoice_paid_by(invoice, payment.receipt),
                services.payment_refundable(payment),
            )
    return None


@clerk_required
def refund_new(request):
    """GET ?kind=...&invoice=<id>|&payment=<id> shows the form; POST asks for the refund."""
    source = request.POST if request.method == "POST" else request.GET
    kind = source.get("kind", "")
    if kind not in KINDS:
        messages.error(request, "Choose what kind of refund to make.")
        return redirect("payments:refunds")
    invoice = payment = None
    if invoice_id := parse_optional_id(source.get("invoice"), field="Invoice"):
        # of a company this person may act on, or no such invoice (404)
        invoices = visible_scope(Invoice.objects.select_related("customer"), request)
        invoice = get_or_404(invoices, pk=invoice_id)
    if payment_id := parse_optional_id(source.get("payment"), field="Payment"):
        payments = visible_scope(Payment.objects.select_related("receipt"), request)
        payment = get_or_404(payments, pk=payment_id)
    currency = (invoice or payment).currency if (invoice or payment) else None
    form = RefundForm(request.POST or None, currency=currency)
    blocked = None
    if request.method == "POST" and form.is_valid():
        line_ids = parse_ids(request.POST.getlist("line"), field="Invoice lines")
        try:
            picks = _line_picks(request.POST, invoice, currency)
            refund = services.refund_request(
                actor=request.user,
                kind=kind,
                invoice=invoice,
                payment=payment,
                amount=form.cleaned_data["amount"],
                line_ids=line_ids or None,
                picks=picks or None,
                reason=form.cleaned_data["reason"],
            )
        except services.ReceiptAllocated as error:
            blocked = error
            messages.error(request, error.messages[0])
        except Exception as error:  # noqa: BLE001 - refusals only; anything else re-raised
            outcome = _refusal(error)
            if outcome is None:
                raise
            messages.error(request, f"Not requested: {outcome}")
        else:
            messages.success(request, "Refund requested; a second person must approve it.")
            return redirect("payments:refund", refund_id=refund.pk)
    context = {
        "kind": kind,
        "kind_label": KINDS[kind],
        "invoice": invoice,
        "payment": payment,
        "form": form,
        "lines": _invoice_lines(request, invoice),
        "limit": _limit(kind, invoice, payment),
        "currency": (invoice or payment).currency if (invoice or payment) else "",
        "blocked": blocked,
    }
    return render(request, "payments/refund_new.html", context)


def _refusal(error) -> str | None:
    from django.core.exceptions import PermissionDenied, ValidationError

    if isinstance(error, ValidationError):
        return " ".join(error.messages)
    if isinstance(error, PermissionDenied | ValueError):
        return str(error) or "You are not allowed to do this."
    return None


@clerk_required
def refund_detail(request, refund_id):
    refund = get_or_404(_refunds().select_related("receipt", "customer__entity"), pk=refund_id)
    commands = list(
        OutboxCommand.objects.filter(origin_type="refund", origin_id=refund.pk).order_by("pk")
    )
    plan, plan_error = [], ""
    if not commands and refund.state == Refund.State.REQUESTED:
        try:
            plan = refund_steps(refund)
        except RefundStepError as error:
            plan_error = str(error)
    context = {
        "refund": refund,
        "plan": plan,
        "plan_error": plan_error,
        "commands": commands,
        "is_mine": is_maker(refund, request.user),
        "reject_form": ReasonForm(),
        "editable": refund.state == Refund.State.REQUESTED and refund.kind != Refund.Kind.EXTERNAL,
        "edit_form": RefundForm(
            initial={"amount": refund.amount, "reason": refund.reason}, currency=refund.currency
        ),
    }
    return render(request, "payments/refund_detail.html", context)


def _on_its_way(refund) -> str:
    """Where an approved refund goes: a credit note alone goes only to AIQ."""
    to_stripe = OutboxCommand.objects.filter(
        origin_type="refund", origin_id=refund.pk, kind=OutboxCommand.Kind.STRIPE_REFUND
    ).exists()
    if to_stripe:
        return "the refund is on its way to Stripe and AIQ."
    if refund.kind == Refund.Kind.CANCEL_INVOICE:
        return "the credit note is on its way to AIQ."
    return "the refund is on its way to AIQ."


@require_POST
@approver_required
def refund_approve(request, refund_id):
    refund = get_or_404(Refund.objects.all(), pk=refund_id)
    outcome = run_service(services.refund_approve, refund=refund, actor=request.user)
    if outcome.ok:
        messages.success(request, f"Approved: {_on_its_way(refund)}")
    else:
        messages.error(request, f"Not approved: {outcome.message}")
    return redirect("payments:refund", refund_id=refund.pk)


@require_POST
@clerk_required
def refund_edit(request, refund_id):
    """Change a refund's amount or reason before approval. Whoever changes it becomes its
    maker, so a different approver must approve what was changed (services.refund_edit)."""
    refund = get_or_404(Refund.objects.all(), pk=refund_id)
    form = RefundForm(request.POST, currency=refund.currency)
    if not form.is_valid():
        problems = "; ".join(" ".join(errors) for errors in form.errors.values())
        messages.error(request, f"Not changed: {problems}")
        return redirect("payments:refund", refund_id=refund.pk)
    outcome = run_service(
        services.refund_edit,
        refund=refund,
        actor=request.user,
        amount=form.cleaned_data["amount"],
        reason=form.cleaned_data["reason"],
    )
    if outcome.ok:
        messages.success(
            request,
            "Changed. You are now its maker: a different approver must approve it.",
        )
    else:
        messages.error(request, f"Not changed: {outcome.message}")
    return redirect("payments:refund", refund_id=refund.pk)


@require_POST
@clerk_required
def refund_reject(request, refund_id):
    refund = get_or_404(Refund.objects.all(), pk=refund_id)
    form = ReasonForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give a reason for the rejection.")
        return redirect("payments:refund", refund_id=refund.pk)
    outcome = run_service(
        services.refund_reject,
        refund=refund,
        actor=request.user,
        reason=form.cleaned_data["reason"],
    )
    if outcome.ok:
        messages.success(request, "Rejected; nothing was sent.")
    else:
        messages.error(request, f"Not rejected: {outcome.message}")
    return redirect("payments:refund", refund_id=refund.pk)


@require_POST
@clerk_required
def unallocate_first(request, payment_id):
    payment = get_or_404(Payment.objects.select_related("receipt"), pk=payment_id)
    outcome = run_service(
        services.refund_unallocate_first,
        payment=payment,
        actor=request.user,
        reason=request.POST.get("reason") or "refund requested",
    )
    if outcome.ok:
        waiting = sum(undo.state == Unallocation.State.REQUESTED for undo in outcome.value)
        messages.success(
            request,
            f"{len(outcome.value) - waiting} allocation(s) queued to be reversed in AIQ"
            + (f", {waiting} waiting for a second person's approval" if waiting else "")
            + "; once confirmed the money is on account and can be refunded.",
        )
    else:
        messages.error(request, f"Not unallocated: {outcome.message}")
    return redirect("payments:detail", payment_id=payment.pk)


@clerk_required
def credit_note_pdf(request, refund_id):
    refund = get_or_404(_refunds().select_related("credit_note__entity"), pk=refund_id)
    note = refund.credit_note
    back = f"/refunds/{refund.pk}/"
    if note is None:
        messages.error(request, "This refund has no credit note.")
        return redirect(back)
    return _pdf(
        request,
        entity=note.entity,
        kind=Document.Kind.CREDIT_NOTE_PDF,
        transaction_id=note.aiq_transaction_id,
        filename=f"{note.credit_note_number or note.external_reference}.pdf",
        back=back,
        what="credit note",
    )
