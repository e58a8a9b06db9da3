"""Disputes and charge-backs booked as accountants book them (issue 17.4).

A dispute moves money out of the provider's balance, so out of its clearing account in AIQ;
each movement is one general journal through the outbox with its own external reference
(read back before any resend: exactly once), audited:

  DISP-<dispute id>      the money is taken (Stripe's withdrawal balance transaction,
                         reporting category "dispute"; a GoCardless late failure or charge-back
                         of a payment already paid out):
                         Dr disputes GL (the disputed amount), Dr fees GL (Stripe's dispute fee),
                         Cr clearing.
  DISPLOST-<dispute id>  the dispute is lost (Stripe "lost"; a GoCardless late failure or
                         charge-back is final when it happens): the money stays out and is
                         written off: Dr dispute loss GL (bad debt), Cr disputes GL.
  DISPWON-<dispute id>   the dispute is won (Stripe's reinstatement balance transaction,
                         "dispute_reversal"; a GoCardless charge-back cancelled): the money comes
                         back: Dr clearing, Cr disputes GL (or the loss GL if it was written
                         off), Cr fees GL for a dispute fee Stripe gives back.

Why a lost dispute is written off and the invoice is not reopened: the card network (or the
payer's bank, for Direct Debit) has already given the money back to the customer and decided
the customer need not pay; reopening the invoice would put a debt on the sales ledger that
nobody is going to collect, and dunning would chase it. The loss is an expense the month it
happens (bad debt: charge-backs), the invoice stays paid by its receipt, so the customer's
statement matches what the customer was told. Chasing the customer anyway is a person's
decision: a new invoice, not an automatic reopening. (DISPUTE_LOST_EXPLAINED, on the screen.)

Amounts are the provider's own: Stripe's dispute balance transactions (amount, fee), in the
currency of the provider account they settle in; GoCardless's payment amount.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from core.money import format_money
from core.stripe_money import stripe_from_minor
from ledger.outbox.origins import origin_register
from payments.models import DISPUTE_LOST, Dispute, Payment, ProviderAccount, Source
from payments.services.payments import dispute_upsert
from payments.services.provider_books import (
    journal_enqueue,
    journal_origin,
    journal_payload,
    provider_account,
)
from payments.services.provider_currency import CurrencyBooksError, command_rate, company_rate
from staff.maker_checker import check_approver, record_approval, record_change
from staff.models import Role
from staff.services import audit_log, user_has_role

LOST = DISPUTE_LOST
# GoCardless payment statuses after which money already paid out is taken back
GOCARDLESS_TAKEN_BACK = {"failed": "late_failure", "charged_back": "charged_back"}
DISPUTE_LOST_EXPLAINED = (
    "A lost dispute or charge-back stays out of the clearing account and is written off to "
    "the dispute loss GL account (bad debt): the customer already has the money back and the "
    "card network or bank decided the customer need not pay, so the invoice is not reopened "
    "(it would be a debt nobody collects, and reminders would chase it). The invoice stays "
    "paid by its receipt in AIQ; to chase the customer anyway, raise a new invoice."
)


@dataclass(frozen=True)
class Movement:
    """Money a dispute moved in the provider's balance: amount (positive) and fee (the dispute
    fee Stripe charged, or, negative, gave back)."""

    amount: Decimal
    fee: Decimal
    currency: str
    day: object  # date


def _stripe_movements(dispute: Dispute) -> tuple[Movement | None, Movement | None]:
    withdrawal = reinstatement = None
    for txn in (dispute.raw or {}).get("balance_transactions") or []:
        if not isinstance(txn, dict) or not isinstance(txn.get("amount"), int):
            continue  # not expanded: nothing to book from
        currency = (txn.get("currency") or dispute.currency).upper()
        created = txn.get("created")
        day = (
            timezone.localdate(datetime.fromtimestamp(created, tz=UTC))
            if isinstance(created, int)
            else timezone.localdate()
        )
        fee = stripe_from_minor(int(txn.get("fee") or 0), currency)
        amount = stripe_from_minor(abs(txn["amount"]), currency)
        if txn["amount"] < 0 and withdrawal is None:
            withdrawal = Movement(amount, fee, currency, day)
        elif txn["amount"] > 0 and reinstatement is None:
            reinstatement = Movement(amount, fee, currency, day)
    return withdrawal, reinstatement


def _movements(dispute: Dispute) -> tuple[Movement | None, Movement | None]:
    if dispute.source == Source.STRIPE:
        return _stripe_movements(dispute)
    # GoCardless: the payment's amount is taken back in full; a cancelled charge-back
    # ("won") returns it; GoCardless charges no dispute fee on the payment
    day = timezone.localdate(dispute.updated_at or timezone.now())
    taken = Movement(dispute.amount, Decimal(0), dispute.currency, day)
    return taken, (taken if dispute.status == "won" else None)


def _account(dispute: Dispute, currency: str) -> ProviderAccount | None:
    return provider_account(dispute.payment.entity_id, dispute.source, currency)


def _book(account, dispute, prefix: str, day, text: str, lines, depends_on=None, rate=None):
    return journal_enqueue(
        account,
        "dispute",
        dispute.pk,
        f"{prefix}-{dispute.pk}",
        journal_payload(account.currency, day, text, lines),
        depends_on,
        rate,
    )


def dispute_rate(dispute: Dispute) -> tuple[Decimal | None, str]:
    """(rate, why not) of a dispute's movements in an account of another currency than its
    company's: the rate its withdrawal was booked at (so the disputes account clears in the
    base currency too), else the company's rate for the day from AIQ. (None, '') when the
    account is in the base currency or nothing is to be booked."""
    withdrawal, _back = _movements(dispute)
    account = _account(dispute, withdrawal.currency) if withdrawal is not None else None
    if account is None or account.entity.base_currency == withdrawal.currency:
        return None, ""
    booked = command_rate(dispute.withdrawal_command) if dispute.withdrawal_command_id else None
    if booked is not None:
        return booked, ""
    try:
        return company_rate(account.entity, withdrawal.currency), ""
    except CurrencyBooksError as error:
        return None, str(error)


def dispute_book(*, dispute: Dispute) -> Dispute:
    """Book what the dispute has done so far (idempotent: each journal once). Audited.
    In an account of another currency than the company's, at the rate dispute_rate gives
    (asked of AIQ first, outside the transaction: provider_currency)."""
    rate, no_rate = dispute_rate(dispute)
    with transaction.atomic():
        dispute = Dispute.objects.select_for_update().select_related("payment").get(pk=dispute.pk)
        withdrawal, reinstatement = _movements(dispute)
        if withdrawal is None:
            return dispute  # an inquiry, or nothing taken yet: nothing moved
        account = _account(dispute, withdrawal.currency)
        if account is None or not account.disputes_gl_account_code:
            return dispute  # the start-up check names the missing set-up
        if account.entity.base_currency != withdrawal.currency and rate is None:
            audit_log(
                actor=None,
                action="dispute.not_booked",
                obj=dispute,
                summary=f"{dispute}: {withdrawal.currency} dispute in a "
                f"{account.entity.base_currency} company not booked: no rate ({no_rate})"[:500],
            )
            return dispute
        clearing = account.clearing_bank_account.bank_code
        held = account.disputes_gl_account_code
        what = f"{dispute.get_source_display()} dispute {dispute.external_id} on " + (
            dispute.payment.external_id
        )
        done = []
        if dispute.withdrawal_command_id is None:
            lines = [
                (held, withdrawal.amount, 0, f"{what}: disputed amount"),
                (account.fees_gl_account_code, max(withdrawal.fee, 0), 0, f"{what}: dispute fee"),
                (clearing, 0, withdrawal.amount + max(withdrawal.fee, 0), what),
            ]
            dispute.withdrawal_command = _book(account, dispute, "DISP", withdrawal.day, what,
                                               lines, rate=rate)  # fmt: skip
            done.append(("dispute.withdrawn", f"{format_money(withdrawal.amount, account.currency)}"
                         f" and fee {format_money(withdrawal.fee, account.currency)} out of "
                         f"{account.clearing_bank_account.bank_account_code}"))  # fmt: skip
        if (
            dispute.status in LOST
            and dispute.loss_command_id is None
            and dispute.reinstatement_command_id is None
            and account.dispute_loss_gl_account_code
        ):
            if dispute.approved_at is not None:
                text = f"{what}: lost, written off"
                dispute.loss_command = _book(
                    account, dispute, "DISPLOST", timezone.localdate(), text,
                    [(account.dispute_loss_gl_account_code, withdrawal.amount, 0, text),
                     (held, 0, withdrawal.amount, text)],
                    depends_on=dispute.withdrawal_command, rate=rate,
                )  # fmt: skip
                done.append(("dispute.lost", f"{format_money(withdrawal.amount, account.currency)}"
                             f" written off to {account.dispute_loss_gl_account_code}, approved"
                             f" by {dispute.approver or 'the system'}"))  # fmt: skip
            elif dispute.loss_proposed_at is None:
                # the provider's decision proposes the write-off (maker: nobody, the system);
                # it waits for an approver on the disputes screen
                dispute.loss_proposed_at = timezone.now()
                record_change(dispute, actor=None)
                done.append(("dispute.loss_proposed", f"write-off of "
                             f"{format_money(withdrawal.amount, account.currency)} to "
                             f"{account.dispute_loss_gl_account_code} waits for an approver"))  # fmt: skip
        if reinstatement is not None and dispute.reinstatement_command_id is None:
            text = f"{what}: won, money back"
            back_from = account.dispute_loss_gl_account_code if dispute.loss_command_id else held
            fee = reinstatement.fee  # negative: Stripe gave the dispute fee back
            lines = [
                (clearing, reinstatement.amount - fee, 0, text),
                (back_from, 0, reinstatement.amount, text),
                (account.fees_gl_account_code, max(fee, 0), max(-fee, 0), f"{what}: dispute fee"),
            ]
            dispute.reinstatement_command = _book(
                account, dispute, "DISPWON", reinstatement.day, text, lines,
                depends_on=dispute.loss_command or dispute.withdrawal_command, rate=rate,
            )  # fmt: skip
            done.append(("dispute.reinstated",
                         f"{format_money(reinstatement.amount - fee, account.currency)} back into "
                         f"{account.clearing_bank_account.bank_account_code}"))  # fmt: skip
        if done:
            dispute.save(
                update_fields=[
                    "withdrawal_command", "loss_command", "reinstatement_command",
                    "loss_proposed_at", "maker", "approver", "approved_at", "updated_at",
                ]
            )  # fmt: skip
            for action, summary in done:
                audit_log(
                    actor=dispute.approver if action == "dispute.lost" else None,
                    action=action,
                    obj=dispute,
                    summary=f"{dispute}: {summary}",
                    after={
                        "withdrawal": _reference(dispute.withdrawal_command),
                        "loss": _reference(dispute.loss_command),
                        "reinstatement": _reference(dispute.reinstatement_command),
                    },
                )
        return dispute


class DisputeRefused(ValidationError):
    """The write-off cannot be approved now (already approved, decided otherwise)."""


def dispute_loss_approve(*, dispute: Dispute, actor) -> Dispute:
    """A second person approves writing a lost dispute off: the approval, its audit entry and
    the DISPLOST journal in one transaction. Never by its maker; a second click is refused
    (the row is locked and the write-off already queued), so the journal is queued once."""
    if not user_has_role(actor, Role.APPROVER):
        raise PermissionDenied("Approving a write-off needs the approver role.")
    with transaction.atomic():
        dispute = Dispute.objects.select_for_update().get(pk=dispute.pk)
        check_approver(dispute, actor=actor, what="this write-off")
        if dispute.loss_command_id is not None:
            raise DisputeRefused("This write-off is already approved and queued for AIQ.")
        if not dispute.loss_awaits_approval:
            raise DisputeRefused(
                f"This dispute has no write-off waiting for approval ({dispute.status_shown})."
            )
        record_approval(dispute, actor=actor, what="this write-off")
        dispute.save(update_fields=["approver", "approved_at", "updated_at"])
        dispute = dispute_book(dispute=dispute)
        if dispute.loss_command_id is None:  # set-up changed since: nothing approved
            raise DisputeRefused("The write-off cannot be booked: check the provider account.")
        return dispute


def _reference(command) -> str:
    return command.external_reference if command is not None else ""


def gocardless_taken_back(*, payment: Payment, cause: str = "") -> Dispute | None:
    """A GoCardless payment already paid out that failed late or was charged back: the money
    is taken back from a later payout. Recorded as a dispute of the payment (lost when it
    happens) and booked; a charge-back GoCardless cancels (the payment paid out again) is won.
    """
    raw = payment.raw or {}
    status = raw.get("status") or ""
    paid_out = bool(payment.payout_id or (raw.get("links") or {}).get("payout"))
    existing = Dispute.objects.filter(source=Source.GOCARDLESS, payment=payment).first()
    if status in GOCARDLESS_TAKEN_BACK and paid_out:
        kind = GOCARDLESS_TAKEN_BACK[status]
    elif (
        existing is not None
        and existing.status == "charged_back"
        and status in ("paid_out", "confirmed")
    ):
        kind = "won"
    else:
        return None
    if existing is not None and existing.status == kind:
        return dispute_book(dispute=existing)
    dispute = dispute_upsert(
        source=Source.GOCARDLESS,
        dispute={
            "external_id": existing.external_id if existing else f"{payment.external_id}-{kind}",
            "amount": payment.amount,
            "currency": payment.currency,
            "status": kind,
            "reason": (cause or kind)[:100],
            "raw": {"payment": raw},
        },
        payment=payment,
    )
    return dispute_book(dispute=dispute)


ORIGIN = journal_origin("dispute")  # one object: registering twice is then harmless


def register() -> None:
    origin_register("dispute", ORIGIN)
