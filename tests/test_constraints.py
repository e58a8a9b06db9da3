"""Each named database constraint refuses the state it exists to prevent."""

from contextlib import contextmanager
from datetime import date
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from ledger.models import Allocation, BankAccount, Customer, Invoice, JournalLine, Receipt
from payments.models import AllocationPlan, Payment, Refund
from staff.models import AuditEntry

pytestmark = pytest.mark.django_db


@contextmanager
def violates(name):
    """Assert the block raises IntegrityError from that named constraint.

    PostgreSQL names every constraint in its message; SQLite names CHECK constraints only
    (a UNIQUE failure lists the columns instead).
    """
    with pytest.raises(IntegrityError) as caught:
        yield
    message = str(caught.value)
    if connection.vendor == "postgresql" or "CHECK" in message:
        assert name in message, message


@pytest.fixture
def customer(entity):
    return Customer.objects.create(entity=entity, code="ACME", name="Acme", currency="GBP")


def make_invoice(entity, customer, **overrides):
    fields = dict(
        entity=entity,
        customer=customer,
        invoice_number="INV-1",
        currency="GBP",
        invoice_date=date(2026, 1, 1),
        net_amount=Decimal("100.00"),
        tax_amount=Decimal("20.00"),
        gross_amount=Decimal("120.00"),
        outstanding_amount=Decimal("120.00"),
    )
    fields.update(overrides)
    return Invoice.objects.create(**fields)


def test_customer_code_must_be_upper_case(entity):
    with violates("customer_code_upper"), transaction.atomic():
        Customer.objects.create(entity=entity, code="acme", name="Acme", currency="GBP")


def test_customer_code_unique_per_entity(entity, customer):
    with violates("customer_code_unique"), transaction.atomic():
        Customer.objects.create(entity=entity, code="ACME", name="Other", currency="GBP")


def test_outstanding_never_above_gross(entity, customer):
    with violates("invoice_outstanding_within_gross"), transaction.atomic():
        make_invoice(entity, customer, outstanding_amount=Decimal("120.01"))


def test_outstanding_never_negative(entity, customer):
    with violates("invoice_outstanding_within_gross"), transaction.atomic():
        make_invoice(entity, customer, outstanding_amount=Decimal("-0.01"))


def test_gross_is_net_plus_tax(entity, customer):
    with violates("invoice_gross_is_net_plus_tax"), transaction.atomic():
        make_invoice(
            entity, customer, gross_amount=Decimal("120.01"), outstanding_amount=Decimal("1")
        )


def test_aiq_transaction_id_unique_per_entity(entity, customer):
    make_invoice(entity, customer, aiq_transaction_id=7)
    with violates("invoice_aiq_transaction_id_unique"), transaction.atomic():
        make_invoice(entity, customer, invoice_number="INV-2", aiq_transaction_id=7)


def test_external_reference_unique_when_given(entity, customer):
    make_invoice(entity, customer, external_reference="X-1")
    make_invoice(entity, customer, invoice_number="INV-2")  # blank references are fine
    make_invoice(entity, customer, invoice_number="INV-3")
    with violates("invoice_external_reference_unique"), transaction.atomic():
        make_invoice(entity, customer, invoice_number="INV-4", external_reference="X-1")


def test_receipt_unallocated_within_amount(entity, customer):
    bank = BankAccount.objects.create(
        entity=entity, bank_code="1200", bank_account_code="BANK1", name="Bank", currency="GBP"
    )
    with violates("receipt_unallocated_within_amount"), transaction.atomic():
        Receipt.objects.create(
            entity=entity,
            customer=customer,
            bank_account=bank,
            check_reference="R1",
            currency="GBP",
            payment_date=date(2026, 1, 1),
            amount=Decimal("10"),
            unallocated_amount=Decimal("10.01"),
        )


def test_allocation_amount_positive(entity):
    with violates("allocation_amount_gt_0"), transaction.atomic():
        Allocation.objects.create(
            entity=entity,
            transaction_id_1=1,
            transaction_id_2=2,
            amount=Decimal("0"),
            currency="GBP",
            allocation_date=date(2026, 1, 1),
            reference="A1",
        )


def test_journal_line_is_debit_or_credit():
    with violates("journalline_debit_or_credit"), transaction.atomic():
        JournalLine.objects.create(
            journal_id=1,
            line_number=1,
            gl_account_code="1200",
            debit=Decimal("1"),
            credit=Decimal("1"),
        )


def make_payment(entity, external_id="pi_1"):
    return Payment.objects.create(
        entity=entity,
        source="stripe",
        external_id=external_id,
        amount=Decimal("100.00"),
        currency="GBP",
        received_at=timezone.now(),
    )


def test_payment_unique_per_source(entity):
    make_payment(entity)
    with violates("payment_external_unique"), transaction.atomic():
        make_payment(entity)


def test_payment_refund_within_amount(entity):
    payment = make_payment(entity)
    payment.amount_refunded = Decimal("100.01")
    with violates("payment_refunded_within_amount"), transaction.atomic():
        payment.save()


def test_nobody_approves_their_own_plan_not_even_a_superuser(entity, customer, carol):
    plan = AllocationPlan.objects.create(
        payment=make_payment(entity), customer=customer, maker=carol
    )
    plan.approver = carol
    with violates("plan_approver_is_not_maker"), transaction.atomic():
        plan.save()


def test_refund_approver_is_not_maker(entity, customer, bob):
    with violates("refund_approver_is_not_maker"), transaction.atomic():
        Refund.objects.create(
            kind="refund_on_account",
            customer=customer,
            amount=Decimal("1"),
            currency="GBP",
            reason="r",
            maker=bob,
            approver=bob,
        )


def test_audit_entries_are_append_only(alice):
    from staff.services import audit_log

    with transaction.atomic():
        entry = audit_log(actor=alice, action="test.thing", object_type="x", object_id=1)
    with pytest.raises(Exception, match="append-only"), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).update(summary="rewritten")
    with pytest.raises(Exception, match="append-only"), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).delete()
    assert AuditEntry.objects.get(pk=entry.pk).summary == ""
