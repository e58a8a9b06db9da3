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
                         charge-back is final when it happens) and a second person approved:
                         the receipt is reversed and the invoice reopens (below).
  DISPWON-<dispute id>   the dispute is won (Stripe's reinstatement balance transaction,
                         "dispute_reversal"; a GoCardless charge-back cancelled): the money comes
                         back: Dr clearing, Cr disputes GL (or the loss GL if it was written
                         off), Cr fees GL for a dispute fee Stripe gives back.

A lost dispute is a reversing entry on the customer's account, as a bounced cheque is: the
customer paid, the card network (or the payer's bank) took the payment back, so the customer
owes the invoice again. After the approval, in one transaction, three AIQ writes are queued,
each once, one after the other:

  DISPUNALLOC-<id>   UnallocateTransactions on the payment's receipt: its allocations to the
                     invoices it paid are undone, the invoices are outstanding again;
  DISPLOST-<id>      a sales debit journal on the customer (Dr debtors), Cr the disputes GL
                     account (the money DISP moved out of clearing): the receipt's money went
                     back, as a refund's debit journal pays out of the bank;
  DISPREALLOC-<id>   the receipt allocated against that debit journal, so it is not left on
                     account to be matched again.

The dispute fee stays an expense (DISP put it on the fees GL). A won dispute after that
restores it: DISPWON brings the money back into clearing (Cr disputes GL), DISPRESTORE-<id> a
sales credit journal on the customer (Dr disputes GL), allocated to the invoices it reopened
(DISPRESTORE-<id>-<n>), at most what each still has outstanding. A payment whose receipt is
not in AIQ, is in another currency than the money taken, or is also allocated to something
other than invoices cannot be reversed this way: its loss is written off to the dispute loss
GL account (DISPLOST as a general journal: Dr loss GL, Cr disputes GL), as before, and the
audit entry says why. (DISPUTE_LOST_EXPLAINED, on the screen.)

Amounts are the provider's own: Stripe's dispute balance transactions (amount, fee), in the
currency of the provider account they settle in; GoCardless's payment amount.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core.money import format_money
from core.stripe_money import stripe_from_minor
from ledger.models import Allocation, OutboxCommand, Receipt
from ledger.outbox.origins import origin_register
from ledger.outbox.services import outbox_enqueue
from payments.models import DISPUTE_LOST, Dispute, Payment, ProviderAccount, Source
from payments.services.payments import dispute_upsert
from payments.services.provider_books import (
    journal_enqueue,
    journal_origin,
    journal_payload,
    provider_account,
)
from payments.services.provider_currency import movement_rate
from payments.services.provider_fx import dispute_reversal_fx
from staff.maker_checker import check_approver, record_approval, record_change
from staff.models import Role
from staff.services import audit_log, user_has_role

LOST = DISPUTE_LOST
Kind = OutboxCommand.Kind
# GoCardless payment statuses after which money already paid out is taken back
GOCARDLESS_TAKEN_BACK = {"failed": "late_failure", "charged_back": "charged_back"}
DISPUTE_LOST_EXPLAINED = (
    "A lost dispute or charge-back is reversed once an approver approves it: the payment's "
    "receipt is taken off the invoice it paid, so the invoice is outstanding again, and a sales "
    "debit journal puts the money taken back on the customer's account; the dispute fee stays an "
    "expense. A dispute won afterwards restores it: the money comes back and the invoice is paid "
    "again. A payment that cannot be reversed (no receipt in AIQ, another currency, a receipt "
    "also allocated to something other than invoices) is written off to the dispute loss "
    "account instead."
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


@dataclass(frozen=True)
class Reversal:
    """How a lost dispute is reversed on the customer's account: the payment's receipt and its
    allocations to invoices (undone, the invoices reopen); receipt None: it cannot be, and
    `why_not` says why (the loss is then written off)."""

    receipt: Receipt | None = None
    allocations: tuple = ()
    why_not: str = ""


def _reversal(dispute: Dispute, account: ProviderAccount, amount: Decimal) -> Reversal:
    receipt = dispute.payment.receipt
    if receipt is None or receipt.aiq_transaction_id is None:
        return Reversal(why_not="the payment has no receipt in AIQ")
    if receipt.currency != account.currency:
        return Reversal(
            why_not=f"the receipt is in {receipt.currency}, the money was taken in "
            f"{account.currency}"
        )
    if amount > receipt.amount:
        return Reversal(why_not="more was taken than the receipt's amount")
    allocations = tuple(
        receipt.allocations.filter(state=Allocation.State.ACTIVE).order_by("allocation_date", "pk")
    )
    if any(a.invoice_id is None for a in allocations):
        return Reversal(why_not="the receipt is also allocated to something other than invoices")
    if len(allocations) > 1 and not all(a.aiq_allocation_id for a in allocations):
        return Reversal(why_not="the receipt's allocations are not all pulled from AIQ yet")
    return Reversal(receipt, allocations)


def _reverse(account, dispute: Dispute, reversal: Reversal, amount: Decimal, what: str, rate=None):
    """Queue the reversal of an approved lost dispute: unallocate the receipt (its invoices
    reopen), a sales debit journal on the customer from the disputes GL account, and the
    receipt allocated against it. Each once (its external reference), one after the other.
    In an account of another currency than the company's the debit journal goes at the
    withdrawal's `rate` (so the disputes account clears in the base currency too), and the
    realised FX is booked (provider_dispute_fx)."""
    receipt, today = reversal.receipt, timezone.localdate()
    entity, created_by = account.entity, dispute.approver
    text = f"{what}: lost, receipt {receipt.check_reference} reversed"
    previous = dispute.withdrawal_command
    if reversal.allocations:
        payload = {
            "transaction_ids": [receipt.aiq_transaction_id],
            "reason": f"{what} lost (DISPUNALLOC-{dispute.pk})",
        }
        if len(reversal.allocations) == 1:
            payload["allocation_id"] = reversal.allocations[0].pk
        else:
            payload["expect_allocation_ids"] = [a.aiq_allocation_id for a in reversal.allocations]
        previous = outbox_enqueue(
            entity=entity, kind=Kind.UNALLOCATE, payload=payload,
            external_reference=f"DISPUNALLOC-{dispute.pk}", depends_on=previous,
            origin_type="dispute", origin_id=dispute.pk, created_by=created_by,
        )  # fmt: skip
    dispute.loss_command = outbox_enqueue(
        entity=entity,
        kind=Kind.POST_SALES_DEBIT_JOURNAL,
        payload={
            "customer_code": receipt.customer.code,
            "gl_account_code": account.disputes_gl_account_code,
            "amount": str(amount),
            "currency": receipt.currency,
            **({"exchange_rate": str(rate)} if rate is not None else {}),
            "journal_date": today.isoformat(),
            "description": text[:250],
        },
        external_reference=f"DISPLOST-{dispute.pk}",
        depends_on=previous,
        origin_type="dispute",
        origin_id=dispute.pk,
        created_by=created_by,
    )
    realloc = outbox_enqueue(
        entity=entity,
        kind=Kind.ALLOCATE,
        payload={
            "amount": str(amount),
            "allocation_date": today.isoformat(),
            "paying_transaction_id": receipt.aiq_transaction_id,
            "settled_transaction_id": None,  # the debit journal's, from its command
            "currency": receipt.currency,
        },
        external_reference=f"DISPREALLOC-{dispute.pk}",
        depends_on=dispute.loss_command,
        origin_type="dispute",
        origin_id=dispute.pk,
        created_by=created_by,
    )
    fx = ""
    if rate is not None:
        fx = dispute_reversal_fx(account, dispute, amount, rate, unallocation=previous,
                                 reallocation=realloc, what=what)  # fmt: skip
    reopened = ", ".join(
        f"{a.invoice} ({format_money(a.amount, a.currency)})" for a in reversal.allocations
    )
    return (
        "dispute.reversed",
        f"{format_money(amount, account.currency)} back on {receipt.customer.code}'s account: "
        f"receipt {receipt.check_reference} reversed"
        + (f", invoice reopened: {reopened}" if reopened else "")
        + (f" (debit journal at {rate}{fx})" if rate is not None else "")
        + f"; approved by {dispute.approver or 'the system'}",
    )


def _was_reversed(dispute: Dispute) -> bool:
    """The lost dispute was booked as a reversal on the customer (not written off)."""
    return (
        dispute.loss_command_id is not None
        and dispute.loss_command.kind == Kind.POST_SALES_DEBIT_JOURNAL
    )


def _reopened_allocations(dispute: Dispute) -> list:
    """The receipt's allocations to invoices that the reversal undoes (or undid)."""
    receipt = dispute.payment.receipt
    if receipt is None:
        return []
    undone = Q(state=Allocation.State.UNALLOCATED) & Q(
        unallocation_reason__contains=f"(DISPUNALLOC-{dispute.pk})"
    )
    return list(
        receipt.allocations.filter(undone | Q(state=Allocation.State.ACTIVE))
        .filter(invoice__isnull=False)
        .select_related("invoice")
        .order_by("allocation_date", "pk")
    )


def _restore(account, dispute: Dispute, what: str):
    """A dispute won after its reversal: a sales credit journal on the customer (Dr disputes
    GL, which DISPWON credited) and its allocation to each invoice the reversal reopened, at
    most what each still has outstanding (one paid meanwhile keeps the credit on account)."""
    loss = dispute.loss_command.payload
    amount, today = Decimal(loss["amount"]), timezone.localdate()
    text = f"{what}: won, reversal of the receipt restored"
    restore = outbox_enqueue(
        entity=account.entity,
        kind=Kind.POST_WRITE_OFF,  # PostSalesCreditJournalGetBackTransactionID
        payload={**loss, "journal_date": today.isoformat(), "description": text[:250]},
        external_reference=f"DISPRESTORE-{dispute.pk}",
        depends_on=dispute.reinstatement_command,
        origin_type="dispute",
        origin_id=dispute.pk,
    )
    left, paid = amount, []
    for n, allocation in enumerate(_reopened_allocations(dispute), start=1):
        invoice = allocation.invoice
        part = min(allocation.amount, invoice.outstanding_amount, left)
        if part <= 0 or invoice.aiq_transaction_id is None:
            continue
        outbox_enqueue(
            entity=account.entity,
            kind=Kind.ALLOCATE,
            payload={
                "amount": str(part),
                "allocation_date": today.isoformat(),
                "paying_transaction_id": None,  # the credit journal's, from its command
                "settled_transaction_id": invoice.aiq_transaction_id,
                "invoice_id": invoice.pk,
                "currency": invoice.currency,
            },
            external_reference=f"DISPRESTORE-{dispute.pk}-{n}",
            depends_on=restore,
            origin_type="dispute",
            origin_id=dispute.pk,
        )
        left -= part
        paid.append(f"{invoice} ({format_money(part, invoice.currency)})")
    return (
        "dispute.restored",
        f"{format_money(amount, account.currency)} back to {loss['customer_code']}'s credit"
        + (f", invoice paid again: {', '.join(paid)}" if paid else ", left on account")
        + (f"; {format_money(left, account.currency)} left on account" if paid and left else ""),
    )


def dispute_rate(dispute: Dispute) -> tuple[Decimal | None, str]:
    """(rate, why not) of a dispute's movements in an account of another currency than its
    company's: the rate its withdrawal was booked at (so the disputes account clears in the
    base currency too), else the company's rate for the day from AIQ. (None, '') when the
    account is in the base currency or nothing is to be booked."""
    withdrawal, _back = _movements(dispute)
    account = _account(dispute, withdrawal.currency) if withdrawal is not None else None
    if account is None:
        return None, ""
    return movement_rate(account.entity, withdrawal.currency, dispute.withdrawal_command)


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
        ):
            reversal = _reversal(dispute, account, withdrawal.amount)
            can_book = reversal.receipt is not None or account.dispute_loss_gl_account_code
            if can_book and dispute.approved_at is not None:
                if reversal.receipt is not None:
                    done.append(_reverse(account, dispute, reversal, withdrawal.amount, what,
                                         rate=rate))  # fmt: skip
                else:
                    text = f"{what}: lost, written off"
                    dispute.loss_command = _book(
                        account, dispute, "DISPLOST", timezone.localdate(), text,
                        [(account.dispute_loss_gl_account_code, withdrawal.amount, 0, text),
                         (held, 0, withdrawal.amount, text)],
                        depends_on=dispute.withdrawal_command, rate=rate,
                    )  # fmt: skip
                    done.append(("dispute.lost", f"{format_money(withdrawal.amount, account.currency)}"
                                 f" written off to {account.dispute_loss_gl_account_code} "
                                 f"({reversal.why_not}), approved by "
                                 f"{dispute.approver or 'the system'}"))  # fmt: skip
            elif can_book and dispute.loss_proposed_at is None:
                # the provider's decision proposes the reversal (maker: nobody, the system);
                # it waits for an approver on the disputes screen
                dispute.loss_proposed_at = timezone.now()
                record_change(dispute, actor=None)
                how = (
                    f"reversal of {reversal.receipt.check_reference} (the invoice reopens)"
                    if reversal.receipt is not None
                    else f"write-off to {account.dispute_loss_gl_account_code} ({reversal.why_not})"
                )
                done.append(("dispute.loss_proposed", f"{how} of "
                             f"{format_money(withdrawal.amount, account.currency)} waits for an "
                             f"approver"))  # fmt: skip
        if reinstatement is not None and dispute.reinstatement_command_id is None:
            text = f"{what}: won, money back"
            reversed_ = _was_reversed(dispute)
            written_off = dispute.loss_command_id is not None and not reversed_
            back_from = account.dispute_loss_gl_account_code if written_off else held
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
            if reversed_:
                done.append(_restore(account, dispute, what))
        if done:
            dispute.save(
                update_fields=[
                    "withdrawal_command", "loss_command", "reinstatement_command",
                    "loss_proposed_at", "maker", "approver", "approved_at", "updated_at",
                ]
            )  # fmt: skip
            for action, summary in done:
                audit_log(
                    actor=dispute.approver
                    if action in ("dispute.lost", "dispute.reversed")
                    else None,
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
    """The reversal (or write-off) cannot be approved now (already approved, decided
    otherwise)."""


def dispute_loss_approve(*, dispute: Dispute, actor) -> Dispute:
    """A second person approves reversing a lost dispute (or writing it off where it cannot be
    reversed): the approval, its audit entry and its AIQ writes in one transaction. Never by
    its maker; a second click is refused (the row is locked and the writes already queued), so
    each is queued once."""
    if not user_has_role(actor, Role.APPROVER):
        raise PermissionDenied("Approving a lost dispute's reversal needs the approver role.")
    with transaction.atomic():
        dispute = Dispute.objects.select_for_update().get(pk=dispute.pk)
        check_approver(dispute, actor=actor, what="this lost dispute")
        if dispute.loss_command_id is not None:
            raise DisputeRefused("This lost dispute is already approved and queued for AIQ.")
        if not dispute.loss_awaits_approval:
            raise DisputeRefused(
                f"This dispute has nothing waiting for approval ({dispute.status_shown})."
            )
        record_approval(dispute, actor=actor, what="this lost dispute")
        dispute.save(update_fields=["approver", "approved_at", "updated_at"])
        dispute = dispute_book(dispute=dispute)
        if dispute.loss_command_id is None:  # set-up changed since: nothing approved
            raise DisputeRefused("The lost dispute cannot be booked: check the provider account.")
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
