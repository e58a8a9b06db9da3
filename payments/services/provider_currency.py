"""A provider account in another currency than its company's (issue 17.5): a EUR Stripe account
in a GBP company, a GBP one in the EUR company.

Its clearing account and the bank it pays out to are AIQ **currency bank accounts** (kept in
EUR). AIQ's general journal (CreateGeneralJournalGetBackTransactionID) has no currency and no
rate: its lines are base-currency amounts, so it cannot move EUR in or out of a EUR bank. What
AIQ does offer for a bank movement in the bank's own currency is the bank payment / bank
receipt (transaction types BP / BR): `SaveSundryReceiptPaymentsGetBackTransactionIDs`, one
`WSSundryReceiptPayment` per movement, `Value` in the bank's currency (negative: money out),
booked against one GL account at its `ExchangeRate` (units of that currency per base unit).

So a provider-books journal of such an account (written as Dr/Cr lines in the account's
currency, as for a base-currency account) is posted as:

- lines that touch no currency bank (a lost dispute written off): one general journal, each
  amount converted to the base currency at the movement's rate (the last cent of rounding on
  the largest line so debits = credits);
- lines that touch one currency bank (fees out of clearing, a dispute's withdrawal or
  reinstatement): one bank payment or receipt per other line, each booked to that line's GL
  account (fees, VAT on fees, disputes), the first carrying the journal's external reference,
  the others `<reference>-2`, `-3`;
- a transfer between two currency banks of that currency (the payout: clearing -> the real EUR
  bank): a bank payment out of the one and a bank receipt into the other, both through the
  provider account's transfer GL account ("Bank transfers in transit") at the same rate, so it
  is left at zero in both currencies (`<reference>` out, `<reference>-2` in).

Each is one outbox command (kind `bank_entry`) with its own deterministic external reference,
read back with GetTransactionsByExternalReference before any resend: exactly once.

**The rate.** A movement's rate comes from the provider where it converted the money into the
base currency (Stripe's balance transaction `exchange_rate`, base per unit: AIQ's rate is its
inverse); none of these movements is converted by the provider (a EUR account's fees, payouts
and disputes stay in EUR), so it is the company's rate for the day, asked of AIQ
(`GetCurrencyExchangeRate`) when the movement is booked, fixed in the command's payload and the
audit entry, and never 1 by default: AIQ unable to give it leaves the movement unbooked (said in
the audit log) until the next booking run. A dispute's later movements (lost, won) use the rate
its withdrawal was booked at, so the disputes account clears in the base currency too.
"""

import re
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from ledger.aiq.client import AiqClient
from ledger.aiq.errors import AiqError
from ledger.aiq.results import as_decimal
from ledger.models import BankAccount, OutboxCommand
from ledger.outbox.executors import (
    REPLAY_AFTER_EXPIRY,
    Executor,
    PayloadError,
    ReadBack,
    _by_reference,
    _iso,
    _midnight,
    _require,
)
from ledger.outbox.services import outbox_enqueue
from ledger.outbox.steps import command_kind_register

KIND = "bank_entry"
CENT = Decimal("0.01")
RATE_PLACES = Decimal("0.000001")


class CurrencyBooksError(Exception):
    """This movement cannot be booked in AIQ as it stands (the reason is for a person)."""


# --- the outbox kind ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BankEntryPayload:
    """bank_entry: one AIQ bank payment (amount < 0) or bank receipt (amount > 0) in the bank's
    own currency, booked to one GL account at `exchange_rate` (units of `currency` per base
    unit; required: never 1 by default). result: {"transaction_id": int}."""

    bank_account_code: str
    gl_account_code: str
    amount: str
    currency: str
    exchange_rate: str
    entry_date: str
    description: str = ""

    def __post_init__(self):
        for name in ("bank_account_code", "gl_account_code", "currency"):
            if not str(getattr(self, name) or "").strip():
                raise ValueError(f"missing {name}")
        try:
            amount = Decimal(str(self.amount))
            rate = Decimal(str(self.exchange_rate))
        except InvalidOperation:
            raise ValueError("amount and exchange_rate must be numbers") from None
        if not amount.is_finite() or amount == 0 or amount != amount.quantize(CENT):
            raise ValueError(f"amount {self.amount!r} must be a non-zero amount in cents")
        if not rate.is_finite() or rate <= 0:
            raise ValueError(f"exchange_rate {self.exchange_rate!r} must be positive")
        date.fromisoformat(self.entry_date)


def bank_entry_send(client, command: OutboxCommand, payload: dict) -> dict:
    _require(payload, "bank_account_code", "gl_account_code", "amount", "exchange_rate")
    entry = {
        "ExternalReference": command.external_reference,
        "TransactionDate": _midnight(_iso(payload["entry_date"])),
        "Description": (payload.get("description") or "")[:250],
        "Value": as_decimal(payload["amount"]),
        "GLAccountCode": payload["gl_account_code"],
        "BankAccountCode": payload["bank_account_code"],
        "TaxID": None,
        "TaxRate": Decimal(0),
        "ExchangeRate": as_decimal(payload["exchange_rate"]),
        "LodgmentNumber": None,
        "TaxAmount": Decimal(0),
    }
    if entry["ExchangeRate"] <= 0:
        raise PayloadError("a bank entry needs its exchange rate")
    return {"transaction_id": client.save_sundry_receipt(entry, replay_safe=REPLAY_AFTER_EXPIRY)}


def bank_entry_read_back(client, command: OutboxCommand, payload: dict) -> ReadBack:
    return _by_reference(client, command.external_reference, _iso(payload["entry_date"]))


def register() -> None:
    command_kind_register(
        KIND,
        executor=Executor(bank_entry_send, bank_entry_read_back),
        payload=BankEntryPayload,
        label="Post bank payment or receipt (in the bank's currency)",
    )


# --- the rate -----------------------------------------------------------------------------------


def company_rate(entity, currency: str) -> Decimal:
    """The company's rate for `currency` today, as AIQ holds it (units per base unit); 1 for
    the base currency. Raises CurrencyBooksError when AIQ cannot say."""
    currency = currency.upper()
    if currency == entity.base_currency:
        return Decimal(1)
    try:
        rate = AiqClient.for_entity(entity).get_currency_exchange_rate(currency)
    except AiqError as error:
        raise CurrencyBooksError(f"AIQ gave no {currency} rate: {error}") from None
    if not rate.is_finite() or rate <= 0:
        raise CurrencyBooksError(f"AIQ's {currency} rate is {rate}")
    return rate.quantize(RATE_PLACES)


def provider_rate(exchange_rate) -> Decimal | None:
    """AIQ's rate from a provider's conversion into the base currency (Stripe's
    `exchange_rate` is base per unit of the other currency), or None."""
    try:
        value = Decimal(str(exchange_rate))
    except (InvalidOperation, TypeError):
        return None
    if not value.is_finite() or value <= 0:
        return None
    return (Decimal(1) / value).quantize(RATE_PLACES)


def movement_rate(entity, currency: str, booked: OutboxCommand | None = None):
    """(rate, why not) of a movement in `currency`: None, '' in the base currency; the rate
    `booked` (an earlier bank entry of the same payout or dispute) went at; else the company's
    rate for the day from AIQ; None and the reason when AIQ cannot say."""
    if currency.upper() == entity.base_currency:
        return None, ""
    rate = command_rate(booked)
    if rate is not None:
        return rate, ""
    try:
        return company_rate(entity, currency), ""
    except CurrencyBooksError as error:
        return None, str(error)


def command_rate(command: OutboxCommand | None) -> Decimal | None:
    """The rate a bank entry was booked at (a dispute's later movements reuse it)."""
    if command is None or command.kind != KIND:
        return None
    try:
        return Decimal(str(command.payload.get("exchange_rate")))
    except InvalidOperation:
        return None


# --- a journal of a foreign-currency account, posted as AIQ can take it -----------------------


def to_base(amount: Decimal, rate: Decimal) -> Decimal:
    return (Decimal(amount) / rate).quantize(CENT, rounding=ROUND_HALF_UP)


def _signed(item: dict) -> Decimal:
    return Decimal(str(item.get("debit") or 0)) - Decimal(str(item.get("credit") or 0))


def _base_journal(payload: dict, rate: Decimal, base: str) -> dict:
    """The same journal in the base currency: each line at `rate`, debits = credits."""
    lines = []
    for item in payload["lines"]:
        signed = to_base(abs(_signed(item)), rate)
        if not signed:
            continue
        debit = _signed(item) > 0
        lines.append({**item, "debit": str(signed if debit else 0),
                      "credit": str(0 if debit else signed)})  # fmt: skip
    debits = sum(Decimal(i["debit"]) for i in lines)
    credits = sum(Decimal(i["credit"]) for i in lines)
    if debits != credits:  # a cent of rounding: on the largest line of the smaller side
        side = "debit" if debits < credits else "credit"
        largest = max((i for i in lines if Decimal(i[side])), key=lambda i: Decimal(i[side]))
        largest[side] = str(Decimal(largest[side]) + abs(debits - credits))
    text = f"{payload.get('description', '')} ({payload.get('currency')} at {rate})"
    return {**payload, "currency": base, "description": text[:250], "lines": lines}


def bank_entry_payload(bank: BankAccount, gl: str, amount, rate, day: str, text: str) -> dict:
    """A bank_entry command's payload: `amount` (negative: out) in the bank's currency, booked
    to `gl` at `rate`."""
    return {
        "bank_account_code": bank.bank_account_code,
        "gl_account_code": gl,
        "amount": str(Decimal(amount).quantize(CENT)),
        "currency": bank.currency,
        "exchange_rate": str(rate),
        "entry_date": day,
        "description": text[:250],
    }


def currency_banks(entity) -> dict[str, BankAccount]:
    """The company's bank accounts kept in another currency than its base, by bank GL code."""
    return {
        bank.bank_code: bank
        for bank in BankAccount.objects.filter(entity=entity).exclude(currency=entity.base_currency)
    }


def journal_commands(
    account, *, origin_type: str, origin_id, reference: str, payload: dict, rate: Decimal,
    depends_on=None,
) -> OutboxCommand:  # fmt: skip
    """Queue a provider-books journal of a foreign-currency account (its lines in the
    account's currency) as AIQ can take it (module docstring). Returns the first command."""
    entity = account.entity
    base = entity.base_currency
    banks = currency_banks(entity)
    lines = payload["lines"]
    on_bank = [item for item in lines if item["gl_account_code"] in banks]
    others = [item for item in lines if item["gl_account_code"] not in banks]
    base_banks = set(
        BankAccount.objects.filter(entity=entity, currency=base).values_list("bank_code", flat=True)
    )
    if any(item["gl_account_code"] in base_banks for item in others):
        raise CurrencyBooksError(
            f"{reference}: moves {payload['currency']} into a {base} bank account, a conversion "
            "the provider did not make; not booked automatically"
        )
    day, text = payload["journal_date"], payload.get("description") or reference

    def queue(ref, kind, body, after):
        return outbox_enqueue(
            entity=entity, kind=kind, payload=body, external_reference=ref,
            depends_on=after, origin_type=origin_type, origin_id=origin_id,
        )  # fmt: skip

    def entry(bank: BankAccount, gl: str, amount: Decimal, what: str) -> dict:
        if bank.currency != payload["currency"]:
            raise CurrencyBooksError(
                f"{bank.bank_account_code} is kept in {bank.currency}, the movement is in "
                f"{payload['currency']}: AIQ would need a conversion the provider did not make"
            )
        return bank_entry_payload(bank, gl, amount, rate, day, what or text)

    if not on_bank:
        return queue(reference, OutboxCommand.Kind.POST_GENERAL_JOURNAL,
                     _base_journal(payload, rate, base), depends_on)  # fmt: skip
    if len(on_bank) == 1:
        bank = banks[on_bank[0]["gl_account_code"]]
        entries = [entry(bank, item["gl_account_code"], -_signed(item), item.get("description"))
                   for item in others]  # fmt: skip
    elif len(on_bank) == 2 and not others:
        if not account.transfer_gl_account_code:
            raise CurrencyBooksError(
                f"{account} has no transfer GL account: a {payload['currency']} transfer "
                "between two bank accounts goes through it"
            )
        out, into = sorted(on_bank, key=_signed)  # the credited bank pays, the debited receives
        transit = account.transfer_gl_account_code
        entries = [
            entry(banks[out["gl_account_code"]], transit, _signed(out), out.get("description")),
            entry(banks[into["gl_account_code"]], transit, _signed(into), into.get("description")),
        ]
    else:
        raise CurrencyBooksError(f"{reference}: no AIQ bank movement books these lines")
    first = None
    for number, body in enumerate(entries, start=1):
        ref = reference if number == 1 else f"{reference}-{number}"
        command = queue(ref, KIND, body, depends_on)
        first = first or command
    return first


# --- a payout the provider converted (a EUR balance paid into the GBP bank) ------------------


def conversion_unbookable(account, payout) -> str:
    """Why a payout the provider converted cannot be booked ('' if it can): the money leaves a
    clearing account kept in the balance's currency and arrives, converted, in a bank kept in
    the company's, the difference a realised gain or loss on the FX GL account."""
    base = account.entity.base_currency
    _landed, into = payout.landed
    bank = account.payout_bank_account
    if into != base:
        return f"converted into {into}, not the company's {base}: not booked automatically"
    if payout.currency == base:
        return f"converted out of {base}, the company's currency: not booked automatically"
    if bank.currency != into:
        return f"converted into {into}, paid into {bank.bank_account_code} kept in {bank.currency}"
    if account.clearing_bank_account.currency != payout.currency:
        return f"its clearing account is kept in {account.clearing_bank_account.currency}"
    if not account.transfer_gl_account_code:
        return "the provider account has no transfer GL account (bank transfers in transit)"
    if not account.fx_gl_account_code:
        return "the provider account has no FX GL account for the conversion's gain or loss"
    return ""


def conversion_commands(
    account, payout, *, reference: str, day: str, text: str, rate: Decimal, reverse=False,
    depends_on=None,
) -> OutboxCommand:  # fmt: skip
    """Queue a converted payout (or, `reverse`, its failure) as AIQ can take it, through the
    transfer GL account: `<reference>` a bank payment out of clearing, the balance's amount at
    `rate` (the company's rate for the day, as every movement of the account: the clearing
    account is credited at its rate); `<reference>-2` a bank receipt into the bank, the amount
    that arrived (the company's currency, rate 1); `<reference>-3` a general journal moving
    what that leaves on the transfer account to the FX GL account (a loss when the provider's
    conversion gave less than the day's rate). Returns the first command."""
    sign = Decimal(-1 if reverse else 1)
    landed, into = payout.landed
    transit, fx = account.transfer_gl_account_code, account.fx_gl_account_code
    clearing, bank = account.clearing_bank_account, account.payout_bank_account
    loss = (to_base(payout.amount, rate) - landed) * sign  # left on the transfer account

    bodies = [
        (KIND, bank_entry_payload(clearing, transit, -payout.amount * sign, rate, day, text)),
        (KIND, bank_entry_payload(bank, transit, landed * sign, Decimal(1), day, text)),
    ]
    if loss:
        what = f"{text}: {'loss' if loss > 0 else 'gain'} on the provider's conversion"[:250]
        money = str(abs(loss).quantize(CENT))
        debit, credit = (fx, transit) if loss > 0 else (transit, fx)
        bodies.append((OutboxCommand.Kind.POST_GENERAL_JOURNAL, {
            "journal_date": day, "description": what, "currency": into,
            "lines": [{"gl_account_code": debit, "debit": money, "credit": "0", "description": what},
                      {"gl_account_code": credit, "debit": "0", "credit": money,
                       "description": what}],
        }))  # fmt: skip
    first = None
    for number, (kind, body) in enumerate(bodies, start=1):
        command = outbox_enqueue(
            entity=account.entity, kind=kind, payload=body, depends_on=depends_on,
            external_reference=reference if number == 1 else f"{reference}-{number}",
            origin_type="payout", origin_id=payout.pk,
        )  # fmt: skip
        first = first or command
    return first


# --- reading them back (the reconciliation report) ---------------------------------------------


def entries_of(command: OutboxCommand) -> list[OutboxCommand]:
    """A movement's commands: the one its row keeps and, for bank entries, the entries queued
    with it (`<reference>-2`, `-3`: the VAT on fees, the receiving side of a transfer, a
    converted payout's FX journal)."""
    if command.kind != KIND:
        return [command]
    siblings = OutboxCommand.objects.filter(
        entity_id=command.entity_id,
        origin_type=command.origin_type,
        origin_id=command.origin_id,
        external_reference__regex=rf"^{re.escape(command.external_reference)}-[0-9]+$",
    )
    return [command, *sorted(siblings, key=lambda c: int(c.external_reference.rsplit("-", 1)[1]))]


def fees_of(commands: list[OutboxCommand]) -> Decimal:
    """What a fee movement took out of clearing, in the account's currency."""
    if commands[0].kind == KIND:
        return -sum((Decimal(c.payload["amount"]) for c in commands), Decimal(0))
    return sum((Decimal(line["debit"]) for line in commands[0].payload["lines"]), Decimal(0))
