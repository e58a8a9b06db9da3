"""Executors for refunds: a credit note in AIQ (save + post) and a refund through Stripe.

Payloads (amounts are decimal strings, dates ISO; never secrets):
- create_credit_note: {"credit_note_id" (mirror draft), "customer_code", "currency",
  "credit_date", "invoice_number", "notes", "gross_amount", "lines": [{"stock_item_id",
  "description", "gl_account_code", "tax_code", "tax_rate", "quantity", "unit_price",
  "net_amount", "tax_amount"}]}; ExternalReference = the command's external_reference.
  result: {"credit_note_id": AIQ id, "transaction_id": int, "credit_note_number": str}
- stripe_refund: {"refund_id" (payments.Refund), "payment_intent" | "charge", "amount_minor",
  "currency"}; metadata aiqrecon_refund=<refund id>, idempotency key "refund:<refund id>".
  result: {"stripe_refund_id", "status", "amount_refunded_minor" (the charge's total)}

A credit note takes two writes (SaveCreditNoteGetBackCreditNoteID, then
PostCreditNotesGetBackTransactionIDs) and AIQ has no idempotency keys, so the send itself looks
the reference up (GetCreditNotesByExternalReference) before saving: a note saved by an earlier
attempt that died before posting is posted, never saved twice. Once the save is in AIQ, any
doubt about the post is reported as ambiguous, so the next attempt reads back first.

Stripe is not AIQ, but the outbox gives it the same guarantees: the runner understands AIQ's
error classes, so Stripe's errors are mapped onto them here (temporary -> ambiguous: the refund
may exist; permanent -> permanent). The deterministic idempotency key covers retries within
Stripe's 24 hours; listing the PaymentIntent's refunds for our metadata before creating covers
everything else (and localstripe, which ignores idempotency keys).
"""

from datetime import timedelta

from ledger.aiq.errors import AiqAmbiguousError, AiqPermanentError, AiqTemporaryError
from ledger.models import OutboxCommand
from ledger.outbox import executors as base
from ledger.outbox.executors import (
    REPLAY_AFTER_EXPIRY,
    Executor,
    PayloadError,
    ReadBack,
    _iso,
    _midnight,
    _require,
    decimal,
    field,
    items,
)

Kind = OutboxCommand.Kind
POSTED = "Processed"  # AIQ's document Status once a credit note is posted ("Created" before)
METADATA_KEY = "aiqrecon_refund"


# --- credit notes ------------------------------------------------------------------------------


def _posted_transactions(client, reference: str, around) -> list:
    rows = items(
        client.call(
            "GetTransactionsByExternalReference",
            replay_safe=True,
            query={
                "ExternalReference": reference,
                "FromDate": _midnight(around - timedelta(days=400)),
                "ToDate": _midnight(around + timedelta(days=400)),
            },
        ),
        "WSTransactionSummary",
    )
    return [r for r in rows if field(r, "ExternalReference") == reference]


def _saved_notes(client, reference: str) -> list:
    rows = items(
        client.call(
            "GetCreditNotesByExternalReference", replay_safe=True, externalReference=reference
        ),
        "CreditNote",
    )
    return [r for r in rows if field(r, "ExternalReference") == reference]


def _result(txn, number: str = "") -> dict:
    return {
        "transaction_id": int(field(txn, "TransactionID")),
        "credit_note_id": int(field(txn, "InvoiceID") or 0) or None,
        "credit_note_number": number or field(txn, "InternalNumber") or "",
    }


def credit_note_read_back(client, command: OutboxCommand, payload: dict) -> ReadBack:
    """Done = posted: a transaction carries our reference. A note that is only saved counts as
    not done (hits 0); the send then finds and posts it instead of saving another."""
    hits = _posted_transactions(client, command.external_reference, _iso(payload["credit_date"]))
    if not hits:
        return ReadBack(0, {})
    hits.sort(key=lambda txn: int(field(txn, "TransactionID")))
    extra = [int(field(txn, "TransactionID")) for txn in hits[1:]]
    return ReadBack(len(hits), _result(hits[0]), extra_ids=extra)


def _line(line: dict) -> dict:
    return {
        "StockItemID": line.get("stock_item_id") or None,
        "StockItemDescription": (line.get("description") or "")[:250],
        "InvoicedQuantity": decimal(line.get("quantity") or 1),
        "StockItemPrice": decimal(line.get("unit_price") or 0),
        "ActualPrice": decimal(line.get("unit_price") or 0),
        "TaxCode": line.get("tax_code") or None,
        "TaxRate": decimal(line.get("tax_rate") or 0),
        "NetAmount": decimal(line["net_amount"]),
        "TaxAmount": decimal(line["tax_amount"]),
        "GrossAmount": decimal(line["net_amount"]) + decimal(line["tax_amount"]),
        "GLAccountCode": line.get("gl_account_code") or None,
    }


def _record(template: dict, command: OutboxCommand, payload: dict) -> dict:
    """AIQ's defaults for the customer, with our reference, date and the invoice's lines."""
    record = dict(template or {})
    lines = [_line(line) for line in payload["lines"]]
    net = sum((line["NetAmount"] for line in lines), decimal(0))
    tax = sum((line["TaxAmount"] for line in lines), decimal(0))
    if net + tax != decimal(payload.get("gross_amount") or net + tax):
        raise PayloadError(
            f"credit note lines add up to {net + tax}, not {payload['gross_amount']}"
        )
    note = payload.get("notes") or ""
    if payload.get("invoice_number"):
        note = f"Credit for {payload['invoice_number']}. {note}".strip()
    record.update(
        InvoiceID=0,
        ExternalReference=command.external_reference,
        InvoiceDate=_midnight(_iso(payload["credit_date"])),
        Notes=note[:250],
        Lines={"InvoiceLine": lines},
        NetAmount=net,
        TaxAmount=tax,
        GrossAmount=net + tax,
    )
    return record


def credit_note_send(client, command: OutboxCommand, payload: dict) -> dict:
    _require(payload, "customer_code", "credit_date", "lines")
    reference = command.external_reference
    saved = _saved_notes(client, reference)
    if len(saved) > 1:
        raise PayloadError(
            f"{len(saved)} credit notes in AIQ carry {reference}; a person must keep one"
        )
    if saved:
        note_id = int(field(saved[0], "InvoiceID"))
        number = field(saved[0], "InvoiceNumber") or ""
        if field(saved[0], "Status") == POSTED:
            found = credit_note_read_back(client, command, payload)
            if found.hits == 1:
                return {**found.result, "credit_note_id": note_id, "credit_note_number": number}
            raise AiqAmbiguousError(f"credit note {note_id} is posted but its transaction is not")
    else:
        template = client.call(
            "GetNewSalesCreditNote", customerCode=payload["customer_code"].upper()
        ).result
        response = client.call(
            "SaveCreditNoteGetBackCreditNoteID",
            replay_safe=REPLAY_AFTER_EXPIRY,
            creditNote=_record(template, command, payload),
            create=True,
        )
        if not response.credit_note_id:
            raise AiqAmbiguousError("AIQ saved the credit note without giving its id")
        note_id, number = int(response.credit_note_id), ""
    try:
        response = client.call(
            "PostCreditNotesGetBackTransactionIDs",
            replay_safe=REPLAY_AFTER_EXPIRY,
            creditNoteIDs={"int": [note_id]},
        )
    except AiqTemporaryError as error:
        # the saved note is in AIQ whatever happened to the post: read back before anything
        raise AiqAmbiguousError(f"credit note {note_id} saved; posting: {error}") from None
    ids = [int(i) for i in items(response.transaction_ids, "int") if i]
    if len(ids) != 1:
        raise AiqAmbiguousError(f"posting credit note {note_id} gave transaction ids {ids}")
    return {"credit_note_id": note_id, "transaction_id": ids[0], "credit_note_number": number}


# --- Stripe refunds ----------------------------------------------------------------------------


def _stripe():
    from payments.sources import stripe_client

    return stripe_client


def _as_aiq_error(error) -> Exception:
    api = _stripe()
    if isinstance(error, api.StripePermanent):
        status = getattr(error, "http_status", None)
        return AiqPermanentError(
            str(error), operation="stripe.Refund", error_code=f"STRIPE_{status or 'ERROR'}"
        )
    return AiqAmbiguousError(str(error), operation="stripe.Refund")


def _target(payload: dict) -> dict:
    if payload.get("payment_intent"):
        return {"payment_intent": payload["payment_intent"]}
    if payload.get("charge"):
        return {"charge": payload["charge"]}
    raise PayloadError("a Stripe refund needs the payment_intent or charge it refunds")


def _ours(payload: dict) -> list[dict]:
    api = _stripe()
    mine = str(payload["refund_id"])
    found = []
    for page in api.list_pages("/v1/refunds", **_target(payload)):
        found += [r for r in page if (r.get("metadata") or {}).get(METADATA_KEY) == mine]
    return found


def _charge_total(payload: dict, refund: dict) -> int:
    """What Stripe says the charge has refunded in all, now (absolute, so order-proof)."""
    api = _stripe()
    charge_id = refund.get("charge")
    charge_id = charge_id.get("id") if isinstance(charge_id, dict) else charge_id
    charge = api.retrieve(f"/v1/charges/{charge_id}") if charge_id else {}
    return int(charge.get("amount_refunded") or 0)


def _stripe_result(payload: dict, refund: dict) -> dict:
    if refund.get("status") in ("failed", "canceled"):
        raise AiqPermanentError(
            f"Stripe refund {refund['id']} is {refund['status']}"
            + (f" ({refund.get('failure_reason')})" if refund.get("failure_reason") else ""),
            operation="stripe.Refund",
            error_code=f"STRIPE_{refund['status'].upper()}",
        )
    return {
        "stripe_refund_id": refund["id"],
        "status": refund.get("status") or "",
        "amount_refunded_minor": _charge_total(payload, refund),
    }


def stripe_refund_read_back(client, command: OutboxCommand, payload: dict) -> ReadBack:
    api = _stripe()
    try:
        found = _ours(payload)
        result = _stripe_result(payload, found[0]) if len(found) == 1 else {}
    except api.StripeError as error:
        raise _as_aiq_error(error) from None
    return ReadBack(len(found), result)


def stripe_refund_send(client, command: OutboxCommand, payload: dict) -> dict:
    """List first (always: it is one cheap call), create only when none of ours exists."""
    api = _stripe()
    _require(payload, "refund_id", "amount_minor")
    amount = int(payload["amount_minor"])
    if amount <= 0:
        raise PayloadError("a refund must be for more than zero")
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
        raise _as_aiq_error(error) from None


EXECUTORS = {
    Kind.CREATE_CREDIT_NOTE: Executor(credit_note_send, credit_note_read_back),
    Kind.STRIPE_REFUND: Executor(stripe_refund_send, stripe_refund_read_back),
}
# one registry for the runner (ledger/outbox/executors.py imports this module at its end)
base.EXECUTORS.update(EXECUTORS)
