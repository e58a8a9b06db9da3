"""The clearing-balance check and the reconciliation report of a provider account (issue 17.3,
17.7): what AIQ's clearing account holds beside what the provider holds for us, and per period
the payments (gross), refunds, disputes, fees and payouts, each tied to the AIQ transaction
that booked it, with what does not tie up listed."""

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from core.money import format_money, from_minor
from ledger.aiq.client import AiqClient
from ledger.aiq.errors import AiqError
from ledger.models import OutboxCommand
from payments.models import ClearingBalance, Dispute, Fee, Payment, Payout, ProviderAccount
from payments.services.provider_currency import entries_of, fees_of
from payments.services.provider_disputes import LOST as DISPUTES_LOST
from payments.sources import stripe_client as api
from staff.services import audit_log

LOST = tuple(DISPUTES_LOST)
log = logging.getLogger(__name__)


def _records_balance(account: ProviderAccount) -> Decimal:
    """What the provider should hold by our own records: the net of its payments that no paid
    payout has taken yet, less what was refunded of them."""
    rows = Payment.objects.filter(
        entity_id=account.entity_id,
        source=account.source,
        currency=account.currency,
        status__in=["succeeded", "partially_refunded", "refunded", "disputed"],
    ).exclude(payout__status="paid")
    totals = rows.aggregate(
        gross=Sum("amount"), fees=Sum("fee_amount"), refunded=Sum("amount_refunded")
    )
    return (totals["gross"] or 0) - (totals["fees"] or 0) - (totals["refunded"] or 0)


def provider_balance(account: ProviderAccount) -> tuple[Decimal | None, str]:
    """(balance, where it came from): Stripe's balance (available + pending) in the account's
    currency; for a provider without a balance we can ask, our records' figure."""
    if account.source == "stripe":
        try:
            balance = api.balance_retrieve()
        except api.StripeError as error:
            return None, f"Stripe balance unavailable: {error}"
        minor = 0
        for part in ("available", "pending"):
            items = balance.get(part) or []
            for item in [items] if isinstance(items, dict) else items:  # localstripe: one dict
                if (item.get("currency") or "").upper() == account.currency:
                    minor += item.get("amount") or 0
        return from_minor(minor, account.currency), "Stripe balance (available + pending)"
    return _records_balance(account), "our records: net of payments not yet paid out"


def clearing_check(*, account: ProviderAccount, actor=None, client=None) -> ClearingBalance:
    """Ask AIQ what the clearing account holds and the provider what it holds; keep both."""
    client = client or AiqClient.for_entity(account.entity)
    now = timezone.now()
    aiq = client.get_bank_account_balance(account.clearing_bank_account.bank_code, now)
    theirs, basis = provider_balance(account)
    with transaction.atomic():
        row = ClearingBalance.objects.create(
            provider_account=account,
            checked_at=now,
            aiq_balance=aiq,
            provider_balance=theirs,
            provider_basis=basis[:200],
            checked_by=actor,
        )
        difference = row.difference
        audit_log(
            actor=actor,
            action="clearing.check",
            obj=account,
            summary=f"{account}: AIQ clearing {format_money(aiq, account.currency)}, provider "
            f"{format_money(theirs, account.currency) if theirs is not None else 'unknown'}"
            + (f", difference {format_money(difference, account.currency)}" if difference else ""),
            after={"aiq_balance": aiq, "provider_balance": theirs, "basis": basis},
        )
    return row


def clearing_checks_all() -> dict:
    """The daily check (schedule "clearing-check"): every provider account's clearing balance
    in AIQ beside the provider's, kept and audited; an account AIQ or the provider cannot
    answer for is counted and left for tomorrow (and the screen's "Check now")."""
    done, failed, differ = 0, [], []
    for account in ProviderAccount.objects.select_related("entity", "clearing_bank_account"):
        try:
            row = clearing_check(account=account)
        except AiqError as error:
            log.warning("clearing check of %s not done: %s", account, type(error).__name__)
            failed.append(str(account))
            continue
        done += 1
        if row.difference:
            differ.append(f"{account}: {format_money(row.difference, account.currency)}")
    return {"checked": done, "failed": failed, "differences": differ}


@dataclass
class Reconciliation:
    account: ProviderAccount
    start: date
    end: date  # inclusive
    figures: dict = field(default_factory=dict)
    rows: list = field(default_factory=list)  # (section, day, reference, amount, aiq ref, id, note)
    differences: list = field(default_factory=list)
    clearing: ClearingBalance | None = None


def _day_range(start: date, end: date):
    zone = timezone.get_current_timezone()
    return (
        timezone.make_aware(datetime.combine(start, time.min), zone),
        timezone.make_aware(datetime.combine(end + timedelta(days=1), time.min), zone),
    )


def reconciliation(account: ProviderAccount, start: date, end: date) -> Reconciliation:
    report = Reconciliation(account=account, start=start, end=end)
    since, until = _day_range(start, end)
    payments = Payment.objects.filter(
        entity_id=account.entity_id,
        source=account.source,
        currency=account.currency,
        received_at__gte=since,
        received_at__lt=until,
    ).select_related("receipt")
    gross = refunded = Decimal(0)
    not_in_aiq = 0
    for p in payments.order_by("received_at", "pk"):
        gross += p.amount
        refunded += p.amount_refunded
        receipt = p.receipt
        report.rows.append(
            (
                "payment",
                timezone.localdate(p.received_at),
                p.external_id,
                p.amount,
                receipt.check_reference if receipt else "",
                receipt.aiq_transaction_id if receipt else None,
                "" if receipt else "not in AIQ yet",
            )
        )
        if receipt is None and p.status != "failed":
            not_in_aiq += 1
        if p.amount_refunded:
            report.rows.append(
                ("refund", timezone.localdate(p.received_at), p.external_id,
                 -p.amount_refunded, "", None, "")
            )  # fmt: skip
    fees = Fee.objects.filter(payment__in=payments, currency=account.currency).aggregate(
        t=Sum("amount")
    )["t"] or Decimal(0)
    disputes = Dispute.objects.filter(payment__in=payments)
    lost = disputes.filter(status__in=LOST).aggregate(t=Sum("amount"))["t"] or Decimal(0)
    for d in disputes.select_related(
        "withdrawal_command", "loss_command", "reinstatement_command"
    ).order_by("pk"):
        booked = [
            entry
            for c in (d.withdrawal_command, d.loss_command, d.reinstatement_command)
            if c
            for entry in entries_of(c)
        ]
        report.rows.append(
            ("dispute", None, d.external_id, -d.amount,
             " ".join(c.external_reference for c in booked),
             " ".join(str(c.result.get("transaction_id") or "") for c in booked).strip() or None,
             d.status)
        )  # fmt: skip
        for command in booked:
            if command.state != "confirmed":
                report.differences.append(
                    f"dispute {d.external_id}: {command.external_reference} is "
                    f"{command.get_state_display().lower()} in the outbox"
                )
    payouts = Payout.objects.filter(
        provider_account=account, arrival_date__gte=start, arrival_date__lte=end
    ).select_related(
        "fees_command", "transfer_command", "reversal_command", "fx_command", "statement_payment"
    )
    paid_out = Decimal(0)
    late_fx: dict = {}  # FXR-<payout>-<plan>: allocations confirmed after the payout was booked
    for command in OutboxCommand.objects.filter(
        origin_type="payout",
        origin_id__in=[payout.pk for payout in payouts],
        external_reference__startswith="FXR-",
    ).exclude(pk__in=payouts.exclude(fx_command=None).values("fx_command")):
        late_fx.setdefault(command.origin_id, []).append(command)
    for payout in payouts.order_by("arrival_date", "pk"):
        if payout.status == "paid":
            paid_out += payout.amount
        for label, command in (
            ("payout fees", payout.fees_command),
            ("payout", payout.transfer_command),
            ("payout reversed", payout.reversal_command),
            ("realised FX", payout.fx_command),
            *(("realised FX", late) for late in late_fx.get(payout.pk, [])),
        ):
            if command is None:
                continue
            entries = entries_of(command)  # a foreign-currency account's bank entries
            if label == "payout fees":
                amount = fees_of(entries)
            elif label == "realised FX":
                lines = command.payload["lines"]  # a gain positive: the FX account's credit
                fx = [
                    line for line in lines if line["gl_account_code"] == account.fx_gl_account_code
                ]
                amount = -sum(Decimal(line["credit"]) - Decimal(line["debit"]) for line in fx)
            else:
                amount = payout.amount
            report.rows.append(
                (
                    label,
                    payout.arrival_date,
                    payout.external_id,
                    -amount if label != "payout reversed" else amount,
                    " ".join(c.external_reference for c in entries),
                    " ".join(str(c.result.get("transaction_id") or "") for c in entries).strip()
                    or None,
                    "; ".join(
                        f"{c.external_reference} {c.get_state_display().lower()}"
                        for c in entries
                        if c.state != "confirmed"
                    )
                    or (  # realised FX is in the company's currency (a general journal)
                        f"in {account.entity.base_currency}"
                        if label == "realised FX"
                        and account.entity.base_currency != account.currency
                        else ""
                    ),
                )
            )
            for entry in entries:
                if entry.state != "confirmed":
                    report.differences.append(
                        f"{label} {payout.external_id}: {entry.external_reference} is "
                        f"{entry.get_state_display().lower()} in the outbox"
                    )
        line = payout.statement_payment
        if line is not None:  # the payout as the bank statement shows it (linked both ways)
            report.rows.append(
                ("bank line", timezone.localdate(line.received_at), payout.external_id,
                 line.amount, line.shown_reference, None, f"statement payment #{line.pk}")
            )  # fmt: skip
        if payout.status == "paid" and payout.transfer_command_id is None:
            report.differences.append(f"payout {payout.external_id} is paid but not booked")
        if payout.status == "paid" and payout.statement_payment_id is None:
            report.differences.append(
                f"payout {payout.external_id} ({format_money(payout.amount, payout.currency)}): "
                "no bank statement line recognised yet"
            )
    if not_in_aiq:
        report.differences.append(f"{not_in_aiq} payment(s) not booked in AIQ yet")
    report.clearing = (
        ClearingBalance.objects.filter(provider_account=account, checked_at__lt=until)
        .order_by("-checked_at")
        .first()
    )
    if report.clearing is not None and report.clearing.difference:
        report.differences.append(
            f"clearing account {format_money(report.clearing.aiq_balance, account.currency)} in "
            f"AIQ vs {format_money(report.clearing.provider_balance, account.currency)} at the "
            f"provider: difference {format_money(report.clearing.difference, account.currency)}"
        )
    report.figures = {
        "payments": payments.count(),
        "gross": gross,
        "refunds": refunded,
        "disputes_lost": lost,
        "fees": fees,
        "payouts": paid_out,
    }
    return report


def clearing_chart(account: ProviderAccount, limit: int = 90) -> dict:
    """The clearing balance over time (AIQ and provider), oldest first, for Chart.js."""
    rows = list(
        ClearingBalance.objects.filter(provider_account=account).order_by("-checked_at")[:limit]
    )[::-1]
    return {
        "labels": [timezone.localtime(r.checked_at).strftime("%d/%m/%Y %H:%M") for r in rows],
        "aiq": [str(r.aiq_balance) for r in rows],
        "provider": [str(r.provider_balance) if r.provider_balance is not None else None
                     for r in rows],
    }  # fmt: skip


# A dispute still to answer or decide (Stripe's statuses). A GoCardless late failure or
# charge-back of a payment already paid out is decided when it happens (provider_disputes).
OPEN_DISPUTE = (
    "warning_needs_response",
    "needs_response",
    "warning_under_review",
    "under_review",
)


def disputes_booked(limit: int = 100) -> list[Dispute]:
    """The latest disputes whose money has been booked, with their journals."""
    return list(
        Dispute.objects.filter(withdrawal_command__isnull=False)
        .select_related(
            "payment__customer", "withdrawal_command", "loss_command", "reinstatement_command"
        )
        .order_by("-updated_at", "-pk")[:limit]
    )


def open_disputes() -> list[dict]:
    """Open disputes, the one whose evidence is due first on top, with their deadlines."""
    rows = []
    for dispute in Dispute.objects.filter(status__in=OPEN_DISPUTE).select_related(
        "payment__customer", "payment__receipt"
    ):
        details = (dispute.raw or {}).get("evidence_details") or {}
        due = details.get("due_by")
        due_at = (
            datetime.fromtimestamp(int(due), tz=timezone.get_current_timezone())
            if isinstance(due, int | float) or (isinstance(due, str) and due.isdigit())
            else None
        )
        created = (dispute.raw or {}).get("created")
        rows.append(
            {
                "dispute": dispute,
                "payment": dispute.payment,
                "evidence_due": due_at,
                "overdue": bool(details.get("past_due"))
                or (due_at is not None and due_at < timezone.now()),
                "needs_response": dispute.status in ("warning_needs_response", "needs_response"),
                "opened": datetime.fromtimestamp(int(created), tz=timezone.get_current_timezone())
                if isinstance(created, int)
                else None,
            }
        )
    far = datetime.max.replace(tzinfo=timezone.get_current_timezone())
    return sorted(rows, key=lambda r: (r["evidence_due"] or far, r["dispute"].pk))
