"""Set-up for the refund scenarios: books in the AIQ sandbox, invoices made through AIQ's own
operations, Stripe payments in localstripe allocated by an approved plan, and an in-process
outbox drain. Set-up only; what the scenarios check is in tests/test_refunds_*.py."""

import itertools
from datetime import date
from decimal import Decimal

from django.utils import timezone

from ledger.aiq.client import AiqClient
from ledger.models import BankAccount, Customer, DocumentStatus, Invoice, OutboxCommand
from ledger.outbox.runner import drain

_numbers = itertools.count(1)
OPEN = [OutboxCommand.State.PENDING, OutboxCommand.State.UNCERTAIN, OutboxCommand.State.IN_FLIGHT]


def seed_roles_without_matching() -> None:
    """For transactional tests (their flush removes what data migrations seeded): the role
    groups again, and no enabled matching rule. These scenarios allocate through plans staff
    make; a payment matched and allocated on arrival (auto-match) would already have a plan."""
    import importlib

    from django.apps import apps

    from payments.models import MatchRule

    roles = importlib.import_module("staff.migrations.0002_roles_and_append_only_audit")
    roles.create_roles(apps, None)
    MatchRule.objects.update(enabled=False)


def setup_books(entity) -> None:
    """Customers, banks, GL and tax codes from the sandbox; the GBP bank receives."""
    from ledger.sync.pull import sync_banks, sync_customers, sync_gl_accounts, sync_tax_codes

    client = AiqClient.for_entity(entity)
    for sync in (sync_banks, sync_gl_accounts, sync_tax_codes, sync_customers):
        sync(client, entity)
    entity.default_bank_account = BankAccount.objects.get(entity=entity, currency="GBP")
    entity.save(update_fields=["default_bank_account"])


def make_invoice(entity, code: str, lines: list[tuple[str, str, str, str]]) -> Invoice:
    """Post an invoice in AIQ (GetNewSalesInvoice -> Save -> Post) and mirror its totals as
    the pull sync would (no lines: the refund service reads those from AIQ itself).
    lines: (description, GL account, net amount, tax code)."""
    client = AiqClient.for_entity(entity)
    record = client.get_new_sales_invoice(code)
    record.update(
        ExternalReference=f"T-INV-{next(_numbers)}",
        Lines={
            "InvoiceLine": [
                {
                    "StockItemDescription": text,
                    "GLAccountCode": gl,
                    "InvoicedQuantity": Decimal(1),
                    "NetAmount": Decimal(net),
                    "TaxCode": tax,
                }
                for text, gl, net, tax in lines
            ]
        },
    )
    invoice_id = client.save_invoice_get_back_invoice_id(record)
    transaction_id = client.post_invoice(invoice_id)
    posted = client.get_invoice(invoice_id)
    gross = Decimal(posted["GrossAmount"])
    return Invoice.objects.create(
        entity=entity,
        customer=Customer.objects.get(entity=entity, code=code),
        invoice_number=posted["InvoiceNumber"],
        external_reference=record["ExternalReference"],
        aiq_invoice_id=invoice_id,
        aiq_transaction_id=transaction_id,
        currency=posted["CurrencyCode"],
        invoice_date=date.today(),
        net_amount=Decimal(posted["NetAmount"]),
        tax_amount=Decimal(posted["TaxAmount"]),
        gross_amount=gross,
        outstanding_amount=gross,
        status=DocumentStatus.POSTED,
    )


def drain_all(rounds: int = 50) -> None:
    """Run the outbox until nothing is due (the worker's loop, synchronously)."""
    for _ in range(rounds):
        if not OutboxCommand.objects.filter(state__in=OPEN).exists():
            return
        drain(budget_seconds=30, batch_size=20)
        OutboxCommand.objects.filter(state__in=OPEN[:2]).update(next_attempt_at=timezone.now())


def account_balance(sandbox, code: str, entity: str = "demo") -> Decimal:
    """What the customer owes in AIQ's books: the sum of every transaction's open amount."""
    with sandbox.server.store.transaction() as db:
        row = db.execute(
            "SELECT coalesce(sum(t.outstanding_milli), 0) AS milli FROM txn t "
            "JOIN account a ON a.id = t.account_id WHERE a.entity_id = ? AND a.code = ?",
            (entity, code),
        ).fetchone()
    return Decimal(row["milli"]).scaleb(-3)


def aiq_types(sandbox, reference: str) -> list[str]:
    return [t["type"] for t in sandbox.state.transactions(reference)]


def stripe_payment(entity, customer: Customer, amount_minor: int, invoice: Invoice | None = None):
    """A real PaymentIntent in localstripe, fetched into a Payment as the webhook would."""
    from payments.services.stripe_events import stripe_payment_sync
    from payments.sources.stripe_demo import demo_payment_create

    metadata = {"aiq_customer_code": customer.code}
    if invoice is not None:
        metadata["invoice"] = invoice.invoice_number
    intent = demo_payment_create(amount_minor=amount_minor, metadata=metadata)
    payment = stripe_payment_sync(payment_intent_id=intent["id"])
    if payment.customer_id is None:
        payment.customer = customer
        payment.save(update_fields=["customer"])
    return payment


def allocate(payment, lines: list[tuple[Invoice, str]], maker, checker) -> None:
    """An allocation plan as staff make it: proposed, submitted, approved, pushed to AIQ."""
    from payments.models import AllocationPlan
    from payments.services.plans import plan_approve, plan_propose, plan_submit

    plan = plan_propose(
        payment=payment,
        lines=[{"invoice_id": inv.pk, "amount": amount} for inv, amount in lines],
        actor=maker,
        customer=payment.customer,
    )
    plan = plan_submit(plan=plan, actor=maker)
    if plan.state == AllocationPlan.State.AWAITING_APPROVAL:
        plan_approve(plan=plan, actor=checker)
    drain_all()
    payment.refresh_from_db()


def two_part_refunded_card_payments(entity, maker, checker) -> tuple[list, list]:
    """Two card payments through localstripe (ACME 120.00, BRIGHT 80.00), each allocated to
    its own invoice and then partly refunded through the product (30.00 and 20.00: credit
    note, debit journal out of the receipt's bank, Stripe refund). (payments, refunds), not
    yet drained."""
    from core.stripe_money import stripe_from_minor
    from payments.services.refunds import refund_approve, refund_request

    payments, refunds = [], []
    for code, minor, back in (("ACME", 12000, "30.00"), ("BRIGHT", 8000, "20.00")):
        customer = Customer.objects.get(entity=entity, code=code)
        amount = stripe_from_minor(minor, "GBP")
        invoice = make_invoice(entity, code, [("Subscription", "4000", str(amount), "T0")])
        payment = stripe_payment(entity, customer, minor, invoice)
        allocate(payment, [(invoice, str(amount))], maker, checker)
        refund = refund_request(actor=maker, kind="refund_invoice", invoice=invoice, amount=back,
                                reason="Part refunded")  # fmt: skip
        refund_approve(refund=refund, actor=checker)
        payments.append(payment)
        refunds.append(refund)
    return payments, refunds
