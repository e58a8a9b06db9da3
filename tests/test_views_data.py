"""Data for the screen tests: a customer with invoices, payments in several states, a plan
made by alice (the clerk) awaiting approval, an outbox command that failed. Imported by the
test_views_* and test_browser_* modules; it holds no tests itself."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone


def make_invoice(entity, customer, number, gross, *, outstanding=None, days_ago=10, txn=None):
    from ledger.models import Invoice

    gross = Decimal(gross)
    return Invoice.objects.create(
        entity=entity,
        customer=customer,
        invoice_number=number,
        currency=customer.currency,
        invoice_date=date.today() - timedelta(days=days_ago),
        due_date=date.today() + timedelta(days=20),
        net_amount=gross,
        tax_amount=0,
        gross_amount=gross,
        outstanding_amount=gross if outstanding is None else Decimal(outstanding),
        aiq_transaction_id=txn,
    )


def make_payment(
    entity,
    external_id,
    amount,
    *,
    currency="GBP",
    state="unmatched",
    customer=None,
    hours_ago=1,
    **extra,
):
    from payments.models import Payment

    return Payment.objects.create(
        entity=entity,
        source=extra.pop("source", "stripe"),
        external_id=external_id,
        amount=Decimal(amount),
        currency=currency,
        received_at=timezone.now() - timedelta(hours=hours_ago),
        payer_name=extra.pop("payer_name", "Acme Buyer"),
        payer_email=extra.pop("payer_email", "ap@acme.example"),
        match_state=state,
        customer=customer,
        raw={"id": external_id, "object": "payment_intent"},
        **extra,
    )


@pytest.fixture
def screen_data(entity, alice):
    from ledger.models import Allocation, BankAccount, Customer, Document, OutboxCommand, Receipt
    from payments.models import AllocationPlan, AllocationPlanLine, MatchProposal

    bank = BankAccount.objects.create(
        entity=entity, bank_code="1200", bank_account_code="BANK1", name="Current", currency="GBP"
    )
    entity.default_bank_account = bank
    entity.save(update_fields=["default_bank_account"])
    customer = Customer.objects.create(
        entity=entity, code="ACME", name="Acme Ltd", currency="GBP", credit_limit=Decimal("5000")
    )
    inv1 = make_invoice(entity, customer, "INV-1001", "600.00", txn=5001)
    inv2 = make_invoice(entity, customer, "INV-1002", "400.00", txn=5002)
    inv3 = make_invoice(entity, customer, "INV-1003", "250.00", txn=5003, days_ago=40)
    # INV-1001's PDF is in the cache, so its download needs no AIQ
    Document.objects.create(
        entity=entity, kind="invoice_pdf", aiq_transaction_id=5001,
        filename="INV-1001.pdf", content=b"%PDF-1.4 INV-1001",
    )  # fmt: skip
    receipt = Receipt.objects.create(
        entity=entity, customer=customer, bank_account=bank, check_reference="RCPT-OLD",
        aiq_transaction_id=6001, currency="GBP", payment_date=date.today(),
        amount=Decimal("50"), unallocated_amount=0,
    )  # fmt: skip
    allocation = Allocation.objects.create(
        entity=entity, transaction_id_1=6001, transaction_id_2=5003, receipt=receipt,
        invoice=inv3, amount=Decimal("50"), currency="GBP", allocation_date=date.today(),
        reference="ALLOC-OLD",
    )  # fmt: skip
    unmatched = make_payment(entity, "pi_unmatched", "1000.00", customer=customer)
    proposed = make_payment(
        entity, "pi_proposed", "250.00", state="proposed", customer=customer, hours_ago=2
    )
    MatchProposal.objects.create(
        payment=proposed,
        rule_kind="reference",
        confidence=Decimal("0.950"),
        explanation="INV-1003 found in metadata.invoice",
        evidence={"items": ["INV-1003 found in metadata.invoice"]},
        lines=[{"invoice_id": inv3.pk, "amount": "250.00"}],
    )
    awaiting = make_payment(
        entity, "pi_awaiting", "400.00", state="awaiting_approval", customer=customer, hours_ago=3
    )
    plan = AllocationPlan.objects.create(
        payment=awaiting, customer=customer, maker=alice, state="awaiting_approval"
    )
    AllocationPlanLine.objects.create(plan=plan, invoice=inv2, amount=Decimal("400.00"))
    yen = make_payment(entity, "pi_yen", "125000", currency="JPY", hours_ago=4)
    command = OutboxCommand.objects.create(
        entity=entity,
        kind="post_receipt",
        payload={"amount": "400.00"},
        external_reference="R-TEST-1",
        state="needs_person",
        attempts=8,
        last_error_code="E042",
        last_error_message="Customer ACME is on hold",
    )
    return {
        "customer": customer,
        "invoices": [inv1, inv2, inv3],
        "unmatched": unmatched,
        "proposed": proposed,
        "awaiting": awaiting,
        "plan": plan,
        "yen": yen,
        "command": command,
        "allocation": allocation,
    }
