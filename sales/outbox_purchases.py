"""The AIQ write of a purchase invoice: one outbox kind, its read-back and its origin.

- purchase_invoice  GetNewPurchasesInvoice (the supplier's defaults) -> SaveInvoiceGetBackInvoiceID
                    -> PostInvoiceGetBackTransactionID, as AIQ's sales invoicing document says for
                    back-to-back invoicing and for the buyer's half of an intercompany sale.

Duplicate check before any create, as for item sales invoices (sales.outbox.in_aiq): the
invoice is looked up by its external reference (GetInvoicesByExternalReference, saved or
posted; GetTransactionsByExternalReference, posted). What AIQ holds before our first send is
linked, never created again; a saved but unposted one (an answer lost between save and post)
is posted, never saved twice.

The verdict moves the PurchaseInvoice (origin "purchase_invoice"): confirmed -> posted or
linked with AIQ's transaction id, failed -> failed with AIQ's message, parked -> held.
"""

from dataclasses import dataclass

from ledger.aiq.results import as_decimal
from ledger.models import OutboxCommand
from ledger.outbox.executors import REPLAY_AFTER_EXPIRY, Executor, ReadBack
from ledger.outbox.origins import Origin, on_confirmed, origin_register
from ledger.outbox.steps import StepRefused, command_kind_register
from sales.outbox import KIND_BATCH, KIND_BULK, KIND_ITEM, KIND_PAID, _midnight, in_aiq

KIND = "purchase_invoice"
ORIGIN = "purchase_invoice"


@dataclass(frozen=True)
class PurchaseInvoicePayload:
    invoice: dict

    def __post_init__(self):
        invoice = self.invoice
        for name in ("purchase_invoice_id", "external_reference", "supplier_code", "currency"):
            if invoice.get(name) in (None, ""):
                raise ValueError(f"purchase invoice is missing {name}")
        _midnight(invoice.get("invoice_date") or "")  # an ISO date or ValueError
        if not invoice.get("lines"):
            raise ValueError(f"purchase invoice {invoice['external_reference']} has no lines")
        for line in invoice["lines"]:
            for name in ("net_amount", "tax_amount"):
                if not isinstance(line.get(name), str):
                    raise ValueError("money must be a decimal string, never a float")
                as_decimal(line[name])


def purchase_document(client, invoice: dict) -> dict:
    """AIQ's Invoice (Ledger Purchases) for ours: the supplier's template, our lines with our
    VAT, each line with its BI code (DepartmentID)."""
    document = dict(client.get_new_purchases_invoice(invoice["supplier_code"]) or {})
    currency = (document.get("CurrencyCode") or invoice["currency"]).upper()
    if currency != invoice["currency"]:
        raise StepRefused(
            f"Supplier {invoice['supplier_code']} is a {currency} account in AIQ; the invoice "
            f"is in {invoice['currency']}.",
            code="CURRENCY",
        )
    document.update(
        InvoiceDate=_midnight(invoice["invoice_date"]),
        ExternalReference=invoice["external_reference"],
        Notes=(invoice.get("description") or "")[:250] or None,
        Lines={
            "InvoiceLine": [
                {
                    "StockItemDescription": (line.get("description") or "")[:250],
                    "InvoicedQuantity": as_decimal("1"),
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
    return document


def _result(command: OutboxCommand, hit: dict) -> dict:
    before = command.evidence.get("before") or {}
    return {
        "transaction_id": hit["transaction_id"],
        "linked": bool(before.get("transaction_id")),
        "extra_ids": hit.get("extra_ids", []),
        "amount": hit.get("amount", ""),
    }


def purchase_prepare(client, command: OutboxCommand, payload: dict) -> dict:
    found = in_aiq(client, payload["invoice"])
    evidence = {"found": found}
    if "before" not in command.evidence:
        evidence["before"] = found or {}
    return evidence


def purchase_read_back(client, command: OutboxCommand, payload: dict) -> ReadBack:
    found = in_aiq(client, payload["invoice"])
    if not (found and found.get("transaction_id")):
        return ReadBack(0, {}, evidence={"found": found})
    return ReadBack(1, _result(command, found))


def purchase_send(client, command: OutboxCommand, payload: dict) -> dict:
    invoice = payload["invoice"]
    found = command.evidence.get("found") or {}
    if found.get("transaction_id"):
        return _result(command, found)
    saved = found.get("saved_invoice_id")
    if not saved:
        saved = client.save_invoice_get_back_invoice_id(
            purchase_document(client, invoice), create=True, replay_safe=REPLAY_AFTER_EXPIRY
        )
    transaction_id = client.post_invoice(saved, replay_safe=REPLAY_AFTER_EXPIRY)
    return _result(command, {"transaction_id": transaction_id})


EXECUTOR = Executor(purchase_send, purchase_read_back, purchase_prepare)


def _confirmed(command: OutboxCommand, payload: dict, notes: list[str]) -> None:
    # local: sales.services.purchases imports this module (its kind)
    from sales.services.purchases import purchase_invoice_settle

    purchase_invoice_settle(command=command, result=command.result)


def _failed(command: OutboxCommand) -> None:
    # local: sales.services.purchases imports this module (its kind)
    from sales.services.purchases import purchase_invoice_fail

    purchase_invoice_fail(command=command, message=command.last_error_message or "AIQ refused it")


def _parked(command: OutboxCommand) -> None:
    # local: sales.services.purchases imports this module (its kind)
    from sales.services.purchases import purchase_invoice_fail

    purchase_invoice_fail(
        command=command, message=command.last_error_message or "waits for a person", parked=True
    )


def _after_sale(command: OutboxCommand, payload: dict, notes: list[str]) -> None:
    # local: sales.services.intercompany imports sales.services.purchases, which imports this
    from sales.services.intercompany import intercompany_after_sale

    intercompany_after_sale(command, payload, notes)


def register() -> None:
    for sales_kind in (KIND_BATCH, KIND_ITEM, KIND_BULK, KIND_PAID):
        on_confirmed(sales_kind, _after_sale)
    command_kind_register(
        KIND,
        executor=EXECUTOR,
        payload=PurchaseInvoicePayload,
        label="Save and post purchase invoice",
    )
    origin_register(ORIGIN, Origin(confirmed=_confirmed, failed=_failed, parked=_parked))
