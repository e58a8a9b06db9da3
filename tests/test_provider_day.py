"""The issue's worked scenarios, one day each, against the AIQ sandbox's books (issue 17,
Proof): a day of 20 Stripe payments with 2 refunds, 1 lost dispute (reversed once an approver
approves: the invoice reopens), fees and one payout; the same for GoCardless with a late
failure. At the end AIQ's clearing account holds what the provider still holds, the bank gained
exactly the payout, the fees account holds the fees, and the payout's bank statement line is
recognised as the payout, never proposed as a customer payment."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from core.stripe_money import stripe_from_minor
from ledger.models import OutboxCommand
from payments.models import Dispute, Payment, Payout
from payments.services.payments import payout_upsert
from payments.services.provider_books import payout_book
from payments.services.provider_disputes import dispute_book, dispute_loss_approve
from payments.services.statements import statement_import, statement_preview
from payments.services.stripe_events import stripe_payout_reconcile
from payments.sources import stripe_source
from staff.models import AuditEntry
from tests import test_provider_currency as currency
from tests import test_provider_disputes as disputes
from tests.refunds_support import (
    allocate,
    drain_all,
    make_invoice,
    seed_roles_without_matching,
    two_part_refunded_card_payments,
)
from tests.test_provider_payouts import _rate_in_aiq

pytestmark = pytest.mark.django_db(transaction=True)
# the fixtures of the Stripe books, dispute, Stripe webhook and GoCardless tests
books, dispute_books, gc_books = disputes.books, disputes.dispute_books, disputes.gc_books
deliver, gocardless = disputes.deliver, disputes.gocardless
eur_books = currency.eur_books  # the UK company with a EUR Stripe account


@pytest.fixture(autouse=True)
def _seeded(transactional_db):
    seed_roles_without_matching()  # staff roles; matching does not race the plans made here


CLEARING, GC_CLEARING, BANK, FEES, VAT, GC_FEES = "1150", "1160", "1200", "7510", "2200", "7500"


def _statement(alice, barclays, narrative: str, payout, payer: str):
    """The bank statement of the payout's day: the payout's line, and a customer's transfer
    of the same amount (no provider narrative)."""
    content = (
        "Date,Description,Paid in,Paid out,Name\n"
        f'04/12/2026,{narrative} {payout.external_id.upper()},"{payout.amount:,}",,{payer}\n'
        f"04/12/2026,INV-77,{payout.amount},,Acme Ltd\n"
    ).encode()
    preview = statement_preview(
        user=alice, import_format=barclays, filename="day.csv", content=content
    )
    assert preview.ok
    statement_import(user=alice, batch=preview.batch, content=content)


def _recognised(payout, narrative: str) -> None:
    payout.refresh_from_db()
    line = payout.statement_payment
    assert line is not None and narrative in line.description
    assert line.match_state == "ignored" and f"POUT-{payout.pk}" in line.not_for_aiq_reason
    assert not line.proposals.exists()  # never proposed as a customer's payment
    other = Payment.objects.get(source="bank", description="INV-77")
    assert other.match_state == "unmatched"  # same amount, no provider narrative: a customer's
    assert not Payout.objects.filter(statement_payment=other).exists()


def _once(sandbox, *references) -> None:
    for reference in references:
        assert len(sandbox.state.transactions(reference)) == 1, reference


def test_a_day_of_stripe_money_ends_where_stripe_and_the_bank_say(
    dispute_books, entity, alice, bob, deliver, monkeypatch, barclays
):

    aiq = dispute_books
    before = {gl: aiq.state.gl_total(gl) for gl in (CLEARING, BANK, FEES, VAT, disputes.LOSS_GL)}
    # 18 card payments with Stripe's fees (and VAT on them), each paying an invoice
    charges, payments = disputes._day_of_payments(entity, alice, bob, 18)
    # 2 more through localstripe, each partly refunded through the product (credit note, debit
    # journal out of clearing, Stripe refund)
    refunded, refunds = two_part_refunded_card_payments(entity, alice, bob)
    drain_all()
    assert len(payments) + len(refunded) == 20
    for refund in refunds:
        refund.refresh_from_db()
        assert refund.state == "completed"

    # the 107.00 payment is disputed and lost: Stripe takes it and a 20.00 dispute fee
    disputed = payments[1]
    disputed.refresh_from_db()
    invoice, code = disputes._invoice_of(disputed), disputed.customer.code
    owed_before = aiq.state.customer_balance(code)
    withdrawal = disputes._balance_txn(1, -10700, 2000, "dispute")
    disputes._stripe_dispute(monkeypatch, disputed, "lost", [withdrawal])
    event = {"id": f"dp_{disputed.external_id}", "object": "dispute"}
    assert deliver("charge.dispute.funds_withdrawn", event) == 200
    assert deliver("charge.dispute.closed", event) == 200
    dispute = Dispute.objects.get()
    assert dispute.loss_awaits_approval
    dispute_loss_approve(dispute=dispute, actor=bob)
    drain_all()

    # Stripe's payout: every charge's net, less both refunds, less the dispute and its fee
    pages = [
        [{**c["balance_transaction"], "source": c} for c in charges]
        + [{"type": "charge", "net": int(p.amount * 100),
            "source": {"object": "charge", "id": f"ch_ls{n}", "payment_intent": p.external_id}}
           for n, p in enumerate(refunded)]
        + [{"type": "refund", "net": -int(r.amount * 100),
            "source": {"object": "refund", "id": r.stripe_refund_id}} for r in refunds]
        + [{**withdrawal, "source": {"object": "dispute", "id": dispute.external_id}}]
    ]  # fmt: skip
    net_minor = sum(txn["net"] for txn in pages[0])
    pages[0].append({"type": "payout", "net": -net_minor, "source": "po_day"})
    payout = payout_upsert(
        source="stripe",
        payout=stripe_source.normalise_payout(
            {"id": "po_day", "amount": net_minor, "currency": "gbp", "status": "paid",
             "arrival_date": int(datetime(2026, 12, 4, tzinfo=UTC).timestamp())}
        ),
    )  # fmt: skip
    stripe_payout_reconcile(payout=payout, pages=pages)
    payout_book(payout=payout)
    payout_book(payout=payout)  # a repeated payout.paid books nothing twice
    drain_all()
    payout.refresh_from_db()

    fees = sum(Decimal(c["balance_transaction"]["fee_details"][0]["amount"]) for c in charges)
    tax = sum(Decimal(c["balance_transaction"]["fee_details"][1]["amount"]) for c in charges)
    fees, tax = fees / 100, tax / 100
    gross = sum((p.amount for p in payments + refunded), Decimal(0))
    assert payout.amount == gross - fees - tax - Decimal("50.00") - Decimal("127.00")
    # Stripe holds nothing after the payout: neither does the clearing account
    stripe_left = stripe_from_minor(sum(txn["net"] for txn in pages[0]), "GBP")
    assert aiq.bank_balance(CLEARING) - before[CLEARING] == stripe_left == 0
    # the bank gained exactly the payout; the fees account holds Stripe's fees and the
    # dispute fee, the VAT account the VAT on the fees
    assert aiq.state.gl_total(BANK) - before[BANK] == payout.amount
    assert aiq.state.gl_total(FEES) - before[FEES] == fees + Decimal("20.00")
    assert aiq.state.gl_total(VAT) - before[VAT] == tax
    # the lost dispute reopened its invoice; nothing was written off or left in dispute
    assert aiq.state.outstanding(invoice.aiq_transaction_id) == Decimal("107.00")
    assert aiq.state.customer_balance(code) - owed_before == Decimal("107.00")
    assert aiq.state.gl_total(disputes.DISPUTES_GL) == 0
    assert aiq.state.gl_total(disputes.LOSS_GL) == before[disputes.LOSS_GL]
    _once(aiq, f"POFEE-{payout.pk}", f"POUT-{payout.pk}", f"DISP-{dispute.pk}",
          f"DISPLOST-{dispute.pk}")  # fmt: skip
    assert not OutboxCommand.objects.exclude(state=OutboxCommand.State.CONFIRMED).exists()

    _statement(alice, barclays, "STRIPE PAYMENTS UK LTD", payout, "STRIPE")
    _recognised(payout, "STRIPE PAYMENTS UK")


def test_a_day_of_gocardless_money_with_a_late_failure_ends_where_gocardless_and_the_bank_say(
    gc_books, gocardless, entity, alice, bob, barclays
):
    from payments.services.payments import payments_upsert
    from payments.sources.gocardless_source import (
        gc_client,
        gocardless_payout_sync,
        normalise_payment,
    )

    aiq = gc_books
    before = {gl: aiq.state.gl_total(gl) for gl in (GC_CLEARING, BANK, GC_FEES)}
    paid = []
    for n, (code, minor) in enumerate((("ACME", 12000), ("BRIGHT", 4550), ("ACME", 30000))):
        pid = f"PM00DY{n}"
        gocardless.payments[pid] = disputes._gc_payment(pid, minor, "paid_out", "PO00DY1", code)
        payments_upsert(items=[normalise_payment(gocardless.payments[pid])],
                        origin="test.gocardless", entity=entity)  # fmt: skip
        payment = Payment.objects.get(external_id=pid)
        invoice = make_invoice(entity, code, [("Service", "4010", str(minor / 100), "T0")])
        allocate(payment, [(invoice, str(Decimal(minor) / 100))], alice, bob)
        paid.append(payment)
    gocardless.payouts["PO00DY1"] = disputes._gc_payout("PO00DY1", 46550 - 255, 255)
    gocardless.payout_items["PO00DY1"] = [
        disputes._item("payment_paid_out", minor, f"PM00DY{n}")
        for n, minor in enumerate((12000, 4550, 30000))
    ] + [disputes._item("gocardless_fee", -255, "PM00DY0")]
    first = gocardless_payout_sync(payout_id="PO00DY1", client=gc_client())
    drain_all()

    # the 45.50 payment fails late, after it was paid out; an approver reverses it
    failed = paid[1]
    failed.refresh_from_db()
    invoice, owed_before = disputes._invoice_of(failed), aiq.state.customer_balance("BRIGHT")
    gocardless.payments["PM00DY1"] = disputes._gc_payment("PM00DY1", 4550, "failed", "PO00DY1",
                                                          "BRIGHT")  # fmt: skip
    assert disputes._gc_event("EV00DY1", "failed", "PM00DY1", "insufficient_funds") == "processed"
    drain_all()
    dispute = Dispute.objects.get(source="gocardless")
    dispute_loss_approve(dispute=dispute, actor=bob)
    drain_all()
    # GoCardless takes it back from the next payout, which also pays a new 100.00 payment
    gocardless.payments["PM00DY9"] = disputes._gc_payment("PM00DY9", 10000, "paid_out",
                                                          "PO00DY2", "ACME")  # fmt: skip
    payments_upsert(items=[normalise_payment(gocardless.payments["PM00DY9"])],
                    origin="test.gocardless", entity=entity)  # fmt: skip
    late = Payment.objects.get(external_id="PM00DY9")
    allocate(late, [(make_invoice(entity, "ACME", [("Service", "4010", "100.00", "T0")]),
                     "100.00")], alice, bob)  # fmt: skip
    gocardless.payouts["PO00DY2"] = disputes._gc_payout("PO00DY2", 10000 - 4550 - 55, 55)
    gocardless.payout_items["PO00DY2"] = [
        disputes._item("payment_paid_out", 10000, "PM00DY9"),
        disputes._item("payment_failed", -4550, "PM00DY1"),
        disputes._item("gocardless_fee", -55, "PM00DY9"),
    ]
    second = gocardless_payout_sync(payout_id="PO00DY2", client=gc_client())
    drain_all()

    # GoCardless holds nothing after its two payouts: neither does the clearing account
    assert aiq.bank_balance(GC_CLEARING) - before[GC_CLEARING] == 0
    assert aiq.state.gl_total(BANK) - before[BANK] == first.amount + second.amount
    assert first.amount + second.amount == Decimal("465.50") + Decimal("100.00") - Decimal(
        "45.50"
    ) - Decimal("3.10")
    assert aiq.state.gl_total(GC_FEES) - before[GC_FEES] == Decimal("3.10")
    # the late failure reopened BRIGHT's invoice; nothing left in dispute
    assert aiq.state.outstanding(invoice.aiq_transaction_id) == Decimal("45.50")
    assert aiq.state.customer_balance("BRIGHT") - owed_before == Decimal("45.50")
    assert aiq.state.gl_total(disputes.DISPUTES_GL) == 0
    _once(aiq, f"POUT-{first.pk}", f"POUT-{second.pk}", f"DISP-{dispute.pk}",
          f"DISPLOST-{dispute.pk}")  # fmt: skip
    assert not OutboxCommand.objects.exclude(state=OutboxCommand.State.CONFIRMED).exists()

    _statement(alice, barclays, "GOCARDLESS", second, "GOCARDLESS")
    _recognised(second, "GOCARDLESS")


def test_a_day_of_eur_card_money_in_a_gbp_company_is_booked_at_the_days_rate_with_its_fx(
    eur_books, entity, alice, bob
):
    """The UK company (GBP) with a EUR Stripe account: five EUR invoices booked at 1.15 EUR
    per GBP are paid by card on a day the rate is 1.25; one payment is disputed and lost (its
    receipt reversed at the withdrawal's rate: the invoice reopens in euros); one payout nets
    it all. Every AIQ entry is at 1.25, never 1; clearing is 0.00 in euros and in pounds; the
    bank gains the payout; the realised loss is the four paid invoices' value at 1.15 less at
    1.25, once (the reopened one realised nothing)."""
    aiq, state = eur_books, eur_books.state
    sales = [("QUAYSD", "230.00"), ("RIVIER", "115.00"), ("SOLAR", "100.00"),
             ("TULIP", "150.00"), ("QUAYSD", "60.00")]  # fmt: skip
    invoices = [make_invoice(entity, code, [("Service", "4010", amount, "T0")])
                for code, amount in sales]  # fmt: skip
    for invoice in invoices:
        invoice.exchange_rate = _rate_in_aiq(aiq, invoice)
        invoice.save(update_fields=["exchange_rate"])
    assert {i.exchange_rate for i in invoices} == {Decimal("1.15")}
    aiq.set_rate("EUR", "1.25")
    charges = [
        currency._charge(40 + n, code, amount, "2.00", "0.40")
        for n, (code, amount) in enumerate(sales)
    ]
    payments = currency._paid_by_card(entity, zip(charges, invoices, strict=True), alice, bob)
    for payment in payments:  # the receipts: EUR, at the day's rate
        receipt = currency._aiq_row(aiq, f"RCPT-{payment.pk}")
        assert (receipt["currency"], receipt["rate"]) == ("EUR", Decimal("1.25"))
    before = {gl: state.gl_total_base(gl) for gl in (currency.BANK, FEES, VAT, currency.FX,
                                                     "8100")}  # fmt: skip
    bank_eur = aiq.bank_balance(currency.BANK)

    # TULIP's 150.00 is disputed and lost: Stripe takes it and a 15.00 fee
    disputed = payments[3]
    withdrawal = currency._dispute_txn(-15000, 1500)
    dispute = dispute_book(dispute=currency._dispute(disputed, "lost", [withdrawal]))
    dispute_loss_approve(dispute=dispute, actor=bob)
    drain_all()
    dispute.refresh_from_db()
    assert dispute.loss_command.kind == "post_debit_journal"  # reversed, at its rate
    assert currency._aiq_row(aiq, f"DISPLOST-{dispute.pk}")["rate"] == Decimal("1.25")
    assert aiq.state.outstanding(invoices[3].aiq_transaction_id) == Decimal("150.00")  # EUR
    entry = AuditEntry.objects.get(action="dispute.reversed", object_id=str(dispute.pk))
    assert "debit journal at 1.25" in entry.summary

    net_minor = sum(c["balance_transaction"]["net"] for c in charges) - 16500
    payout = payout_upsert(
        source="stripe",
        payout=stripe_source.normalise_payout(
            {"id": "po_eur_day", "amount": net_minor, "currency": "eur", "status": "paid",
             "arrival_date": int(datetime(2026, 12, 4, tzinfo=UTC).timestamp())}
        ),
    )  # fmt: skip
    pages = [[{**c["balance_transaction"], "source": c} for c in charges]
             + [{**withdrawal, "net": -16500, "type": "adjustment",
                 "source": {"object": "dispute", "id": dispute.external_id}}]]  # fmt: skip
    stripe_payout_reconcile(payout=payout, pages=pages)
    payout_book(payout=payout)
    drain_all()
    payout.refresh_from_db()
    gross = sum(Decimal(a) for _, a in sales)
    assert payout.amount == gross - Decimal("12.00") - Decimal("165.00")  # fees+VAT, dispute
    for reference in (f"POFEE-{payout.pk}", f"POUT-{payout.pk}", f"DISP-{dispute.pk}"):
        row = currency._aiq_row(aiq, reference)
        assert (row["currency"], row["rate"]) == ("EUR", Decimal("1.25")), reference
    # clearing holds what Stripe holds: nothing, in euros and in pounds
    assert aiq.bank_balance(currency.CLEARING) == 0
    assert state.gl_total_base(currency.CLEARING) == 0
    # the bank gained the payout: in euros, and at 1.25 in pounds
    assert aiq.bank_balance(currency.BANK) - bank_eur == payout.amount
    assert state.gl_total_base(currency.BANK) - before[currency.BANK] == currency._base(
        payout.amount, "1.25"
    )
    # fees 10.00 and the dispute fee 15.00 at 1.25 (20.00 GBP); VAT 2.00 (1.60 GBP); the lost
    # 150.00 back on TULIP's account, nothing written off; nothing left in dispute
    assert state.gl_total_base(FEES) - before[FEES] == Decimal("20.00")
    assert state.gl_total_base(VAT) - before[VAT] == Decimal("1.60")
    assert state.gl_total_base("8100") == before["8100"]
    assert state.gl_total_base(currency.DISPUTES) == 0
    # realised loss: the four paid invoices at 1.15 less at 1.25, one journal in pounds
    expected = sum(currency._base(a, "1.15") - currency._base(a, "1.25")
                   for n, (_, a) in enumerate(sales) if n != 3)  # fmt: skip
    assert state.gl_total_base(currency.FX) - before[currency.FX] == expected > 0
    fxr = currency._aiq_row(aiq, f"FXR-{payout.pk}")
    assert (fxr["type"], fxr["currency"]) == ("GeneralJournal", "GBP")
    assert not OutboxCommand.objects.exclude(state=OutboxCommand.State.CONFIRMED).exists()
