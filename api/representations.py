"""Our rows as the API shows them (shapes in api/serializers.py). Reads only."""

from decimal import Decimal

from django.utils import timezone

from core.money import quantize
from ledger.models import Invoice
from payments.models import AllocationPlan, ContactAllocation, OtherReceipt, Payment, Refund


def money(amount, currency: str) -> str:
    return str(quantize(amount, currency))


def _live_plan(payment: Payment) -> AllocationPlan | None:
    plans = [p for p in payment.plans.all() if p.state in AllocationPlan.SHOWN]
    return max(plans, key=lambda p: p.pk) if plans else None


def contact_payment(payment: Payment, *, plan=None, lines=None) -> dict:
    """`plan` and its `lines` when the caller has them in hand (a receipt just made), else
    the payment's prefetched plans."""
    if plan is None:
        plan = _live_plan(payment)
        lines = plan.lines.all() if plan is not None else []
    receipt = payment.receipt if payment.receipt_id else None
    customer = plan.customer if plan else payment.customer
    bank = payment.bank_account or (receipt.bank_account if receipt else None)
    artefacts = []
    if plan is not None:
        for line in sorted(lines, key=lambda line: line.invoice_id):
            if getattr(line, "unallocated_at", None) is None and line.amount:
                item = {
                    "artefact_id": f"inv_{line.invoice_id}",
                    "amount": money(line.amount, payment.currency),
                }
                if line.discount_amount:
                    item["discount"] = money(line.discount_amount, payment.currency)
                artefacts.append(item)
    if receipt is not None:
        on_account = {
            "id": f"rcpt_{receipt.pk}",
            "amount": money(receipt.unallocated_amount, receipt.currency),
        }
    elif plan is not None:
        on_account = {
            "id": f"pay_{payment.pk}",
            "amount": money(plan.on_account_amount, payment.currency),
        }
    else:
        on_account = None
    return {
        "id": f"pay_{payment.pk}",
        "transaction_type_id": "CUSTOMER_RECEIPT",
        "contact_id": customer.code if customer else None,
        "bank_account_id": bank.bank_account_code if bank else None,
        "payment_method_id": str((payment.raw or {}).get("payment_method_id", "")),
        "date": timezone.localdate(payment.received_at),
        "total_amount": money(payment.amount, payment.currency),
        "currency": payment.currency,
        "reference": payment.description[:25],
        "status": plan.state if plan else payment.match_state,
        "allocated_artefacts": artefacts,
        "payment_on_account": on_account,
        "aiq_transaction_id": receipt.aiq_transaction_id if receipt else None,
        "created_at": payment.created_at,
        "updated_at": max(payment.updated_at, plan.updated_at) if plan else payment.updated_at,
    }


def refund(row: Refund) -> dict:
    if row.credit_note_id:
        artefact = f"cn_{row.credit_note_id}"
    elif row.payment_id:
        artefact = f"pay_{row.payment_id}"
    else:
        artefact = f"rcpt_{row.receipt_id}"
    bank = row.bank_account or (row.receipt.bank_account if row.receipt_id else None)
    bank = bank or row.customer.entity.default_bank_account
    return {
        "id": f"ref_{row.pk}",
        "transaction_type_id": "CUSTOMER_REFUND",
        "contact_id": row.customer.code,
        "bank_account_id": bank.bank_account_code if bank else None,
        "payment_method_id": "",
        "date": timezone.localdate(row.created_at),
        "total_amount": money(row.amount, row.currency),
        "currency": row.currency,
        "reference": row.reason[:25],
        "status": row.state,
        "allocated_artefacts": [
            {"artefact_id": artefact, "amount": money(row.amount, row.currency)}
        ],
        "payment_on_account": None,
        "aiq_transaction_id": None,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def contact_allocation(row: ContactAllocation) -> dict:
    credit = f"cn_{row.credit_note_id}" if row.credit_note_id else f"rcpt_{row.receipt_id}"
    lines = [
        {"artefact_id": f"inv_{line.invoice_id}", "amount": money(line.amount, row.currency)}
        for line in row.lines.all()
    ]
    return {
        "id": f"calloc_{row.pk}",
        "transaction_type_id": "CUSTOMER_ALLOCATION",
        "contact_id": row.customer.code,
        "date": row.allocation_date,
        "currency": row.currency,
        "status": row.state,
        "allocated_artefacts": [
            *lines,
            {"artefact_id": credit, "amount": money(-row.amount, row.currency)},
        ],
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def other_payment(row: OtherReceipt) -> dict:
    return {
        "id": f"orec_{row.pk}",
        "transaction_type_id": row.kind,
        "contact_id": row.customer.code if row.customer_id else None,
        "bank_account_id": row.bank_account.bank_account_code,
        "date": row.receipt_date,
        "reference": row.reference,
        "description": row.description,
        "total_amount": money(row.total_amount, row.currency),
        "currency": row.currency,
        "status": row.state,
        "payment_lines": [
            {
                "ledger_account_id": line.gl_account_code,
                "tax_rate_id": line.tax_code,
                "net_amount": money(line.net_amount, row.currency),
                "tax_amount": money(line.tax_amount, row.currency),
                "total_amount": money(line.total_amount, row.currency),
                "details": line.description,
            }
            for line in row.lines.all()
        ],
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def _allocations(rows, currency: str) -> list[dict]:
    out = []
    for a in rows:
        if a.state != "active":
            continue
        other = (
            f"rcpt_{a.receipt_id}" if a.receipt_id
            else f"cn_{a.credit_note_id}" if a.credit_note_id
            else f"inv_{a.invoice_id}" if a.invoice_id
            else None
        )  # fmt: skip
        out.append(
            {
                "id": f"alloc_{a.pk}",
                "artefact_id": other,
                "amount": money(a.amount, currency),
                "discount": money(a.discount_amount, currency),
                "date": a.allocation_date,
            }
        )
    return out


def invoice(row, *, with_allocations: bool = False) -> dict:
    out = {
        "id": f"inv_{row.pk}",
        "invoice_number": row.invoice_number,
        "reference": row.external_reference,
        "contact_id": row.customer.code,
        "date": row.invoice_date,
        "due_date": row.due_date,
        "currency": row.currency,
        "net_amount": money(row.net_amount, row.currency),
        "tax_amount": money(row.tax_amount, row.currency),
        "total_amount": money(row.gross_amount, row.currency),
        "outstanding_amount": money(row.outstanding_amount, row.currency),
        "status": row.status,
        "aiq_transaction_id": row.aiq_transaction_id,
        "updated_at": row.updated_at,
    }
    if with_allocations:
        out["payments_allocations"] = _allocations(row.allocations.all(), row.currency)
    return out


def credit_note(row, *, with_allocations: bool = False) -> dict:
    out = {
        "id": f"cn_{row.pk}",
        "credit_note_number": row.credit_note_number,
        "reference": row.external_reference,
        "contact_id": row.customer.code,
        "date": row.credit_date,
        "currency": row.currency,
        "net_amount": money(row.net_amount, row.currency),
        "tax_amount": money(row.tax_amount, row.currency),
        "total_amount": money(row.gross_amount, row.currency),
        "outstanding_amount": money(row.outstanding_amount, row.currency),
        "status": row.status,
        "aiq_transaction_id": row.aiq_transaction_id,
        "updated_at": row.updated_at,
    }
    if with_allocations:
        rows = [a for a in row.allocations.all()]
        for a in rows:  # from the credit note's side, the other artefact is the invoice
            a.receipt_id = a.credit_note_id = None
        out["payments_allocations"] = _allocations(rows, row.currency)
    return out


def customer(row) -> dict:
    return {
        "id": row.code,
        "name": row.name,
        "email": row.email,
        "currency": row.currency,
        "updated_at": row.updated_at,
    }


def bank_account(row) -> dict:
    return {
        "id": row.bank_account_code,
        "name": row.name,
        "currency": row.currency,
        "ledger_account_id": row.bank_code,
    }


def sales_invoice_mirrors(rows) -> dict[int, str]:
    """SalesInvoice id -> the inv_ id of the invoice AIQ made of it, as the mirror holds it
    (one query for all the rows; an invoice not pulled from AIQ yet has none)."""
    wanted = {(row.entity_id, row.aiq_transaction_id): row.pk for row in rows}
    wanted.pop((None, None), None)
    ids = {transaction_id for _entity, transaction_id in wanted if transaction_id is not None}
    if not ids:
        return {}
    found = (
        Invoice.objects.filter(
            entity_id__in={entity for entity, _id in wanted}, aiq_transaction_id__in=ids
        )
        .order_by("pk")
        .values_list("entity_id", "aiq_transaction_id", "pk")
    )
    mirrors: dict[int, str] = {}
    for entity_id, transaction_id, pk in found:
        sales_pk = wanted.get((entity_id, transaction_id))
        if sales_pk is not None:
            mirrors.setdefault(sales_pk, f"inv_{pk}")
    return mirrors


def sales_invoice(row, artefact_id: str | None = None) -> dict:
    """A sales invoice sent through the API (sales.models.SalesInvoice): its way into AIQ."""
    return {
        "id": f"sinv_{row.pk}",
        "reference": row.external_reference,
        "contact_id": row.customer_code,
        "date": row.invoice_date,
        "due_date": row.due_date,
        "currency": row.currency,
        "net_amount": money(row.net_amount, row.currency),
        "tax_amount": money(row.tax_amount, row.currency),
        "total_amount": money(row.gross_amount, row.currency),
        "status": row.state,
        "status_reason": row.held_reason or row.error,
        "invoice_type": row.invoice_type,
        "invoice_number": row.aiq_number,
        "aiq_transaction_id": row.aiq_transaction_id,
        "artefact_id": artefact_id,
        "invoice_lines": [
            {
                "description": line.description,
                "ledger_account_id": line.gl_account_code,
                "product_id": line.item_code,
                "quantity": str(line.quantity.normalize()),
                "net_amount": money(line.net_amount, row.currency),
                "tax_rate_id": line.tax_code,
                "tax_amount": money(line.tax_amount, row.currency),
            }
            for line in sorted(row.lines.all(), key=lambda line: line.line_number)
        ],
        "payment": {
            "total_amount": money(Decimal(row.paid["amount"]), row.currency),
            "date": row.paid["paid_on"],
            "reference": row.paid["reference"],
            "bank_account_id": row.paid["bank_account_code"],
            "aiq_transaction_id": row.receipt_transaction_id,
        }
        if row.paid
        else None,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }
