"""A provider account in another currency than its company's (issue 17.5), worked against the
AIQ sandbox's books in both currencies.

The UK company (GBP) takes EUR card payments on a EUR Stripe account: receipts land in its EUR
clearing account (STRIPE-EUR, GL 1160) at the company's rate for the day, and the payout goes
to its EUR bank (BANK-EUR, GL 1210). AIQ's general journal has no currency, so the fees and the
transfer are bank payments and receipts in EUR with their ExchangeRate
(SaveSundryReceiptPayments), the transfer through "Bank transfers in transit" (GL 1190), which
it leaves at zero; the realised loss of invoices booked at 1.15 and paid at 1.25 goes to the FX
account. A dispute in that account is taken and given back the same way. The Irish company
(EUR) does the same with a GBP account."""

from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal

import pytest

from ledger.aiq.client import AiqClient
from ledger.models import BankAccount, Customer, Entity, OutboxCommand
from payments.models import Dispute, Payment, ProviderAccount
from payments.services.payments import payments_upsert, payout_upsert
from payments.services.provider_books import payout_book
from payments.services.provider_disputes import dispute_book
from payments.services.stripe_events import stripe_payout_reconcile
from payments.sources import stripe_source
from staff.models import AuditEntry
from tests import test_provider_books as stripe_books
from tests import test_provider_payouts
from tests.refunds_support import (
    allocate,
    drain_all,
    make_invoice,
    seed_roles_without_matching,
    setup_books,
)

pytestmark = pytest.mark.django_db(transaction=True)
CLEARING, BANK, TRANSIT, FX, DISPUTES = "1160", "1210", "1190", "7900", "1170"
BANK_ENTRY = "bank_entry"


@pytest.fixture(autouse=True)
def _seeded(transactional_db):
    seed_roles_without_matching()


@pytest.fixture
def eur_books(aiq_sandbox, entity, audit_flushable):
    """The UK company with a EUR Stripe account: STRIPE-EUR (GL 1160, EUR) paying out into
    BANK-EUR (GL 1210, EUR)."""
    from ledger.sync.pull import sync_banks, sync_gl_accounts

    aiq_sandbox.add_bank("STRIPE-EUR", CLEARING, "EUR")
    aiq_sandbox.add_gl_account(TRANSIT, "Bank transfers in transit", "asset")
    aiq_sandbox.add_gl_account(FX, "Realised exchange gains and losses", "expense")
    aiq_sandbox.add_gl_account(DISPUTES, "Payments in dispute", "asset")
    setup_books(entity)
    client = AiqClient.for_entity(entity)
    sync_banks(client, entity)
    sync_gl_accounts(client, entity)
    ProviderAccount.objects.create(
        entity=entity, source="stripe", currency="EUR", name="Stripe EUR",
        clearing_bank_account=BankAccount.objects.get(entity=entity,
                                                      bank_account_code="STRIPE-EUR"),
        payout_bank_account=BankAccount.objects.get(entity=entity, bank_account_code="BANK-EUR"),
        fees_gl_account_code="7510", fee_tax_gl_account_code="2200",
        transfer_gl_account_code=TRANSIT, fx_gl_account_code=FX,
        disputes_gl_account_code=DISPUTES, dispute_loss_gl_account_code="8100",
        statement_narrative="STRIPE PAYMENTS EUROPE",
    )  # fmt: skip
    return aiq_sandbox


def _charge(n: int, customer: str, amount: str, fee: str, tax: str, currency="eur") -> dict:
    """A charge Stripe holds in the account's own currency: no conversion, no exchange_rate."""
    minor = lambda value: int(Decimal(value) * 100)  # noqa: E731
    charge = stripe_books._charge(n, customer, minor(amount), minor(fee), minor(tax))
    charge["currency"] = currency
    charge["balance_transaction"]["currency"] = currency
    for detail in charge["balance_transaction"]["fee_details"]:
        detail["currency"] = currency
    return charge


def _paid_by_card(entity, charges_and_invoices, alice, bob) -> list[Payment]:
    payments = []
    for charge, invoice in charges_and_invoices:
        payments_upsert(items=[stripe_source.normalise_charge(charge)], origin="test",
                        entity=entity)  # fmt: skip
        payment = Payment.objects.get(external_id=stripe_source.payment_key(charge))
        payment.customer = Customer.objects.get(entity=entity, code=invoice.customer.code)
        payment.save(update_fields=["customer"])
        allocate(payment, [(invoice, str(invoice.gross_amount))], alice, bob)
        payments.append(payment)
    drain_all()
    return payments


def _pay_out(charges, currency: str, payout_id: str):
    net = sum(c["balance_transaction"]["net"] for c in charges)
    payout = payout_upsert(
        source="stripe",
        payout=stripe_source.normalise_payout(
            {"id": payout_id, "amount": net, "currency": currency, "status": "paid",
             "arrival_date": int(datetime(2026, 12, 4, tzinfo=UTC).timestamp())}
        ),
    )  # fmt: skip
    pages = [[{**c["balance_transaction"], "source": c} for c in charges]]
    stripe_payout_reconcile(payout=payout, pages=pages)
    return payout_book(payout=payout)


def _aiq_row(sandbox, reference: str, entity: str = "demo") -> dict:
    """What AIQ holds for a reference: its type, currency, amount and ExchangeRate."""
    with sandbox.server.store.transaction() as db:
        rows = db.execute(
            "SELECT type, currency, amount_milli, exchange_rate FROM txn "
            "WHERE entity_id = ? AND external_reference = ?",
            (entity, reference),
        ).fetchall()
    assert len(rows) == 1, (reference, len(rows))
    row = rows[0]
    return {"type": row["type"], "currency": row["currency"],
            "amount": Decimal(row["amount_milli"]) / 1000,
            "rate": Decimal(row["exchange_rate"])}  # fmt: skip


def _base(amount, rate) -> Decimal:
    return (Decimal(amount) / Decimal(rate)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def test_a_eur_payout_of_a_gbp_company_is_booked_in_eur_at_the_days_rate_with_the_realised_fx(
    eur_books, entity, alice, bob
):
    aiq, state = eur_books, eur_books.state
    # two EUR invoices booked while the company's EUR rate was 1.15 (EUR per GBP) ...
    invoices = [
        make_invoice(entity, "QUAYSD", [("Mooring", "4010", "230.00", "T0")]),
        make_invoice(entity, "RIVIER", [("Charter", "4010", "115.00", "T0")]),
    ]
    for invoice in invoices:  # AIQ's rate of each invoice, as the pull mirrors it
        invoice.exchange_rate = test_provider_payouts._rate_in_aiq(aiq, invoice)
        invoice.save(update_fields=["exchange_rate"])
    assert {i.exchange_rate for i in invoices} == {Decimal("1.15")}
    # ... paid by card once the day's rate is 1.25: Stripe keeps the euros (no conversion)
    aiq.set_rate("EUR", "1.25")
    charges = [
        _charge(1, "QUAYSD", "230.00", "3.00", "0.60"),
        _charge(2, "RIVIER", "115.00", "2.00", "0.40"),
    ]
    _paid_by_card(entity, zip(charges, invoices, strict=True), alice, bob)
    assert aiq.bank_balance(CLEARING) == Decimal("345.00")  # EUR, in the EUR clearing account
    assert _aiq_row(aiq, f"RCPT-{Payment.objects.order_by('pk')[0].pk}")["rate"] == Decimal("1.25")

    bank_eur, bank_gbp = aiq.bank_balance(BANK), state.gl_total_base(BANK)
    fees_gbp, vat_gbp, fx_gbp = (state.gl_total_base(c) for c in ("7510", "2200", FX))
    payout = _pay_out(charges, "eur", "po_eur_uk")
    p = payout.pk
    assert payout.amount == Decimal("339.00")  # 345.00 - fees 5.00 - VAT 1.00
    drain_all()
    assert not OutboxCommand.objects.exclude(state="confirmed").exists()

    # fees: two bank payments out of the EUR clearing account, at the day's rate, never 1
    fee = _aiq_row(aiq, f"POFEE-{payout.pk}")
    vat = _aiq_row(aiq, f"POFEE-{payout.pk}-2")
    assert (fee["type"], fee["currency"], fee["amount"], fee["rate"]) == (
        "BankPayment", "EUR", Decimal("-5.00"), Decimal("1.25"))  # fmt: skip
    assert (vat["amount"], vat["rate"]) == (Decimal("-1.00"), Decimal("1.25"))
    # the payout: a EUR bank payment out of clearing and a EUR bank receipt into the bank
    out, into = _aiq_row(aiq, f"POUT-{payout.pk}"), _aiq_row(aiq, f"POUT-{payout.pk}-2")
    assert (out["type"], out["amount"], into["type"], into["amount"]) == (
        "BankPayment", Decimal("-339.00"), "BankReceipt", Decimal("339.00"))  # fmt: skip
    assert out["rate"] == into["rate"] == Decimal("1.25")

    # clearing holds what Stripe holds for us, nothing, in euros and in pounds
    assert aiq.bank_balance(CLEARING) == 0
    assert state.gl_total_base(CLEARING) == 0
    # the bank gained the payout in euros, at the day's rate in pounds
    assert aiq.bank_balance(BANK) - bank_eur == Decimal("339.00")
    assert state.gl_total_base(BANK) - bank_gbp == Decimal("271.20")  # 339.00 / 1.25
    assert state.gl_total(TRANSIT) == state.gl_total_base(TRANSIT) == 0
    assert state.gl_total_base("7510") - fees_gbp == Decimal("4.00")  # 5.00 / 1.25
    assert state.gl_total_base("2200") - vat_gbp == Decimal("0.80")
    # realised loss: 230.00 and 115.00 booked at 1.15 (200.00 + 100.00 GBP), paid at 1.25
    # (184.00 + 92.00 GBP): 24.00 GBP, one general journal in pounds
    expected = sum(_base(a, "1.15") - _base(a, "1.25") for a in ("230.00", "115.00"))
    assert expected == Decimal("24.00")
    assert state.gl_total_base(FX) - fx_gbp == expected
    fxr = _aiq_row(aiq, f"FXR-{payout.pk}")
    assert (fxr["type"], fxr["currency"]) == ("GeneralJournal", "GBP")
    # no general journal touched a EUR bank account (AIQ's journal has no currency)
    general = OutboxCommand.objects.filter(kind="post_general_journal")
    assert all(line["gl_account_code"] not in (CLEARING, BANK)
               for c in general for line in c.payload["lines"])  # fmt: skip

    # booking again (a repeated payout.paid) queues nothing and AIQ holds each write once
    commands = OutboxCommand.objects.count()
    payout_book(payout=payout)
    drain_all()
    assert OutboxCommand.objects.count() == commands
    for reference in ("POFEE", "POFEE-{}-2", "POUT", "POUT-{}-2", "FXR"):
        ref = reference.format(payout.pk) if "{}" in reference else f"{reference}-{payout.pk}"
        assert len(state.transactions(ref)) == 1
    entry = AuditEntry.objects.get(action="payout.book", object_id=str(payout.pk))
    assert "fees" in entry.summary and "STRIPE-EUR -> BANK-EUR" in entry.summary

    # the reconciliation ties each figure to every AIQ transaction that booked it
    from payments.services.provider_report import reconciliation

    report = reconciliation(ProviderAccount.objects.get(), date(2026, 12, 1), date(2026, 12, 31))
    rows = {r[0]: (r[3], r[4], r[6]) for r in report.rows if r[2] == "po_eur_uk"}
    assert rows["payout fees"] == (Decimal("-6.00"), f"POFEE-{p} POFEE-{p}-2", "")
    assert rows["payout"] == (Decimal("-339.00"), f"POUT-{p} POUT-{p}-2", "")
    assert rows["realised FX"] == (Decimal("-24.00"), f"FXR-{p}", "in GBP")
    assert not [d for d in report.differences if "outbox" in d]


def test_a_lost_answer_on_a_bank_entry_is_read_back_not_sent_twice(eur_books, entity, alice, bob):
    aiq = eur_books
    aiq.set_rate("EUR", "1.25")
    [invoice] = [make_invoice(entity, "SOLAR", [("Service", "4010", "100.00", "T0")])]
    charge = _charge(3, "SOLAR", "100.00", "1.50", "0.30")
    _paid_by_card(entity, [(charge, invoice)], alice, bob)
    aiq.faults.update(drop_next=1, ops=["SaveSundryReceiptPaymentsGetBackTransactionIDs"])
    payout = _pay_out([charge], "eur", "po_eur_drop")
    drain_all()
    OutboxCommand.objects.filter(state="uncertain").update(
        sent_at=datetime(2026, 1, 1, tzinfo=UTC), next_attempt_at=datetime(2026, 1, 1, tzinfo=UTC)
    )  # the settle period is over
    drain_all()
    assert aiq.faults.snapshot()["stats"]["drops"] == 1
    assert set(OutboxCommand.objects.filter(kind=BANK_ENTRY).values_list("state", flat=True)) == {
        "confirmed"
    }
    for ref in (f"POFEE-{payout.pk}", f"POFEE-{payout.pk}-2", f"POUT-{payout.pk}",
                f"POUT-{payout.pk}-2"):  # fmt: skip
        assert len(aiq.state.transactions(ref)) == 1, ref
    assert aiq.bank_balance(CLEARING) == 0


def _dispute(payment: Payment, status: str, txns: list[dict]) -> Dispute:
    return Dispute.objects.create(
        source="stripe", external_id=f"dp_{payment.pk}", payment=payment, amount=payment.amount,
        currency=payment.currency, status=status, reason="fraudulent",
        raw={"balance_transactions": txns},
    )  # fmt: skip


def _dispute_txn(amount_minor: int, fee_minor: int, currency="eur") -> dict:
    return {"object": "balance_transaction", "amount": amount_minor, "fee": fee_minor,
            "currency": currency, "created": 1796342400, "exchange_rate": None}  # fmt: skip


def test_a_eur_dispute_of_a_gbp_company_is_taken_and_given_back_in_eur(
    eur_books, entity, alice, bob
):
    aiq, state = eur_books, eur_books.state
    aiq.set_rate("EUR", "1.25")
    invoice = make_invoice(entity, "TULIP", [("Tulips", "4010", "150.00", "T0")])
    charge = _charge(4, "TULIP", "150.00", "2.00", "0.40")
    [payment] = _paid_by_card(entity, [(charge, invoice)], alice, bob)
    _pay_out([charge], "eur", "po_eur_disp")
    drain_all()
    assert aiq.bank_balance(CLEARING) == 0
    fees_gbp = state.gl_total_base("7510")

    # the day's rate moves before Stripe takes the money: the dispute is booked at 1.20
    aiq.set_rate("EUR", "1.20")
    withdrawal = _dispute_txn(-15000, 1500)
    dispute = dispute_book(dispute=_dispute(payment, "needs_response", [withdrawal]))
    drain_all()
    taken, fee = _aiq_row(aiq, f"DISP-{dispute.pk}"), _aiq_row(aiq, f"DISP-{dispute.pk}-2")
    assert (taken["type"], taken["amount"], taken["rate"]) == (
        "BankPayment", Decimal("-150.00"), Decimal("1.20"))  # fmt: skip
    assert (fee["amount"], fee["rate"]) == (Decimal("-15.00"), Decimal("1.20"))
    assert aiq.bank_balance(CLEARING) == Decimal("-165.00")  # EUR: Stripe took it and its fee
    assert state.gl_total_base(DISPUTES) == Decimal("125.00")  # 150.00 / 1.20
    assert state.gl_total_base("7510") - fees_gbp == Decimal("12.50")  # 15.00 / 1.20

    # won, on a day the rate is 1.30: the money and the fee come back at the withdrawal's rate,
    # so the disputes account clears in pounds too
    aiq.set_rate("EUR", "1.30")
    Dispute.objects.filter(pk=dispute.pk).update(
        status="won", raw={"balance_transactions": [withdrawal, _dispute_txn(15000, -1500)]}
    )
    dispute = dispute_book(dispute=Dispute.objects.get(pk=dispute.pk))
    drain_all()
    back = _aiq_row(aiq, f"DISPWON-{dispute.pk}")
    assert (back["type"], back["amount"], back["rate"]) == (
        "BankReceipt", Decimal("150.00"), Decimal("1.20"))  # fmt: skip
    assert aiq.bank_balance(CLEARING) == 0
    assert state.gl_total_base(DISPUTES) == 0
    assert state.gl_total_base("7510") == fees_gbp
    dispute_book(dispute=dispute)  # again: nothing more
    drain_all()
    assert len(state.transactions(f"DISPWON-{dispute.pk}")) == 1
    from payments.services.provider_report import reconciliation

    report = reconciliation(ProviderAccount.objects.get(), date(2026, 1, 1), date(2026, 12, 31))
    [row] = [r for r in report.rows if r[0] == "dispute"]
    d = dispute.pk
    assert row[4] == f"DISP-{d} DISP-{d}-2 DISPWON-{d} DISPWON-{d}-2"
    assert len(row[5].split()) == 4  # the four AIQ transactions


def test_a_gbp_payout_of_the_eur_company_is_booked_in_gbp_at_its_rate(
    aiq_sandbox, alice, bob, audit_flushable
):
    """The Irish company (EUR) sells to its UK sister company in pounds through a GBP Stripe
    account: GBP clearing (STRIPE-GBP-IE, GL 1160) paying out into BANK-GBP-IE (GL 1210)."""
    from ledger.sync.pull import sync_banks, sync_customers, sync_gl_accounts, sync_tax_codes
    from tests.companies_support import ireland

    ie = "demo-ie"
    aiq_sandbox.add_bank("STRIPE-GBP-IE", CLEARING, "GBP", entity=ie)
    aiq_sandbox.add_gl_account(TRANSIT, "Bank transfers in transit", "asset", entity=ie)
    aiq_sandbox.set_rate("GBP", "0.80", entity=ie)  # GBP per EUR
    company = ireland()
    company.api_version = "2.0"
    company.save(update_fields=["api_version"])
    client = AiqClient.for_entity(company)
    for sync in (sync_banks, sync_gl_accounts, sync_tax_codes, sync_customers):
        sync(client, company)
    company.default_bank_account = BankAccount.objects.get(bank_account_code="BANK-EUR-IE")
    company.save(update_fields=["default_bank_account"])
    ProviderAccount.objects.create(
        entity=company, source="stripe", currency="GBP", name="Stripe GBP (IE)",
        clearing_bank_account=BankAccount.objects.get(bank_account_code="STRIPE-GBP-IE"),
        payout_bank_account=BankAccount.objects.get(bank_account_code="BANK-GBP-IE"),
        fees_gl_account_code="7510", transfer_gl_account_code=TRANSIT,
        statement_narrative="STRIPE PAYMENTS UK",
    )  # fmt: skip
    invoice = make_invoice(company, "DEMOUK", [("Consulting", "4010", "400.00", "T0")])
    charge = _charge(5, "DEMOUK", "400.00", "4.00", "0.00", currency="gbp")
    charge["balance_transaction"]["fee_details"].pop()  # no VAT detail
    _paid_by_card(company, [(charge, invoice)], alice, bob)
    assert aiq_sandbox.bank_balance(CLEARING, entity=ie) == Decimal("400.00")  # GBP

    bank_gbp = aiq_sandbox.bank_balance(BANK, entity=ie)
    payout = _pay_out([charge], "gbp", "po_gbp_ie")
    drain_all()
    assert payout.amount == Decimal("396.00")
    out = _aiq_row(aiq_sandbox, f"POUT-{payout.pk}", entity=ie)
    assert (out["currency"], out["amount"], out["rate"]) == ("GBP", Decimal("-396.00"),
                                                             Decimal("0.8"))  # fmt: skip
    assert aiq_sandbox.bank_balance(CLEARING, entity=ie) == 0
    assert aiq_sandbox.state.gl_total_base(CLEARING, entity=ie) == 0
    assert aiq_sandbox.bank_balance(BANK, entity=ie) - bank_gbp == Decimal("396.00")
    assert aiq_sandbox.state.gl_total_base("7510", entity=ie) == Decimal("5.00")  # 4.00 / 0.80
    assert aiq_sandbox.state.gl_total_base(TRANSIT, entity=ie) == 0
    assert Entity.objects.get(pk=company.pk).base_currency == "EUR"


@pytest.mark.parametrize(
    "change, why",
    [
        ({"transfer_gl_account_code": ""}, "no transfer GL account"),
        ({"payout_bank": "BANK-GBP"}, "a conversion the provider did not make"),
        ({"currency": "USD"}, "no rate"),
    ],
)
def test_a_foreign_currency_payout_that_cannot_be_booked_is_not_booked_and_says_why(
    eur_books, entity, change, why
):
    account = ProviderAccount.objects.get()
    if change.get("currency") == "USD":  # USD banks, but AIQ has no USD rate for the company
        from ledger.sync.pull import sync_banks

        eur_books.add_bank("STRIPE-USD", "1161", "USD")
        eur_books.add_bank("BANK-USD", "1211", "USD")
        sync_banks(AiqClient.for_entity(entity), entity)
        account.clearing_bank_account = BankAccount.objects.get(bank_account_code="STRIPE-USD")
        account.payout_bank_account = BankAccount.objects.get(bank_account_code="BANK-USD")
    if "payout_bank" in change:
        account.payout_bank_account = BankAccount.objects.get(
            entity=entity, bank_account_code=change.pop("payout_bank")
        )
    for field, value in change.items():
        setattr(account, field, value)
    account.save()
    currency = account.currency.lower()
    payout = payout_upsert(
        source="stripe",
        payout=stripe_source.normalise_payout(
            {"id": "po_refused", "amount": 10000, "currency": currency, "status": "paid",
             "arrival_date": int(datetime(2026, 12, 4, tzinfo=UTC).timestamp())}
        ),
    )  # fmt: skip
    payout = payout_book(payout=payout)
    assert payout.transfer_command_id is None and payout.fees_command_id is None
    assert not OutboxCommand.objects.exists()
    entry = AuditEntry.objects.get(action="payout.not_booked")
    assert why in entry.summary, entry.summary


def test_set_up_names_a_missing_transfer_account_only_for_a_foreign_currency_account():
    from payments.services.provider_setup import gl_problems

    gl = {"7510": "expense", TRANSIT: "asset", CLEARING: "bank"}
    codes = {"fees_gl_account_code": "7510", "transfer_gl_account_code": ""}
    [problem] = gl_problems(codes, gl, "EUR", "GBP")
    assert "transfers in transit" in problem and "EUR account in a GBP company" in problem
    assert gl_problems(codes, gl, "GBP", "GBP") == []
    assert gl_problems({**codes, "transfer_gl_account_code": TRANSIT}, gl, "EUR", "GBP") == []
    [bank] = gl_problems({**codes, "transfer_gl_account_code": CLEARING}, gl, "EUR", "GBP")
    assert "a bank account's GL account" in bank  # the transit account is not a bank's


def test_the_set_up_check_asks_aiq_for_its_bank_list_and_names_a_clearing_bank_it_lost(
    eur_books, entity
):
    from django.core.management import CommandError, call_command

    from payments.checks import provider_books_problems

    call_command("provider_books_check")  # every bank and GL account is in AIQ: no error
    assert provider_books_problems() == []
    with eur_books.server.store.transaction() as db:  # closed in AIQ's screens
        db.execute("DELETE FROM bank WHERE bank_account_code = 'STRIPE-EUR'")
    assert provider_books_problems() == []  # the mirror does not know yet
    with pytest.raises(CommandError, match="1 problem"):
        call_command("provider_books_check")
    [problem] = provider_books_problems()  # and from now on the start-up check says so too
    assert "clearing bank STRIPE-EUR was not in AIQ's bank list" in problem


def test_a_eur_customers_sales_journal_goes_at_the_companys_rate_never_1(eur_books, entity):
    """A refund's sales debit journal on a EUR customer of the GBP company (it pays out of the
    EUR clearing account): at AIQ's rate for the day, or at the rate the payload carries."""
    from ledger.outbox.services import outbox_enqueue

    eur_books.set_rate("EUR", "1.25")
    for reference, rate in (("RFD-EUR-1", ""), ("RFD-EUR-2", "1.20")):
        outbox_enqueue(
            entity=entity, kind="post_debit_journal", external_reference=reference,
            payload={"customer_code": "QUAYSD", "gl_account_code": CLEARING, "amount": "60.00",
                     "journal_date": "2026-12-04", "currency": "EUR", "exchange_rate": rate},
        )  # fmt: skip
    drain_all()
    assert _aiq_row(eur_books, "RFD-EUR-1")["rate"] == Decimal("1.25")
    assert _aiq_row(eur_books, "RFD-EUR-2")["rate"] == Decimal("1.20")
    assert eur_books.bank_balance(CLEARING) == Decimal("-120.00")  # EUR out of clearing
    assert eur_books.state.gl_total_base(CLEARING) == Decimal("-98.00")  # 48.00 + 50.00 GBP


def test_a_eur_balance_paid_out_into_the_gbp_bank_converted_by_stripe_books_the_fx_difference(
    eur_books, entity, alice, bob, barclays
):
    """Stripe converts the EUR balance into the GBP bank: the payout arrives as 267.81 GBP, its
    balance transaction took 339.00 EUR at Stripe's 0.79 (GBP per EUR). The EUR clearing account
    is credited with 339.00 EUR at the day's rate (1.25: 271.20 GBP), BANK-GBP receives 267.81,
    and the 3.39 GBP Stripe's conversion cost is a realised loss on the FX account, once."""
    from payments.services.statements import statement_import, statement_preview
    from payments.services.stripe_events import stripe_payout_store

    aiq, state = eur_books, eur_books.state
    account = ProviderAccount.objects.get()
    account.payout_bank_account = BankAccount.objects.get(
        entity=entity, bank_account_code="BANK-GBP"
    )
    account.save(update_fields=["payout_bank_account"])
    aiq.set_rate("EUR", "1.25")
    invoices = [
        make_invoice(entity, "QUAYSD", [("Mooring", "4010", "230.00", "T0")]),
        make_invoice(entity, "RIVIER", [("Charter", "4010", "115.00", "T0")]),
    ]
    charges = [
        _charge(11, "QUAYSD", "230.00", "3.00", "0.60"),
        _charge(12, "RIVIER", "115.00", "2.00", "0.40"),
    ]
    _paid_by_card(entity, zip(charges, invoices, strict=True), alice, bob)
    bank_gbp, transit = aiq.bank_balance("1200"), state.gl_total_base(TRANSIT)
    fx_gbp = state.gl_total_base(FX)

    # Stripe's payout, as documented: `amount`/`currency` what reaches the bank (GBP); its
    # balance transaction (`type: payout`, listed with the payout's transactions) what left
    # the EUR balance, `exchange_rate` the conversion (EUR amount x rate = GBP amount)
    arrival = int(datetime(2026, 12, 4, tzinfo=UTC).timestamp())
    body = {
        "id": "po_conv",
        "object": "payout",
        "amount": 26781,
        "currency": "gbp",
        "status": "paid",
        "arrival_date": arrival,
        "balance_transaction": "txn_po_conv",
        "destination": {"id": "ba_gbp", "object": "bank_account", "currency": "gbp"},
    }
    own = {"id": "txn_po_conv", "object": "balance_transaction", "type": "payout",
           "amount": -33900, "currency": "eur", "exchange_rate": 0.79, "fee": 0,
           "net": -33900, "source": "po_conv"}  # fmt: skip
    pages = [[*({**c["balance_transaction"], "source": c} for c in charges), own]]
    payout = stripe_payout_store(body, pages)
    assert (payout.amount, payout.currency) == (Decimal("339.00"), "EUR")  # left the balance
    assert payout.landed == (Decimal("267.81"), "GBP")  # arrives in the bank
    stripe_payout_reconcile(payout=payout, pages=pages)
    assert "balanced" in AuditEntry.objects.get(action="payout.reconcile").summary
    payout = payout_book(payout=payout)
    drain_all()
    assert not OutboxCommand.objects.exclude(state="confirmed").exists()
    p = payout.pk

    out, into = _aiq_row(aiq, f"POUT-{p}"), _aiq_row(aiq, f"POUT-{p}-2")
    assert (out["type"], out["currency"], out["amount"], out["rate"]) == (
        "BankPayment", "EUR", Decimal("-339.00"), Decimal("1.25"))  # fmt: skip
    assert (into["type"], into["currency"], into["amount"]) == (
        "BankReceipt", "GBP", Decimal("267.81"))  # fmt: skip
    conversion = _aiq_row(aiq, f"POUT-{p}-3")
    assert (conversion["type"], conversion["currency"]) == ("GeneralJournal", "GBP")
    # clearing holds what Stripe holds: nothing, in euros and pounds; the bank the GBP amount
    assert aiq.bank_balance(CLEARING) == 0 and state.gl_total_base(CLEARING) == 0
    assert aiq.bank_balance("1200") - bank_gbp == Decimal("267.81")
    assert state.gl_total_base(TRANSIT) == transit
    # 339.00 EUR at 1.25 is 271.20 GBP; 267.81 arrived: 3.39 GBP lost on the conversion
    assert state.gl_total_base(FX) - fx_gbp == Decimal("3.39")
    entry = AuditEntry.objects.get(action="payout.book", object_id=str(p))
    assert "converted by the provider" in entry.summary and "267.81 GBP BANK-GBP" in entry.summary

    # exactly once: booking again (a repeated payout.paid) queues nothing
    commands = OutboxCommand.objects.count()
    payout_book(payout=payout)
    drain_all()
    assert OutboxCommand.objects.count() == commands
    for ref in (f"POUT-{p}", f"POUT-{p}-2", f"POUT-{p}-3"):
        assert len(state.transactions(ref)) == 1, ref

    # the bank statement line (267.81 GBP into BANK-GBP) is that payout, never a customer's
    content = (b"Date,Description,Paid in,Paid out,Name\n"
               b"04/12/2026,STRIPE PAYMENTS EUROPE PO_CONV,267.81,,STRIPE\n")  # fmt: skip
    preview = statement_preview(user=alice, import_format=barclays, filename="s.csv",
                                content=content)  # fmt: skip
    assert preview.ok
    statement_import(user=alice, batch=preview.batch, content=content)
    payout.refresh_from_db()
    line = payout.statement_payment
    assert line is not None and line.amount == Decimal("267.81") and line.currency == "GBP"
    assert line.match_state == "ignored" and f"POUT-{p}" in line.not_for_aiq_reason

    from payments.services.provider_report import reconciliation

    report = reconciliation(account, date(2026, 12, 1), date(2026, 12, 31))
    [row] = [r for r in report.rows if r[0] == "payout" and r[2] == "po_conv"]
    assert row[4] == f"POUT-{p} POUT-{p}-2 POUT-{p}-3"
    assert not [d for d in report.differences if "po_conv" in d]

    # the payout fails after it was booked: the three movements are reversed at their rates
    Payout = type(payout)
    Payout.objects.filter(pk=p).update(status="failed")
    payout_book(payout=Payout.objects.get(pk=p))
    drain_all()
    assert aiq.bank_balance(CLEARING) == Decimal("339.00")
    assert state.gl_total_base(CLEARING) == Decimal("271.20")
    assert aiq.bank_balance("1200") == bank_gbp
    assert state.gl_total_base(FX) == fx_gbp and state.gl_total_base(TRANSIT) == transit


def test_a_lost_eur_dispute_of_a_gbp_company_reopens_the_invoice_in_eur_with_its_fx(
    eur_books, entity, alice, bob
):
    """TULIP's EUR 150.00 invoice, booked at 1.15 (130.43 GBP), paid by card at 1.25 (120.00
    GBP) and paid out (realised loss 10.43 GBP). Stripe takes it back with a 15.00 fee when the
    rate is 1.20 (125.00 GBP to the disputes account) and the dispute is lost: once approved,
    the receipt is unallocated (the invoice owes EUR 150.00 again, at its own rate), its 10.43
    realised loss reversed, a sales debit journal at 1.20 clears the disputes account in
    pounds, the receipt pays it and the 5.00 GBP between 120.00 and 125.00 is a realised loss.
    Nothing is written off; the dispute fee is an expense."""
    aiq, state = eur_books, eur_books.state
    control = "1100"  # debtors control
    control_before = state.gl_total_base(control)
    invoice = make_invoice(entity, "TULIP", [("Tulips", "4010", "150.00", "T0")])
    invoice.exchange_rate = test_provider_payouts._rate_in_aiq(aiq, invoice)
    invoice.save(update_fields=["exchange_rate"])
    assert invoice.exchange_rate == Decimal("1.15")
    aiq.set_rate("EUR", "1.25")
    charge = _charge(21, "TULIP", "150.00", "2.00", "0.40")
    [payment] = _paid_by_card(entity, [(charge, invoice)], alice, bob)
    gl = (FX, control, "7510", "8100", DISPUTES)
    start = {code: state.gl_total_base(code) for code in gl}
    owed = aiq.state.customer_balance("TULIP")
    _pay_out([charge], "eur", "po_eur_lost")
    drain_all()
    assert state.gl_total_base(FX) - start[FX] == Decimal("10.43")  # 130.43 - 120.00

    aiq.set_rate("EUR", "1.20")
    withdrawal = _dispute_txn(-15000, 1500)
    dispute = dispute_book(dispute=_dispute(payment, "lost", [withdrawal]))
    from payments.services.provider_disputes import dispute_loss_approve

    dispute_loss_approve(dispute=dispute, actor=bob)
    aiq.set_rate("EUR", "1.30")  # the day's rate moves again: nothing below uses it
    drain_all()
    assert not OutboxCommand.objects.exclude(state="confirmed").exists()
    d = dispute.pk
    journal = _aiq_row(aiq, f"DISPLOST-{d}")
    assert (journal["type"], journal["currency"], journal["amount"], journal["rate"]) == (
        "SalesDebitJournal", "EUR", Decimal("150.00"), Decimal("1.20"))  # fmt: skip
    # the invoice is open again in euros, the customer owes it again, the receipt is spent
    assert aiq.state.outstanding(invoice.aiq_transaction_id) == Decimal("150.00")
    assert aiq.state.customer_balance("TULIP") - owed == Decimal("150.00")
    [debit_journal] = state.transactions(f"DISPLOST-{d}")
    assert aiq.state.outstanding(debit_journal["transaction_id"]) == 0
    # in pounds: nothing in dispute, nothing written off, the fee 12.50, the FX: the payout's
    # 10.43 reversed (the allocation that realised it is undone) and 5.00 lost on the reversal
    end = {code: state.gl_total_base(code) - start[code] for code in gl}
    assert end[DISPUTES] == 0 and end["8100"] == 0
    assert end["7510"] == Decimal("1.60") + Decimal("12.50")  # the payout's fee, the dispute's
    assert end[FX] == Decimal("5.00")
    # debtors control holds the reopened invoice at its own rate: 150.00 / 1.15
    assert state.gl_total_base(control) - control_before == Decimal("130.43")
    fx = _aiq_row(aiq, f"DISPFX-{d}")
    assert (fx["type"], fx["currency"]) == ("GeneralJournal", "GBP")
    [line] = payment.plans.get().lines.all()
    assert line.unallocated_at is not None
    assert len(state.transactions(f"FXRREV-{line.pk}")) == 1
    entry = AuditEntry.objects.get(action="dispute.reversed", object_id=str(d))
    assert "debit journal at 1.2" in entry.summary and f"DISPFX-{d}" in entry.summary

    # exactly once: the provider's repeated events change nothing
    commands = OutboxCommand.objects.count()
    dispute_book(dispute=Dispute.objects.get(pk=d))
    drain_all()
    assert OutboxCommand.objects.count() == commands
    for ref in (f"DISPLOST-{d}", f"DISPFX-{d}", f"FXRREV-{line.pk}"):
        assert len(state.transactions(ref)) == 1, ref
