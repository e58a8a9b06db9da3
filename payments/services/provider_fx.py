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

from core.money import format_money
from ledger.models import GLAccount
from payments.models import AllocationPlan, AllocationPlanLine, Payout
from payments.services.plan_outbox import receipt_exchange_rate

CENT = Decimal("0.01")


@dataclass
class RealisedFx:
    amount: Decimal = Decimal(0)  # in the payout's (base) currency: positive a gain
    parts: list = field(default_factory=list)  # (payment, invoice, amount, receipt, invoice rate)
    left_out: list = field(default_factory=list)  # why a payment's result is not known


def payout_realised_fx(payout: Payout) -> RealisedFx:
    result = RealisedFx()
    foreign = payout.payments.exclude(currency=payout.currency).select_related("entity")
    lines = AllocationPlanLine.objects.filter(
        plan__payment__in=foreign,
        plan__state=AllocationPlan.State.CONFIRMED,
        unallocated_at__isnull=True,
    ).select_related("plan__payment__entity", "invoice")
    for line in lines.order_by("pk"):
        payment, invoice = line.plan.payment, line.invoice
        rate = receipt_exchange_rate(payment)
        if not rate or not invoice.exchange_rate:
            result.left_out.append(
                f"{payment.external_id} on {invoice}: "
                + ("the invoice's rate is not pulled yet" if rate else "no provider rate")
            )
            continue
        receipt_base = line.amount / Decimal(rate)
        invoice_base = line.amount / invoice.exchange_rate
        part = (receipt_base - invoice_base).quantize(CENT, rounding=ROUND_HALF_UP)
        result.amount += part
        result.parts.append((payment.external_id, str(invoice), line.amount, rate,
                             invoice.exchange_rate, part))  # fmt: skip
    return result


def debtors_control_code(entity_id) -> str:
    """The company's debtors control GL account, as AIQ's GL list names it."""
    return (
        GLAccount.objects.filter(entity_id=entity_id, account_type="debtors", active=True)
        .order_by("code")
        .values_list("code", flat=True)
        .first()
        or ""
    )


def fx_lines(account, payout: Payout, fx: RealisedFx) -> list:
    control = debtors_control_code(account.entity_id)
    money = format_money(abs(fx.amount), payout.currency)
    if fx.amount > 0:
        text = f"Realised exchange gain {money}, {payout}"
        return [(control, fx.amount, 0, text), (account.fx_gl_account_code, 0, fx.amount, text)]
    text = f"Realised exchange loss {money}, {payout}"
    return [(account.fx_gl_account_code, -fx.amount, 0, text), (control, 0, -fx.amount, text)]
