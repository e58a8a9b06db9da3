"""One executor per outbox kind: how to send the write to AIQ and how to read it back.

AIQ has no idempotency keys. Every executor therefore has a `read_back` that finds the write by
our deterministic external reference, used before any send that might repeat an earlier one:
one hit = it is there (confirmed), none = send, several = a person must look.

Each kind's payload is a dataclass (ledger/outbox/payloads.py), checked when it is enqueued;
the kinds, their payloads and executors are registered in ledger/outbox/kinds.py (called from
LedgerConfig.ready()). Kinds in their own modules: create_credit_note (executors_refunds.py),
attach_document (executors_documents.py), ensure_customer (executors_customers.py, which also
says why pay_and_allocate has no executor), other_receipt (executors_sundry.py),
post_general_journal (executors_journals.py); stripe_refund
is payments' own step (payments/services/stripe_refund_step.py). A command whose kind has no
executor is parked for a person with a message saying so, rather than guessed at.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from ledger.aiq.operations import LODGMENT_NUMBER_LENGTH
from ledger.aiq.results import as_decimal, get, unwrap
from ledger.models import Allocation, OutboxCommand

Kind = OutboxCommand.Kind

# Sends are marked replay-safe for the client: it replays a write only when AIQ answered
# HasExpired, i.e. refused it without applying it, so the replay after a new login cannot double
# it. (A lost answer is never replayed by the client: that is AiqAmbiguousError, and the outbox
# reads back before any resend.) Without this, tokens expiring mid-batch would push every
# affected command into backoff.
REPLAY_AFTER_EXPIRY = True


class PayloadError(ValueError):
    """The payload cannot be sent as it is; a person must correct the decision behind it."""


def _iso(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise PayloadError(f"not an ISO date: {value!r}") from None


def _require(payload: dict, *names: str) -> None:
    missing = [n for n in names if payload.get(n) in (None, "")]
    if missing:
        raise PayloadError(f"payload is missing {', '.join(missing)}")


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day)


@dataclass
class ReadBack:
    """What a read-back found: `hits` writes of this command in AIQ; with one or more, `result`
    is the one the command keeps (the earliest) and `extra_ids` the AIQ ids of the others (a
    duplicate that slipped through, listed for repair). `evidence`: what to remember before the
    next send (e.g. the allocations already there), when the read-back saw it anyway."""

    hits: int
    result: dict
    extra_ids: list = field(default_factory=list)
    evidence: dict | None = None


@dataclass
class Executor:
    send: Callable[[Any, OutboxCommand, dict], dict]
    read_back: Callable[[Any, OutboxCommand, dict], ReadBack]
    # Optional: read what AIQ holds before a first send, kept on the row (evidence) so that a
    # later read-back can tell its own write from others that look the same.
    prepare: Callable[[Any, OutboxCommand, dict], dict] | None = None


# --- transactions found by external reference (receipts, journals) ---------------------------


def transactions_by_reference(client, reference: str, around: date) -> list:
    """The one read-back by external reference (receipts, journals, sundry receipts, posted
    credit notes): AIQ's transactions carrying exactly `reference`. A generous date window: the
    filter is on transaction date, which AIQ may move to the period it posts in; the reference
    itself is what must match, exactly."""
    return client.get_transactions_by_external_reference(
        reference,
        from_date=_midnight(around - timedelta(days=400)),
        to_date=_midnight(around + timedelta(days=400)),
    )


def _by_reference(client, reference: str, around: date) -> ReadBack:
    ids = sorted(
        int(get(r, "TransactionID")) for r in transactions_by_reference(client, reference, around)
    )
    if not ids:
        return ReadBack(0, {})
    return ReadBack(len(ids), {"transaction_id": ids[0]}, extra_ids=ids[1:])


def receipt_rates(client, command: OutboxCommand, payload: dict) -> tuple[Decimal, Decimal]:
    """(ExchangeRate, BankExchangeRate) of a receipt: the rate the payload carries (the
    provider's), else 1 in the base currency, else the company's rate for the day from AIQ;
    the bank's rate follows the receiving bank's currency (1 for a base-currency bank, the
    receipt's rate for a bank in the receipt's currency, else AIQ's rate for it)."""
    base = command.entity.base_currency
    currency = (payload.get("currency") or base).upper()
    if payload.get("exchange_rate"):
        rate = as_decimal(payload["exchange_rate"])
    elif currency == base:
        rate = Decimal(1)
    else:
        rate = client.get_currency_exchange_rate(currency)
    bank_currency = (payload.get("bank_currency") or currency).upper()
    if bank_currency == base:
        bank_rate = Decimal(1)
    elif bank_currency == currency:
        bank_rate = rate
    else:
        bank_rate = client.get_currency_exchange_rate(bank_currency)
    return rate, bank_rate


def receipt_send(client, command: OutboxCommand, payload: dict) -> dict:
    _require(payload, "customer_code", "bank_account_code", "amount", "payment_date")
    rate, bank_rate = receipt_rates(client, command, payload)
    transaction_id = client.save_sales_receipt(
        {
            "CustomerCode": payload["customer_code"].upper(),
            "CheckReference": command.external_reference,
            "PaymentAmount": as_decimal(payload["amount"]),
            "BankAccountCode": payload["bank_account_code"],
            "PaymentDate": _midnight(_iso(payload["payment_date"])),
            "ExchangeRate": rate,
            "BankExchangeRate": bank_rate,
            "Description": payload.get("description", "")[:250],
            # the bank's own reference, within AIQ's limit; CheckReference stays ours
            "LodgmentNumber": (payload.get("lodgment_number") or "")[:LODGMENT_NUMBER_LENGTH]
            or None,
        },
        replay_safe=REPLAY_AFTER_EXPIRY,
    )
    # the rate it was booked at: a receipt at the company's rate for the day has no other
    # record of it, and its realised exchange gain or loss is counted from it
    return {"transaction_id": transaction_id, "exchange_rate": str(rate)}


def receipt_read_back(client, command: OutboxCommand, payload: dict) -> ReadBack:
    rows = transactions_by_reference(
        client, command.external_reference, _iso(payload["payment_date"])
    )
    rows = sorted(rows, key=lambda r: int(get(r, "TransactionID")))
    if not rows:
        return ReadBack(0, {})
    ids = [int(get(r, "TransactionID")) for r in rows]
    result = {"transaction_id": ids[0]}
    details = unwrap(get(rows[0], "LineDetails"), "WSTransactionDetail")
    rate = get(details[0], "ExchangeRate") if details else None
    if rate:
        result["exchange_rate"] = str(as_decimal(rate))
    return ReadBack(len(ids), result, extra_ids=ids[1:])


def journal_rate(client, command: OutboxCommand, payload: dict) -> Decimal:
    """A sales journal's ExchangeRate: the payload's (e.g. the rate a dispute's money left at),
    1 in the base currency, else the company's rate for the day from AIQ, never 1 by default
    (a EUR customer's refund debit journal in a GBP company)."""
    if payload.get("exchange_rate"):
        return as_decimal(payload["exchange_rate"])
    currency = (payload.get("currency") or command.entity.base_currency).upper()
    if currency == command.entity.base_currency:
        return Decimal(1)
    return client.get_currency_exchange_rate(currency)


def journal_executor(post: Callable[..., int], sign_note: str):
    def send(client, command: OutboxCommand, payload: dict) -> dict:
        _require(payload, "customer_code", "gl_account_code", "amount", "journal_date")
        description = (payload.get("description") or sign_note)[:250]
        # one GL line for the amount, or the payload's own lines (e.g. a credit note's
        # reversal: net to its sales accounts, tax to the VAT account); they add up to amount
        lines = [
            {
                "GLAccountCode": line["gl_account_code"],
                "Description": (line.get("description") or description)[:250],
                "DepartmentID": line.get("department_id") or None,
                "Amount": as_decimal(line["amount"]),
            }
            for line in payload.get("lines") or ()
        ] or [
            {
                "GLAccountCode": payload["gl_account_code"],
                "Description": description,
                "DepartmentID": payload.get("department_id") or None,
                "Amount": as_decimal(payload["amount"]),
            }
        ]
        if sum(line["Amount"] for line in lines) != as_decimal(payload["amount"]):
            raise PayloadError("the journal's lines do not add up to its amount")
        transaction_id = post(
            client,
            {
                "AccountCode": payload["customer_code"].upper(),
                "ExchangeRate": journal_rate(client, command, payload),
                "ExternalReference": command.external_reference,
                "JournalNumber": command.external_reference[:30],
                "TransactionDate": _midnight(_iso(payload["journal_date"])),
                "Lines": {"WSLedgerJournalLine": lines},
            },
            replay_safe=REPLAY_AFTER_EXPIRY,
        )
        return {"transaction_id": transaction_id}

    def read_back(client, command: OutboxCommand, payload: dict) -> ReadBack:
        return _by_reference(client, command.external_reference, _iso(payload["journal_date"]))

    return Executor(send, read_back)


# --- allocations -----------------------------------------------------------------------------


def allocation_entries(client, paying_id: int) -> list:
    return client.allocation_entries(paying_id)


def _matching(entries: list, settled_id: int, amount: Decimal | None = None) -> list:
    return [
        e
        for e in entries
        if int(get(e, "AllocatedToTransactionID", 0) or 0) == settled_id
        and (amount is None or as_decimal(get(e, "AllocationAmount", 0)) == amount)
    ]


def _allocation_id(entry) -> int | None:
    value = get(entry, "AllocationId")
    return int(value) if value not in (None, "") else None


ALLOCATE_KINDS = (Kind.ALLOCATE, Kind.ALLOCATE_WITH_DISCOUNT)


def _owned_by_other_commands(command: OutboxCommand, allocation_ids: list[int]) -> set[int]:
    """AllocationIds that another command of ours already confirmed as its own (outbox rows:
    the pull never changes them)."""
    if not allocation_ids:
        return set()
    owned = (
        OutboxCommand.objects.filter(
            entity_id=command.entity_id,
            kind__in=ALLOCATE_KINDS,
            state=OutboxCommand.State.CONFIRMED,
            result__allocation_id__in=allocation_ids,
        )
        .exclude(pk=command.pk)
        .values_list("result", flat=True)
    )
    return {int(result["allocation_id"]) for result in owned}


def _same_pair_confirmed(command: OutboxCommand, payload: dict) -> int:
    """Rows sent before AIQ's identity was recorded (no evidence): our other confirmed
    allocations of the same pair and amount, counted from the outbox (never the mirror)."""
    count = 0
    for other in OutboxCommand.objects.filter(
        entity_id=command.entity_id,
        kind__in=ALLOCATE_KINDS,
        state=OutboxCommand.State.CONFIRMED,
        payload__settled_transaction_id=payload["settled_transaction_id"],
    ).exclude(pk=command.pk):
        if other.result.get("allocation_id"):
            continue  # known by its id: excluded by _owned_by_other_commands already
        paying = other.payload.get("paying_transaction_id") or (
            other.depends_on.result.get("transaction_id") if other.depends_on_id else None
        )
        if paying and int(paying) == payload["paying_transaction_id"]:
            count += as_decimal(other.payload["amount"]) == as_decimal(payload["amount"])
    return count


def allocate_prepare(client, command: OutboxCommand, payload: dict) -> dict:
    """The AllocationIds between the pair before we send: none of them is ours."""
    entries = _matching(
        allocation_entries(client, payload["paying_transaction_id"]),
        payload["settled_transaction_id"],
    )
    return {"allocations_before": sorted(filter(None, map(_allocation_id, entries)))}


def allocate_read_back(client, command: OutboxCommand, payload: dict) -> ReadBack:
    """Our allocation is one that matches pair and amount, was not there before we first sent
    (evidence) and is not another command's. AIQ's allocation list does not carry our
    allocationReference, so identity comes from AIQ's AllocationId, never from the mirror: a
    pull that stored the allocation meanwhile changes nothing here."""
    amount = as_decimal(payload["amount"])
    paired = _matching(
        allocation_entries(client, payload["paying_transaction_id"]),
        payload["settled_transaction_id"],
    )
    seen = sorted(filter(None, map(_allocation_id, paired)))
    entries = [e for e in paired if as_decimal(get(e, "AllocationAmount", 0)) == amount]
    ids = [i for i in map(_allocation_id, entries) if i is not None]
    before = command.evidence.get("allocations_before")
    if before is None and command.sent_at is None:
        return ReadBack(0, {}, evidence={"allocations_before": seen})  # never sent
    ours = [
        i
        for i in ids
        if i not in set(before or ()) and i not in _owned_by_other_commands(command, ids)
    ]
    if before is None:  # sent before evidence was kept: count, do not identify
        hits = max(len(ours) - _same_pair_confirmed(command, payload), 0)
        ours = ours[len(ours) - hits :]
    if not ours:
        return ReadBack(0, {}, evidence={"allocations_before": seen})
    ours.sort()
    return ReadBack(len(ours), {"allocated": True, "allocation_id": ours[0]}, extra_ids=ours[1:])


def allocate_send(client, command: OutboxCommand, payload: dict) -> dict:
    _require(payload, "paying_transaction_id", "settled_transaction_id", "amount")
    params = {
        "transaction_id_1": payload["paying_transaction_id"],
        "transaction_id_2": payload["settled_transaction_id"],
        "reference": command.external_reference,
        "amount": as_decimal(payload["amount"]),
        "date": _midnight(_iso(payload["allocation_date"])),
        "replay_safe": REPLAY_AFTER_EXPIRY,
    }
    if command.kind == Kind.ALLOCATE_WITH_DISCOUNT:
        discount = as_decimal(payload.get("discount_amount") or 0)
        client.allocate_transactions_with_discount(discount=discount, **params)
    else:
        client.allocate_transactions(**params)
    return {"allocated": True}


def unallocate_send(client, command: OutboxCommand, payload: dict) -> dict:
    _require(payload, "transaction_ids")
    # failed items are AIQ's "nothing (left) to unallocate" for the pair's second side: the
    # read-back decides whether our allocation is gone (AiqOperations.unallocate_transactions)
    client.unallocate_transactions(
        [int(t) for t in payload["transaction_ids"]],
        replay_safe=REPLAY_AFTER_EXPIRY,
        failed_items_ok=True,
    )
    return {"unallocated": True}


def _unallocation_targets(client, payload: dict) -> list[int] | None:
    allocation = Allocation.objects.filter(pk=payload.get("allocation_id")).first()
    if allocation is None:
        return None
    entries = _matching(
        allocation_entries(client, allocation.transaction_id_1),
        allocation.transaction_id_2,
        allocation.amount,
    )
    if allocation.aiq_allocation_id:
        entries = [e for e in entries if _allocation_id(e) == allocation.aiq_allocation_id]
    return sorted(filter(None, map(_allocation_id, entries)))


def _listed_ids(client, transaction_id: int) -> list[int]:
    return sorted(filter(None, map(_allocation_id, allocation_entries(client, transaction_id))))


def unallocate_prepare(client, command: OutboxCommand, payload: dict) -> dict:
    """The AllocationIds this unallocation is meant to remove, as AIQ listed them before.

    A duplicate's repair (payload "expect_allocation_ids") removes every allocation of one
    transaction (what UnallocateTransactions does) and re-makes the ones that are not extra:
    it is sent only while AIQ lists exactly the allocations the approver saw, so nothing made
    since is removed without being re-made."""
    expected = payload.get("expect_allocation_ids")
    if expected is not None:
        [transaction_id] = payload["transaction_ids"]
        listed = _listed_ids(client, int(transaction_id))
        if listed != sorted(int(i) for i in expected):
            from ledger.outbox.steps import StepRefused  # steps imports this module

            raise StepRefused(
                f"AIQ's allocations of transaction {transaction_id} changed since the repair "
                f"was approved ({listed}, approved {sorted(expected)}); review it again"
            )
        return {"unallocating": listed}
    return {"unallocating": _unallocation_targets(client, payload) or []}


def unallocate_read_back(client, command: OutboxCommand, payload: dict) -> ReadBack:
    """Done when none of the allocations we meant to undo is listed in AIQ any more. Which
    ones those are was recorded before sending (evidence); an allocation made later between
    the same pair (a new plan) is not mistaken for them."""
    if payload.get("expect_allocation_ids") is not None:
        [transaction_id] = payload["transaction_ids"]
        targets = set(command.evidence.get("unallocating") or payload["expect_allocation_ids"])
        still_there = targets & set(_listed_ids(client, int(transaction_id)))
        return ReadBack(0 if still_there else 1, {"unallocated": True})
    allocation = Allocation.objects.filter(pk=payload.get("allocation_id")).first()
    if allocation is None:
        return ReadBack(0, {})
    targets = command.evidence.get("unallocating")
    listed = _matching(
        allocation_entries(client, allocation.transaction_id_1),
        allocation.transaction_id_2,
        allocation.amount,
    )
    if targets is None:
        still_there = listed
    else:
        still_there = [e for e in listed if _allocation_id(e) in set(targets)]
    return ReadBack(0 if still_there else 1, {"unallocated": True})


def resolve_payload(command: OutboxCommand) -> dict:
    """The payload with ids that only the dependency's result knows filled in."""
    payload = dict(command.payload)
    dep_result = command.depends_on.result if command.depends_on_id else {}
    if command.kind in (Kind.ALLOCATE, Kind.ALLOCATE_WITH_DISCOUNT):
        for key in ("paying_transaction_id", "settled_transaction_id"):
            if payload.get(key) in (None, "") and dep_result.get("transaction_id"):
                payload[key] = int(dep_result["transaction_id"])
                break
        _require(payload, "paying_transaction_id", "settled_transaction_id", "amount")
        payload["paying_transaction_id"] = int(payload["paying_transaction_id"])
        payload["settled_transaction_id"] = int(payload["settled_transaction_id"])
    return payload


# kind -> fn(command, payload, result, notes): mirror updates that executor modules bring along
# (ledger/outbox/mirror.py calls them when the command is confirmed)
MIRRORS: dict[str, Callable[[OutboxCommand, dict, dict, list], None]] = {}

# kind -> Executor; filled by ledger.outbox.steps.command_kind_register from the owning app's
# AppConfig.ready() (ledger's own kinds: ledger/outbox/kinds.py)
EXECUTORS: dict[str, Executor] = {}
