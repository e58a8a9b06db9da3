"""Deferred revenue in another currency than the company's, as worked scenarios against the
sandbox's books. AIQ's general journal has no currency: it is kept in the company's base
currency. So a EUR licence sold by the GBP company puts its net on the deferred revenue account
at AIQ's rate of the invoice (1.15 EUR per GBP in the sandbox), and the twelve releases move that
GBP amount to revenue, month by month; a credit note in May ends it, and both accounts are back
at zero in GBP. The EUR company's GBP line is the same the other way round (0.87 GBP per EUR)."""

from datetime import date
from decimal import Decimal

import pytest
from django.db import transaction
from django.urls import reverse

from ledger.aiq.client import AiqClient
from ledger.models import Entity, Invoice, OutboxCommand
from ledger.outbox.services import outbox_enqueue
from ledger.sync.pull import sync_departments
from payments.services.credit_notes import credit_lines_for, credit_note_draft, credit_note_payload
from sales.models import (
    CreditAction,
    DeferredRelease,
    DeferredRevenueSchedule,
    InvoiceType,
    SalesInvoice,
    SalesSettings,
)
from sales.normalised import NormalisedInvoice, NormalisedLine
from sales.services.deferred import deferred_releases_run, month_end
from sales.services.invoices import sales_invoice_submit
from staff.models import AuditEntry
from tests.sales_support import crm_source, drain_all

DEFERRED, REVENUE = "2300", "4000"
R = DeferredRelease.State
CENT = Decimal("0.01")


@pytest.fixture(autouse=True)
def _quick_outbox(settings):
    settings.OUTBOX_SETTLE_SECONDS = 0


def _licence(ref: str, customer: str, currency: str, department: str = "") -> NormalisedInvoice:
    return NormalisedInvoice(
        external_reference=ref,
        customer_code=customer,
        customer_name=customer.title(),
        invoice_date=date(2026, 1, 15),
        currency=currency,
        lines=[
            NormalisedLine(
                net_amount=Decimal("1200.00"),
                tax_amount=Decimal("0.00"),
                tax_code="T0",
                description="Annual licence",
                department=department,
                gl_account_code=REVENUE,
                deferred_months=12,
            )
        ],
    )


def _journal_lines(sandbox, reference: str, entity: str) -> list[tuple]:
    [journal] = [
        t
        for t in sandbox.state.transactions(reference, entity=entity)
        if t["type"] == "GeneralJournal"
    ]
    return sorted(
        (x["GLAccountCode"], x["Amount"]) for x in sandbox.state.lines(journal["transaction_id"])
    )


def _credit_in_full(entity, row: SalesInvoice, reference: str, day: date):
    invoice = Invoice.objects.get(entity=entity, aiq_transaction_id=row.aiq_transaction_id)
    with transaction.atomic():
        note = credit_note_draft(
            invoice=invoice,
            reference=reference,
            lines=credit_lines_for(invoice=invoice),
            reason="Licence cancelled",
        )
        note.credit_date = day
        note.save(update_fields=["credit_date"])
        outbox_enqueue(
            entity=entity,
            kind=OutboxCommand.Kind.CREATE_CREDIT_NOTE,
            payload=credit_note_payload(note),
            external_reference=note.external_reference,
        )
    drain_all()
    return note


def test_a_eur_licence_of_the_gbp_company_is_released_in_gbp_at_aiqs_rate_then_credited_in_may(
    entity, aiq_sandbox, alice, client
):
    SalesSettings.objects.create(
        entity=entity, deferred_revenue_gl_account_code=DEFERRED, credit_action=CreditAction.WARN
    )
    sync_departments(AiqClient.for_entity(entity), entity)
    deferred_before = aiq_sandbox.state.gl_total_base(DEFERRED)
    revenue_before = aiq_sandbox.state.gl_total_base(REVENUE)
    source = crm_source(entity, invoice_type=InvoiceType.ITEM)
    row = sales_invoice_submit(
        entity=entity,
        source=source,
        invoice=_licence("LIC-EUR", "TULIP", "EUR", department="NS"),
        actor=alice,
    )
    drain_all()
    row.refresh_from_db()
    assert row.state == SalesInvoice.State.POSTED
    # AIQ booked the EUR 1,200.00 at its rate of the invoice: GBP 1,043.48 on deferred revenue
    [posted] = aiq_sandbox.state.transactions("LIC-EUR")
    rate = Decimal(
        aiq_sandbox.state._rows(
            "SELECT exchange_rate FROM txn WHERE id = ?", (posted["transaction_id"],)
        )[0]["exchange_rate"]
    )
    assert rate == Decimal("1.15")
    base = (Decimal("1200.00") / rate).quantize(CENT)
    assert base == Decimal("1043.48")
    assert aiq_sandbox.state.gl_total_base(DEFERRED) - deferred_before == -base

    # the schedule waits for AIQ's rate; the first run reads it and makes twelve GBP releases
    schedule = DeferredRevenueSchedule.objects.get()
    assert schedule.waiting_for_rate and not schedule.releases.exists()
    assert (schedule.currency, schedule.release_currency) == ("EUR", "GBP")
    client.force_login(alice)
    assert "Waiting for AIQ's rate" in client.get(reverse("sales:deferred")).content.decode()

    releases_run = 0
    for month in range(1, 5):
        day = month_end(date(2026, 1, 15), month - 1)
        releases_run += deferred_releases_run(today=day)
        drain_all()
    assert releases_run == 4
    schedule.refresh_from_db()
    assert (schedule.exchange_rate, schedule.base_amount) == (rate, base)
    releases = list(schedule.releases.filter(kind="release").order_by("number"))
    assert len(releases) == 12 and sum(r.amount for r in releases) == base
    assert {r.amount for r in releases} == {Decimal("86.96"), Decimal("86.95")}
    for release in releases[:4]:
        # each in AIQ once, in GBP: Dr deferred revenue, Cr revenue
        assert _journal_lines(aiq_sandbox, release.external_reference, "demo") == [
            (DEFERRED, release.amount),
            (REVENUE, -release.amount),
        ]
        command = OutboxCommand.objects.get(pk=release.command_id)
        assert command.payload["currency"] == "GBP"
    released = sum(r.amount for r in releases[:4])
    assert aiq_sandbox.state.gl_total_base(REVENUE) - revenue_before == -released
    assert AuditEntry.objects.filter(action="deferred_revenue.rate").count() == 1

    # 10 May: the whole line is credited (EUR 1,200.00, AIQ books it at GBP 1,043.48)
    note = _credit_in_full(entity, row, "CN-LIC-EUR", date(2026, 5, 10))
    schedule.refresh_from_db()
    assert schedule.state == DeferredRevenueSchedule.State.CREDITED
    states = dict(schedule.releases.filter(kind="release").values_list("number", "state"))
    assert states == {n: R.RELEASED if n <= 4 else R.CANCELLED for n in range(1, 13)}
    reversal = schedule.releases.get(kind=DeferredRelease.Kind.REVERSAL)
    assert (reversal.amount, reversal.state) == (released, R.RELEASED)
    assert _journal_lines(aiq_sandbox, f"DRX-{schedule.pk}-{note.pk}", "demo") == [
        (DEFERRED, -released),
        (REVENUE, released),
    ]
    for month in range(5, 13):
        assert deferred_releases_run(today=month_end(date(2026, 1, 15), month - 1)) == 0
    # AIQ's books in GBP: both accounts back where they were
    assert aiq_sandbox.state.gl_total_base(DEFERRED) == deferred_before
    assert aiq_sandbox.state.gl_total_base(REVENUE) == revenue_before

    page = client.get(reverse("sales:deferred_schedule", args=[schedule.pk])).content.decode()
    assert "1,200.00 EUR" in page and "1,043.48 GBP" in page and "1.15 EUR per GBP" in page


def test_the_eur_companys_gbp_line_is_released_in_eur(db, aiq_sandbox, alice):
    ireland = Entity.objects.create(
        name="Demo Trading Ireland", company_id="demo-ie", region="sandbox", api_version="2.0",
        base_currency="EUR", credentials_key="DEMO",
    )  # fmt: skip
    SalesSettings.objects.create(
        entity=ireland, deferred_revenue_gl_account_code=DEFERRED, credit_action=CreditAction.WARN
    )
    deferred_before = aiq_sandbox.state.gl_total_base(DEFERRED, entity="demo-ie")
    row = sales_invoice_submit(
        entity=ireland,
        source=crm_source(ireland),
        invoice=_licence("LIC-GBP-IE", "DEMOUK", "GBP"),
        actor=alice,
    )
    drain_all()
    row.refresh_from_db()
    assert row.state == SalesInvoice.State.POSTED
    base = (Decimal("1200.00") / Decimal("0.87")).quantize(CENT)  # EUR 1,379.31
    assert aiq_sandbox.state.gl_total_base(DEFERRED, entity="demo-ie") - deferred_before == -base

    assert deferred_releases_run(today=date(2026, 2, 28)) == 2  # January and February
    drain_all()
    schedule = DeferredRevenueSchedule.objects.get()
    assert (schedule.release_currency, schedule.base_amount) == ("EUR", base)
    assert sum(r.amount for r in schedule.releases.all()) == base
    first, second = schedule.releases.filter(state=R.RELEASED).order_by("number")
    assert {first.amount, second.amount} <= {Decimal("114.94"), Decimal("114.95")}
    assert _journal_lines(aiq_sandbox, first.external_reference, "demo-ie") == [
        (DEFERRED, first.amount),
        (REVENUE, -first.amount),
    ]
    assert aiq_sandbox.state.gl_total_base(DEFERRED, entity="demo-ie") - deferred_before == (
        -base + first.amount + second.amount
    )
