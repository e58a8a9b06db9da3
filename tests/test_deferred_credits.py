"""What a credit note does to a deferred line's schedule (sales/services/deferred.py), the
BI codes a write-off takes from its invoice's lines, and who sees the BI codes and schedules of
which company: the rules alone, on the database (the worked scenarios against AIQ's books are
tests/test_deferred_revenue.py and tests/test_bi_codes.py)."""

from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse

from ledger.departments import lines_by_department
from ledger.models import (
    CreditNote,
    CreditNoteLine,
    Customer,
    Department,
    DocumentStatus,
    Invoice,
    InvoiceLine,
    OutboxCommand,
)
from payments.services.plans import PlanRefused, plan_approve, plan_propose, plan_submit
from sales.models import DeferredRelease, InvoiceSource, SalesInvoice, SalesInvoiceLine
from sales.services.deferred import deferrals_create, deferred_credit_apply
from tests.companies_support import grant, ireland
from tests.test_plans_factories import make_customer, make_invoice, make_payment, setup_books

pytestmark = pytest.mark.django_db
R = DeferredRelease.State


@pytest.fixture
def deferred_line(entity):
    """A 1,200.00 line deferred over 12 months, posted in AIQ (transaction 501), with its first
    four releases posted; the mirror's invoice and line as a credit note copies them."""
    source = InvoiceSource.objects.create(entity=entity, code="CRM", name="CRM")
    sale = SalesInvoice.objects.create(
        entity=entity, source=source, external_reference="LIC-9", customer_code="ACME",
        customer_name="Acme", invoice_date=date(2026, 1, 15), currency="GBP",
        invoice_type="item", net_amount=Decimal("1200.00"), tax_amount=Decimal("240.00"),
        gross_amount=Decimal("1440.00"), content_hash="x", state=SalesInvoice.State.POSTED,
        aiq_transaction_id=501,
    )  # fmt: skip
    SalesInvoiceLine.objects.create(
        invoice=sale, line_number=1, net_amount=Decimal("1200.00"), tax_amount=Decimal("240.00"),
        gl_account_code="4000", department="NS", deferred_months=12,
        deferred_gl_account_code="2300",
    )  # fmt: skip
    [schedule] = deferrals_create([sale])
    schedule.releases.filter(number__lte=4).update(state=R.RELEASED)
    customer = Customer.objects.create(entity=entity, code="ACME", name="Acme", currency="GBP")
    invoice = Invoice.objects.create(
        entity=entity, customer=customer, aiq_transaction_id=501, currency="GBP",
        invoice_date=date(2026, 1, 15), net_amount=Decimal("1200.00"),
        tax_amount=Decimal("240.00"), gross_amount=Decimal("1440.00"),
        outstanding_amount=Decimal("1440.00"),
    )  # fmt: skip
    line = InvoiceLine.objects.create(
        invoice=invoice, line_number=1, gl_account_code="2300", department_id="NS",
        net_amount=Decimal("1200.00"), tax_amount=Decimal("240.00"),
        gross_amount=Decimal("1440.00"),
    )  # fmt: skip
    return schedule, invoice, line


def _credit(invoice, line, net: str, number: int) -> CreditNote:
    net = Decimal(net)
    note = CreditNote.objects.create(
        entity=invoice.entity, customer=invoice.customer, invoice=invoice, currency="GBP",
        credit_date=date(2026, 5, 10), status=DocumentStatus.POSTED, net_amount=net,
        gross_amount=net, external_reference=f"CN-{number}",
    )  # fmt: skip
    CreditNoteLine.objects.create(
        credit_note=note, line_number=1, invoice_line=line, gl_account_code="2300",
        department_id="NS", net_amount=net, gross_amount=net,
    )  # fmt: skip
    return note


def test_a_credit_within_what_is_left_is_spread_over_the_remaining_months(deferred_line):
    schedule, invoice, line = deferred_line
    note = _credit(invoice, line, "200.00", 1)
    deferred_credit_apply(note)
    deferred_credit_apply(note)  # a second run (the sweeper) changes nothing
    left = schedule.releases.filter(state=R.SCHEDULED).order_by("number")
    assert [r.amount for r in left] == [Decimal("75.00")] * 8
    assert not schedule.releases.filter(kind=DeferredRelease.Kind.REVERSAL).exists()
    schedule.refresh_from_db()
    assert schedule.state == "active" and schedule.credit_notes == [note.pk]


def test_a_credit_beyond_what_is_left_cancels_it_and_reverses_the_rest(deferred_line):
    schedule, invoice, line = deferred_line
    deferred_credit_apply(_credit(invoice, line, "1000.00", 2))
    assert schedule.releases.filter(state=R.CANCELLED).count() == 8
    reversal = schedule.releases.get(kind=DeferredRelease.Kind.REVERSAL)
    assert (reversal.amount, reversal.state) == (Decimal("200.00"), R.QUEUED)
    journal = reversal.command.payload["lines"]
    assert [(x["gl_account_code"], x["debit"], x["department_id"]) for x in journal] == [
        ("4000", "200.00", "NS"),  # revenue already released is taken back
        ("2300", "0", "NS"),
    ]


def test_a_write_off_carries_its_invoice_lines_bi_codes(deferred_line):
    _, invoice, _ = deferred_line
    InvoiceLine.objects.create(
        invoice=invoice, line_number=2, department_id="SS", net_amount=Decimal("480.00"),
        gross_amount=Decimal("480.00"),
    )  # fmt: skip
    lines = lines_by_department(invoice, Decimal("10.00"), "GBP", "8100", "Write-off")
    assert [(x["department_id"], x["amount"]) for x in lines] == [("NS", "7.50"), ("SS", "2.50")]


def test_a_clerk_of_another_company_sees_neither_its_bi_codes_nor_its_schedules(
    deferred_line, entity, alice, bob, client
):
    schedule, _, _ = deferred_line
    ns = Department.objects.create(entity=entity, department_id="NS", name="North subscriptions")
    ie = ireland()
    Department.objects.create(entity=ie, department_id="IE1", name="Dublin services")
    grant(alice, ie)
    grant(bob, ie)
    client.force_login(alice)
    page = client.get(reverse("ledger:departments")).content.decode()
    assert "Dublin services" in page and "North subscriptions" not in page
    assert client.get(reverse("sales:deferred_schedule", args=[schedule.pk])).status_code == 404
    assert "LIC-9" not in client.get(reverse("sales:deferred")).content.decode()
    client.force_login(bob)
    response = client.post(
        reverse("ledger:department_update", args=[ns.pk]), {"name": "x", "action": "retire"}
    )
    assert response.status_code == 404
    assert not OutboxCommand.objects.filter(kind="update_department").exists()


def test_an_approved_write_off_carries_the_bi_codes_and_a_retired_one_is_refused(
    entity, alice, bob
):
    setup_books(entity)
    acme = make_customer(entity)
    Department.objects.create(entity=entity, department_id="NS", name="North subscriptions")
    retired = Department.objects.create(
        entity=entity, department_id="SS", name="South", active=True
    )
    invoices = []
    for _ in range(2):
        invoice = make_invoice(acme, "100.00")
        for number, (code, gross) in enumerate((("NS", "75.00"), ("SS", "25.00")), start=1):
            InvoiceLine.objects.create(
                invoice=invoice, line_number=number, department_id=code,
                net_amount=Decimal(gross), gross_amount=Decimal(gross),
            )  # fmt: skip
        invoices.append(invoice)

    def approve(invoice):
        plan = plan_propose(
            payment=make_payment(entity, "96.00", customer=acme),
            lines=[{"invoice_id": invoice.pk, "amount": "96.00", "write_off_amount": "4.00",
                    "write_off_gl_account_code": "7900"}],
            actor=alice,
        )  # fmt: skip
        return plan_approve(plan=plan_submit(plan=plan, actor=alice), actor=bob)

    approve(invoices[0])
    journal = OutboxCommand.objects.get(kind="post_write_off")
    assert [(x["department_id"], x["amount"]) for x in journal.payload["lines"]] == [
        ("NS", "3.00"),
        ("SS", "1.00"),
    ]
    retired.active = False
    retired.save()
    with pytest.raises(PlanRefused, match="BI code SS .* is retired"):
        approve(invoices[1])
