"""Other receipts (Sage other_payments, AIQ SaveSundryReceiptPaymentsGetBackTransactionIDs) and
unidentified money (issue 16.4): worked scenarios against the AIQ sandbox's books."""

from decimal import Decimal

import pytest

from ledger.models import BankAccount, OutboxCommand
from payments.models import OtherReceipt, Payment
from payments.services.later import LaterRefused
from payments.services.other_receipts import (
    other_receipt_approve,
    other_receipt_create,
    payment_back_to_inbox,
    payment_mark_not_for_aiq,
    payment_put_on_account,
    payment_to_suspense,
)
from payments.services.plans import plan_approve
from staff.models import AuditEntry
from tests.refunds_support import drain_all, seed_roles_without_matching, setup_books

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _seeded(transactional_db):
    seed_roles_without_matching()


@pytest.fixture
def books(aiq_sandbox, entity, audit_flushable):
    setup_books(entity)
    return aiq_sandbox


def _unidentified(entity, amount: str, external_id: str = "BANK-1") -> Payment:
    return Payment.objects.create(
        entity=entity,
        source="bank",
        external_id=external_id,
        amount=Decimal(amount),
        currency="GBP",
        received_at="2026-12-01T10:00:00Z",
        payer_name="UNKNOWN REF 4471",
    )


def test_an_other_receipt_with_vat_reaches_the_gl_accounts(books, entity, alice, bob, settings):
    """Sage's OTHER_RECEIPT line: net 83.33 + VAT 16.67 = 100.00 to a ledger account."""
    settings.APPROVAL_THRESHOLD = Decimal("50.00")
    bank = BankAccount.objects.get(entity=entity, bank_account_code="BANK-GBP")
    before = {gl: books.state.gl_total(gl) for gl in ("4200", "2200", "1200")}
    row = other_receipt_create(
        actor=alice,
        bank_account=bank,
        description="Grant instalment",
        total_amount="100.00",
        lines=[
            {"gl_account_code": "4200", "tax_code": "T1", "net_amount": "83.33",
             "tax_amount": "16.67", "total_amount": "100.00"}
        ],
    )  # fmt: skip
    assert row.state == "awaiting_approval" and not OutboxCommand.objects.exists()
    other_receipt_approve(receipt=row, actor=bob)
    drain_all()

    row.refresh_from_db()
    assert row.state == "confirmed"
    (txn,) = books.state.transactions(f"OREC-{row.pk}-1")
    assert (txn["type"], txn["amount"]) == ("BankReceipt", Decimal("100.00"))
    moved = {gl: books.state.gl_total(gl) - before[gl] for gl in before}
    assert moved == {"4200": Decimal("-83.33"), "2200": Decimal("-16.67"), "1200": Decimal("100")}
    actions = set(AuditEntry.objects.filter(object_id=str(row.pk)).values_list("action", flat=True))
    assert {"other_receipt.create", "other_receipt.approve", "other_receipt.confirm"} <= actions


def test_tax_from_the_code_and_totals_that_do_not_add_up(books, entity, alice):
    bank = BankAccount.objects.get(entity=entity, bank_account_code="BANK-GBP")
    line = {"gl_account_code": "4200", "tax_code": "T1", "net_amount": "10.00"}
    row = other_receipt_create(actor=alice, bank_account=bank, description="x", lines=[line])
    assert (row.total_amount, row.lines.get().tax_amount) == (Decimal("12.00"), Decimal("2.00"))
    with pytest.raises(LaterRefused, match="not 13.00"):
        other_receipt_create(
            actor=alice, bank_account=bank, description="x",
            lines=[{**line, "total_amount": "13.00"}],
        )  # fmt: skip
    with pytest.raises(LaterRefused, match="not in AIQ"):
        other_receipt_create(
            actor=alice, bank_account=bank, description="x",
            lines=[{**line, "gl_account_code": "0000"}],
        )  # fmt: skip
    with pytest.raises(LaterRefused, match="more than 2 decimal|decimal"):
        other_receipt_create(
            actor=alice, bank_account=bank, description="x",
            lines=[{**line, "net_amount": "1.001"}],
        )  # fmt: skip


def test_unidentified_money_is_parked_on_suspense(books, entity, alice):
    payment = _unidentified(entity, "45.10")
    before = books.state.gl_total("9990")
    row = payment_to_suspense(payment=payment, actor=alice, reason="no reference at all")
    drain_all()
    row.refresh_from_db()
    payment.refresh_from_db()
    assert (row.state, row.purpose) == ("confirmed", "suspense")
    assert payment.match_state == "sent"
    assert books.state.gl_total("9990") - before == Decimal("-45.10")
    (txn,) = books.state.transactions(f"OREC-{row.pk}-1")
    assert txn["account_id"] is None  # on nobody's account
    with pytest.raises(LaterRefused, match="already being allocated or booked"):
        payment_to_suspense(payment=payment, actor=alice, reason="twice")


def test_unidentified_money_goes_on_a_chosen_customers_account(books, entity, alice, bob):
    from ledger.models import Customer

    payment = _unidentified(entity, "250.00", "BANK-2")
    customer = Customer.objects.get(entity=entity, code="CASTLE")
    plan = payment_put_on_account(payment=payment, customer=customer, actor=alice)
    if plan.state == "awaiting_approval":
        plan_approve(plan=plan, actor=bob)
    drain_all()
    payment.refresh_from_db()
    (txn,) = books.state.transactions(f"RCPT-{payment.pk}")
    assert (txn["type"], txn["outstanding"]) == ("SalesReceipt", Decimal("-250.00"))
    assert payment.receipt.customer == customer
    assert payment.receipt.unallocated_amount == Decimal("250.00")


def test_not_for_aiq_with_a_reason_and_back(books, entity, alice):
    payment = _unidentified(entity, "5000.00", "BANK-3")
    with pytest.raises(LaterRefused, match="Say why"):
        payment_mark_not_for_aiq(payment=payment, actor=alice, reason=" ")
    payment = payment_mark_not_for_aiq(
        payment=payment, actor=alice, reason="Transfer from our own savings account"
    )
    assert (payment.match_state, payment.not_for_aiq_reason) == (
        "ignored",
        "Transfer from our own savings account",
    )
    with pytest.raises(LaterRefused, match="Not for AIQ"):
        payment_to_suspense(payment=payment, actor=alice, reason="x")
    payment = payment_back_to_inbox(payment=payment, actor=alice)
    assert payment.match_state == "unmatched"
    assert list(
        AuditEntry.objects.filter(object_id=str(payment.pk))
        .order_by("pk")
        .values_list("action", flat=True)
    ) == ["payment.not_for_aiq", "payment.back_to_inbox"]
    assert not OutboxCommand.objects.exists()
    assert OtherReceipt.objects.count() == 0
