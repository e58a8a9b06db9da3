"""Back-to-back invoicing, as worked scenarios against the sandbox's books.

A week of agency labour (cost 1,000.00 GBP, BI code NV) is bought from the agency and sold on
to the customer with a 25 % mark-up: a purchase invoice in AIQ's purchases ledger and a sales
invoice in its sales ledger, linked, both on department NV, each exactly once. When AIQ refuses
the purchase half, the sales half is held in the outbox (never half a pair without a person
seeing it) and the pairs screen says so; a retried purchase releases the sale by itself.
"""

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from ledger.aiq.client import AiqClient
from ledger.models import OutboxCommand
from ledger.outbox.services import outbox_retry
from ledger.sync.pull import sync_departments, sync_tax_codes
from sales.models import BackToBackPair, BackToBackRule, PurchaseInvoice, SalesInvoice
from sales.services.back_to_back import BackToBackLine, back_to_back_submit
from staff.models import AuditEntry
from tests.sales_support import crm_source, drain_all

C = OutboxCommand.State


@pytest.fixture(autouse=True)
def _quick_outbox(settings):
    settings.OUTBOX_SETTLE_SECONDS = 0


@pytest.fixture
def labour(entity, aiq_sandbox):
    """The rule: agency labour bought from AGENCY at 20 % VAT, sold at cost + 25 % (20 % VAT),
    on the company's purchases and services accounts; AIQ's tax codes and BI codes pulled."""
    client = AiqClient.for_entity(entity)
    sync_tax_codes(client, entity)
    sync_departments(client, entity)
    return BackToBackRule.objects.create(
        entity=entity,
        code="LABOUR",
        name="Agency labour",
        supplier_code="AGENCY",
        markup_percent=Decimal("25"),
        source=crm_source(entity),
        purchase_gl_account_code="5000",
        purchase_tax_code="T1",
        sales_gl_account_code="4010",
        sales_tax_code="T1",
    )


def week(reference="TS-1001", cost="1000.00", department="NV") -> BackToBackLine:
    return BackToBackLine(
        reference=reference,
        customer_code="ACME",
        customer_name="Acme Widgets Ltd",
        description="Agency labour, week 47 (40 h)",
        cost_net=Decimal(cost),
        currency="GBP",
        invoice_date=date(2026, 11, 20),
        department=department,
    )


def in_books(sandbox, reference: str, entity: str = "demo") -> list[dict]:
    return [
        {**t, "account": sandbox.state.account_code(t["account_id"])}
        for t in sandbox.state.transactions(reference, entity)
    ]


def test_one_line_posts_a_purchase_and_a_marked_up_sale_once_each_with_its_bi_code(
    labour, aiq_sandbox, alice
):
    pair = back_to_back_submit(rule=labour, line=week(), actor=alice)
    assert pair.sale_net == Decimal("1250.00")
    assert pair.purchase.command.kind == "purchase_invoice"
    assert pair.sales_invoice.command.depends_on_id == pair.purchase.command_id

    drain_all()

    [bought] = in_books(aiq_sandbox, "TS-1001-P")
    [sold] = in_books(aiq_sandbox, "TS-1001-S")
    assert (bought["type"], bought["account"]) == ("PurchasesInvoice", ("Purchases", "AGENCY"))
    assert bought["amount"] == Decimal("1200.00")  # 1,000.00 + 20 % VAT
    assert (sold["type"], sold["account"]) == ("SalesInvoice", ("Sales", "ACME"))
    assert sold["amount"] == Decimal("1500.00")  # 1,250.00 + 20 % VAT
    purchase_lines = aiq_sandbox.state.lines(bought["transaction_id"])
    # creditors credited with the gross; purchases (on NV) and input VAT debited
    assert {(x["GLAccountCode"], x["Amount"]) for x in purchase_lines} == {
        ("2100", Decimal("-1200.00")),
        ("5000", Decimal("1000.00")),
        ("2200", Decimal("200.00")),
    }
    assert [x["DepartmentID"] for x in purchase_lines if x["GLAccountCode"] == "5000"] == ["NV"]
    sales_lines = aiq_sandbox.state.lines(sold["transaction_id"])
    assert [x["DepartmentID"] for x in sales_lines if x["GLAccountCode"] == "4010"] == ["NV"]

    pair.refresh_from_db()
    assert pair.purchase.state == PurchaseInvoice.State.POSTED
    assert pair.purchase.aiq_transaction_id == bought["transaction_id"]
    assert pair.sales_invoice.state == SalesInvoice.State.POSTED
    assert pair.sales_invoice.aiq_transaction_id == sold["transaction_id"]
    assert AuditEntry.objects.filter(action="back_to_back.submit").count() == 1

    # the same line again: the same pair, nothing new queued or written
    commands = OutboxCommand.objects.count()
    assert back_to_back_submit(rule=labour, line=week(), actor=alice).pk == pair.pk
    assert OutboxCommand.objects.count() == commands
    drain_all()
    assert len(in_books(aiq_sandbox, "TS-1001-P")) == len(in_books(aiq_sandbox, "TS-1001-S")) == 1
    with pytest.raises(ValidationError, match="other figures"):
        back_to_back_submit(rule=labour, line=week(cost="1100.00"), actor=alice)


def test_aiq_refusing_the_purchase_holds_the_sale_on_screen_until_the_purchase_is_retried(
    labour, aiq_sandbox, alice, bob, client
):
    # the supplier is checked and queued; before the outbox sends it, an AIQ user makes the
    # agency inactive in AIQ: AIQ refuses the purchase
    pair = back_to_back_submit(rule=labour, line=week("TS-2001"), actor=alice)
    aiq_sandbox.set_account_active("AGENCY", False)

    drain_all()

    purchase_command = OutboxCommand.objects.get(pk=pair.purchase.command_id)
    sales_command = OutboxCommand.objects.get(pk=pair.sales_invoice.command_id)
    assert purchase_command.state == C.FAILED
    assert (sales_command.state, sales_command.last_error_code) == (C.NEEDS_PERSON, "DEPENDENCY")
    # neither half is in AIQ: nothing was half-posted
    assert in_books(aiq_sandbox, "TS-2001-P") == in_books(aiq_sandbox, "TS-2001-S") == []
    pair.refresh_from_db()
    assert pair.purchase.state == PurchaseInvoice.State.FAILED

    client.force_login(alice)
    page = client.get(reverse("sales:back_to_back"), {"show": "open"}).content.decode()
    assert "TS-2001" in page
    assert "Refused by AIQ" in page  # the purchase half
    assert "Held: waits for the other half" in page  # the sales half
    assert "1,000.00 GBP" in page and "1,250.00 GBP" in page and "20/11/2026" in page

    assert "AGENCY" in purchase_command.last_error_message  # AIQ's own message, shown
    assert "AGENCY" in page and "inactive" in page

    # a person activates the supplier in AIQ and retries the purchase: the sale follows
    aiq_sandbox.set_account_active("AGENCY", True)
    outbox_retry(command=purchase_command, actor=bob)
    drain_all()

    assert len(in_books(aiq_sandbox, "TS-2001-P")) == 1
    assert len(in_books(aiq_sandbox, "TS-2001-S")) == 1
    pair.refresh_from_db()
    assert pair.purchase.state == PurchaseInvoice.State.POSTED
    assert pair.sales_invoice.state == SalesInvoice.State.POSTED
    page = client.get(reverse("sales:back_to_back"), {"show": "open"}).content.decode()
    assert "TS-2001" not in page


def test_a_sale_aiq_refuses_after_its_purchase_is_posted_is_shown_for_a_person(
    labour, aiq_sandbox, alice, client
):
    """The other way round: the purchase is in AIQ, the sale is refused (its revenue account
    does not exist in AIQ). The pair is half in AIQ: the screen shows it, with AIQ's message,
    until a person acts; nothing is posted twice."""
    labour.sales_gl_account_code = "4999"
    labour.save()
    pair = back_to_back_submit(rule=labour, line=week("TS-7001"), actor=alice)
    drain_all()

    assert len(in_books(aiq_sandbox, "TS-7001-P")) == 1
    assert in_books(aiq_sandbox, "TS-7001-S") == []
    pair.refresh_from_db()
    assert pair.purchase.state == PurchaseInvoice.State.POSTED
    assert pair.sales_invoice.state == SalesInvoice.State.FAILED
    assert "4999" in pair.sales_invoice.error

    client.force_login(alice)
    page = client.get(reverse("sales:back_to_back")).content.decode()
    assert "TS-7001" in page and "Posted in AIQ" in page and "Refused by AIQ" in page
    assert "4999" in page


def test_a_supplier_aiq_lacks_has_made_inactive_or_keeps_in_another_currency_is_refused_first(
    labour, aiq_sandbox, alice
):
    """Checked against the supplier mirror (pulled with GetSupplierList) before anything is
    stored; a code the mirror lacks is asked of AIQ once (GetSupplier), so a supplier set up
    in AIQ since the last pull is accepted."""
    from ledger.models import Supplier
    from ledger.sync.pull import sync_suppliers

    entity = labour.entity
    aiq_sandbox.add_supplier("EUROTEMP", "Euro Temps BV", "EUR")
    aiq_sandbox.add_supplier("OLDAGENCY", "Old Agency Ltd", "GBP")
    aiq_sandbox.set_account_active("OLDAGENCY", False)
    sync_suppliers(AiqClient.for_entity(entity), entity)
    mirrored = dict(Supplier.objects.filter(entity=entity).values_list("code", "active"))
    assert mirrored["AGENCY"] is True and mirrored["OLDAGENCY"] is False
    assert Supplier.objects.get(entity=entity, code="EUROTEMP").currency == "EUR"

    cases = [
        ("TEMPSTAFF", r"Supplier TEMPSTAFF does not exist in .*'s AIQ: set it up in AIQ"),
        ("OLDAGENCY", r"Supplier OLDAGENCY \(Old Agency Ltd\) is inactive"),
        ("EUROTEMP", r"Supplier EUROTEMP is a EUR account .*; the purchase invoice is in GBP"),
    ]
    for number, (code, message) in enumerate(cases):
        labour.supplier_code = code
        labour.save()
        with pytest.raises(ValidationError, match=message):
            back_to_back_submit(rule=labour, line=week(f"TS-600{number}"), actor=alice)
    assert not BackToBackPair.objects.exists() and not PurchaseInvoice.objects.exists()
    assert not OutboxCommand.objects.exists()
    assert aiq_sandbox.server.calls().get("GetSupplier") == 1  # TEMPSTAFF, not in the mirror

    # set up in AIQ after the pull: asked of AIQ, mirrored, and the pair goes through
    aiq_sandbox.add_supplier("TEMPSTAFF", "Temp Staff Ltd", "GBP")
    labour.supplier_code = "TEMPSTAFF"
    labour.save()
    pair = back_to_back_submit(rule=labour, line=week("TS-6010"), actor=alice)
    drain_all()
    [bought] = in_books(aiq_sandbox, "TS-6010-P")
    assert bought["account"] == ("Purchases", "TEMPSTAFF")
    pair.refresh_from_db()
    assert pair.purchase.state == PurchaseInvoice.State.POSTED
    assert Supplier.objects.filter(entity=entity, code="TEMPSTAFF", active=True).exists()


def test_a_retired_bi_code_or_rule_is_refused_before_anything_is_stored(labour, aiq_sandbox, alice):
    from ledger.models import Department

    Department.objects.filter(entity=labour.entity, department_id="SH").update(active=False)
    with pytest.raises(ValidationError, match=r"BI code SH \(South hardware\) is retired"):
        back_to_back_submit(rule=labour, line=week("TS-3001", department="SH"), actor=alice)
    labour.active = False
    labour.save()
    with pytest.raises(ValidationError, match="retired"):
        back_to_back_submit(rule=labour, line=week("TS-3002"), actor=alice)
    assert not BackToBackPair.objects.exists() and not PurchaseInvoice.objects.exists()
    assert not OutboxCommand.objects.exists()


def test_the_screen_form_sends_one_line_and_refuses_a_bad_amount_without_storing(
    labour, aiq_sandbox, alice, client
):
    client.force_login(alice)
    form = {
        "rule": labour.pk, "reference": "TS-4001", "customer_code": "acme",
        "customer_name": "Acme Widgets Ltd", "description": "Agency labour, week 48",
        "cost_net": "1,000.00", "currency": "GBP", "invoice_date": "27/11/2026",
        "department": "nv",
    }  # fmt: skip
    bad = client.post(
        reverse("sales:back_to_back_new"), {**form, "cost_net": "12.345"}, follow=True
    )
    assert "Nothing was sent" in bad.content.decode() and not BackToBackPair.objects.exists()

    page = client.post(reverse("sales:back_to_back_new"), form, follow=True).content.decode()
    pair = BackToBackPair.objects.get()
    assert (pair.customer_code, pair.department, pair.cost_net) == ("ACME", "NV", Decimal("1000"))
    assert "TS-4001: purchase from AGENCY and sale to ACME queued for AIQ" in page
    assert "27/11/2026" in page and "1,250.00 GBP" in page


@pytest.mark.parametrize(
    "dropped", ["SaveInvoiceGetBackInvoiceID", "PostInvoiceGetBackTransactionID"]
)
def test_a_purchase_whose_answer_is_lost_after_commit_is_in_aiq_once(
    labour, aiq_sandbox, alice, dropped
):
    """Lost after the save: the read-back finds the saved invoice and posts it (never a second
    save); lost after the post: the read-back finds the posted one and confirms it."""
    aiq_sandbox.faults.update(drop_next=1, ops=[dropped])
    pair = back_to_back_submit(rule=labour, line=week("TS-5001"), actor=alice)
    drain_all()
    assert aiq_sandbox.faults.stats.drops == 1
    documents = aiq_sandbox.state._rows(
        "SELECT status FROM invoice WHERE entity_id = 'demo' AND external_reference = ?",
        ("TS-5001-P",),
    )
    assert [d["status"] for d in documents] == ["posted"]
    assert len(in_books(aiq_sandbox, "TS-5001-P")) == len(in_books(aiq_sandbox, "TS-5001-S")) == 1
    pair.refresh_from_db()
    assert pair.purchase.state == PurchaseInvoice.State.POSTED
    assert pair.sales_invoice.state == SalesInvoice.State.POSTED
