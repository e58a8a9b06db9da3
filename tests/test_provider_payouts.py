"""Provider payouts in a company whose base currency is the euro (issue 17.3): EUR Stripe
payments land in the Irish company's EUR clearing account, the payout books one fee journal
(fees and VAT) and one transfer, and the clearing account ends at zero. Worked against the AIQ
sandbox's books of its second company (demo-ie)."""

import copy
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from core.stripe_money import stripe_to_minor
from ledger.aiq.client import AiqClient
from ledger.models import BankAccount, Customer, OutboxCommand
from payments.models import Payment, ProviderAccount
from payments.services.payments import payments_upsert, payout_upsert
from payments.services.provider_books import payout_book
from payments.services.stripe_events import stripe_payout_reconcile
from payments.sources import stripe_source
from tests import test_provider_books as stripe_books
from tests.companies_support import ireland
from tests.refunds_support import allocate, drain_all, make_invoice, seed_roles_without_matching

pytestmark = pytest.mark.django_db(transaction=True)
IE = "demo-ie"
books = stripe_books.books  # the UK company with its Stripe GBP clearing account


@pytest.fixture(autouse=True)
def _seeded(transactional_db):
    seed_roles_without_matching()


@pytest.fixture
def irish_books(aiq_sandbox, audit_flushable):
    """The Irish company (EUR) with a Stripe EUR clearing account (STRIPE-EUR, GL 1150) beside
    its real EUR bank (BANK-EUR-IE, GL 1200)."""
    from ledger.sync.pull import sync_banks, sync_customers, sync_gl_accounts, sync_tax_codes

    aiq_sandbox.add_bank("STRIPE-EUR", "1150", "EUR", entity=IE)
    company = ireland()
    company.api_version = "2.0"  # the sandbox lets demo-ie in through 2.0's client credentials
    company.save(update_fields=["api_version"])
    client = AiqClient.for_entity(company)
    for sync in (sync_banks, sync_gl_accounts, sync_tax_codes, sync_customers):
        sync(client, company)
    company.default_bank_account = BankAccount.objects.get(bank_account_code="BANK-EUR-IE")
    company.save(update_fields=["default_bank_account"])
    ProviderAccount.objects.create(
        entity=company, source="stripe", currency="EUR", name="Stripe EUR",
        clearing_bank_account=BankAccount.objects.get(bank_account_code="STRIPE-EUR"),
        payout_bank_account=company.default_bank_account,
        fees_gl_account_code="7510", fee_tax_gl_account_code="2200",
        statement_narrative="STRIPE PAYMENTS EUROPE",
    )  # fmt: skip
    return company


def _eur_charge(n: int, customer: str, amount: Decimal) -> dict:
    minor = stripe_to_minor(amount, "EUR")
    fee = round(minor * 0.014) + 25
    charge = stripe_books._charge(n, customer, minor, fee, round(fee * 0.23))
    charge["currency"] = "eur"
    txn = charge["balance_transaction"]
    txn["currency"] = "eur"
    for detail in txn["fee_details"]:
        detail["currency"] = "eur"
    return charge


def test_a_eur_payout_in_a_eur_company_leaves_clearing_at_zero_and_books_the_fees(
    irish_books, aiq_sandbox, alice, bob
):
    company, sandbox = irish_books, aiq_sandbox
    codes = ["DUBLNB", "GALWAY", "CORKTC", "DUBLNB"]
    charges = []
    for n, code in enumerate(codes):
        amount = Decimal("250.00") + 40 * n
        charge = _eur_charge(n, code, amount)
        charges.append(charge)
        payments_upsert(items=[stripe_source.normalise_charge(charge)], origin="test",
                        entity=company)  # fmt: skip
        payment = Payment.objects.get(external_id=stripe_source.payment_key(charge))
        payment.customer = Customer.objects.get(entity=company, code=code)
        payment.save(update_fields=["customer"])
        invoice = make_invoice(company, code, [("Workshop", "4010", str(amount), "T0")])
        allocate(payment, [(invoice, str(amount))], alice, bob)
    drain_all()
    gross = Decimal(sum(c["amount"] for c in charges)) / 100
    assert sandbox.bank_balance("1150", entity=IE) == gross == Decimal("1240.00")

    state = sandbox.state
    bank_before = state.gl_total("1200", entity=IE)
    fees_before, vat_before = state.gl_total("7510", entity=IE), state.gl_total("2200", entity=IE)
    net = sum(c["balance_transaction"]["net"] for c in charges)
    payout = payout_upsert(
        source="stripe",
        payout=stripe_source.normalise_payout(
            {"id": "po_eur1", "amount": net, "currency": "eur", "status": "paid",
             "arrival_date": int(datetime(2026, 12, 4, tzinfo=UTC).timestamp())}
        ),
    )  # fmt: skip
    pages = [[{**c["balance_transaction"], "source": copy.deepcopy(c)} for c in charges]]
    stripe_payout_reconcile(payout=payout, pages=pages)
    payout = payout_book(payout=payout)
    drain_all()

    fees = Decimal(sum(c["balance_transaction"]["fee_details"][0]["amount"] for c in charges))
    vat = Decimal(sum(c["balance_transaction"]["fee_details"][1]["amount"] for c in charges))
    assert payout.amount == Decimal(net) / 100 == gross - fees / 100 - vat / 100
    assert sandbox.bank_balance("1150", entity=IE) == 0  # Stripe holds nothing for us now
    assert state.gl_total("1200", entity=IE) - bank_before == payout.amount
    assert state.gl_total("7510", entity=IE) - fees_before == fees / 100
    assert state.gl_total("2200", entity=IE) - vat_before == vat / 100
    (fee_journal,) = state.transactions(f"POFEE-{payout.pk}", entity=IE)
    assert fee_journal["currency"] == "EUR"
    assert not state.transactions(f"POUT-{payout.pk}")  # nothing in the UK company's books


def _rate_in_aiq(sandbox, invoice) -> Decimal:
    """AIQ's ExchangeRate of an invoice, as the pull mirrors it (Invoice.exchange_rate)."""
    with sandbox.server.store.transaction() as db:
        row = db.execute(
            "SELECT exchange_rate FROM txn WHERE id = ?", (invoice.aiq_transaction_id,)
        ).fetchone()
    return Decimal(row["exchange_rate"])


def test_a_eur_payment_settled_in_a_gbp_payout_books_the_realised_exchange_loss_once(
    books, entity, alice, bob
):
    """A EUR 200.00 invoice AIQ booked at 1.15 EUR per GBP (173.91 GBP) is paid by card; Stripe
    converts at 0.80 GBP per EUR (160.00 GBP, AIQ's 1.25) and pays it out in GBP: the receipt
    lands in the GBP clearing account at 160.00, the payout empties it, and the 13.91 GBP
    realised loss goes to the FX account in one journal."""
    books.add_gl_account("7900", "Realised exchange gains and losses", "expense")
    ProviderAccount.objects.update(fx_gl_account_code="7900")
    invoice = make_invoice(entity, "QUAYSD", [("Service", "4010", "200.00", "T0")])
    invoice.exchange_rate = _rate_in_aiq(books, invoice)
    invoice.save(update_fields=["exchange_rate"])
    assert invoice.exchange_rate == Decimal("1.15")

    charge = stripe_books._charge(51, "QUAYSD", 20000, 260, 52)
    charge["currency"] = "eur"
    charge["balance_transaction"].update(currency="gbp", amount=16000, net=16000 - 312,
                                         exchange_rate=0.8)  # fmt: skip
    payments_upsert(items=[stripe_source.normalise_charge(charge)], origin="test", entity=entity)
    payment = Payment.objects.get(external_id=stripe_source.payment_key(charge))
    payment.customer = Customer.objects.get(entity=entity, code="QUAYSD")
    payment.save(update_fields=["customer"])
    allocate(payment, [(invoice, "200.00")], alice, bob)
    drain_all()
    # Stripe holds it in GBP: the receipt (EUR 200.00 at 1.25) is 160.00 in GBP clearing
    assert books.bank_balance("1150") == Decimal("160.00")

    # a second EUR payment in the same payout, allocated only after the payout was booked:
    # EUR 100.00 invoice at 1.15 (86.96 GBP), received at 1.25 (80.00 GBP): 6.96 lost
    late_invoice = make_invoice(entity, "QUAYSD", [("Service", "4010", "100.00", "T0")])
    late_invoice.exchange_rate = _rate_in_aiq(books, late_invoice)
    late_invoice.save(update_fields=["exchange_rate"])
    late_charge = stripe_books._charge(52, "QUAYSD", 10000, 130, 26)
    late_charge["currency"] = "eur"
    late_charge["balance_transaction"].update(currency="gbp", amount=8000, net=8000 - 156,
                                              exchange_rate=0.8)  # fmt: skip
    payments_upsert(
        items=[stripe_source.normalise_charge(late_charge)], origin="test", entity=entity
    )
    late = Payment.objects.get(external_id=stripe_source.payment_key(late_charge))
    late.customer = payment.customer
    late.save(update_fields=["customer"])

    loss_before = books.state.gl_total("7900")
    payout = stripe_books._pay_out([charge, late_charge], payout_id="po_fx")
    drain_all()
    assert payout.amount == Decimal("156.88") + Decimal("78.44")
    assert books.bank_balance("1150") == Decimal("-80.00")  # its receipt is not in AIQ yet
    assert books.state.gl_total("7900") - loss_before == Decimal("13.91")  # a loss: a debit
    (journal,) = books.state.transactions(f"FXR-{payout.pk}")
    assert journal["type"] == "GeneralJournal"
    assert payout_book(payout=payout).fx_command_id == payout.fx_command_id  # once
    drain_all()
    assert len(books.state.transactions(f"FXR-{payout.pk}")) == 1

    # the late allocation is confirmed: its own FX journal, once; the payout's is unchanged
    allocate(late, [(late_invoice, "100.00")], alice, bob)
    drain_all()
    plan = late.plans.get()
    assert plan.fx_command.external_reference == f"FXR-{payout.pk}-{plan.pk}"
    assert books.bank_balance("1150") == 0
    assert books.state.gl_total("7900") - loss_before == Decimal("13.91") + Decimal("6.96")
    (late_journal,) = books.state.transactions(f"FXR-{payout.pk}-{plan.pk}")
    assert late_journal["type"] == "GeneralJournal"
    payout_book(payout=payout)  # the payout booked again counts nothing twice
    from payments.services.provider_fx import plan_realised_fx_book

    assert plan_realised_fx_book(plan_id=plan.pk) is None
    drain_all()
    assert books.state.gl_total("7900") - loss_before == Decimal("20.87")
    assert OutboxCommand.objects.filter(external_reference__startswith="FXR-").count() == 2

    from payments.services.provider_report import reconciliation

    report = reconciliation(ProviderAccount.objects.get(), date(2026, 12, 1), date(2026, 12, 31))
    rows = [(r[0], r[2], r[3], r[4]) for r in report.rows]
    assert ("realised FX", "po_fx", Decimal("-13.91"), f"FXR-{payout.pk}") in rows
    assert ("realised FX", "po_fx", Decimal("-6.96"), f"FXR-{payout.pk}-{plan.pk}") in rows
