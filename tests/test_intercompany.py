"""Intercompany invoicing, as worked scenarios against the sandbox's books of two companies.

Demo Trading Ltd (GBP, Integration 1.1) sells to its Irish sister company (EUR, 2.0): AIQ lists
the connection (demo's customer DEMOIE is demo-ie's supplier DEMOUK); the sale is a sales
invoice in demo and the matching purchase invoice in demo-ie, linked, exactly once each, even
when AIQ's answer to one of the writes is lost after it committed.
"""

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from ledger.aiq.client import AiqClient
from ledger.models import Entity, InterCompanyConnection, OutboxCommand
from ledger.sync.intercompany import sync_intercompany_connections
from sales.models import InterCompanySale, PurchaseInvoice, SalesInvoice
from sales.normalised import NormalisedInvoice, NormalisedLine
from sales.services.intercompany import intercompany_sale_submit
from sales.services.invoices import sales_invoice_release
from tests.sales_support import aiq_set_credit_limit, crm_source, drain_all


@pytest.fixture(autouse=True)
def _quick_outbox(settings):
    settings.OUTBOX_SETTLE_SECONDS = 0


@pytest.fixture
def ireland(db):
    return Entity.objects.create(
        name="Demo Trading Ireland", company_id="demo-ie", region="sandbox", api_version="2.0",
        base_currency="EUR", credentials_key="DEMO",
    )  # fmt: skip


@pytest.fixture
def connection(entity, ireland, aiq_sandbox) -> InterCompanyConnection:
    assert sync_intercompany_connections(AiqClient.for_entity(entity), entity) == 1
    return InterCompanyConnection.objects.get(entity=entity)


def recharge(reference="IC-1001", net="800.00") -> NormalisedInvoice:
    return NormalisedInvoice(
        external_reference=reference,
        customer_code="DEMOIE",
        customer_name="Demo Trading Ireland DAC",
        invoice_date=date(2026, 11, 25),
        currency="EUR",
        description="Management recharge November",
        lines=[
            NormalisedLine(
                net_amount=Decimal(net), tax_amount=Decimal("0.00"), tax_code="T0",
                description="Shared finance team, November", department="NV",
            )
        ],
    )  # fmt: skip


def test_the_pull_mirrors_the_valid_connection_with_both_sides(connection, ireland):
    assert (connection.local_account_code, connection.local_currency) == ("DEMOIE", "EUR")
    assert (connection.remote_company_id, connection.remote_account_code) == ("demo-ie", "DEMOUK")
    assert connection.remote_currency == "EUR" and connection.remote_base_currency == "EUR"
    assert connection.valid and connection.remote_account_id > 0


@pytest.mark.parametrize(
    "dropped",
    ["CreateBatchSalesInvoiceGetBackTransactionID", "PostInvoiceGetBackTransactionID"],
    ids=["sale's answer lost", "purchase's answer lost"],
)
def test_both_halves_once_each_in_each_company_when_one_answer_is_lost_after_commit(
    connection, ireland, aiq_sandbox, alice, client, dropped
):
    sale = intercompany_sale_submit(
        connection=connection, source=crm_source(connection.entity), invoice=recharge(),
        actor=alice,
    )  # fmt: skip
    assert sale.purchase.entity == ireland and sale.purchase.supplier_code == "DEMOUK"
    assert sale.purchase.command.depends_on_id == sale.sales_invoice.command_id

    client.force_login(alice)
    page = client.get(reverse("sales:intercompany")).content.decode()
    assert "IC-1001" in page and "Waiting for the other half" in page  # unmatched, on screen
    assert "800.00 EUR" in page and "25/11/2026" in page

    aiq_sandbox.faults.update(drop_next=1, ops=[dropped])
    drain_all()
    assert aiq_sandbox.faults.stats.drops == 1

    [sold] = aiq_sandbox.state.transactions("IC-1001", entity="demo")
    [bought] = aiq_sandbox.state.transactions("IC-1001", entity="demo-ie")
    assert (sold["type"], sold["amount"], sold["currency"]) == (
        "SalesInvoice", Decimal("800.00"), "EUR",
    )  # fmt: skip
    assert (bought["type"], bought["amount"], bought["currency"]) == (
        "PurchasesInvoice", Decimal("800.00"), "EUR",
    )  # fmt: skip
    assert aiq_sandbox.state.account_code(sold["account_id"]) == ("Sales", "DEMOIE")
    assert aiq_sandbox.state.account_code(bought["account_id"]) == ("Purchases", "DEMOUK")

    sale.refresh_from_db()
    assert sale.sales_invoice.state == SalesInvoice.State.POSTED
    assert sale.sales_invoice.aiq_transaction_id == sold["transaction_id"]
    assert sale.purchase.state == PurchaseInvoice.State.POSTED
    assert sale.purchase.aiq_transaction_id == bought["transaction_id"]
    page = client.get(reverse("sales:intercompany")).content.decode()
    assert "IC-1001" not in page and "No unmatched halves" in page
    assert "IC-1001" in client.get(reverse("sales:intercompany"), {"show": "all"}).content.decode()

    # sent again: the same sale, nothing new
    commands = OutboxCommand.objects.count()
    again = intercompany_sale_submit(
        connection=connection, source=crm_source(connection.entity, code="CRM2"),
        invoice=recharge(), actor=alice,
    )  # fmt: skip
    assert again.pk == sale.pk and OutboxCommand.objects.count() == commands


def test_a_sale_that_does_not_fit_the_connection_is_refused_and_nothing_is_stored(
    connection, ireland, alice
):
    source = crm_source(connection.entity)
    wrong_customer = recharge()
    wrong_customer.customer_code = "ACME"
    with pytest.raises(ValidationError, match="connection's customer is DEMOIE"):
        intercompany_sale_submit(
            connection=connection, source=source, invoice=wrong_customer, actor=alice
        )
    in_pounds = recharge()
    in_pounds.currency = "GBP"
    with pytest.raises(ValidationError, match="supplier account is in EUR"):
        intercompany_sale_submit(
            connection=connection, source=source, invoice=in_pounds, actor=alice
        )
    connection.valid = False
    connection.save()
    with pytest.raises(ValidationError, match="no longer lists"):
        intercompany_sale_submit(
            connection=connection, source=source, invoice=recharge(), actor=alice
        )
    assert not InterCompanySale.objects.exists() and not SalesInvoice.objects.exists()
    assert not PurchaseInvoice.objects.exists() and not OutboxCommand.objects.exists()


def test_a_purchase_to_a_supplier_account_the_buyer_made_inactive_is_refused_first(
    connection, ireland, aiq_sandbox, alice
):
    """The buyer's half goes to its supplier account for the seller (DEMOUK in demo-ie): read
    from AIQ (GetSupplier, the mirror not knowing it yet) and refused when inactive there,
    before either half is stored."""
    aiq_sandbox.set_account_active("DEMOUK", False, entity="demo-ie")
    with pytest.raises(
        ValidationError, match=r"Supplier DEMOUK .* is inactive in Demo Trading Ireland's AIQ"
    ):
        intercompany_sale_submit(
            connection=connection, source=crm_source(connection.entity), invoice=recharge(),
            actor=alice,
        )  # fmt: skip
    assert not InterCompanySale.objects.exists() and not SalesInvoice.objects.exists()
    assert not PurchaseInvoice.objects.exists() and not OutboxCommand.objects.exists()
    assert aiq_sandbox.state.transactions("IC-1001", entity="demo") == []


def test_the_screen_form_sends_a_sale_to_the_group_company(connection, ireland, alice, client):
    source = crm_source(connection.entity)
    client.force_login(alice)
    form = {
        "connection": connection.pk, "source": source.pk, "reference": "IC-2001",
        "invoice_date": "30/11/2026", "description": "IT recharge", "net_amount": "1,500.00",
        "tax_code": "T0", "tax_amount": "", "department": "",
    }  # fmt: skip
    page = client.post(reverse("sales:intercompany_new"), form, follow=True).content.decode()
    sale = InterCompanySale.objects.get()
    assert (sale.sales_invoice.gross_amount, sale.purchase.gross_amount) == (
        Decimal("1500.00"), Decimal("1500.00"),
    )  # fmt: skip
    assert sale.purchase.entity == ireland and sale.sales_invoice.currency == "EUR"
    assert "IC-2001" in page and "1,500.00 EUR" in page and "30/11/2026" in page


def test_a_sale_held_by_the_credit_check_holds_the_purchase_until_an_approver_releases_it(
    connection, ireland, aiq_sandbox, alice, bob, client
):
    aiq_set_credit_limit(AiqClient.for_entity(connection.entity), "DEMOIE", Decimal("100.00"))
    sale = intercompany_sale_submit(
        connection=connection, source=crm_source(connection.entity), invoice=recharge("IC-3001"),
        actor=alice,
    )  # fmt: skip
    assert sale.sales_invoice.state == SalesInvoice.State.HELD_CREDIT
    assert sale.purchase.command is None  # nothing for the buyer's AIQ while the sale is held
    client.force_login(alice)
    page = client.get(reverse("sales:intercompany")).content.decode()
    assert "Held: credit check" in page and "Waiting for the other half" in page
    drain_all()
    assert aiq_sandbox.state.transactions("IC-3001", entity="demo-ie") == []

    sales_invoice_release(invoice=sale.sales_invoice, actor=bob)
    drain_all()

    assert len(aiq_sandbox.state.transactions("IC-3001", entity="demo")) == 1
    assert len(aiq_sandbox.state.transactions("IC-3001", entity="demo-ie")) == 1
    sale.refresh_from_db()
    assert sale.purchase.state == PurchaseInvoice.State.POSTED
    assert sale.purchase.command.depends_on_id == sale.sales_invoice.command_id
