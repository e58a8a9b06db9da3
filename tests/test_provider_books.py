"""Stripe money booked as accountants book it (issue 17): receipts into the clearing account, one
fee journal and one transfer per payout, the payout's bank line recognised, a failed payout
reversed. Worked scenarios against the AIQ sandbox's books (bank balances per bank GL code)."""

import copy
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from core.stripe_money import stripe_to_minor
from ledger.aiq.client import AiqClient
from ledger.models import BankAccount, Customer, OutboxCommand
from payments.checks import provider_books_problems
from payments.models import Payment, Payout, ProviderAccount
from payments.services.payments import payments_upsert, payout_upsert
from payments.services.provider_books import payout_book
from payments.services.statements import statement_import, statement_preview
from payments.services.stripe_events import stripe_payout_reconcile
from payments.sources import stripe_source
from staff.models import AuditEntry
from tests.refunds_support import (
    allocate,
    drain_all,
    make_invoice,
    seed_roles_without_matching,
    setup_books,
    two_part_refunded_card_payments,
)

pytestmark = pytest.mark.django_db(transaction=True)
CHARGE = json.loads(
    (Path(__file__).parent / "stripe_fixtures" / "charge_with_fees.json").read_text()
)
ARRIVAL = date(2026, 12, 3)


@pytest.fixture(autouse=True)
def _seeded(transactional_db):
    seed_roles_without_matching()


@pytest.fixture
def books(aiq_sandbox, entity, audit_flushable):
    """The demo company with a Stripe GBP clearing account (STRIPE-GBP on GL 1150) beside the
    real GBP bank (BANK-GBP on GL 1200)."""
    from ledger.sync.pull import sync_banks

    setup_books(entity)  # BANK-GBP receives
    aiq_sandbox.add_bank("STRIPE-GBP", "1150", "GBP")
    sync_banks(AiqClient.for_entity(entity), entity)
    ProviderAccount.objects.create(
        entity=entity,
        source="stripe",
        currency="GBP",
        name="Stripe GBP",
        clearing_bank_account=BankAccount.objects.get(
            entity=entity, bank_account_code="STRIPE-GBP"
        ),
        payout_bank_account=BankAccount.objects.get(entity=entity, bank_account_code="BANK-GBP"),
        fees_gl_account_code="7510",
        fee_tax_gl_account_code="2200",
        statement_narrative="STRIPE PAYMENTS UK",
    )
    return aiq_sandbox


def _charge(n: int, customer: str, amount_minor: int, fee_minor: int, tax_minor: int) -> dict:
    """A GBP charge as Stripe lists it (balance transaction expanded), fee details with VAT."""
    charge = copy.deepcopy(CHARGE)
    charge.update(
        id=f"ch_day{n:03d}",
        payment_intent=f"pi_day{n:03d}",
        amount=amount_minor,
        amount_captured=amount_minor,
        currency="gbp",
        created=int(datetime(2026, 12, 1, 9, n, tzinfo=UTC).timestamp()),
        metadata={"aiq_customer_code": customer},
    )
    txn = charge["balance_transaction"]
    txn.update(
        id=f"txn_day{n:03d}",
        amount=amount_minor,
        currency="gbp",
        exchange_rate=None,
        fee=fee_minor + tax_minor,
        net=amount_minor - fee_minor - tax_minor,
        source=charge["id"],
        fee_details=[
            {"amount": fee_minor, "currency": "gbp", "description": "Stripe processing fees",
             "type": "stripe_fee"},
            {"amount": tax_minor, "currency": "gbp", "description": "VAT", "type": "tax"},
        ],
    )  # fmt: skip
    return charge


def _day_of_payments(entity, alice, bob, count: int):
    """`count` Stripe payments, each settling one invoice of its own, receipts pushed to AIQ."""
    charges, payments = [], []
    codes = list(Customer.objects.filter(entity=entity).values_list("code", flat=True)[:3])
    for n in range(count):
        amount = Decimal(100 + 7 * n)
        code = codes[n % len(codes)]
        invoice = make_invoice(entity, code, [("Subscription", "4000", str(amount), "T0")])
        minor = stripe_to_minor(amount, "GBP")
        fee = round(minor * 0.015) + 20
        charges.append(_charge(n, code, minor, fee, round(fee * 0.2)))
        payments_upsert(
            items=[stripe_source.normalise_charge(charges[-1])], origin="test.stripe", entity=entity
        )
        payment = Payment.objects.get(external_id=stripe_source.payment_key(charges[-1]))
        payment.customer = Customer.objects.get(entity=entity, code=code)
        payment.save(update_fields=["customer"])
        allocate(payment, [(invoice, str(amount))], alice, bob)
        payments.append(payment)
    return charges, payments


def _pay_out(charges, *, status="paid", payout_id="po_day1") -> Payout:
    """Stripe's payout and its balance transactions, as stripe_payout_sync reads them."""
    net = sum(c["balance_transaction"]["net"] for c in charges)
    payout = payout_upsert(
        source="stripe",
        payout=stripe_source.normalise_payout(
            {"id": payout_id, "amount": net, "currency": "gbp", "status": status,
             "arrival_date": int(datetime(2026, 12, 3, tzinfo=UTC).timestamp())}
        ),
    )  # fmt: skip
    pages = [[{**c["balance_transaction"], "source": c} for c in charges]]
    pages[0].append({"type": "payout", "net": -net, "source": payout_id})
    stripe_payout_reconcile(payout=payout, pages=pages)
    return payout_book(payout=payout)


def test_a_day_of_stripe_payments_and_its_payout_end_where_stripe_and_the_bank_say(
    books, entity, alice, bob, barclays
):
    real_bank_before = books.bank_balance("1200")
    charges, payments = _day_of_payments(entity, alice, bob, 20)
    gross = sum((p.amount for p in payments), Decimal(0))
    assert books.bank_balance("1150") == gross  # receipts landed in clearing
    assert books.bank_balance("1200") == real_bank_before  # not in the bank

    bank_before, fees_before, vat_before = (
        books.state.gl_total(c) for c in ("1200", "7510", "2200")
    )
    payout = _pay_out(charges)
    assert OutboxCommand.objects.filter(kind="post_general_journal").count() == 2
    drain_all()

    fees = sum((Decimal(c["balance_transaction"]["fee_details"][0]["amount"]) for c in charges), 0)
    tax = sum((Decimal(c["balance_transaction"]["fee_details"][1]["amount"]) for c in charges), 0)
    fees, tax = fees / 100, tax / 100
    payout.refresh_from_db()
    assert payout.amount == gross - fees - tax
    # clearing holds what Stripe still holds for us: nothing; the bank gained the payout
    assert books.bank_balance("1150") == Decimal(0)
    assert books.state.gl_total("1200") - bank_before == payout.amount
    assert books.state.gl_total("7510") - fees_before == fees
    assert books.state.gl_total("2200") - vat_before == tax
    (fee_txn,) = books.state.transactions(f"POFEE-{payout.pk}")
    (transfer,) = books.state.transactions(f"POUT-{payout.pk}")
    assert fee_txn["type"] == transfer["type"] == "GeneralJournal"
    assert {c.state for c in OutboxCommand.objects.filter(kind="post_general_journal")} == {
        "confirmed"
    }

    # booking again (a repeated payout.paid event) changes nothing
    payout_book(payout=payout)
    drain_all()
    assert books.bank_balance("1150") == Decimal(0)
    assert len(books.state.transactions(f"POUT-{payout.pk}")) == 1

    # the bank statement line of the payout is that payout, not a customer payment
    content = (
        "Date,Description,Paid in,Paid out,Name\n"
        f'03/12/2026,STRIPE PAYMENTS UK LTD PO_DAY1,"{payout.amount:,}",,STRIPE\n'
        f"03/12/2026,INV-9,{payout.amount},,Acme Ltd\n"
    ).encode()
    preview = statement_preview(
        user=alice, import_format=barclays, filename="s.csv", content=content
    )
    assert preview.ok
    statement_import(user=alice, batch=preview.batch, content=content)
    payout.refresh_from_db()
    line = payout.statement_payment
    assert line is not None and "STRIPE PAYMENTS UK" in line.description
    assert line.match_state == "ignored" and f"POUT-{payout.pk}" in line.not_for_aiq_reason
    assert line.settles_payout == payout
    from payments.services.provider_report import reconciliation

    report = reconciliation(ProviderAccount.objects.get(), date(2026, 12, 1), date(2026, 12, 31))
    assert ("bank line", date(2026, 12, 3), "po_day1", payout.amount) in [
        r[:4] for r in report.rows
    ]
    assert not [d for d in report.differences if "statement line" in d]
    other = Payment.objects.get(source="bank", description="INV-9")
    assert other.match_state == "unmatched"  # same amount, no provider narrative: a customer's
    assert AuditEntry.objects.filter(
        action="payout.statement_line", object_id=str(payout.pk)
    ).exists()


def test_a_payout_that_fails_after_it_was_booked_is_reversed(books, entity, alice, bob):
    real_bank_before = books.bank_balance("1200")
    charges, payments = _day_of_payments(entity, alice, bob, 2)
    payout = _pay_out(charges, payout_id="po_fail")
    drain_all()
    assert books.bank_balance("1200") - real_bank_before == payout.amount
    payout = _pay_out(charges, status="failed", payout_id="po_fail")
    drain_all()
    (reversal,) = books.state.transactions(f"POUTREV-{payout.pk}")
    assert reversal["type"] == "GeneralJournal"
    fees = sum((p.fee_amount for p in payments), Decimal(0))
    gross = sum((p.amount for p in payments), Decimal(0))
    # the money is back in clearing (what Stripe holds after the failed payout), fees stay paid
    assert books.bank_balance("1200") == real_bank_before
    assert books.bank_balance("1150") == gross - fees
    assert AuditEntry.objects.filter(action="payout.reverse", object_id=str(payout.pk)).exists()


def test_start_up_check_names_what_is_missing(books, entity):
    assert provider_books_problems() == []
    Payment.objects.create(
        entity=entity, source="gocardless", external_id="PM1", amount=Decimal("5"),
        currency="EUR", received_at="2026-12-01T10:00:00Z",
    )  # fmt: skip
    ProviderAccount.objects.update(fees_gl_account_code="7999")
    problems = provider_books_problems()
    assert any("gocardless EUR payments have no provider account" in p for p in problems)
    assert any("fees GL account 7999 is not in AIQ's GL list" in p for p in problems)


def test_the_clearing_check_and_the_reconciliation_screen_show_what_does_not_tie_up(
    books, localstripe, entity, alice, bob, client
):
    from payments.services.provider_report import clearing_check

    charges, payments = _day_of_payments(entity, alice, bob, 3)
    payout = _pay_out(charges[:2], payout_id="po_two")  # the third is not paid out yet
    drain_all()
    account = ProviderAccount.objects.get()
    row = clearing_check(account=account, actor=alice)
    # AIQ's clearing holds the third payment; Stripe (localstripe) says it holds nothing in GBP
    assert row.aiq_balance == payments[2].amount == books.bank_balance("1150")
    assert row.provider_balance == Decimal(0) and row.difference == payments[2].amount
    assert AuditEntry.objects.filter(action="clearing.check").count() == 1

    client.force_login(alice)
    page = client.get("/provider-books/", {"start": "2026-12-01", "end": "2026-12-31"})
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-testid="clearing-difference"' in html and "no bank statement line" in html
    assert f"POUT-{payout.pk}" in html and f"POFEE-{payout.pk}" in html
    assert client.post(f"/provider-books/{account.pk}/check").status_code == 302
    assert client.post("/provider-books/999999/check").status_code == 404

    export = client.get("/provider-books/export", {"start": "2026-12-01", "end": "2026-12-31"})
    lines = export.content.decode().splitlines()
    assert lines[0].startswith("Section,Date,Provider reference,Amount")
    (transfer,) = [line for line in lines if f"POUT-{payout.pk}" in line]
    (txn,) = books.state.transactions(f"POUT-{payout.pk}")
    assert f"-{payout.amount}" in transfer and str(txn["transaction_id"]) in transfer
    xlsx = client.get("/provider-books/export", {"format": "xlsx"})
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
    assert AuditEntry.objects.filter(action="provider_books.export").count() == 2


def _posted_rates(sandbox, reference: str) -> tuple[Decimal, Decimal]:
    from sandbox.store import loads

    with sandbox.server.store.transaction() as db:
        row = db.execute(
            "SELECT exchange_rate, extra FROM txn WHERE external_reference = ?", (reference,)
        ).fetchone()
    return Decimal(row["exchange_rate"]), Decimal(str(loads(row["extra"])["BankExchangeRate"]))


def test_a_eur_receipt_in_a_gbp_company_is_posted_at_the_providers_rate_never_1(
    books, entity, alice, bob
):
    """A EUR card payment settled by Stripe in GBP at 0.80 GBP per EUR: AIQ's rate (EUR per
    GBP) is 1.25, not 1 and not the company's 1.15 for the day; Stripe holds the money in GBP,
    so it lands in the GBP clearing account, whose bank rate is the base's 1. A EUR bank
    transfer without a provider rate gets the company's rate from AIQ."""
    from payments.services.plans import PlanRefused

    invoice = make_invoice(entity, "QUAYSD", [("Service", "4010", "200.00", "T0")])
    gbp_invoice = make_invoice(entity, "ACME", [("Service", "4010", "50.00", "T0")])
    charge = _charge(50, "QUAYSD", 20000, 0, 0)
    charge["currency"] = "eur"
    charge["balance_transaction"].update(
        currency="gbp", amount=16000, net=16000, exchange_rate=0.8, fee_details=[]
    )
    payments_upsert(items=[stripe_source.normalise_charge(charge)], origin="test", entity=entity)
    payment = Payment.objects.get(external_id=stripe_source.payment_key(charge))
    payment.customer = Customer.objects.get(entity=entity, code="QUAYSD")
    payment.save(update_fields=["customer"])
    assert payment.currency == "EUR" and payment.exchange_rate == "0.8"

    with pytest.raises(PlanRefused, match="is in GBP, the payment in EUR"):
        allocate(payment, [(gbp_invoice, "50.00")], alice, bob)
    allocate(payment, [(invoice, "200.00")], alice, bob)
    assert _posted_rates(books, f"RCPT-{payment.pk}") == (Decimal("1.25"), Decimal("1"))
    assert books.bank_balance("1150") == Decimal("160.00")  # EUR 200.00 as Stripe holds it

    transfer = Payment.objects.create(
        entity=entity, source="bank", external_id="row:eur-1", amount=Decimal("40.00"),
        currency="EUR", received_at="2026-12-01T10:00:00Z", payer_name="Tulip Trading",
        customer=Customer.objects.get(entity=entity, code="TULIP"),
    )  # fmt: skip
    second = make_invoice(entity, "TULIP", [("Service", "4010", "40.00", "T0")])
    allocate(transfer, [(second, "40.00")], alice, bob)
    assert _posted_rates(books, f"RCPT-{transfer.pk}") == (Decimal("1.15"), Decimal("1.15"))


def test_refunds_taken_from_a_payout_are_counted_once(books, localstripe, entity, alice, bob):
    """Two card payments (120.00, 80.00), each partly refunded through the product (30.00 and
    20.00: credit note + debit journal out of the payment's receipt bank, i.e. Stripe clearing,
    and a Stripe refund); Stripe's payout is the net of both charges and both refunds (150.00).
    Clearing ends at zero: each refund left it once, by its debit journal, not again by the
    payout's decomposition."""

    bank_before, clearing_before = books.bank_balance("1200"), books.bank_balance("1150")
    payments, refunds = two_part_refunded_card_payments(entity, alice, bob)
    drain_all()
    for refund in refunds:
        refund.refresh_from_db()
        assert refund.state == "completed"
    # receipts 200.00 in, refunds 50.00 out: both through clearing
    assert books.bank_balance("1150") - clearing_before == Decimal("150.00")

    pages = [
        [{"type": "charge", "net": int(p.amount * 100),
          "source": {"object": "charge", "id": f"ch_{n}", "payment_intent": p.external_id}}
         for n, p in enumerate(payments)]
        + [{"type": "refund", "net": -int(r.amount * 100),
            "source": {"object": "refund", "id": r.stripe_refund_id}} for r in refunds]
        + [{"type": "payout", "net": -15000, "source": "po_refunds"}]
    ]  # fmt: skip
    payout = payout_upsert(
        source="stripe",
        payout=stripe_source.normalise_payout(
            {"id": "po_refunds", "amount": 15000, "currency": "gbp", "status": "paid",
             "arrival_date": int(datetime(2026, 12, 3, tzinfo=UTC).timestamp())}
        ),
    )  # fmt: skip
    assert stripe_payout_reconcile(payout=payout, pages=pages) == 2
    payout_book(payout=payout)
    drain_all()
    assert AuditEntry.objects.get(action="payout.reconcile").after["balanced"] is True
    assert books.bank_balance("1150") == clearing_before  # the refunds were not taken twice
    assert books.bank_balance("1200") - bank_before == Decimal("150.00")
