"""Executor for ensure_customer: a customer that exists only in our mirror is created in AIQ.

Payload: {"customer_id" (mirror), "code" (upper case), "name", "email", "currency"};
external reference "CUST-<code>". result: {"account_id": int, "row_version": str,
"created": bool}

Idempotency comes from AIQ itself: customer codes are unique per company, so the code is the
external reference AIQ keeps. The send looks the code up first (GetCustomer) and creates only
when it is missing (GetNewCustomerFromDefaults -> UpdateCustomer create=true); a DUPLICATE
answer means someone (or our own earlier, unanswered attempt) created it meanwhile, which is
the outcome we want. A customer that already exists in AIQ is left as AIQ has it: AIQ is the
book of record, and overwriting a customer's details from a local row is a decision for a
person, not for a payment.

pay_and_allocate has no executor on purpose. PostPayAndAllocateSalesInvoice(s) creates a *new*
batch invoice together with its receipt and allocation (the web-shop case: sold and paid at
once). Every payment this product handles settles invoices that already exist in AIQ (mirrored,
matched, approved), so using it would invoice the customer a second time. Its duplicate checks
and ClientUniqueReference would make it safe to retry if a "sell and collect" flow is ever
added; until then a command of that kind is parked for a person by the runner.
"""

from ledger.aiq.errors import AiqPermanentError
from ledger.aiq.results import get
from ledger.models import Customer, OutboxCommand
from ledger.outbox.executors import (
    REPLAY_AFTER_EXPIRY,
    ReadBack,
    _require,
)

Kind = OutboxCommand.Kind
NOT_FOUND_CODES = ("NOT_FOUND",)
DUPLICATE_CODES = ("DUPLICATE",)


def _lookup(client, code: str) -> dict | None:
    """AIQ's customer record for the code, or None when AIQ says there is none."""
    try:
        record = client.get_customer(code)
    except AiqPermanentError as error:
        if error.error_code in NOT_FOUND_CODES:
            return None
        raise
    if not record or not get(record, "Code"):
        return None
    return record


def _result(record, *, created: bool) -> dict:
    return {
        "account_id": int(get(record, "AccountID") or 0) or None,
        "row_version": get(record, "RowVersionNumber") or "",
        "created": created,
    }


def customer_read_back(client, command: OutboxCommand, payload: dict) -> ReadBack:
    record = _lookup(client, payload["code"].upper())
    if record is None:
        return ReadBack(0, {})
    # created=None: we cannot tell whether our lost attempt or someone else created it
    return ReadBack(1, _result(record, created=None))


def customer_send(client, command: OutboxCommand, payload: dict) -> dict:
    _require(payload, "code", "name")
    code = payload["code"].upper()
    existing = _lookup(client, code)
    if existing is not None:
        return _result(existing, created=False)
    record = dict(client.get_new_customer_from_defaults() or {})
    record.update(Code=code, Name=payload["name"][:200])
    if payload.get("email"):
        record["Email"] = payload["email"]
    if payload.get("currency"):
        record["CurrencyCode"] = payload["currency"]
    created = True
    try:
        client.update_customer(record, create=True, replay_safe=REPLAY_AFTER_EXPIRY)
    except AiqPermanentError as error:
        if error.error_code not in DUPLICATE_CODES:
            raise
        created = None  # created between our look-up and our write
    stored = _lookup(client, code)
    if stored is None:
        raise AiqPermanentError(
            f"AIQ accepted customer {code} but does not return it",
            operation="GetCustomer",
            error_code="NOT_FOUND",
        )
    return _result(stored, created=created)


def customer_mirror_apply(command: OutboxCommand, payload: dict, result: dict, notes: list):
    """The mirror row learns its AIQ account id, so later plans need no ensure_customer."""
    updated = Customer.objects.filter(
        pk=payload.get("customer_id"), entity_id=command.entity_id
    ).update(aiq_account_id=result.get("account_id"), row_version=result.get("row_version", ""))
    if not updated:
        notes.append(f"customer {payload.get('customer_id')} not in the mirror")
