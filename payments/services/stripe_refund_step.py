"""The stripe_refund command kind: a refund through Stripe, a step of a payments refund.

It goes through the outbox like the refund's AIQ writes (one order, one retry policy, the same
read-back before any resend), but it is not an AIQ call: its errors are the outbox's step
errors (ledger/outbox/steps.py), never AIQ's. The deterministic idempotency key covers retries
within Stripe's 24 hours; listing the PaymentIntent's (or charge's) refunds for our metadata
before creating covers everything else (and localstripe, which ignores idempotency keys).

Payload: StripeRefundPayload. result: {"stripe_refund_id", "status", "amount_refunded_minor"
(the charge's total)}. What the Refund and its payment do on confirmation is in
payments/services/outbox_origins.py.
"""

from dataclasses import dataclass

from django.conf import settings

from ledger.models import OutboxCommand
from ledger.outbox.executors import Executor, PayloadError, ReadBack
from ledger.outbox.steps import (
    StepError,
    StepRefused,
    StepUncertain,
    command_kind_register,
)
from payments.services.provider_accounts import (
    AccountSecretMissing,
    account_api_base,
    account_api_key,
)
from payments.services.provider_books import provider_account
from payments.services.refunds import STRIPE_METADATA_KEY as METADATA_KEY
from payments.sources import stripe_client as api


@dataclass(frozen=True)
class StripeRefundPayload:
    refund_id: int  # payments.Refund
    amount_minor: int  # Stripe's minor units (core/stripe_money.py)
    currency: str
    payment_intent: str = ""  # the one refunded, or
    charge: str = ""

    def __post_init__(self):
        if not (self.payment_intent or self.charge):
            raise ValueError("a Stripe refund needs the payment_intent or charge it refunds")
        if int(self.amount_minor) <= 0:
            raise ValueError("a refund must be for more than zero")


def _step_error(error: api.StripeError) -> StepError:
    if isinstance(error, api.StripePermanent):
        status = getattr(error, "http_status", None)
        return StepRefused(str(error), code=f"STRIPE_{status or 'ERROR'}")
    return StepUncertain(str(error), code="STRIPE_UNCERTAIN")


def _target(payload: dict) -> dict:
    if payload.get("payment_intent"):
        return {"payment_intent": payload["payment_intent"]}
    if payload.get("charge"):
        return {"charge": payload["charge"]}
    raise PayloadError("a Stripe refund needs the payment_intent or charge it refunds")


def _ours(payload: dict) -> list[dict]:
    mine = str(payload["refund_id"])
    found = []
    for page in api.list_pages("/v1/refunds", **_target(payload)):
        found += [r for r in page if (r.get("metadata") or {}).get(METADATA_KEY) == mine]
    return found


def _charge_total(payload: dict, refund: dict) -> int:
    """What Stripe says the charge has refunded in all, now (absolute, so order-proof)."""
    charge_id = refund.get("charge")
    charge_id = charge_id.get("id") if isinstance(charge_id, dict) else charge_id
    charge = api.retrieve(f"/v1/charges/{charge_id}") if charge_id else {}
    return int(charge.get("amount_refunded") or 0)


def _stripe_result(payload: dict, refund: dict) -> dict:
    if refund.get("status") in ("failed", "canceled"):
        raise StepRefused(
            f"Stripe refund {refund['id']} is {refund['status']}"
            + (f" ({refund.get('failure_reason')})" if refund.get("failure_reason") else ""),
            code=f"STRIPE_{refund['status'].upper()}",
        )
    return {
        "stripe_refund_id": refund["id"],
        "status": refund.get("status") or "",
        "amount_refunded_minor": _charge_total(payload, refund),
    }


def _account(command: OutboxCommand, payload: dict) -> tuple[str, str]:
    """The key and address of the Stripe account the money came through: the refunded
    payment's company's account in its currency (one without its own: the installation's)."""
    account = provider_account(command.entity_id, "stripe", str(payload["currency"]).upper())
    try:
        return account_api_key(account, settings.STRIPE_API_KEY), account_api_base(account)
    except AccountSecretMissing as error:
        raise StepRefused(str(error), code="STRIPE_KEY_MISSING") from None


def stripe_refund_read_back(client, command: OutboxCommand, payload: dict) -> ReadBack:
    with api.using_key(*_account(command, payload)):
        return _read_back(payload)


def _read_back(payload: dict) -> ReadBack:
    try:
        found = _ours(payload)
        result = _stripe_result(payload, found[0]) if len(found) == 1 else {}
    except api.StripeError as error:
        raise _step_error(error) from None
    return ReadBack(len(found), result)


def stripe_refund_send(client, command: OutboxCommand, payload: dict) -> dict:
    """List first (always: it is one cheap call), create only when none of ours exists,
    with the key of the Stripe account the money came through."""
    with api.using_key(*_account(command, payload)):
        return _send(payload)


def _send(payload: dict) -> dict:
    amount = StripeRefundPayload(**payload).amount_minor
    try:
        found = _ours(payload)
        if len(found) > 1:
            raise PayloadError(f"{len(found)} Stripe refunds carry refund {payload['refund_id']}")
        if not found:
            refund = api.request(
                "post",
                "/v1/refunds",
                **_target(payload),
                amount=amount,
                metadata={METADATA_KEY: str(payload["refund_id"])},
                idempotency_key=f"refund:{payload['refund_id']}",
            )
        else:
            refund = found[0]
        return _stripe_result(payload, refund)
    except api.StripeError as error:
        raise _step_error(error) from None


def register() -> None:
    command_kind_register(
        OutboxCommand.Kind.STRIPE_REFUND,
        executor=Executor(stripe_refund_send, stripe_refund_read_back),
        payload=StripeRefundPayload,
        label="Refund through Stripe",
    )
