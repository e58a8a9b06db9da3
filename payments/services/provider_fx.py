"""Realised exchange gain or loss of a payout's foreign-currency payments (issue 17.5).

A EUR card payment on a GBP Stripe account is converted by Stripe at its rate: the receipt is
posted at that rate (plan_outbox.receipt_exchange_rate) into the GBP clearing account, and it
settles EUR invoices AIQ booked at their own rate (Invoice.exchange_rate, AIQ's ExchangeRate
as pulled). The invoice's value in the base currency and the receipt's differ; the difference
is realised when the payout settles the money, so it is booked then, once per payout:

  FXR-<payout id>   gain: Dr debtors control, Cr FX gain/loss GL
                    loss: Dr FX gain/loss GL, Cr debtors control

(the debtors control in base currency holds exactly that difference once the receipt is
allocated: the invoice put its base value there, the receipt took off another). One journal
through the outbox, its external reference its identity in AIQ: exactly once. Booked only where
the provider account names an FX GL account: a company whose AIQ posts realised FX itself on
allocation (its required "FX gains & losses" account) leaves it empty so nothing is counted
twice. Payments whose rates are not both known (an invoice not pulled since, a receipt at the
company's rate of the day) are named in the audit entry and left out.
"""

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.db import transaction
from django.utils import timezone

from core.money import format_money
from ledger.models import GLAccount, OutboxCommand
from payments.models import AllocationPlan, AllocationPlanLine, Payment, Payout
from payments.services.plan_outbox import receipt_exchange_rate
from payments.services.provider_books import journal_enqueue, journal_payload
from staff.services import audit_log

CENT = Decimal("0.01")


@dataclass
class RealisedFx:
    amount: Decimal = Decimal(0)  # in the payout's (base) currency: positive a gain
    parts: list = field(default_factory=list)  # (payment, invoice, amount, receipt, invoice rate)
    left_out: list = field(default_factory=list)  # why a payment's result is not known
    plan_ids: set = field(default_factory=set)  # the plans counted (their fx_command is set)


def payout_realised_fx(payout: Payout, plan: AllocationPlan | None = None) -> RealisedFx:
    """The realised FX of the payout's confirmed allocations not counted yet (of `plan` only
    when given: one confirmed after the payout was booked)."""
    result = RealisedFx()
    foreign = payout.payments.exclude(currency=_base(payout)).select_related("entity")
    lines = AllocationPlanLine.objects.filter(
        plan__payment__in=foreign,
        plan__state=AllocationPlan.State.CONFIRMED,
        plan__fx_command__isnull=True,
        unallocated_at__isnull=True,
    ).select_related("plan__payment__entity", "invoice")
    if plan is not None:
        lines = lines.filter(plan=plan)
    for line in lines.order_by("pk"):
        payment, invoice = line.plan.payment, line.invoice
        rate = receipt_exchange_rate(payment) or receipt_rate_booked(payment)
        part = line_realised_fx(line, rate)
        if part is None:
            result.left_out.append(
                f"{payment.external_id} on {invoice}: "
                + ("the invoice's rate is not pulled yet" if rate else "no provider rate")
            )
            continue
        result.amount += part
        result.plan_ids.add(line.plan_id)
        result.parts.append((payment.external_id, str(invoice), line.amount, rate,
                             invoice.exchange_rate, part))  # fmt: skip
    return result


def line_realised_fx(line: AllocationPlanLine, rate=None) -> Decimal | None:
    """One allocation's realised exchange result in the base currency (positive a gain): its
    value at the receipt's rate less its value at the invoice's; None when a rate is unknown."""
    if rate is None:
        payment = line.plan.payment
        rate = receipt_exchange_rate(payment) or receipt_rate_booked(payment)
    if not rate or not line.invoice.exchange_rate:
        return None
    receipt_base = line.amount / Decimal(rate)
    invoice_base = line.amount / line.invoice.exchange_rate
    return (receipt_base - invoice_base).quantize(CENT, rounding=ROUND_HALF_UP)


def _base(payout: Payout) -> str:
    """The company's base currency (a EUR payout of a GBP company's EUR account settles EUR
    payments whose realised FX is in GBP)."""
    account = payout.provider_account
    return account.entity.base_currency if account is not None else payout.currency


def receipt_rate_booked(payment: Payment) -> str:
    """The rate AIQ booked a payment's receipt at when no provider rate applied (the company's
    rate for the day, which the receipt's outbox command records: ledger's receipt_send)."""
    result = (
        OutboxCommand.objects.filter(
            entity_id=payment.entity_id,
            kind=OutboxCommand.Kind.POST_RECEIPT,
            external_reference=f"RCPT-{payment.pk}",
            state=OutboxCommand.State.CONFIRMED,
        )
        .values_list("result", flat=True)
        .first()
    )
    return str((result or {}).get("exchange_rate") or "")


def debtors_control_code(entity_id) -> str:
    """The company's debtors control GL account, as AIQ's GL list names it."""
    return (
        GLAccount.objects.filter(entity_id=entity_id, account_type="debtors", active=True)
        .order_by("code")
        .values_list("code", flat=True)
        .first()
        or ""
    )


def fx_lines(account, payout: Payout, fx: RealisedFx, what: str = "") -> list:
    """gain: Dr debtors control, Cr FX GL; loss the other way (`what`: a reversal says so)."""
    control = debtors_control_code(account.entity_id)
    money = format_money(abs(fx.amount), _base(payout))
    if fx.amount > 0:
        text = what or f"Realised exchange gain {money}, {payout}"
        return [(control, fx.amount, 0, text), (account.fx_gl_account_code, 0, fx.amount, text)]
    text = what or f"Realised exchange loss {money}, {payout}"
    return [(account.fx_gl_account_code, -fx.amount, 0, text), (control, 0, -fx.amount, text)]


def line_fx_reverse(*, line: AllocationPlanLine, depends_on: OutboxCommand, reason: str):
    """An allocation undone after its realised FX was booked (its plan's fx_command, the
    payout's FXR journal or the plan's own): its part is reversed by one journal,
    FXRREV-<plan line>, queued after the unallocation itself (`depends_on`) in the caller's
    transaction, once (its reference), audited. Returns (command, part) or None when nothing
    was booked for it."""
    plan = line.plan
    if plan.fx_command_id is None or plan.fx_command.state == OutboxCommand.State.CANCELLED:
        return None
    payout = plan.payment.payout
    account = payout.provider_account if payout is not None else None
    part = line_realised_fx(line)
    if account is None or not account.fx_gl_account_code or not part:
        return None
    money = format_money(abs(part), _base(payout))
    text = (
        f"Realised exchange {'gain' if part > 0 else 'loss'} {money} reversed: allocation of "
        f"{line.invoice} undone ({reason})"
    )[:250]
    lines = fx_lines(account, payout, RealisedFx(amount=-part), text)
    if not all(item[0] for item in lines):
        return None
    command = journal_enqueue(
        account, "payout", payout.pk, f"FXRREV-{line.pk}",
        journal_payload(_base(payout), timezone.localdate(), text, lines), depends_on,
    )  # fmt: skip
    audit_log(
        actor=None,
        action="payout.fx_reversed",
        obj=payout,
        summary=f"{payout}: {text}",
        after={
            "reference": command.external_reference,
            "reverses": plan.fx_command.external_reference,
            "realised_fx": -part,
        },
    )
    return command, part


def plan_realised_fx_book(*, plan_id: int) -> OutboxCommand | None:
    """A plan confirmed after its payment's payout was booked: its own realised FX journal,
    FXR-<payout>-<plan>, once (the plan's fx_command, under the payout's and the plan's
    locks, the same the payout's booking takes). A payout not booked yet counts it itself."""
    with transaction.atomic():
        plan = AllocationPlan.objects.select_for_update().filter(pk=plan_id).first()
        if plan is None or plan.fx_command_id or plan.state != AllocationPlan.State.CONFIRMED:
            return None
        payout_id = Payment.objects.filter(pk=plan.payment_id).values_list("payout_id", flat=True)
        payout = Payout.objects.select_for_update().filter(pk__in=payout_id).first()
        if payout is None or not (payout.transfer_command_id or payout.fees_command_id):
            return None  # not paid out, or not booked yet: payout_book counts it
        account = payout.provider_account
        if account is None or not account.fx_gl_account_code:
            return None
        plan.refresh_from_db()  # the payout's booking may have counted it meanwhile
        fx = payout_realised_fx(payout, plan=plan)
        lines = fx_lines(account, payout, fx) if fx.amount else []
        if not lines or not all(line[0] for line in lines):
            if fx.left_out:
                audit_log(actor=None, action="payout.fx_left_out", obj=payout,
                          summary=f"{payout}: " + "; ".join(fx.left_out)[:400])  # fmt: skip
            return None
        command = journal_enqueue(
            account, "payout", payout.pk, f"FXR-{payout.pk}-{plan.pk}",
            journal_payload(_base(payout), timezone.localdate(), lines[0][3], lines),
        )  # fmt: skip
        AllocationPlan.objects.filter(pk=plan.pk).update(fx_command=command)
        audit_log(
            actor=None,
            action="payout.fx_late",
            obj=payout,
            summary=f"{payout}: plan {plan.pk} confirmed after the payout was booked: "
            + lines[0][3],
            after={
                "reference": command.external_reference,
                "realised_fx": fx.amount,
                "realised_fx_parts": [list(map(str, part)) for part in fx.parts],
            },
        )
        return command


def dispute_reversal_fx(
    account, dispute, amount: Decimal, rate: Decimal, *, unallocation, reallocation, what: str
) -> str:
    """A lost dispute reversed in an account of another currency than the company's (a EUR
    dispute of a GBP company), queued in the caller's transaction, each write once:

    - the allocations of the payment that the reversal undoes (`unallocation`: its invoices
      reopen, in their currency at their rate) had their realised FX booked with the payout:
      each part is reversed (FXRREV-<plan line>, after the unallocation), the line marked
      undone, as a clerk's undo does;
    - the receipt (at the rate it was booked at) now pays the sales debit journal (at the
      withdrawal's `rate`): their difference in the base currency is realised when
      `reallocation` allocates them, DISPFX-<dispute>: a loss Dr FX GL, Cr debtors control (a
      gain the other way). Booked where the account names an FX GL account.

    Returns what was booked, for the reversal's audit entry."""
    payment, said = dispute.payment, []
    reason = f"{what} lost (DISPUNALLOC-{dispute.pk})"
    if unallocation is not None and unallocation.kind == OutboxCommand.Kind.UNALLOCATE:
        lines = AllocationPlanLine.objects.filter(
            plan__payment=payment,
            plan__state=AllocationPlan.State.CONFIRMED,
            unallocated_at__isnull=True,
        ).select_related("plan__payment", "invoice")
        for line in lines.order_by("pk"):
            line.unallocated_at, line.unallocation_reason = timezone.now(), reason[:200]
            line.save(update_fields=["unallocated_at", "unallocation_reason"])
            undone = line_fx_reverse(line=line, depends_on=unallocation, reason=reason)
            if undone is not None:
                said.append(f"{undone[0].external_reference} reverses {undone[1]}")
    booked_at = receipt_exchange_rate(payment) or receipt_rate_booked(payment)
    control = debtors_control_code(account.entity_id)
    if not (account.fx_gl_account_code and booked_at and control):
        return "; " + ", ".join(said) if said else ""
    part = (amount / Decimal(booked_at)).quantize(CENT, rounding=ROUND_HALF_UP) - (
        amount / Decimal(rate)
    ).quantize(CENT, rounding=ROUND_HALF_UP)  # the receipt's base value less the journal's
    if part:
        base = account.entity.base_currency
        text = (
            f"{what}: realised exchange {'gain' if part > 0 else 'loss'} "
            f"{format_money(abs(part), base)} (receipt at {booked_at}, reversal at {rate})"
        )[:250]
        gain_or_loss = [(control, part, 0, text), (account.fx_gl_account_code, 0, part, text)]
        if part < 0:
            gain_or_loss = [(account.fx_gl_account_code, -part, 0, text),
                            (control, 0, -part, text)]  # fmt: skip
        command = journal_enqueue(
            account, "dispute", dispute.pk, f"DISPFX-{dispute.pk}",
            journal_payload(base, timezone.localdate(), text, gain_or_loss), reallocation,
        )  # fmt: skip
        said.append(f"{command.external_reference} {part}")
    return "; " + ", ".join(said) if said else ""
