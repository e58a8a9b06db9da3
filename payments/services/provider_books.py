"""A provider's money booked as accountants book it (issue 17): clearing account, fees, payouts.

- Receipts of Stripe/GoCardless payments land in the provider account's clearing bank account
  (`clearing_bank`, used by plan_outbox.payment_bank), not in the real bank.
- When a payout is paid, two AIQ general journals (CreateGeneralJournalGetBackTransactionID),
  each one outbox command with a deterministic external reference, read back before any resend:
    POFEE-<payout id>  Dr fees GL (net of VAT) [Dr VAT GL], Cr clearing: the fees of every
                       payment the payout settled, one entry per payout, not per payment;
    POUT-<payout id>   Dr the real bank, Cr clearing: the payout's amount.
  A payout that fails after it was booked gets POUTREV-<payout id> (Dr clearing, Cr bank).
- The bank statement line the payout arrived as ("STRIPE PAYMENTS UK LTD", "GOCARDLESS") is
  recognised as that payout (`payout_lines_recognise`): never proposed as a customer payment.

Why a general journal for the fees and not a supplier invoice + payment from Stripe as a
supplier: the fees are already paid (deducted at source, never invoiced separately), so a
supplier invoice would only be allocated against an equal payment at once; one journal per
payout is one AIQ write instead of three, it carries the VAT split Stripe's fee_details give,
and it is what the payout's bank line reconciles against. An entity that wants Stripe on its
purchase ledger can still post Stripe's monthly VAT invoice there by hand; nothing here stops it.
"""

from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from core.money import format_money, from_minor
from ledger.models import OutboxCommand
from ledger.outbox.origins import Origin, origin_register
from ledger.outbox.services import outbox_enqueue
from payments.models import (
    AllocationPlan,
    Fee,
    Payment,
    Payout,
    ProviderAccount,
    StatementAccount,
)
from payments.services.provider_currency import (
    CurrencyBooksError,
    conversion_commands,
    conversion_unbookable,
    journal_commands,
    movement_rate,
)
from staff.services import audit_log

Kind = OutboxCommand.Kind
PROVIDER_SOURCES = ("stripe", "gocardless")
# Stripe's fee_details types that are VAT on Stripe's fee (Stripe charges VAT on fees in the
# UK/EU and lists it as its own fee detail)
TAX_FEE_KINDS = frozenset({"tax"})
PAID = "paid"
FAILED = frozenset({"failed", "canceled", "cancelled", "bounced"})


class ProviderBooksError(Exception):
    pass


def provider_account(entity_id, source: str, currency: str) -> ProviderAccount | None:
    return (
        ProviderAccount.objects.filter(entity_id=entity_id, source=source, currency=currency)
        .select_related("clearing_bank_account", "payout_bank_account")
        .first()
    )


def settlement_currency(payment: Payment) -> str:
    """The currency the provider holds a payment's money in: Stripe's balance transaction's
    (a EUR charge on a GBP account is converted and held in GBP), else the payment's own."""
    txn = (payment.raw or {}).get("balance_transaction")
    settled = txn.get("currency") if isinstance(txn, dict) else None
    return settled.upper() if isinstance(settled, str) and settled else payment.currency


def clearing_bank(payment: Payment):
    """The clearing bank account a provider payment's receipt lands in: the provider
    account's of the currency its money is held in; or None (not a provider's payment, or no
    provider account is set up for that currency: the start-up check names those)."""
    if payment.source not in PROVIDER_SOURCES:
        return None
    account = provider_account(payment.entity_id, payment.source, settlement_currency(payment))
    return account.clearing_bank_account if account is not None else None


def _money(amount: Decimal) -> str:
    return format(Decimal(amount).quantize(Decimal("0.01")), "f")


def _payout_account(payout: Payout) -> ProviderAccount | None:
    if payout.provider_account_id:
        return payout.provider_account
    entity_ids = list(payout.payments.values_list("entity_id", flat=True).distinct()[:2])
    if len(entity_ids) == 1:
        return provider_account(entity_ids[0], payout.source, payout.currency)
    if entity_ids:
        return None  # one payout, two companies: a person must look
    accounts = list(
        ProviderAccount.objects.filter(source=payout.source, currency=payout.currency)[:2]
    )
    return accounts[0] if len(accounts) == 1 else None


def payout_fees(payout: Payout) -> tuple[Decimal, Decimal]:
    """(fees net of VAT, VAT) of the payments the payout settled, in the payout's currency.
    Stripe: each payment's fee details (the "tax" detail is VAT). GoCardless: the payout's
    deducted_fees (and its VAT, fx-free, when GoCardless states it)."""
    rows = Fee.objects.filter(payment__payout=payout, currency=payout.currency)
    fees = rows.exclude(kind__in=TAX_FEE_KINDS).aggregate(t=Sum("amount"))["t"] or Decimal(0)
    tax = rows.filter(kind__in=TAX_FEE_KINDS).aggregate(t=Sum("amount"))["t"] or Decimal(0)
    if not fees and not tax and payout.source == "gocardless":
        deducted = payout.raw.get("deducted_fees") or 0
        tax_minor = payout.raw.get("tax_amount") or 0  # not in every GoCardless region
        fees = from_minor(int(deducted) - int(tax_minor), payout.currency)
        tax = from_minor(int(tax_minor), payout.currency)
    return Decimal(fees), Decimal(tax)


def journal_payload(currency: str, day, description: str, lines) -> dict:
    """A general journal's payload: lines of (GL account code, debit, credit, text)."""
    return {
        "journal_date": day.isoformat(),
        "description": description[:250],
        "currency": currency,
        "lines": [
            {
                "gl_account_code": gl,
                "debit": _money(debit),
                "credit": _money(credit),
                "description": text[:250],
            }
            for gl, debit, credit, text in lines
            if debit or credit
        ],
    }


def _journal_payload(payout, day, description, lines) -> dict:
    return journal_payload(payout.currency, day, description, lines)


def journal_enqueue(
    account: ProviderAccount, origin_type: str, origin_id, reference: str, payload: dict,
    depends_on=None, rate: Decimal | None = None,
) -> OutboxCommand:  # fmt: skip
    """One general journal through the outbox, its external reference its identity in AIQ
    (read back before any resend: exactly once). A journal in another currency than the
    company's (a EUR account in a GBP company) goes as AIQ can take it, at `rate`
    (provider_currency.journal_commands: bank payments/receipts in the bank's currency, or the
    journal in the base currency); it needs the rate (never 1 by default)."""
    if (payload.get("currency") or account.entity.base_currency) != account.entity.base_currency:
        if rate is None:
            raise CurrencyBooksError(f"{reference}: a {payload['currency']} journal needs its rate")
        return journal_commands(
            account, origin_type=origin_type, origin_id=origin_id, reference=reference,
            payload=payload, rate=rate, depends_on=depends_on,
        )  # fmt: skip
    return outbox_enqueue(
        entity=account.entity,
        kind=Kind.POST_GENERAL_JOURNAL,
        payload=payload,
        external_reference=reference,
        depends_on=depends_on,
        origin_type=origin_type,
        origin_id=origin_id,
    )


def _enqueue(
    account, payout, kind_ref: str, payload: dict, depends_on=None, rate=None
) -> OutboxCommand:
    return journal_enqueue(
        account, "payout", payout.pk, f"{kind_ref}-{payout.pk}", payload, depends_on, rate
    )


def _foreign_unbookable(account: ProviderAccount, payout: Payout) -> str:
    """Why a payout of a foreign-currency account cannot be booked ('' if it can)."""
    if payout.arrival_currency:  # converted by the provider
        return conversion_unbookable(account, payout)
    if account.payout_bank_account.currency != payout.currency:
        return (
            f"it is paid into {account.payout_bank_account.bank_account_code}, kept in "
            f"{account.payout_bank_account.currency}: a conversion the provider did not make"
        )
    if account.clearing_bank_account.currency != payout.currency:
        return f"its clearing account is kept in {account.clearing_bank_account.currency}"
    if not account.transfer_gl_account_code:
        return "the provider account has no transfer GL account (bank transfers in transit)"
    return ""


def _provider_rate(payout: Payout):
    """The provider's rate of a payout it converted (Stripe: its balance transaction's
    `exchange_rate`, arrival currency per unit of the balance's), else None."""
    txn = (payout.raw or {}).get("balance_transaction")
    return txn.get("exchange_rate") if payout.arrival_currency and isinstance(txn, dict) else None


def _not_booked(payout: Payout, account: ProviderAccount, why: str) -> Payout:
    audit_log(
        actor=None,
        action="payout.not_booked",
        obj=payout,
        summary=f"{payout}: {payout.currency} payout in a {account.entity.base_currency} "
        f"company not booked: {why}"[:500],
    )
    return payout


def payout_rate(payout: Payout) -> tuple[Decimal | None, str]:
    """(rate, why not) of a payout's movements in a company of another base currency: the
    rate its transfer was booked at (a reversal reuses it), else the company's rate for the day
    from AIQ (provider_currency). (None, '') for a base-currency payout."""
    account = _payout_account(payout)
    if account is None:
        return None, ""
    return movement_rate(account.entity, payout.currency, payout.transfer_command)


def payout_book(*, payout: Payout) -> Payout:
    """Book a paid payout's fees and its transfer clearing -> bank (once: idempotent), or
    reverse the transfer of a payout that failed after it was booked. Audited.
    A payout in another currency than the company's is booked at the company's rate for the
    day, asked of AIQ first, outside the transaction (provider_currency)."""
    rate, no_rate = payout_rate(payout)
    with transaction.atomic():
        payout = Payout.objects.select_for_update().get(pk=payout.pk)
        account = _payout_account(payout)
        if account is None:
            return payout
        if payout.provider_account_id is None:
            payout.provider_account = account
            payout.save(update_fields=["provider_account", "updated_at"])
        base = account.entity.base_currency
        if base != payout.currency or payout.arrival_currency:
            why = _foreign_unbookable(account, payout) or (
                f"no rate ({no_rate})" if rate is None else ""
            )
            if why:
                return _not_booked(payout, account, why)
        clearing = account.clearing_bank_account
        bank = account.payout_bank_account
        day = payout.arrival_date or timezone.localdate()
        money = format_money(payout.amount, payout.currency)
        if payout.status == PAID:
            changed = []
            linked = payout.payments.exists()
            fees, tax = payout_fees(payout) if linked else (Decimal(0), Decimal(0))
            if payout.fees_command_id is None and linked and fees + tax > 0:
                lines = [(account.fees_gl_account_code, fees, 0, f"{account} fees {payout}")]
                if tax and account.fee_tax_gl_account_code:
                    lines.append((account.fee_tax_gl_account_code, tax, 0, f"VAT on fees {payout}"))
                elif tax:
                    lines[0] = (lines[0][0], fees + tax, 0, lines[0][3])
                lines.append((clearing.bank_code, 0, fees + tax, f"{account} fees {payout}"))
                lines = [item for item in lines if item[1] or item[2]]
                payout.fees_command = _enqueue(
                    account,
                    payout,
                    "POFEE",
                    _journal_payload(payout, day, f"{account} fees, payout {payout.external_id}",
                                     lines),
                    rate=rate,
                )  # fmt: skip
                changed.append(f"fees {format_money(fees + tax, payout.currency)}")
            if payout.transfer_command_id is None and payout.amount > 0 and payout.arrival_currency:
                text = f"{account} payout {payout.external_id}"
                payout.transfer_command = conversion_commands(
                    account, payout, reference=f"POUT-{payout.pk}", day=day.isoformat(),
                    text=text, rate=rate,
                )  # fmt: skip
                landed, into = payout.landed
                changed.append(f"transfer {money} {clearing.bank_account_code} -> "
                               f"{format_money(landed, into)} {bank.bank_account_code}, "
                               f"converted by the provider")  # fmt: skip
            elif payout.transfer_command_id is None and payout.amount > 0:
                text = f"{account} payout {payout.external_id}"
                payout.transfer_command = _enqueue(
                    account,
                    payout,
                    "POUT",
                    _journal_payload(
                        payout,
                        day,
                        text,
                        [(bank.bank_code, payout.amount, 0, text),
                         (clearing.bank_code, 0, payout.amount, text)],
                    ),
                    rate=rate,
                )  # fmt: skip
                changed.append(f"transfer {money} {clearing.bank_account_code} -> "
                               f"{bank.bank_account_code}")  # fmt: skip
            fx = None
            if payout.fx_command_id is None and linked and account.fx_gl_account_code:
                # provider_fx reads receipt rates through plan_outbox, which imports this
                # module (clearing_bank): imported here to keep the import graph acyclic
                from payments.services.provider_fx import fx_lines, payout_realised_fx

                fx = payout_realised_fx(payout)
                lines = fx_lines(account, payout, fx) if fx.amount else []
                if lines and all(line[0] for line in lines):
                    payout.fx_command = _enqueue(
                        account, payout, "FXR",
                        journal_payload(base, day, lines[0][3], lines),
                    )  # fmt: skip
                    AllocationPlan.objects.filter(pk__in=fx.plan_ids).update(
                        fx_command=payout.fx_command
                    )
                    changed.append(lines[0][3])
            if changed:
                payout.save(
                    update_fields=["fees_command", "transfer_command", "fx_command", "updated_at"]
                )
                audit_log(
                    actor=None,
                    action="payout.book",
                    obj=payout,
                    summary=f"{payout}: " + "; ".join(changed),
                    after={
                        "fees": fees,
                        "fee_tax": tax,
                        "amount": payout.amount,
                        "arrived": format_money(*payout.landed),
                        "day_rate": rate,
                        "provider_rate": _provider_rate(payout),
                        "fees_reference": payout.fees_command.external_reference
                        if payout.fees_command_id
                        else "",
                        "transfer_reference": payout.transfer_command.external_reference
                        if payout.transfer_command_id
                        else "",
                        "realised_fx": fx.amount if fx is not None else None,
                        "realised_fx_parts": [list(map(str, part)) for part in fx.parts]
                        if fx is not None
                        else [],
                        "realised_fx_left_out": fx.left_out if fx is not None else [],
                    },
                )
            payout_statement_link(payout=payout)
        elif (
            payout.status in FAILED
            and payout.transfer_command_id
            and not payout.reversal_command_id
        ):
            text = f"{account} payout {payout.external_id} failed: reversed"
            if payout.arrival_currency:
                payout.reversal_command = conversion_commands(
                    account, payout, reference=f"POUTREV-{payout.pk}", reverse=True,
                    day=timezone.localdate().isoformat(), text=text, rate=rate,
                    depends_on=payout.transfer_command,
                )  # fmt: skip
            else:
                payout.reversal_command = _enqueue(
                    account,
                    payout,
                    "POUTREV",
                    _journal_payload(
                        payout,
                        timezone.localdate(),
                        text,
                        [(clearing.bank_code, payout.amount, 0, text),
                         (bank.bank_code, 0, payout.amount, text)],
                    ),
                    depends_on=payout.transfer_command,
                    rate=rate,
                )  # fmt: skip
            payout.save(update_fields=["reversal_command", "updated_at"])
            audit_log(
                actor=None,
                action="payout.reverse",
                obj=payout,
                summary=f"{payout} {payout.status}: {money} back from "
                f"{bank.bank_account_code} to {clearing.bank_account_code}",
            )
        return payout


# --- the payout's bank statement line ---------------------------------------------------------


def _narrative(payment: Payment) -> str:
    return " ".join(
        (payment.payer_name or "", payment.bank_reference or "", payment.description or "")
    ).upper()


def _line_matches(account: ProviderAccount, payout: Payout, payment: Payment) -> bool:
    if (payment.amount, payment.currency) != payout.landed:
        return False
    if account.statement_narrative.upper() not in _narrative(payment):
        return False
    if payout.arrival_date is not None:
        window = timedelta(days=account.payout_window_days)
        received = timezone.localdate(payment.received_at)
        if not (payout.arrival_date - window <= received <= payout.arrival_date + window):
            return False
    return True


def _link(payout: Payout, payment: Payment) -> None:
    payout.statement_payment = payment
    payout.save(update_fields=["statement_payment", "updated_at"])
    reference = payout.transfer_command.external_reference if payout.transfer_command_id else ""
    reason = (
        f"{payout.get_source_display()} payout {payout.external_id}: booked in AIQ as a "
        f"transfer from the clearing account{f' ({reference})' if reference else ''}, "
        "not a customer payment"
    )
    Payment.objects.filter(pk=payment.pk).update(
        match_state=Payment.MatchState.IGNORED, not_for_aiq_reason=reason
    )
    audit_log(
        actor=None,
        action="payout.statement_line",
        obj=payout,
        summary=f"{payout} recognised as bank line {payment.shown_reference} "
        f"({format_money(payment.amount, payment.currency)}, "
        f"{timezone.localdate(payment.received_at):%d/%m/%Y})",
        after={"payment_id": payment.pk, "payout_id": payout.pk},
    )


def payout_statement_link(*, payout: Payout) -> Payment | None:
    """The payout's bank line, if its statement is already in: amount, window, narrative."""
    account = payout.provider_account
    if account is None or payout.statement_payment_id or payout.status != PAID:
        return None
    landed, into = payout.landed  # what the bank received: converted by the provider, or not
    candidates = Payment.objects.filter(
        entity_id=account.entity_id,
        source="bank",
        amount=landed,
        currency=into,
        match_state=Payment.MatchState.UNMATCHED,
        settles_payout__isnull=True,
    ).filter(
        Q(statement_account__bank_account=account.payout_bank_account)
        | Q(statement_account__isnull=True)
    )
    for payment in candidates.order_by("received_at", "pk")[:20]:
        if _line_matches(account, payout, payment):
            _link(payout, payment)
            return payment
    return None


def payout_lines_recognise(*, payment_ids: list[int]) -> int:
    """Statement lines just stored that are a provider's payout: linked to it both ways and
    marked not for AIQ (the payout's journal already books the money), before matching sees
    them. Call in the import's transaction."""
    if not payment_ids or not ProviderAccount.objects.exists():
        return 0
    accounts = list(ProviderAccount.objects.select_related("payout_bank_account"))
    linked = 0
    lines = Payment.objects.filter(
        pk__in=payment_ids, source="bank", match_state=Payment.MatchState.UNMATCHED
    )
    for payment in lines:
        bank_id = (
            StatementAccount.objects.filter(pk=payment.statement_account_id)
            .values_list("bank_account_id", flat=True)
            .first()
            if payment.statement_account_id
            else None
        )
        for account in accounts:
            if account.entity_id != payment.entity_id:
                continue
            if bank_id is not None and bank_id != account.payout_bank_account_id:
                continue
            if account.statement_narrative.upper() not in _narrative(payment):
                continue
            payouts = (
                Payout.objects.select_for_update()
                .filter(
                    provider_account=account,
                    status=PAID,
                    statement_payment__isnull=True,
                )
                .filter(  # as paid out, or as the provider converted it
                    Q(arrival_currency="", amount=payment.amount, currency=payment.currency)
                    | Q(arrival_amount=payment.amount, arrival_currency=payment.currency)
                )
            )
            match = next((p for p in payouts if _line_matches(account, p, payment)), None)
            if match is not None:
                _link(match, payment)
                linked += 1
                break
    return linked


# --- outbox origin ------------------------------------------------------------------------------


def journal_origin(name: str) -> Origin:
    """What a provider-books journal's verdict does: an audit entry on its payout or dispute
    (`name`), confirmed with AIQ's transaction id, or failed/parked with the reason."""

    def confirmed(command: OutboxCommand, payload: dict, notes: list[str]) -> None:
        audit_log(
            actor=None,
            action=f"{name}.journal_confirmed",
            object_type=f"payments.{name}",
            object_id=command.origin_id,
            summary=f"{command.external_reference} confirmed in AIQ "
            f"(transaction {command.result.get('transaction_id')})",
        )

    def not_booked(command: OutboxCommand) -> None:
        audit_log(
            actor=None,
            action=f"{name}.journal_failed",
            object_type=f"payments.{name}",
            object_id=command.origin_id,
            summary=f"{command.external_reference} {command.get_state_display().lower()}: "
            f"{command.last_error_message}"[:500],
        )

    return Origin(confirmed=confirmed, failed=not_booked, parked=not_booked)


ORIGIN = journal_origin("payout")  # one object: registering twice is then harmless


def register() -> None:
    origin_register("payout", ORIGIN)
