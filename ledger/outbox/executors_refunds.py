"""Executor for a refund's credit note in AIQ (save + post). (A refund through Stripe is
payments' own step: payments/services/stripe_refund_step.py.)

Payload: CreditNotePayload (ledger/outbox/payloads.py).

A credit note takes two writes (SaveCreditNoteGetBackCreditNoteID, then
PostCreditNotesGetBackTransactionIDs) and AIQ has no idempotency keys, so the send itself looks
the reference up (GetCreditNotesByExternalReference) before saving: a note saved by an earlier
attempt that died before posting is posted, never saved twice. Once the save is in AIQ, any
doubt about the post is reported as ambiguous, so the next attempt reads back first.
"""

from ledger.aiq.errors import AiqAmbiguousError, AiqTemporaryError
from ledger.aiq.results import as_decimal, get
from ledger.models import OutboxCommand
from ledger.outbox import executors as base
from ledger.outbox.executors import (
    REPLAY_AFTER_EXPIRY,
    PayloadError,
    ReadBack,
    _iso,
    _midnight,
    _require,
)

Kind = OutboxCommand.Kind
POSTED = "Processed"  # AIQ's document Status once a credit note is posted ("Created" before)


# --- credit notes ------------------------------------------------------------------------------


def _result(txn, number: str = "") -> dict:
    return {
        "transaction_id": int(get(txn, "TransactionID")),
        "credit_note_id": int(get(txn, "InvoiceID") or 0) or None,
        "credit_note_number": number or get(txn, "InternalNumber") or "",
    }


def credit_note_read_back(client, command: OutboxCommand, payload: dict) -> ReadBack:
    """Done = posted: a transaction carries our reference. A note that is only saved counts as
    not done (hits 0); the send then finds and posts it instead of saving another."""
    hits = base.transactions_by_reference(
        client, command.external_reference, _iso(payload["credit_date"])
    )
    if not hits:
        return ReadBack(0, {})
    hits.sort(key=lambda txn: int(get(txn, "TransactionID")))
    extra = [int(get(txn, "TransactionID")) for txn in hits[1:]]
    return ReadBack(len(hits), _result(hits[0]), extra_ids=extra)


def _line(line: dict) -> dict:
    return {
        "StockItemID": line.get("stock_item_id") or None,
        "StockItemDescription": (line.get("description") or "")[:250],
        "InvoicedQuantity": as_decimal(line.get("quantity") or 1),
        "StockItemPrice": as_decimal(line.get("unit_price") or 0),
        "ActualPrice": as_decimal(line.get("unit_price") or 0),
        "TaxCode": line.get("tax_code") or None,
        "TaxRate": as_decimal(line.get("tax_rate") or 0),
        "NetAmount": as_decimal(line["net_amount"]),
        "TaxAmount": as_decimal(line["tax_amount"]),
        "GrossAmount": as_decimal(line["net_amount"]) + as_decimal(line["tax_amount"]),
        "GLAccountCode": line.get("gl_account_code") or None,
        # the invoice line's BI code: a credit note reverses revenue where it was reported
        "DepartmentID": line.get("department_id") or None,
    }


def _record(template: dict, command: OutboxCommand, payload: dict) -> dict:
    """AIQ's defaults for the customer, with our reference, date and the invoice's lines."""
    record = dict(template or {})
    lines = [_line(line) for line in payload["lines"]]
    net = sum((line["NetAmount"] for line in lines), as_decimal(0))
    tax = sum((line["TaxAmount"] for line in lines), as_decimal(0))
    if net + tax != as_decimal(payload.get("gross_amount") or net + tax):
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
    saved = client.get_credit_notes_by_external_reference(reference)
    if len(saved) > 1:
        raise PayloadError(
            f"{len(saved)} credit notes in AIQ carry {reference}; a person must keep one"
        )
    if saved:
        note_id = int(get(saved[0], "InvoiceID"))
        number = get(saved[0], "InvoiceNumber") or ""
        if get(saved[0], "Status") == POSTED:
            found = credit_note_read_back(client, command, payload)
            if found.hits == 1:
                return {**found.result, "credit_note_id": note_id, "credit_note_number": number}
            raise AiqAmbiguousError(f"credit note {note_id} is posted but its transaction is not")
    else:
        template = client.get_new_sales_credit_note(payload["customer_code"])
        note_id = client.save_credit_note_get_back_id(
            _record(template, command, payload), replay_safe=REPLAY_AFTER_EXPIRY
        )
        number = ""
    try:
        [transaction_id] = client.post_credit_notes([note_id], replay_safe=REPLAY_AFTER_EXPIRY)
    except AiqTemporaryError as error:
        # the saved note is in AIQ whatever happened to the post: read back before anything
        # (AiqAmbiguousError, a post without its one id, is a temporary error too)
        raise AiqAmbiguousError(f"credit note {note_id} saved; posting: {error}") from None
    return {
        "credit_note_id": note_id,
        "transaction_id": transaction_id,
        "credit_note_number": number,
    }
