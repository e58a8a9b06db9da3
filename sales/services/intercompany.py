"""Intercompany sales: the sales invoice in the seller's AIQ company and the matching purchase
invoice in the buyer's, linked, each exactly once (AIQ cannot create both in one call).

    intercompany_sale_submit(connection=InterCompanyConnection, source=InvoiceSource,
                             invoice=NormalisedInvoice, actor=...)

The connection is one AIQ lists as valid (GetInterCompanyConnectionList, pulled into the
mirror): the invoice's customer is its local account, the buyer's supplier its remote account.
The sales half goes through the ordinary sales invoicing path in the seller's company; the
purchase half (purchase_invoice, in the buyer's company) waits for it in the outbox
(depends_on). A sales half held before AIQ (credit check, approval) has no command yet: its
purchase half is queued when the sale is confirmed (`intercompany_after_sale`). The
intercompany screen lists every sale whose halves are not both in AIQ.
"""

from django.core.exceptions import ValidationError

from ledger.departments import department_check
from ledger.models import Entity, InterCompanyConnection, OutboxCommand
from ledger.suppliers import supplier_problems
from sales.models import InterCompanySale, InvoiceSource
from sales.normalised import NormalisedInvoice
from sales.services.invoices import content_hash, sales_invoices_submit
from sales.services.pairs import pair_submit
from sales.services.purchases import PurchaseLine, purchase_invoice_create, purchase_invoice_queue


def _buyer(connection: InterCompanyConnection) -> Entity:
    buyer = Entity.objects.filter(company_id=connection.remote_company_id).first()
    if buyer is None:
        raise ValidationError(
            f"{connection.remote_company_name or connection.remote_company_id} is not set up "
            "here as a company: add it (its AIQ company id and credentials) first."
        )
    return buyer


def _check(connection, source: InvoiceSource, invoice: NormalisedInvoice) -> list[str]:
    """What stops the sale (the seller's own checks run in sales_invoices_submit)."""
    problems = [f"{invoice.external_reference or '?'}: {e}" for e in invoice.check()]
    if not connection.valid:
        problems.append("AIQ no longer lists this intercompany connection as valid.")
    if source.entity_id != connection.entity_id:
        problems.append(f"Source {source.code} belongs to another company.")
    if invoice.customer_code.upper() != connection.local_account_code:
        problems.append(
            f"The invoice is to {invoice.customer_code}; this connection's customer is "
            f"{connection.local_account_code}."
        )
    currency = invoice.currency.upper()
    for side, account_currency in (
        ("customer", connection.local_currency),
        ("supplier", connection.remote_currency),
    ):
        if account_currency and account_currency != currency:
            problems.append(
                f"The {side} account is in {account_currency}; the invoice is in {currency}."
            )
    if len(invoice.external_reference) > 40:
        problems.append("The reference must have at most 40 characters.")
    return problems


def intercompany_sale_submit(
    *,
    connection: InterCompanyConnection,
    source: InvoiceSource,
    invoice: NormalisedInvoice,
    actor=None,
) -> InterCompanySale:
    """Both halves stored and queued (the purchase waiting for the sale); given again, the sale
    made before. ValidationError naming every problem, nothing stored."""
    seller = connection.entity
    buyer = None

    def check() -> list[str]:
        nonlocal buyer
        problems = _check(connection, source, invoice)
        if problems:
            return problems
        buyer = _buyer(connection)
        if buyer.pk == seller.pk:
            return ["An intercompany connection joins two different companies."]
        # the purchase lines keep the sale's BI codes: the buyer's AIQ must accept them too
        department_check(buyer, [line.department for line in invoice.lines])
        return supplier_problems(buyer, connection.remote_account_code, invoice.currency)

    def make() -> InterCompanySale:
        [sale] = sales_invoices_submit(
            entity=seller, source=source, invoices=[invoice], actor=actor
        )
        purchase = purchase_invoice_create(
            entity=buyer,
            external_reference=invoice.external_reference,
            supplier_code=connection.remote_account_code,
            invoice_date=invoice.invoice_date,
            currency=invoice.currency,
            description=invoice.description or f"From {seller.name}",
            lines=[
                PurchaseLine(
                    net_amount=line.net_amount,
                    tax_amount=line.tax_amount,
                    description=line.description,
                    department=line.department,
                )
                for line in invoice.lines
            ],
            actor=actor,
            depends_on=sale.command,
            queue=sale.command_id is not None,
        )
        return InterCompanySale(
            connection=connection,
            seller=seller,
            buyer=buyer,
            reference=invoice.external_reference,
            sales_invoice=sale,
            purchase=purchase,
            created_by=actor,
        )

    return pair_submit(
        actor=actor,
        check=check,
        existing=InterCompanySale.objects.filter(
            seller=seller, reference=invoice.external_reference
        ).select_related("sales_invoice"),
        same=lambda row: row.sales_invoice.content_hash == content_hash(invoice),
        changed=f"{invoice.external_reference} was sent intercompany already with other "
        "content: raise a credit note (and the buyer a debit note) in AIQ, then use a new "
        "reference.",
        make=make,
        action="intercompany_sale.submit",
        summary=lambda row: (
            f"{row.reference}: {seller.name} sells "
            f"{row.sales_invoice.gross_amount} {row.sales_invoice.currency} to {buyer.name} "
            f"({connection.local_account_code} / {connection.remote_account_code})"
        ),
    )


def intercompany_after_sale(command: OutboxCommand, payload: dict, notes: list[str]) -> None:
    """A sales command is confirmed: purchase halves of its intercompany sales that were not
    queued (the sale was held before AIQ) are queued now, after it. Idempotent."""
    waiting = InterCompanySale.objects.filter(
        sales_invoice__command=command, purchase__command__isnull=True
    ).select_related("purchase", "purchase__entity")
    for sale in waiting:
        purchase_invoice_queue(sale.purchase, depends_on=command)
