"""The AIQ write of a purchase invoice: one outbox kind, its read-back and its origin.

- purchase_invoice  GetNewPurchasesInvoice (the supplier's defaults) -> SaveInvoiceGetBackInvoiceID
                    -> PostInvoiceGetBackTransactionID, as AIQ's sales invoicing document says for
                    back-to-back invoicing and for the buyer's half of an intercompany sale.

Sent by the sales invoices' executor (sales.outbox), as an item sales invoice is, with
`purchase_document` for the document: the same duplicate check before any create (the
invoice looked up by its external reference: GetInvoicesByExternalReference, saved or posted;
GetTransactionsByExternalReference, posted). What AIQ holds before our first send is linked,
never created again; a saved but unposted one (an answer lost between save and post) is
posted, never saved twice. The result is the executor's: {"invoices": {reference: {...}}}.

The verdict moves the PurchaseInvoice (origin "purchase_invoice"): confirmed -> posted or
linked with AIQ's transaction id, failed -> failed with AIQ's message, parked -> held.
"""

from dataclasses import dataclass

from ledger.aiq.results import as_decimal
from ledger.models import OutboxCommand
from ledger.outbox.origins import Origin, on_confirmed, origin_register
from ledger.outbox.steps import StepRefused, command_kind_register
from sales.outbox import (
    EXECUTOR,
    KIND_BATCH,
    KIND_BULK,
    KIND_ITEM,
    KIND_PAID,
    _midnight,
    save_and_post_register,
)

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


def _confirmed(command: OutboxCommand, payload: dict, notes: list[str]) -> None:
    # local: sales.services.purchases imports this module (its kind)
    from sales.services.purchases import purchase_invoice_fail, purchase_invoice_settle

    reference = payload["invoice"]["external_reference"]
    entry = (command.result.get("invoices") or {}).get(reference)
    if entry is None:  # refused inside a confirmed command: cannot happen for one invoice
        refused = (command.result.get("refused") or {}).get(reference) or "AIQ refused it"
        purchase_invoice_fail(command=command, message=refused)
    else:
        purchase_invoice_settle(command=command, result=entry)


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
    save_and_post_register(KIND, purchase_document)
    command_kind_register(
        KIND,
        executor=EXECUTOR,
        payload=PurchaseInvoicePayload,
        label="Save and post purchase invoice",
    )
    origin_register(ORIGIN, Origin(confirmed=_confirmed, failed=_failed, parked=_parked))
