"""Purchase invoices into AIQ: stored, queued exactly once, moved by the outbox's verdict.

    purchase_invoice_create(entity=..., external_reference=..., supplier_code=..., ...,
                            lines=[PurchaseLine, ...], depends_on=command | None, actor=...)

Called by the back-to-back and intercompany services inside their own transaction; a purchase
invoice is never edited once stored (AIQ may have it): a change is a debit note in AIQ.
"""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from ledger.models import Entity, OutboxCommand
from ledger.outbox.services import outbox_enqueue
from sales import outbox_purchases as kinds
from sales.models import PurchaseInvoice, PurchaseInvoiceLine
from staff.services import audit_log

State = PurchaseInvoice.State


@dataclass(frozen=True)
class PurchaseLine:
    net_amount: Decimal
    tax_amount: Decimal
    tax_code: str = ""
    description: str = ""
    gl_account_code: str = ""
    department: str = ""


def purchase_invoice_create(
    *,
    entity: Entity,
    external_reference: str,
    supplier_code: str,
    invoice_date: date,
    currency: str,
    description: str,
    lines: list[PurchaseLine],
    actor=None,
    depends_on: OutboxCommand | None = None,
    queue: bool = True,
) -> PurchaseInvoice:
    """Store the invoice and (with `queue`) its outbox command, waiting for `depends_on`.
    Inside the caller's transaction."""
    net = sum((line.net_amount for line in lines), Decimal(0))
    tax = sum((line.tax_amount for line in lines), Decimal(0))
    row = PurchaseInvoice(
        entity=entity,
        external_reference=external_reference,
        supplier_code=supplier_code.upper(),
        invoice_date=invoice_date,
        currency=currency.upper(),
        description=description[:500],
        net_amount=net,
        tax_amount=tax,
        gross_amount=net + tax,
        created_by=actor,
    )
    row.full_clean()
    row.save()
    PurchaseInvoiceLine.objects.bulk_create(
        PurchaseInvoiceLine(
            invoice=row,
            line_number=number,
            description=line.description[:500],
            net_amount=line.net_amount,
            tax_code=line.tax_code,
            tax_amount=line.tax_amount,
            gl_account_code=line.gl_account_code,
            department=line.department,
        )
        for number, line in enumerate(lines, start=1)
    )
    if queue:
        purchase_invoice_queue(row, actor=actor, depends_on=depends_on)
    audit_log(
        actor=actor,
        action="purchase_invoice.submit",
        obj=row,
        summary=f"{row.external_reference} from {row.supplier_code}: {row.gross_amount} "
        f"{row.currency}",
        after={"state": row.state, "gross": str(row.gross_amount)},
    )
    return row


def _payload(row: PurchaseInvoice) -> dict:
    return {
        "invoice": {
            "purchase_invoice_id": row.pk,
            "external_reference": row.external_reference,
            "supplier_code": row.supplier_code,
            "invoice_date": row.invoice_date.isoformat(),
            "currency": row.currency,
            "description": row.description,
            "lines": [
                {
                    "net_amount": str(line.net_amount),
                    "tax_amount": str(line.tax_amount),
                    "tax_code": line.tax_code,
                    "description": line.description,
                    "gl_account_code": line.gl_account_code,
                    "department": line.department,
                }
                for line in row.lines.order_by("line_number")
            ],
        }
    }


def purchase_invoice_queue(
    row: PurchaseInvoice, *, actor=None, depends_on: OutboxCommand | None = None
) -> OutboxCommand:
    """Its one command (idempotent on the reference PI-<id>)."""
    command = outbox_enqueue(
        entity=row.entity,
        kind=kinds.KIND,
        payload=_payload(row),
        external_reference=f"PI-{row.pk}",
        depends_on=depends_on,
        origin_type=kinds.ORIGIN,
        origin_id=row.pk,
        created_by=actor,
    )
    if row.command_id != command.pk:
        row.command = command
        row.state = State.QUEUED
        row.save(update_fields=["command", "state", "updated_at"])
    return command


# --- verdicts from the outbox (origin "purchase_invoice") -------------------------------------


def purchase_invoice_settle(*, command: OutboxCommand, result: dict) -> None:
    """Posted (ours) or linked (AIQ had it before our first send). Idempotent."""
    row = PurchaseInvoice.objects.select_for_update().filter(pk=command.origin_id).first()
    if row is None or row.state in PurchaseInvoice.IN_AIQ:
        return
    row.state = State.LINKED if result.get("linked") else State.POSTED
    row.aiq_transaction_id = int(result["transaction_id"])
    row.error = ""
    if result.get("extra_ids"):
        row.error = f"AIQ holds more than one invoice with this reference: {result['extra_ids']}"
    amount = result.get("amount")
    if result.get("linked") and amount and Decimal(str(amount)) != row.gross_amount:
        row.error = (
            f"AIQ's invoice under this reference is {amount} {row.currency}, ours is "
            f"{row.gross_amount}: check it in AIQ."
        )
    row.save(update_fields=["state", "aiq_transaction_id", "error", "updated_at"])
    audit_log(
        actor=None,
        action=f"purchase_invoice.{row.state}",
        obj=row,
        summary=f"{row.external_reference}: {row.get_state_display()}, transaction "
        f"{row.aiq_transaction_id}" + (f" ({row.error})" if row.error else ""),
        after={"state": row.state, "transaction_id": row.aiq_transaction_id},
    )


def purchase_invoice_fail(*, command: OutboxCommand, message: str, parked: bool = False) -> None:
    row = PurchaseInvoice.objects.select_for_update().filter(pk=command.origin_id).first()
    if row is None or row.state in PurchaseInvoice.IN_AIQ:
        return
    before = row.state
    row.state = State.HELD if parked else State.FAILED
    row.error = message[:2000]
    row.save(update_fields=["state", "error", "updated_at"])
    audit_log(
        actor=None,
        action=f"purchase_invoice.{row.state}",
        obj=row,
        summary=f"{row.external_reference}: {row.error}"[:500],
        before={"state": before},
        after={"state": row.state},
    )
