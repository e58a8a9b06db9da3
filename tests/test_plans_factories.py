"""Factories shared by the matching and plan tests (imported by test_matching_* / test_plans_*).

Kept in a test module of this area so the shared conftest stays small; the one test here checks
the factories build consistent rows.
"""

import itertools
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from ledger.models import BankAccount, Customer, GLAccount, Invoice
from payments.models import Payment

_seq = itertools.count(1)


def D(text) -> Decimal:  # noqa: N802 - reads like the amounts in the scenarios
    return Decimal(str(text))


def setup_books(entity):
    bank = BankAccount.objects.create(
        entity=entity, bank_code="1200", bank_account_code="BANK1", name="Main", currency="GBP"
    )
    entity.default_bank_account = bank
    entity.save(update_fields=["default_bank_account"])
    GLAccount.objects.create(entity=entity, code="7900", name="Bad debts written off")
    return bank


def make_customer(entity, code="ACME", email="", currency="GBP") -> Customer:
    return Customer.objects.create(
        entity=entity, code=code, name=code.title(), email=email, currency=currency
    )


def make_invoice(customer, amount, *, number=None, external="", day=None, currency=None):
    n = next(_seq)
    amount = D(amount)
    return Invoice.objects.create(
        entity=customer.entity,
        customer=customer,
        invoice_number=number if number is not None else f"INV-{1000 + n}",
        external_reference=external,
        aiq_invoice_id=n,
        aiq_transaction_id=50000 + n,
        currency=currency or customer.currency,
        # later made, later dated (matching takes the oldest first): a date that cycled with
        # the counter made an invoice created second look older whenever the cycle wrapped
        invoice_date=day or date(2000, 1, 1) + timedelta(days=n),
        net_amount=amount,
        tax_amount=D(0),
        gross_amount=amount,
        outstanding_amount=amount,
    )


def make_payment(entity, amount, *, currency="GBP", customer=None, email="", refs=(), text=""):
    n = next(_seq)
    return Payment.objects.create(
        entity=entity,
        source="stripe",
        external_id=f"pi_{n}",
        amount=D(amount),
        currency=currency,
        received_at=timezone.make_aware(datetime(2026, 2, 1, 12, 0))
        + timezone.timedelta(seconds=n),
        customer=customer,
        payer_email=email,
        description=text,
        references=[{"source": "metadata.invoice", "value": r} for r in refs],
    )


@pytest.mark.django_db
def test_factories_build_an_open_invoice_and_a_payment(entity):
    customer = make_customer(entity)
    invoice = make_invoice(customer, "120.00")
    payment = make_payment(entity, "120.00", refs=[invoice.invoice_number])
    assert invoice.outstanding_amount == payment.amount == D("120.00")
    assert payment.match_state == Payment.MatchState.UNMATCHED
