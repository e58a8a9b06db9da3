"""Stripe objects (plain dicts, as the API answers) -> normalised payments, disputes, payouts.

Pure functions: no database, no network, so the webhook path, the bulk import, the fixtures
and the benchmark all share them. Minor units become Decimal through stripe_money, with
Stripe's own exponent of the currency (JPY and MGA 0, ISK 2, KWD 3), never ISO's: never a float.
"""

from datetime import UTC, datetime

from core.money import normalise_currency
from core.stripe_money import stripe_from_minor as from_minor
from payments.sources.normalised import NormalisedFee, NormalisedPayment

SOURCE = "stripe"
CUSTOMER_CODE_KEYS = ("aiq_customer_code", "customer_code", "aiq_customer")


def _id(value) -> str:
    """An expandable field is either an id string or the expanded object."""
    if isinstance(value, dict):
        return value.get("id") or ""
    return value or ""


def _obj(value) -> dict:
    return value if isinstance(value, dict) else {}


def timestamp(seconds) -> datetime:
    return datetime.fromtimestamp(int(seconds), tz=UTC)


def payment_key(charge: dict) -> str:
    """One Payment per customer payment: the PaymentIntent when there is one (its retries
    are attempts at the same payment), the charge for charges made without one."""
    return _id(charge.get("payment_intent")) or charge["id"]


def _references(objects: list[dict]) -> list[dict]:
    """Every text a person may have put a reference in, labelled with where it came from."""
    seen = set()
    refs = []

    def add(source: str, value):
        if not isinstance(value, str) or not value.strip():
            return
        value = value.strip()
        if (source, value) in seen:
            return
        seen.add((source, value))
        refs.append({"source": source, "value": value})

    # the same label whether the text sat on the charge or on its PaymentIntent
    for obj in objects:
        for key, value in sorted((obj.get("metadata") or {}).items()):
            add(f"metadata.{key}", value)
        add("description", obj.get("description"))
        add("statement_descriptor", obj.get("statement_descriptor"))
        add("statement_descriptor_suffix", obj.get("statement_descriptor_suffix"))
        add("calculated_statement_descriptor", obj.get("calculated_statement_descriptor"))
    return refs


def _customer_code_hint(*objects: dict) -> str:
    for obj in objects:
        metadata = obj.get("metadata") or {}
        for key in CUSTOMER_CODE_KEYS:
            value = metadata.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip().upper()
    return ""


def _status(charge: dict, intent: dict) -> str:
    """Our status from the object as Stripe reports it now (never from an event snapshot)."""
    intent_status = intent.get("status")
    if intent_status == "canceled":
        return "canceled"
    if intent_status == "processing":
        return "pending"
    if intent_status and intent_status.startswith("requires_"):
        failed = intent.get("last_payment_error") or charge.get("status") == "failed"
        return "failed" if failed else "pending"
    if not intent_status:
        charge_status = charge.get("status")
        if charge_status == "failed":
            return "failed"
        if charge_status == "pending":
            return "pending"
    if charge.get("captured") is False:
        # authorised, never captured: no money in. A released authorisation (refunded, or
        # the intent canceled above) is over; otherwise it is still waiting for capture.
        return (
            "canceled" if charge.get("refunded") or charge.get("status") == "failed" else "pending"
        )
    amount = captured_minor(charge)
    refunded = charge.get("amount_refunded") or 0
    if refunded and refunded >= amount:
        return "refunded"
    if refunded:
        return "partially_refunded"
    return "succeeded"


def captured_minor(charge: dict) -> int:
    """The money actually taken: `amount_captured` once captured (a partial capture takes
    less than was authorised), the authorised `amount` while it is not (a pending payment
    shows what may come). Charges from before Stripe added `amount_captured` (2019) were
    captured whole."""
    if charge.get("captured") is False:
        return charge.get("amount") or 0
    captured = charge.get("amount_captured")
    return (
        captured
        if isinstance(captured, int) and not isinstance(captured, bool) and captured
        else (charge.get("amount") or 0)
    )


def _refunds(charge: dict) -> list[dict]:
    refunds = charge.get("refunds")
    if isinstance(refunds, dict):
        return [r for r in refunds.get("data") or [] if isinstance(r, dict)]
    return []


def normalise_charge(charge: dict, *, intent: dict | None = None) -> NormalisedPayment:
    """A charge (balance_transaction, payment_intent and customer expanded where available)."""
    intent = intent if intent is not None else _obj(charge.get("payment_intent"))
    currency = normalise_currency(charge["currency"])
    customer = _obj(charge.get("customer")) or _obj(intent.get("customer"))
    billing = charge.get("billing_details") or {}
    txn = _obj(charge.get("balance_transaction"))

    fee_amount = net_amount = None
    fees: list[NormalisedFee] = []
    exchange_rate = ""
    if txn:
        txn_currency = normalise_currency(txn["currency"])
        if txn.get("exchange_rate") is not None:
            exchange_rate = str(txn["exchange_rate"])
        # fee and net are in the settlement currency; only comparable when it is ours
        if txn_currency == currency:
            fee_amount = from_minor(txn.get("fee") or 0, currency)
            net_amount = from_minor(txn["net"], currency)
        for detail in txn.get("fee_details") or []:
            detail_currency = normalise_currency(detail.get("currency") or txn_currency)
            fees.append(
                NormalisedFee(
                    kind=detail.get("type") or "stripe_fee",
                    description=(detail.get("description") or "")[:200],
                    amount=from_minor(detail["amount"], detail_currency),
                    currency=detail_currency,
                )
            )

    metadata_objects = [charge, intent] if intent else [charge]
    return NormalisedPayment(
        source=SOURCE,
        external_id=payment_key(charge),
        amount=from_minor(captured_minor(charge), currency),
        currency=currency,
        fee_amount=fee_amount,
        net_amount=net_amount,
        # never more than was taken (a partial capture's released rest is not a refund of it)
        amount_refunded=from_minor(
            min(charge.get("amount_refunded") or 0, captured_minor(charge)), currency
        ),
        exchange_rate=exchange_rate,
        received_at=timestamp(charge["created"]),
        payer_name=(customer.get("name") or billing.get("name") or "")[:200],
        payer_email=(customer.get("email") or billing.get("email") or "")[:254]
        or (charge.get("receipt_email") or "")[:254],
        payer_reference=_id(charge.get("customer")) or _id(intent.get("customer")),
        description=charge.get("description") or intent.get("description") or "",
        references=_references(metadata_objects),
        status=_status(charge, intent),
        raw=charge,
        customer_code_hint=_customer_code_hint(charge, intent, customer),
        fees=fees,
        refunds=_refunds(charge),
        charge_id=charge["id"],
    )


def normalise_intent(intent: dict) -> NormalisedPayment | None:
    """A PaymentIntent as retrieved with latest_charge expanded. None when no charge was ever
    attempted (e.g. canceled before confirmation): no money moved, nothing to record."""
    charge = _obj(intent.get("latest_charge"))
    if not charge:
        return None
    charge = {**charge, "payment_intent": intent}
    if not charge.get("customer") and intent.get("customer"):
        charge["customer"] = intent["customer"]
    return normalise_charge(charge, intent=intent)


def normalise_dispute(dispute: dict) -> dict:
    currency = normalise_currency(dispute["currency"])
    return {
        "external_id": dispute["id"],
        "charge_id": _id(dispute.get("charge")),
        "payment_intent_id": _id(dispute.get("payment_intent")),
        "amount": from_minor(dispute["amount"], currency),
        "currency": currency,
        "status": dispute.get("status") or "",
        "reason": (dispute.get("reason") or "")[:100],
        "raw": dispute,
    }


def normalise_payout(payout: dict) -> dict:
    """A payout; one Stripe converted (a EUR balance paid into a GBP bank account) carries its
    balance transaction (expanded, or the listing's `type: payout` one): that transaction's
    `amount` (negative: sent) and `currency` are what left the balance, its `exchange_rate`
    converts them into the payout's `amount` and `currency`, what arrives in the bank."""
    currency = normalise_currency(payout["currency"])
    arrival = payout.get("arrival_date")
    row = {
        "external_id": payout["id"],
        "amount": from_minor(payout["amount"], currency),
        "currency": currency,
        "arrival_amount": None,
        "arrival_currency": "",
        "status": payout.get("status") or "",
        "arrival_date": timestamp(arrival).date() if arrival else None,
        "raw": payout,
    }
    txn = _obj(payout.get("balance_transaction"))
    held = normalise_currency(txn["currency"]) if txn.get("currency") else currency
    if held != currency and txn.get("amount") is not None:
        row.update(
            amount=from_minor(abs(int(txn["amount"])), held),
            currency=held,
            arrival_amount=row["amount"],
            arrival_currency=currency,
        )
    return row


# Dispute statuses after which the money stays with us (won) or the case is closed.
DISPUTE_SETTLED_FOR_US = frozenset({"won", "warning_closed"})
