"""The AIQ write of a customer's changed details: outbox kind sales_customer_update.

A selling system (Stripe's customer.updated, a CRM) changed a customer's name, e-mail or
address. AIQ keeps many more fields on a customer than any source sends, so the write is
GetCustomer -> those fields set over AIQ's current record -> UpdateCustomer(create=false) with
the RowVersionNumber just read (AIQ refuses a stale one: someone changed the customer since;
the send reads again and re-applies, up to three times).

Setting fields to values is idempotent, and the read-back is the proof: confirmed when AIQ's
record carries every value of the payload (whoever wrote them). One command per distinct change
(external reference CUPD-<code>-<hash of the details>), so the same change reported twice is
written once.

The verdict moves the CustomerUpdate row (origin "customer_update").
"""

from dataclasses import dataclass

from ledger.aiq.errors import AiqPermanentError, AiqTemporaryError
from ledger.models import OutboxCommand
from ledger.outbox.executors import REPLAY_AFTER_EXPIRY, Executor, ReadBack
from ledger.outbox.origins import Origin, origin_register
from ledger.outbox.steps import command_kind_register

KIND = "sales_customer_update"
ORIGIN = "customer_update"
# the AIQ Customer fields a source may change (UpdateCustomer's own names)
FIELDS = (
    "Name",
    "Email",
    "Phone",
    "Address1",
    "Address2",
    "City",
    "County_State",
    "PostCode",
    "CountryCode",
    "Contact",
)
CONCURRENCY_CODES = ("CONCURRENCY_ERROR", "CONCURRENCY")
TRIES = 3


@dataclass(frozen=True)
class CustomerUpdatePayload:
    """{"code": AIQ customer code, "details": {AIQ Customer field: new value}}."""

    code: str
    details: dict

    def __post_init__(self):
        if not self.code or self.code != self.code.upper():
            raise ValueError("the customer code must be given, upper case")
        if not self.details:
            raise ValueError("no details to change")
        unknown = sorted(set(self.details) - set(FIELDS))
        if unknown:
            raise ValueError(f"not customer fields a source may change: {', '.join(unknown)}")
        if not all(isinstance(v, str) for v in self.details.values()):
            raise ValueError("customer details are text")
        if not (self.details.get("Name", "x") or "").strip():
            raise ValueError("a customer's name cannot be emptied")


def _differences(record: dict, details: dict) -> dict:
    return {k: v for k, v in details.items() if (record.get(k) or "") != (v or "")}


def customer_update_read_back(client, command: OutboxCommand, payload: dict) -> ReadBack:
    record = dict(client.get_customer(payload["code"]) or {})
    if _differences(record, payload["details"]):
        return ReadBack(0, {})
    return ReadBack(1, {"account_id": record.get("AccountID"), "changed": False})


def customer_update_send(client, command: OutboxCommand, payload: dict) -> dict:
    for attempt in range(TRIES):
        record = dict(client.get_customer(payload["code"]) or {})
        if not _differences(record, payload["details"]):
            return {"account_id": record.get("AccountID"), "changed": False}
        record.update(payload["details"])
        try:
            client.update_customer(record, create=False, replay_safe=REPLAY_AFTER_EXPIRY)
        except AiqPermanentError as error:
            if error.error_code not in CONCURRENCY_CODES:
                raise
            if attempt == TRIES - 1:
                raise AiqTemporaryError(str(error), operation="UpdateCustomer") from None
            continue
        return {"account_id": record.get("AccountID"), "changed": True}
    raise AssertionError("not reached")


EXECUTOR = Executor(customer_update_send, customer_update_read_back)


def _confirmed(command: OutboxCommand, payload: dict, notes: list[str]) -> None:
    # local: sales.services.customers imports this module (its kind)
    from sales.services.customers import customer_update_settle

    customer_update_settle(command=command, failed_message="")


def _failed(command: OutboxCommand) -> None:
    # local: sales.services.customers imports this module (its kind)
    from sales.services.customers import customer_update_settle

    customer_update_settle(
        command=command, failed_message=command.last_error_message or "AIQ refused it"
    )


def register() -> None:
    command_kind_register(
        KIND,
        executor=EXECUTOR,
        payload=CustomerUpdatePayload,
        label="Update customer details",
    )
    origin_register(ORIGIN, Origin(confirmed=_confirmed, failed=_failed, parked=_failed))
