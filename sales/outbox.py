"""The AIQ writes of sales invoicing: three outbox kinds, their read-backs and their origin.

- sales_invoice       one batch invoice: GetNewBatchSalesInvoice ->
                      CreateBatchSalesInvoiceGetBackTransactionID (the source's VAT as sent)
- sales_item_invoice  one item invoice: GetNewSalesInvoice -> SaveInvoiceGetBackInvoiceID ->
                      PostInvoiceGetBackTransactionID (order numbers, delivery dates, item codes)
- sales_invoice_bulk  up to BULK_SIZE batch invoices: CreateBatchSalesInvoiceBulkGetBackTransactionIDs
- sales_paid_invoice  an already-paid order: PostPayAndAllocateSalesInvoice posts the batch
                      invoice, its receipt and their allocation in one call (after our duplicate
                      check and with AIQ's own on invoice and receipt references)

Duplicate check before any create (AIQ has no idempotency keys): each invoice is looked up by
its external reference, GetInvoicesByExternalReference (item invoices, saved or posted) and
GetTransactionsByExternalReference (posted invoices of either type: batch invoices never reach
AIQ's invoice table). What exists before our first send is *linked*, never created again; what
the read-back finds after a send of ours is ours (*posted*). An item invoice saved but not
posted (a lost answer between save and post) is posted, never saved twice.

The command's verdict moves its SalesInvoice rows (origin "sales_invoice"): confirmed -> posted
or linked with AIQ's transaction id (per invoice: a bulk may refuse some and post the others),
failed -> failed with AIQ's message, parked -> the message, for a person.
"""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from ledger.aiq.errors import AiqAmbiguousError, AiqPermanentError, AiqTemporaryError
from ledger.aiq.results import as_decimal, get
from ledger.models import OutboxCommand
from ledger.outbox.executors import (
    REPLAY_AFTER_EXPIRY,
    Executor,
    ReadBack,
    transactions_by_reference,
)
from ledger.outbox.origins import Origin, on_confirmed, origin_register
from ledger.outbox.steps import command_kind_register
from sales import outbox_customers

KIND_BATCH = "sales_invoice"
KIND_ITEM = "sales_item_invoice"
KIND_BULK = "sales_invoice_bulk"
KIND_PAID = "sales_paid_invoice"
ORIGIN = "sales_invoice"
BULK_SIZE = 100
# duplicate look-ups of one bulk command run side by side, 10 at a time (the HTTP session's
# pool keeps 10 connections; the AIQ client is thread-safe: one session per process,
# single-flight logins); each costs one AIQ round trip
LOOKUP_THREADS = 10
LOOKUP_TRIES = 3


def _check_invoice(invoice: dict) -> None:
    for name in ("sales_invoice_id", "external_reference", "customer_code", "invoice_date"):
        if invoice.get(name) in (None, ""):
            raise ValueError(f"invoice is missing {name}")
    if not invoice.get("lines"):
        raise ValueError(f"invoice {invoice['external_reference']} has no lines")
    for line in invoice["lines"]:
        for name in ("net_amount", "tax_amount"):
            as_decimal(line[name])  # a decimal string, never a float
            if isinstance(line[name], float):
                raise ValueError("money must be a decimal string, never a float")


@dataclass(frozen=True)
class SalesInvoicePayload:
    """One invoice (sales_invoice, sales_item_invoice)."""

    invoice: dict

    def __post_init__(self):
        _check_invoice(self.invoice)


@dataclass(frozen=True)
class SalesInvoiceBulkPayload:
    invoices: list = field(default_factory=list)

    def __post_init__(self):
        if not 1 <= len(self.invoices) <= BULK_SIZE:
            raise ValueError(f"a bulk command carries 1 to {BULK_SIZE} invoices")
        for invoice in self.invoices:
            _check_invoice(invoice)


def _invoices(command: OutboxCommand, payload: dict) -> list[dict]:
    return payload["invoices"] if command.kind == KIND_BULK else [payload["invoice"]]


def _midnight(day: str) -> datetime:
    value = date.fromisoformat(day)
    return datetime(value.year, value.month, value.day)


# --- what AIQ already holds ------------------------------------------------------------------


def in_aiq(client, invoice: dict) -> dict | None:
    """What AIQ holds under this invoice's reference: {"transaction_id", "amount" (AIQ's
    gross), "extra_ids"} when posted, {"saved_invoice_id"} when saved but not posted, None when nothing."""
    reference = invoice["external_reference"]
    documents = client.get_invoices_by_external_reference(reference)
    found = sorted(
        (int(get(t, "TransactionID")), str(get(t, "ControlAmount") or ""))
        for t in transactions_by_reference(
            client, reference, date.fromisoformat(invoice["invoice_date"])
        )
    )
    if found:
        (first, amount), *others = found
        # an item invoice's AIQ document id (GetInvoice reads its lines: a credit note's copy)
        posted = sorted(
            int(get(d, "InvoiceID")) for d in documents if get(d, "Status") == "Processed"
        )
        return {
            "transaction_id": first,
            "amount": amount,
            "extra_ids": [i for i, _ in others],
            "invoice_id": posted[0] if len(posted) == 1 else None,
        }
    saved = sorted(int(get(d, "InvoiceID")) for d in documents if get(d, "Status") != "Processed")
    if saved:
        return {"saved_invoice_id": saved[0]}
    return None


def _in_aiq_retried(client, invoice: dict) -> dict | None:
    """in_aiq, tried again on a temporary error (a read: always safe to repeat). Side by side,
    one thread's new login can expire the token another thread has just taken."""
    for attempt in range(LOOKUP_TRIES):
        try:
            return in_aiq(client, invoice)
        except AiqTemporaryError:
            if attempt == LOOKUP_TRIES - 1:
                raise
    return None  # not reached


def _look_up_all(client, invoices: list[dict]) -> dict[str, dict | None]:
    if len(invoices) == 1:
        return {invoices[0]["external_reference"]: _in_aiq_retried(client, invoices[0])}
    with ThreadPoolExecutor(max_workers=min(LOOKUP_THREADS, len(invoices))) as pool:
        found = list(pool.map(lambda invoice: _in_aiq_retried(client, invoice), invoices))
    return {i["external_reference"]: f for i, f in zip(invoices, found, strict=True)}


def sales_prepare(client, command: OutboxCommand, payload: dict) -> dict:
    """The duplicate check before a send: what AIQ holds under each reference. Kept as
    "before" from the first send on (what existed before any write of ours is linked)."""
    found = _look_up_all(client, _invoices(command, payload))
    evidence = {"found": found}
    if "before" not in command.evidence:
        evidence["before"] = {ref: hit for ref, hit in found.items() if hit}
    return evidence


def sales_read_back(client, command: OutboxCommand, payload: dict) -> ReadBack:
    """Confirmed when every invoice of the command is posted in AIQ; otherwise the look-ups
    become the evidence of the next send, which creates only what is missing (an invoice AIQ
    refused is refused again, with its message)."""
    found = _look_up_all(client, _invoices(command, payload))
    if any(not (hit and hit.get("transaction_id")) for hit in found.values()):
        return ReadBack(0, {}, evidence={"found": found})
    if command.kind == KIND_PAID:
        for invoice in _invoices(command, payload):
            found[invoice["external_reference"]]["receipt_transaction_id"] = _receipt_of(
                client, invoice
            )
    return ReadBack(1, _result(command, found, {}))


def _result(command: OutboxCommand, found: dict, refused: dict) -> dict:
    before = command.evidence.get("before", {})
    invoices = {}
    for ref, hit in found.items():
        if ref in refused or not hit or not hit.get("transaction_id"):
            continue
        invoices[ref] = {
            "transaction_id": hit["transaction_id"],
            "linked": bool(before.get(ref, {}).get("transaction_id")),
            "extra_ids": hit.get("extra_ids", []),
            "amount": hit.get("amount", ""),
            "receipt_transaction_id": hit.get("receipt_transaction_id"),
            "invoice_id": hit.get("invoice_id"),
        }
    return {"invoices": invoices, "refused": refused}


# --- sending ---------------------------------------------------------------------------------


def batch_document(client, invoice: dict) -> dict:
    """AIQ's BatchSalesInvoice for our invoice: the template's defaults, our lines with the
    source's VAT amount (never recomputed: no rounding drift)."""
    document = dict(client.get_new_batch_sales_invoice(invoice["customer_code"]) or {})
    return _batch_fields(document, invoice)


def _batch_fields(document: dict, invoice: dict) -> dict:
    document.update(
        CustomerCode=invoice["customer_code"].upper(),
        InvoiceDate=_midnight(invoice["invoice_date"]),
        ExternalReference=invoice["external_reference"],
        Description=(invoice.get("description") or "")[:250],
        Lines={
            "BatchSalesInvoiceLine": [
                {
                    "GLAccountCode": line.get("gl_account_code") or None,
                    "TaxCode": line.get("tax_code") or None,
                    "Description": (line.get("description") or "")[:250],
                    "DepartmentID": line.get("department") or None,
                    "NetAmount": as_decimal(line["net_amount"]),
                    "TaxAmount": as_decimal(line["tax_amount"]),
                }
                for line in invoice["lines"]
            ]
        },
    )
    return document


def item_document(client, invoice: dict) -> dict:
    document = dict(client.get_new_sales_invoice(invoice["customer_code"]) or {})
    document.update(
        InvoiceDate=_midnight(invoice["invoice_date"]),
        ExternalReference=invoice["external_reference"],
        Notes=(invoice.get("description") or "")[:250],
        Lines={
            "InvoiceLine": [
                {
                    "StockItemID": line.get("item_code") or None,
                    "StockItemDescription": (line.get("description") or "")[:250],
                    "Notes": " ".join(
                        part
                        for part in (
                            f"Order {line['order_number']}" if line.get("order_number") else "",
                            f"delivered {line['delivery_date']}"
                            if line.get("delivery_date")
                            else "",
                        )
                        if part
                    )
                    or None,
                    "InvoicedQuantity": Decimal(str(line.get("quantity") or 1)),
                    "GLAccountCode": line.get("gl_account_code") or None,
                    "TaxCode": line.get("tax_code") or None,
                    "DepartmentID": line.get("department") or None,
                    "NetAmount": as_decimal(line["net_amount"]),
                    "TaxAmount": as_decimal(line["tax_amount"]),
                }
                for line in invoice["lines"]
            ]
        },
    )
    # AIQ's Invoice has no due date: AIQ derives it from the customer's credit terms
    orders = sorted({line["order_number"] for line in invoice["lines"] if line.get("order_number")})
    if orders:
        document["OrderNumber"] = ", ".join(orders)[:50]
    deliveries = sorted(
        line["delivery_date"] for line in invoice["lines"] if line.get("delivery_date")
    )
    if deliveries:
        document["DeliveryDate"] = _midnight(deliveries[-1])
    return document


def _paid_query(command: OutboxCommand, invoice: dict) -> dict:
    paid = invoice["paid"]
    return {
        # AIQ's own duplicate checks as well as ours: they refuse a second invoice or receipt
        "PerformExternalReferenceDuplicateCheckOnInvoice": True,
        "PerformExternalReferenceDuplicateCheckOnReceipt": True,
        "BatchInvoice": _batch_fields({}, invoice),
        "Receipt": {
            "CustomerCode": invoice["customer_code"].upper(),
            "CheckReference": paid["reference"],
            "PaymentAmount": as_decimal(paid["amount"]),
            "BankAccountCode": paid["bank_account_code"],
            "PaymentDate": _midnight(paid["paid_on"]),
            "ExchangeRate": Decimal(1),
            "BankExchangeRate": Decimal(1),
            "Description": f"Paid order {invoice['external_reference']}"[:250],
        },
        "PerformAllocation": True,
        # paid at the checkout, invoiced on dispatch: allocated on the later of the two days
        "AllocationDate": _midnight(max(paid["paid_on"], invoice["invoice_date"])),
        "AllocationReference": invoice["external_reference"][:50],
        "ClientUniqueReference": command.external_reference,
        "EnforceCreditLimit": False,
    }


def _receipt_of(client, invoice: dict) -> int | None:
    paid = invoice.get("paid") or {}
    if not paid.get("reference"):
        return None
    ids = sorted(
        int(get(t, "TransactionID"))
        for t in transactions_by_reference(
            client, paid["reference"], date.fromisoformat(paid["paid_on"])
        )
    )
    return ids[0] if ids else None


def sales_send(client, command: OutboxCommand, payload: dict) -> dict:
    invoices = _invoices(command, payload)
    found = command.evidence.get("found")
    if found is None:  # no duplicate check recorded (cannot happen through the runner)
        found = _look_up_all(client, invoices)
    refused: dict[str, str] = {}
    todo = [
        i for i in invoices if not (found.get(i["external_reference"]) or {}).get("transaction_id")
    ]
    if command.kind == KIND_PAID:
        # an already-paid order: invoice, receipt and allocation in one AIQ call
        for invoice in todo:
            answer = client.post_pay_and_allocate_sales_invoice(
                _paid_query(command, invoice), replay_safe=REPLAY_AFTER_EXPIRY
            )
            transaction_id = int(get(answer, "InvoiceTransactionID") or 0)
            if not transaction_id:
                raise AiqAmbiguousError(
                    "PostPayAndAllocateSalesInvoice: Success without InvoiceTransactionID",
                    operation="PostPayAndAllocateSalesInvoice",
                )
            found[invoice["external_reference"]] = {
                "transaction_id": transaction_id,
                "receipt_transaction_id": int(get(answer, "ReceiptTransactionID") or 0) or None,
            }
    elif command.kind in SAVE_AND_POST:
        document_of = SAVE_AND_POST[command.kind]
        for invoice in todo:
            saved = (found.get(invoice["external_reference"]) or {}).get("saved_invoice_id")
            if not saved:
                saved = client.save_invoice_get_back_invoice_id(
                    document_of(client, invoice), create=True, replay_safe=REPLAY_AFTER_EXPIRY
                )
            transaction_id = client.post_invoice(saved, replay_safe=REPLAY_AFTER_EXPIRY)
            found[invoice["external_reference"]] = {
                "transaction_id": transaction_id,
                "invoice_id": saved,
            }
    else:
        for invoice in todo:
            if (found.get(invoice["external_reference"]) or {}).get("saved_invoice_id"):
                refused[invoice["external_reference"]] = (
                    "AIQ holds a saved, unposted item invoice with this external reference: "
                    "post or delete it in AIQ, then retry."
                )
        todo = [i for i in todo if i["external_reference"] not in refused]
        if command.kind == KIND_BATCH:
            for invoice in todo:
                transaction_id = client.create_batch_sales_invoice(
                    batch_document(client, invoice), replay_safe=REPLAY_AFTER_EXPIRY
                )
                found[invoice["external_reference"]] = {"transaction_id": transaction_id}
        elif todo:
            # no template call per invoice in a bulk: the BatchSalesInvoice has no defaults to
            # take beyond the customer's own, which AIQ applies to lines that leave them out
            answers = client.create_batch_sales_invoices_bulk(
                [_batch_fields({}, invoice) for invoice in todo], replay_safe=REPLAY_AFTER_EXPIRY
            )
            for invoice, (transaction_id, message) in zip(todo, answers, strict=True):
                if transaction_id:
                    found[invoice["external_reference"]] = {"transaction_id": transaction_id}
                else:
                    refused[invoice["external_reference"]] = message
    if refused and len(refused) == len(invoices):
        first = next(iter(refused.values()))
        raise AiqPermanentError(first, operation=command.kind, error_code="REFUSED")
    return _result(command, found, refused)


EXECUTOR = Executor(sales_send, sales_read_back, sales_prepare)

# The kinds written as AIQ Invoice documents (saved, then posted), with what builds the
# document: an item sales invoice here, a purchase invoice (sales.outbox_purchases) there. One
# executor for all: the same duplicate check, the same "saved but not posted: post it, never
# save twice", the same result shape ({"invoices": {reference: ...}, "refused": {}}).
SAVE_AND_POST = {KIND_ITEM: item_document}


def save_and_post_register(kind: str, document_of) -> None:
    SAVE_AND_POST[kind] = document_of


# --- the origin: what the verdict does to our invoices ----------------------------------------


def _confirmed(command: OutboxCommand, payload: dict, notes: list[str]) -> None:
    # local: sales.services.invoices imports this module (its kinds)
    from sales.services.invoices import sales_invoices_settle

    sales_invoices_settle(command=command, result=command.result)


def _failed(command: OutboxCommand) -> None:
    # local: sales.services.invoices imports this module (its kinds)
    from sales.services.invoices import sales_invoices_fail

    sales_invoices_fail(command=command, message=command.last_error_message or "AIQ refused it")


def _parked(command: OutboxCommand) -> None:
    # local: sales.services.invoices imports this module (its kinds)
    from sales.services.invoices import sales_invoices_fail

    sales_invoices_fail(
        command=command,
        message=command.last_error_message or "waits for a person",
        parked=True,
    )


def _note_confirmed(command: OutboxCommand, payload: dict, notes: list[str]) -> None:
    # local: sales.services.credit_notes imports the outbox services
    from sales.services.credit_notes import sales_credit_note_settle

    sales_credit_note_settle(command=command, payload=payload)


def _note_failed(command: OutboxCommand) -> None:
    # local: sales.services.credit_notes imports the outbox services
    from sales.services.credit_notes import sales_credit_note_settle

    sales_credit_note_settle(
        command=command, failed_message=command.last_error_message or "AIQ refused it"
    )


def _receipt_confirmed(command: OutboxCommand, payload: dict, notes: list[str]) -> None:
    # local: sales.services.after_posting imports sales.services (which import these kinds)
    from sales.services.after_posting import receipt_email_after_posting

    receipt_email_after_posting(command)


def register() -> None:
    command_kind_register(KIND_BATCH, executor=EXECUTOR, payload=SalesInvoicePayload)
    command_kind_register(KIND_ITEM, executor=EXECUTOR, payload=SalesInvoicePayload)
    command_kind_register(KIND_BULK, executor=EXECUTOR, payload=SalesInvoiceBulkPayload)
    command_kind_register(
        KIND_PAID,
        executor=EXECUTOR,
        payload=SalesInvoicePayload,
        label="Post paid sales invoice (pay and allocate)",
    )
    origin_register(ORIGIN, Origin(confirmed=_confirmed, failed=_failed, parked=_parked))
    # credit notes from the source: the refunds' create_credit_note + allocate chain
    origin_register(
        "sales_credit_note",
        Origin(confirmed=_note_confirmed, failed=_note_failed, parked=_note_failed),
    )
    outbox_customers.register()
    # a confirmed sales receipt's PDF to the customer, where the company says so
    on_confirmed(OutboxCommand.Kind.POST_RECEIPT, _receipt_confirmed)
