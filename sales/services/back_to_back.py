"""Back-to-back invoicing: one source line (e.g. a week of agency labour) becomes a purchase
invoice from the supplier and a sales invoice to the customer with the rule's mark-up, linked,
both carrying the line's BI code (department), each exactly once.

    back_to_back_submit(rule=BackToBackRule, line=BackToBackLine, actor=...)

Order in the outbox: the purchase half first (purchase_invoice); the sales half, through the
ordinary sales invoicing path (credit check, new-customer approval, batch or item invoice),
waits for it (depends_on). AIQ refusing the purchase parks the sale (needs a person, code
DEPENDENCY) instead of posting half a pair; the pairs screen lists each half's state, and a
retried purchase releases the sale by itself. Idempotent on (company, line reference).
"""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.core.exceptions import ValidationError

from core.money import MoneyError, exact, quantize
from ledger.departments import department_problems
from ledger.models import TaxCode
from ledger.suppliers import supplier_problems
from sales.models import BackToBackPair, BackToBackRule
from sales.normalised import NormalisedInvoice, NormalisedLine
from sales.services.invoices import sales_invoices_submit
from sales.services.pairs import pair_submit
from sales.services.purchases import PurchaseLine, purchase_invoice_create

HUNDRED = Decimal(100)


@dataclass(frozen=True)
class BackToBackLine:
    reference: str
    customer_code: str
    customer_name: str
    description: str
    cost_net: Decimal
    currency: str
    invoice_date: date
    department: str = ""


def sale_net_of(cost: Decimal, markup_percent: Decimal, currency: str) -> Decimal:
    return quantize(cost * (HUNDRED + markup_percent) / HUNDRED, currency)


def _vat(entity, code: str, net: Decimal, currency: str) -> Decimal:
    """The VAT of one line at the rate of the company's tax code as pulled from AIQ."""
    if not code:
        return Decimal(0)
    tax = TaxCode.objects.filter(entity=entity, code=code).first()
    if tax is None:
        raise ValidationError(f"Tax code {code} is not in the mirror: pull AIQ's tax codes first.")
    return quantize(net * tax.rate / HUNDRED, currency)


def _check(rule: BackToBackRule, line: BackToBackLine) -> list[str]:
    problems = []
    if not rule.active:
        problems.append(f"Rule {rule.code} is retired.")
    if not line.reference or len(line.reference) > 40:
        problems.append("The line's reference must have 1 to 40 characters.")
    try:
        exact(line.cost_net, line.currency)
    except MoneyError as error:
        problems.append(f"Cost: {error}")
    if line.cost_net <= 0:
        problems.append("The cost must be greater than zero.")
    if rule.source.entity_id != rule.entity_id:
        problems.append(f"Source {rule.source.code} belongs to another company.")
    problems += department_problems(rule.entity, [line.department]).values()
    if not problems:  # only then ask AIQ about the supplier, if the mirror does not know it
        problems += supplier_problems(rule.entity, rule.supplier_code, line.currency)
    return problems


def _same(pair: BackToBackPair, rule: BackToBackRule, line: BackToBackLine) -> bool:
    return (
        pair.rule_id == rule.pk
        and pair.customer_code == line.customer_code.upper()
        and pair.cost_net == line.cost_net
        and pair.currency == line.currency.upper()
        and pair.department == line.department
    )


def back_to_back_submit(*, rule: BackToBackRule, line: BackToBackLine, actor=None):
    """The pair of this source line: made (both halves queued) or, given again, the one made
    before. ValidationError when the line cannot be invoiced, or was changed after it was."""
    entity = rule.entity
    currency = line.currency.upper()

    def make() -> BackToBackPair:
        sale_net = sale_net_of(line.cost_net, rule.markup_percent, currency)
        common = {"description": line.description, "department": line.department}
        purchase = purchase_invoice_create(
            entity=entity,
            external_reference=f"{line.reference}-P",
            supplier_code=rule.supplier_code,
            invoice_date=line.invoice_date,
            currency=currency,
            description=line.description,
            lines=[
                PurchaseLine(
                    net_amount=line.cost_net,
                    tax_amount=_vat(entity, rule.purchase_tax_code, line.cost_net, currency),
                    tax_code=rule.purchase_tax_code,
                    gl_account_code=rule.purchase_gl_account_code,
                    **common,
                )
            ],
            actor=actor,
        )
        invoice = NormalisedInvoice(
            external_reference=f"{line.reference}-S",
            customer_code=line.customer_code.upper(),
            customer_name=line.customer_name,
            invoice_date=line.invoice_date,
            currency=currency,
            description=line.description,
            lines=[
                NormalisedLine(
                    net_amount=sale_net,
                    tax_amount=_vat(entity, rule.sales_tax_code, sale_net, currency),
                    tax_code=rule.sales_tax_code,
                    gl_account_code=rule.sales_gl_account_code,
                    **common,
                )
            ],
        )
        [sale] = sales_invoices_submit(
            entity=entity,
            source=rule.source,
            invoices=[invoice],
            actor=actor,
            after=purchase.command,
        )
        return BackToBackPair(
            entity=entity,
            rule=rule,
            reference=line.reference,
            customer_code=line.customer_code.upper(),
            description=line.description[:500],
            department=line.department,
            currency=currency,
            cost_net=line.cost_net,
            sale_net=sale_net,
            markup_percent=rule.markup_percent,
            purchase=purchase,
            sales_invoice=sale,
            created_by=actor,
        )

    return pair_submit(
        actor=actor,
        check=lambda: _check(rule, line),
        existing=BackToBackPair.objects.filter(entity=entity, reference=line.reference),
        same=lambda pair: _same(pair, rule, line),
        changed=f"Line {line.reference} was invoiced back to back already with other figures: "
        "raise a credit note and a debit note in AIQ, then send it with a new reference.",
        make=make,
        action="back_to_back.submit",
        summary=lambda pair: (
            f"{pair.reference}: buy {pair.cost_net} {currency} from "
            f"{rule.supplier_code}, sell {pair.sale_net} {currency} to {pair.customer_code} "
            f"(+{rule.markup_percent}%)"
        ),
    )
