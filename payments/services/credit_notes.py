"""Draft credit notes copied from an invoice: the AIQ entry a refund or cancellation will post.

AIQ cannot cancel a posted invoice; a credit note with the invoice's lines (same GL accounts,
tax codes and rates) reverses all or part of it. The draft is a mirror row with status DRAFT and
the deterministic external reference the outbox sends it under, so the approver sees exactly
the lines that will reach AIQ, and the confirmation later fills in AIQ's ids on the same row.

Three ways to choose what is credited, all exact to the currency's minor unit:
- chosen lines: each chosen invoice line is copied whole;
- line picks: per invoice line, a quantity of its units (2 of the 5 licences: net and tax in
  proportion, at the line's own unit price) or a gross amount of that line alone;
- an amount (gross): split over the invoice lines in proportion to their gross with
  core.money.split (the parts add back up exactly), and each part's tax worked back from the
  line's own rate, so net + tax = gross on every line and in total.
"""

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from django.utils import timezone

from core.money import MoneyError, exact, format_money, quantize, split
from ledger.aiq.client import AiqClient
from ledger.aiq.errors import AiqError
from ledger.departments import department_problems
from ledger.models import CreditNote, CreditNoteLine, DocumentStatus, Invoice, InvoiceLine

ZERO = Decimal(0)
MILLI = Decimal("0.001")


class CreditNoteRefused(ValueError):
    """What was asked cannot become a credit note; the message says why, for a person."""


@dataclass(frozen=True)
class DraftLine:
    source: InvoiceLine | None
    description: str
    gl_account_code: str
    department_id: str
    tax_code: str
    tax_rate: Decimal
    quantity: Decimal
    unit_price: Decimal
    net_amount: Decimal
    tax_amount: Decimal

    @property
    def gross_amount(self) -> Decimal:
        return self.net_amount + self.tax_amount


def _whole(line: InvoiceLine) -> DraftLine:
    return DraftLine(
        source=line,
        description=line.description,
        gl_account_code=line.gl_account_code,
        department_id=line.department_id,
        tax_code=line.tax_code,
        tax_rate=line.tax_rate,
        quantity=line.quantity,
        unit_price=line.unit_price,
        net_amount=line.net_amount,
        tax_amount=line.tax_amount,
    )


def _credit(line: InvoiceLine, *, quantity, unit_price, net, tax) -> DraftLine:
    """Part of one invoice line, on the line's own GL account, BI code and tax code."""
    return DraftLine(
        source=line,
        description=f"Credit: {line.description}"[:500] if line.description else "Credit",
        gl_account_code=line.gl_account_code,
        department_id=line.department_id,
        tax_code=line.tax_code,
        tax_rate=line.tax_rate,
        quantity=quantity,
        unit_price=unit_price,
        net_amount=net,
        tax_amount=tax,
    )


def _part(line: InvoiceLine, gross: Decimal, currency: str) -> DraftLine:
    """A gross part of one line; tax at the line's effective rate, net the exact rest."""
    if line.gross_amount and line.tax_amount:
        tax = quantize(gross * line.tax_amount / line.gross_amount, currency)
    else:
        tax = ZERO
    net = gross - tax
    return _credit(line, quantity=Decimal(1), unit_price=net, net=net, tax=tax)


@dataclass(frozen=True)
class LinePick:
    """One invoice line to credit in part: `quantity` of its units, or `amount` (gross)."""

    line_id: int
    quantity: Decimal | None = None
    amount: Decimal | None = None


def _units(line: InvoiceLine, quantity: Decimal, currency: str) -> DraftLine:
    """`quantity` of the line's units: net and tax in the same proportion as on the invoice."""
    if quantity == line.quantity:
        return _whole(line)
    net = quantize(line.net_amount * quantity / line.quantity, currency)
    tax = quantize(line.tax_amount * quantity / line.quantity, currency)
    return _credit(line, quantity=quantity, unit_price=line.unit_price, net=net, tax=tax)


def _picked(lines: list[InvoiceLine], picks: list[LinePick], invoice: Invoice) -> list[DraftLine]:
    by_id = {line.pk: line for line in lines}
    if len({pick.line_id for pick in picks}) != len(picks):
        raise CreditNoteRefused("Each invoice line can be picked once.")
    drafts = []
    for pick in sorted(
        picks, key=lambda p: by_id[p.line_id].line_number if p.line_id in by_id else 0
    ):
        line = by_id.get(pick.line_id)
        if line is None:
            raise CreditNoteRefused(f"Some chosen lines are not lines of invoice {invoice}.")
        name = line.description or f"line {line.line_number}"
        if (pick.quantity is None) == (pick.amount is None):
            raise CreditNoteRefused(f"For {name}, give a quantity or an amount, not both.")
        if pick.quantity is not None:
            if pick.quantity <= 0 or pick.quantity > line.quantity:
                raise CreditNoteRefused(
                    f"{name}: the quantity to credit must be more than 0 and at most "
                    f"{line.quantity.normalize():f}, the quantity invoiced."
                )
            drafts.append(_units(line, pick.quantity, invoice.currency))
        else:
            try:
                amount = exact(pick.amount, invoice.currency)
            except MoneyError as error:
                raise CreditNoteRefused(f"{name}: {error}") from None
            if amount <= 0 or amount > line.gross_amount:
                raise CreditNoteRefused(
                    f"{name}: the amount to credit must be more than 0 and at most the line's "
                    f"{format_money(line.gross_amount, invoice.currency)}."
                )
            drafts.append(
                _whole(line)
                if amount == line.gross_amount
                else _part(line, amount, invoice.currency)
            )
    return drafts


def _d(value) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value or 0))


# Apps above payments that sent invoices to AIQ themselves and know their lines (sales: a
# batch invoice, which AIQ's GetInvoice cannot return: it has no invoice id). Each
# lines_of(invoice) -> its lines, unsaved, or [] when the invoice is not one of its own;
# registered from the app's AppConfig.ready().
INVOICE_LINE_SOURCES: list[Callable[[Invoice], list[InvoiceLine]]] = []


def invoice_line_source_register(lines_of: Callable[[Invoice], list[InvoiceLine]]) -> None:
    if lines_of not in INVOICE_LINE_SOURCES:
        INVOICE_LINE_SOURCES.append(lines_of)


def invoice_lines_fetch(invoice: Invoice) -> list[InvoiceLine]:
    """The pull sync mirrors invoice totals, not lines; the lines a credit note copies are read
    from AIQ (GetInvoice) the first time they are needed and kept in the mirror. An invoice
    this product sent to AIQ (INVOICE_LINE_SOURCES) has its lines as they were sent."""
    for lines_of in INVOICE_LINE_SOURCES:
        rows = lines_of(invoice)
        if rows:
            InvoiceLine.objects.bulk_create(rows)
            return rows
    if invoice.aiq_invoice_id is None:
        return []
    try:
        record = AiqClient.for_entity(invoice.entity).get_invoice(invoice.aiq_invoice_id) or {}
    except AiqError as error:
        raise CreditNoteRefused(
            f"Could not read invoice {invoice}'s lines from AIQ: {error}"
        ) from None
    raw = record.get("Lines") or []
    raw = raw.get("InvoiceLine") or [] if isinstance(raw, dict) else raw
    rows = []
    for number, item in enumerate(raw, start=1):
        net, tax = _d(item.get("NetAmount")), _d(item.get("TaxAmount"))
        row = InvoiceLine(
            invoice=invoice,
            line_number=number,
            aiq_invoice_item_id=item.get("InvoiceItemID"),
            stock_item_id=item.get("StockItemID") or "",
            description=(item.get("StockItemDescription") or item.get("Notes") or "")[:500],
            gl_account_code=item.get("GLAccountCode") or "",
            department_id=item.get("DepartmentID") or "",
            tax_code=item.get("TaxCode") or "",
            tax_rate=_d(item.get("TaxRate")),
            quantity=_d(item.get("InvoicedQuantity") or 1),
            # MoneyField keeps thousandths; a unit price is shown, never summed
            unit_price=_d(item.get("ActualPrice") or item.get("StockItemPrice")).quantize(MILLI),
            net_amount=net,
            tax_amount=tax,
            gross_amount=net + tax,
        )
        rows.append(row)
    if sum((r.gross_amount for r in rows), ZERO) != invoice.gross_amount:
        raise CreditNoteRefused(
            f"Invoice {invoice}'s lines in AIQ do not add up to its total; sync it first."
        )
    InvoiceLine.objects.bulk_create(rows)
    return rows


def credit_lines_for(
    *,
    invoice: Invoice,
    line_ids: list[int] | None = None,
    amount: Decimal | None = None,
    picks: list[LinePick] | None = None,
) -> list[DraftLine]:
    """The credit note lines for the whole invoice (nothing given), chosen whole lines, line
    picks (a quantity or an amount per line), or an amount spread over all lines."""
    lines = list(invoice.lines.order_by("line_number")) or invoice_lines_fetch(invoice)
    if not lines:
        raise CreditNoteRefused(f"Invoice {invoice} has no lines to copy (not in AIQ?).")
    if picks:
        drafts = _picked(lines, picks, invoice)
    elif line_ids:
        chosen = [line for line in lines if line.pk in set(line_ids)]
        if len(chosen) != len(set(line_ids)):
            raise CreditNoteRefused(f"Some chosen lines are not lines of invoice {invoice}.")
        drafts = [_whole(line) for line in chosen]
    elif amount is None or amount == invoice.gross_amount:
        drafts = [_whole(line) for line in lines]
    else:
        try:
            amount = exact(amount, invoice.currency)
        except MoneyError as error:
            raise CreditNoteRefused(str(error)) from None
        if amount <= 0:
            raise CreditNoteRefused("The amount to credit must be greater than zero.")
        weights = [line.gross_amount for line in lines]
        if sum(weights, ZERO) <= 0:
            raise CreditNoteRefused(f"Invoice {invoice} has no amounts on its lines to credit.")
        parts = split(amount, invoice.currency, weights)
        drafts = [
            _part(line, part, invoice.currency)
            for line, part in zip(lines, parts, strict=True)
            if part > 0
        ]
    if any(d.net_amount <= 0 for d in drafts):
        raise CreditNoteRefused(
            "The amount is too small to spread over the invoice's lines; choose lines instead."
        )
    retired = department_problems(invoice.entity, {d.department_id for d in drafts})
    if retired:
        raise CreditNoteRefused(" ".join(retired.values()))
    return drafts


def credit_note_draft(
    *, invoice: Invoice, reference: str, lines: list[DraftLine], reason: str
) -> CreditNote:
    """Write the draft mirror row and its lines. Call inside the caller's transaction."""
    net = sum((d.net_amount for d in lines), ZERO)
    tax = sum((d.tax_amount for d in lines), ZERO)
    note = CreditNote(
        entity_id=invoice.entity_id,
        customer_id=invoice.customer_id,
        invoice=invoice,
        external_reference=reference,
        status=DocumentStatus.DRAFT,
        currency=invoice.currency,
        credit_date=timezone.localdate(),
        net_amount=net,
        tax_amount=tax,
        gross_amount=net + tax,
        outstanding_amount=ZERO,  # nothing to allocate until AIQ has posted it
        reason=reason[:2000],
    )
    note.full_clean()
    note.save()
    for number, draft in enumerate(lines, start=1):
        row = CreditNoteLine(
            credit_note=note,
            line_number=number,
            invoice_line=draft.source if draft.source and draft.source.pk else None,
            stock_item_id=draft.source.stock_item_id if draft.source else "",
            description=draft.description[:500],
            gl_account_code=draft.gl_account_code,
            department_id=draft.department_id,
            tax_code=draft.tax_code,
            tax_rate=draft.tax_rate,
            quantity=draft.quantity,
            unit_price=draft.unit_price,
            net_amount=draft.net_amount,
            tax_amount=draft.tax_amount,
            gross_amount=draft.gross_amount,
        )
        row.full_clean()
        row.save()
    return note


def credit_note_payload(note: CreditNote) -> dict:
    """The create_credit_note outbox payload (see ledger/outbox/executors_refunds.py)."""
    invoice = note.invoice
    return {
        "credit_note_id": note.pk,
        "customer_code": note.customer.code,
        "currency": note.currency,
        "credit_date": note.credit_date.isoformat(),
        "invoice_number": invoice.invoice_number if invoice else "",
        "notes": note.reason[:250],
        "gross_amount": str(note.gross_amount),
        "lines": [
            {
                "stock_item_id": line.stock_item_id,
                "description": line.description,
                "gl_account_code": line.gl_account_code,
                "department_id": line.department_id,
                "tax_code": line.tax_code,
                "tax_rate": str(line.tax_rate),
                "quantity": str(line.quantity),
                "unit_price": str(line.unit_price),
                "net_amount": str(line.net_amount),
                "tax_amount": str(line.tax_amount),
            }
            for line in note.lines.order_by("line_number")
        ],
    }
