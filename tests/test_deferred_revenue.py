"""Deferred revenue as a worked scenario against the sandbox's books: a year's licence invoiced in
January and deferred over 12 months, released month by month on a clock the test moves (each
release once, though AIQ's answer is lost), then credited in full in May: the remaining releases
are cancelled, the revenue already released is reversed, and both accounts end at zero."""

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.urls import reverse

from ledger.aiq.client import AiqClient
from ledger.departments import department_change
from ledger.models import Department, Invoice, OutboxCommand
from ledger.outbox.services import outbox_enqueue
from ledger.sync.pull import sync_departments
from payments.services.credit_notes import credit_lines_for, credit_note_draft, credit_note_payload
from sales.models import (
    DeferredRelease,
    DeferredRevenueSchedule,
    InvoiceType,
    SalesInvoice,
    SalesSettings,
)
from sales.normalised import NormalisedCreditNote, NormalisedInvoice, NormalisedLine
from sales.services.credit_notes import sales_credit_note_submit
from sales.services.deferred import (
    deferred_release_retry,
    deferred_releases_run,
    month_end,
    schedule_figures,
)
from sales.services.invoices import sales_invoice_submit
from sandbox.store import loads
from staff.models import AuditEntry
from tests.sales_support import crm_source, drain_all

DEFERRED, REVENUE = "2300", "4000"
R = DeferredRelease.State
JOURNAL = "CreateGeneralJournalGetBackTransactionID"


@pytest.fixture(autouse=True)
def _quick_outbox(settings):
    settings.OUTBOX_SETTLE_SECONDS = 0


@pytest.fixture
def company(entity, aiq_sandbox):
    SalesSettings.objects.create(entity=entity, deferred_revenue_gl_account_code=DEFERRED)
    sync_departments(AiqClient.for_entity(entity), entity)
    return entity


def _licence(ref: str, months: int | None = 12, currency: str = "GBP") -> NormalisedInvoice:
    return NormalisedInvoice(
        external_reference=ref,
        customer_code="ACME",
        customer_name="Acme Widgets Ltd",
        invoice_date=date(2026, 1, 15),
        currency=currency,
        lines=[
            NormalisedLine(
                net_amount=Decimal("1200.00"),
                tax_amount=Decimal("240.00"),
                tax_code="T1",
                description="Annual licence",
                department="NS",
                gl_account_code=REVENUE,
                deferred_months=months,
            )
        ],
    )


def _journals(sandbox, reference: str) -> list[dict]:
    return [t for t in sandbox.state.transactions(reference) if t["type"] == "GeneralJournal"]


def test_a_year_deferred_released_monthly_then_cut_short_by_a_credit_note_in_may(
    company, aiq_sandbox, alice, client
):
    deferred_before = aiq_sandbox.state.gl_total(DEFERRED)
    revenue_before = aiq_sandbox.state.gl_total(REVENUE)
    source = crm_source(company, invoice_type=InvoiceType.ITEM)
    row = sales_invoice_submit(
        entity=company, source=source, invoice=_licence("LIC-2026"), actor=alice
    )
    drain_all()
    row.refresh_from_db()
    assert row.state == SalesInvoice.State.POSTED
    # the invoice put the year's revenue on the deferred account, with its BI code
    assert aiq_sandbox.state.gl_total(DEFERRED) - deferred_before == Decimal("-1200.00")
    assert aiq_sandbox.state.gl_total(REVENUE) == revenue_before

    schedule = DeferredRevenueSchedule.objects.get()
    releases = list(schedule.releases.order_by("number"))
    assert [r.release_date for r in releases] == [
        month_end(date(2026, 1, 15), m) for m in range(12)
    ]
    assert (releases[0].release_date, releases[1].release_date, releases[11].release_date) == (
        date(2026, 1, 31), date(2026, 2, 28), date(2026, 12, 31),
    )  # fmt: skip
    assert {r.amount for r in releases} == {Decimal("100.00")} and len(releases) == 12

    # January to April, each on its last day; February's answer is lost on the way back
    for month in range(1, 5):
        day = releases[month - 1].release_date
        if month == 2:
            aiq_sandbox.faults.update(drop_next=1, ops=[JOURNAL])
        assert deferred_releases_run(today=day) == 1
        assert deferred_releases_run(today=day) == 0  # a second run that day queues nothing
        drain_all()
    assert aiq_sandbox.faults.snapshot()["stats"]["drops"] == 1
    for n in range(1, 5):
        [journal] = _journals(aiq_sandbox, f"DRR-{schedule.pk}-{n}")
        lines = loads(aiq_sandbox.state._rows(
            "SELECT lines FROM txn WHERE id = ?", (journal["transaction_id"],))[0]["lines"])  # fmt: skip
        assert {
            (x["GLAccountCode"], Decimal(str(x["Amount"])), x["DepartmentID"]) for x in lines
        } == {
            (DEFERRED, Decimal("100.00"), "NS"),
            (REVENUE, Decimal("-100.00"), "NS"),
        }
    assert aiq_sandbox.server.calls()[JOURNAL] == 4  # February's read back, never sent again
    figures = schedule_figures(schedule, date(2026, 5, 10))
    assert (figures["released"], figures["due"], figures["remaining"]) == (
        Decimal("400.00"), Decimal("0"), Decimal("800.00"),
    )  # fmt: skip

    # 10 May: the customer cancels; the whole invoice is credited
    invoice = Invoice.objects.get(entity=company, aiq_transaction_id=row.aiq_transaction_id)
    with transaction.atomic():
        note = credit_note_draft(
            invoice=invoice, reference="CN-LIC-2026", lines=credit_lines_for(invoice=invoice),
            reason="Licence cancelled",
        )  # fmt: skip
        note.credit_date = date(2026, 5, 10)
        note.save(update_fields=["credit_date"])
        outbox_enqueue(
            entity=company,
            kind=OutboxCommand.Kind.CREATE_CREDIT_NOTE,
            payload=credit_note_payload(note),
            external_reference=note.external_reference,
        )
    drain_all()
    schedule.refresh_from_db()
    assert schedule.state == DeferredRevenueSchedule.State.CREDITED
    states = dict(schedule.releases.filter(kind="release").values_list("number", "state"))
    assert states == {n: R.RELEASED if n <= 4 else R.CANCELLED for n in range(1, 13)}
    reversal = schedule.releases.get(kind=DeferredRelease.Kind.REVERSAL)
    assert (reversal.amount, reversal.state, reversal.release_date) == (
        Decimal("400.00"), R.RELEASED, date(2026, 5, 10),
    )  # fmt: skip

    # the rest of the year: nothing more is released
    for month in range(5, 13):
        assert deferred_releases_run(today=releases[month - 1].release_date) == 0
    drain_all()
    for n in range(5, 13):
        assert _journals(aiq_sandbox, f"DRR-{schedule.pk}-{n}") == []
    assert len(_journals(aiq_sandbox, f"DRX-{schedule.pk}-{note.pk}")) == 1
    # AIQ's books: both accounts back where they were; the credit note kept the BI code
    assert aiq_sandbox.state.gl_total(DEFERRED) == deferred_before
    assert aiq_sandbox.state.gl_total(REVENUE) == revenue_before
    assert AuditEntry.objects.filter(action="deferred_revenue.credit_note").count() == 1

    client.force_login(alice)
    page = client.get(reverse("sales:deferred_schedule", args=[schedule.pk])).content.decode()
    assert "Ended by a credit note" in page and "31/01/2026" in page and "10/05/2026" in page
    assert "When a credit note credits a deferred line" in page
    listing = client.get(reverse("sales:deferred")).content.decode()
    assert "LIC-2026" in listing and "4 of 12" in listing


def test_a_deferred_line_needs_the_companys_account_and_a_length_in_range(entity, alice):
    """(A line in another currency can be deferred: tests/test_deferred_foreign_currency.py.)"""
    source = crm_source(entity)
    with pytest.raises(ValidationError, match="no deferred revenue account"):
        sales_invoice_submit(entity=entity, source=source, invoice=_licence("D-1"), actor=alice)
    SalesSettings.objects.create(entity=entity, deferred_revenue_gl_account_code=DEFERRED)
    with pytest.raises(ValidationError, match="1 to 60 months, not 61"):
        sales_invoice_submit(
            entity=entity, source=source, invoice=_licence("D-3", months=61), actor=alice
        )
    assert not SalesInvoice.objects.exists()


def test_the_selling_systems_credit_note_of_a_deferred_line_keeps_its_bi_code_and_account(
    company, aiq_sandbox, alice
):
    """A credit note from the CRM (its own lines, no BI code given): each line takes the BI
    code of the invoice line it credits and, for a deferred line, its deferred account; the
    schedule's remaining releases are spread again."""
    deferred_before = aiq_sandbox.state.gl_total(DEFERRED)
    source = crm_source(company)
    sales_invoice_submit(entity=company, source=source, invoice=_licence("LIC-CRM"), actor=alice)
    drain_all()
    schedule = DeferredRevenueSchedule.objects.get()
    assert deferred_releases_run(today=date(2026, 2, 28)) == 2  # January and February
    drain_all()
    sales_credit_note_submit(
        entity=company,
        source=source,
        note=NormalisedCreditNote(
            external_reference="LIC-CRM-CN",
            invoice_reference="LIC-CRM",
            credit_date=date(2026, 3, 5),
            lines=[NormalisedLine(Decimal("300.00"), Decimal("60.00"), tax_code="T1")],
            reason="Fewer seats",
        ),
        actor=alice,
    )
    drain_all()
    [credit] = [
        t for t in aiq_sandbox.state.transactions("LIC-CRM-CN") if t["type"] != "GeneralJournal"
    ][:1]
    lines = loads(aiq_sandbox.state._rows(
        "SELECT lines FROM txn WHERE id = ?", (credit["transaction_id"],))[0]["lines"])  # fmt: skip
    [net_line] = [x for x in lines if x.get("TaxCode")]
    assert (net_line["GLAccountCode"], net_line["DepartmentID"]) == (DEFERRED, "NS")
    left = schedule.releases.filter(state=R.SCHEDULED).order_by("number")
    assert [r.amount for r in left] == [Decimal("70.00")] * 10  # (1,000.00 - 300.00) / 10
    assert aiq_sandbox.state.gl_total(DEFERRED) - deferred_before == Decimal("-700.00")


def test_a_release_refused_for_a_retired_bi_code_is_sent_again_once_activated(
    company, aiq_sandbox, alice, bob
):
    source = crm_source(company)
    sales_invoice_submit(entity=company, source=source, invoice=_licence("LIC-RET"), actor=alice)
    drain_all()
    ns = Department.objects.get(entity=company, department_id="NS")
    department_change(department=ns, actor=bob, active=False)
    drain_all()
    assert deferred_releases_run(today=date(2026, 1, 31)) == 1
    drain_all()
    release = DeferredRelease.objects.get(number=1)
    assert release.state == R.FAILED and "inactive" in release.error
    with pytest.raises(PermissionDenied):
        deferred_release_retry(release=release, actor=alice)
    department_change(department=ns, actor=bob, active=True)
    drain_all()
    release = deferred_release_retry(release=release, actor=bob)
    drain_all()
    release.refresh_from_db()
    assert (release.state, release.external_reference) == (
        R.RELEASED,
        f"DRR-{release.schedule_id}-1-R1",
    )
    assert len(_journals(aiq_sandbox, release.external_reference)) == 1
    assert _journals(aiq_sandbox, f"DRR-{release.schedule_id}-1") == []
