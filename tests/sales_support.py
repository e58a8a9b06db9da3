"""Helpers for the sales-invoicing scenarios: a source with an upload layout, invoice files,
AIQ's books as the sandbox keeps them, and draining the outbox."""

import csv
import io
from decimal import Decimal

from django.utils import timezone

from ledger.aiq.client import AiqClient
from ledger.models import OutboxCommand
from ledger.outbox.runner import drain
from sales.models import InvoiceSource, InvoiceType

OPEN = [OutboxCommand.State.PENDING, OutboxCommand.State.UNCERTAIN, OutboxCommand.State.IN_FLIGHT]
HEADER = [
    "Invoice", "Account", "Customer", "Email", "Date", "Due", "Currency", "Details",
    "Net", "VAT code", "VAT", "Order", "Delivered", "Item",
]  # fmt: skip
LAYOUT = {
    "external_reference": "Invoice",
    "customer_code": "Account",
    "customer_name": "Customer",
    "customer_email": "Email",
    "invoice_date": "Date",
    "due_date": "Due",
    "currency": "Currency",
    "line_description": "Details",
    "net": "Net",
    "tax_code": "VAT code",
    "tax": "VAT",
    "order_number": "Order",
    "delivery_date": "Delivered",
    "item_code": "Item",
}


def crm_source(entity, *, invoice_type=InvoiceType.BATCH, code="CRM") -> InvoiceSource:
    return InvoiceSource.objects.create(
        entity=entity,
        code=code,
        name="Salesforce",
        invoice_type=invoice_type,
        column_map=LAYOUT,
        date_format="%d/%m/%Y",
    )


def invoice_file(rows: list[list]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    writer.writerows(rows)
    return out.getvalue().encode()


def row(ref, code, name, net, vat, *, date="15/11/2026", due="15/12/2026", text="Services",
        vat_code="T1", currency="GBP", email="", order="", delivered="", item=""):  # fmt: skip
    return [ref, code, name, email, date, due, currency, text, net, vat_code, vat, order,
            delivered, item]  # fmt: skip


def drain_all(rounds: int = 60) -> None:
    for _ in range(rounds):
        if not OutboxCommand.objects.filter(state__in=OPEN).exists():
            return
        drain(budget_seconds=60, batch_size=50)
        OutboxCommand.objects.filter(state__in=OPEN[:2]).update(next_attempt_at=timezone.now())
    raise AssertionError("the outbox did not settle")


def aiq_invoices(sandbox, reference: str) -> list[dict]:
    return [t for t in sandbox.state.transactions(reference) if t["type"] == "SalesInvoice"]


def aiq_vat(sandbox, transaction_id: int) -> Decimal:
    """The VAT AIQ posted for one transaction: minus its tax lines (a sale credits VAT)."""
    from sandbox.store import loads

    rows = sandbox.state._rows("SELECT lines FROM txn WHERE id = ?", (transaction_id,))
    return -sum(
        (Decimal(str(x["Amount"])) for x in loads(rows[0]["lines"]) if x.get("IsTaxLine")),
        Decimal(0),
    )


def aiq_customer_codes(sandbox) -> set[str]:
    rows = sandbox.state._rows(
        "SELECT code FROM account WHERE entity_id = 'demo' AND ledger = 'Sales'"
    )
    return {r["code"] for r in rows}


def aiq_set_credit_limit(client: AiqClient, code: str, limit: Decimal) -> None:
    record = dict(client.get_customer(code))
    record["CreditLimit"] = limit
    client.update_customer(record, create=False)


def aiq_create_customer(client: AiqClient, code: str, name: str) -> None:
    record = dict(client.get_new_customer_from_defaults())
    record.update(Code=code, Name=name)
    client.update_customer(record, create=True)
