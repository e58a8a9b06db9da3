"""BI codes (AIQ's departments) as worked scenarios against the sandbox's books: pulled with the
analysis set-up, retired by an approver through the outbox exactly once, refused on new lines
once retired, and kept by a credit note on the lines it copies from its invoice."""

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from ledger.aiq.client import AiqClient
from ledger.aiq.errors import AiqPermanentError
from ledger.departments import department_change
from ledger.models import AnalysisDimension, Department, Invoice, OutboxCommand
from ledger.outbox.services import outbox_enqueue
from ledger.sync.pull import sync_departments
from payments.services.credit_notes import (
    CreditNoteRefused,
    credit_lines_for,
    credit_note_draft,
    credit_note_payload,
)
from sales.models import InvoiceType, SalesInvoice
from sales.normalised import NormalisedInvoice, NormalisedLine
from sales.services.invoices import sales_invoice_submit
from sandbox.store import loads
from staff.models import AuditEntry
from tests.sales_support import crm_source, drain_all


@pytest.fixture(autouse=True)
def _quick_outbox(settings):
    settings.OUTBOX_SETTLE_SECONDS = 0


@pytest.fixture
def pulled(entity, aiq_sandbox):
    sync_departments(AiqClient.for_entity(entity), entity)
    return entity


def _aiq_lines(sandbox, transaction_id: int) -> list[dict]:
    [row] = sandbox.state._rows("SELECT lines FROM txn WHERE id = ?", (transaction_id,))
    return loads(row["lines"])


def _invoice(ref: str, *lines: tuple[str, str]) -> NormalisedInvoice:
    return NormalisedInvoice(
        external_reference=ref,
        customer_code="ACME",
        customer_name="Acme Widgets Ltd",
        invoice_date=date(2026, 11, 15),
        currency="GBP",
        lines=[
            NormalisedLine(
                net_amount=Decimal(net),
                tax_amount=Decimal(net) / 5,
                tax_code="T1",
                description=f"Licences {department}",
                department=department,
                gl_account_code="4000",
            )
            for net, department in lines
        ],
    )


def test_the_pull_brings_the_analysis_set_up_and_every_bi_code(pulled):
    dimensions = list(AnalysisDimension.objects.filter(entity=pulled))
    assert [(d.position, d.code) for d in dimensions] == [(1, "REGION"), (2, "LINE")]
    assert {"code": "NORTH", "description": "North"} in dimensions[0].codes
    ns = Department.objects.get(entity=pulled, department_id="NS")
    assert (ns.name, ns.analysis_codes[:2], ns.active) == (
        "North subscriptions",
        ["NORTH", "SUBS"],
        True,
    )
    assert Department.objects.filter(entity=pulled).count() == 6


def test_an_approver_retires_a_code_once_in_aiq_though_the_answer_is_lost(
    pulled, aiq_sandbox, alice, bob
):
    sh = Department.objects.get(entity=pulled, department_id="SH")
    with pytest.raises(PermissionDenied):
        department_change(department=sh, actor=alice, active=False)
    command = department_change(department=sh, actor=bob, name="South hardware (old)", active=False)
    with pytest.raises(ValidationError, match="on its way to AIQ"):
        department_change(department=sh, actor=bob, active=True)
    # until AIQ confirms, the mirror keeps the old values (a pull leaves them alone too)
    sync_departments(AiqClient.for_entity(pulled), pulled)
    assert Department.objects.get(pk=sh.pk).active is True

    aiq_sandbox.faults.update(drop_next=1, ops=["UpdateDepartment"])
    drain_all()
    command.refresh_from_db()
    assert command.state == OutboxCommand.State.CONFIRMED
    assert aiq_sandbox.server.calls()["UpdateDepartment"] == 1  # read back, never sent again
    aiq = AiqClient.for_entity(pulled).get_department_by_id("SH")
    assert (aiq["Description"], aiq["IsActive"]) == ("South hardware (old)", False)
    sh.refresh_from_db()
    assert (sh.name, sh.active, sh.state_text) == ("South hardware (old)", False, "Retired")
    entry = AuditEntry.objects.get(action="department.change")
    assert entry.actor == bob and entry.before == {"name": "South hardware", "active": True}


def test_a_retired_code_is_refused_on_new_lines_here_and_in_aiq(pulled, aiq_sandbox, alice, bob):
    source = crm_source(pulled)
    department_change(
        department=Department.objects.get(entity=pulled, department_id="SH"),
        actor=bob,
        active=False,
    )
    # refused as soon as the retirement is decided, before AIQ has it
    with pytest.raises(ValidationError) as refused:
        sales_invoice_submit(
            entity=pulled, source=source, invoice=_invoice("BI-1", ("100.00", "SH")), actor=alice
        )
    assert "line 1: BI code SH (South hardware) is retired" in str(refused.value)
    drain_all()
    with pytest.raises(ValidationError, match="BI code ZZ does not exist"):
        sales_invoice_submit(
            entity=pulled, source=source, invoice=_invoice("BI-2", ("1.00", "ZZ")), actor=alice
        )
    assert not SalesInvoice.objects.exists()
    # a code made in AIQ since the last pull is read from AIQ (GetDepartmentById), not refused
    Department.objects.filter(entity=pulled, department_id="NV").delete()
    sales_invoice_submit(
        entity=pulled, source=source, invoice=_invoice("BI-3", ("5.00", "NV")), actor=alice
    )
    assert Department.objects.get(entity=pulled, department_id="NV").name == "North services"
    drain_all()
    # AIQ's books: nothing under the refused invoices; the accepted one on its BI code
    assert aiq_sandbox.state.transactions("BI-1") == aiq_sandbox.state.transactions("BI-2") == []
    [accepted] = aiq_sandbox.state.transactions("BI-3")
    assert "NV" in {
        x.get("DepartmentID") for x in aiq_sandbox.state.lines(accepted["transaction_id"])
    }
    # AIQ refuses it too, whoever sends it
    with pytest.raises(AiqPermanentError, match="inactive"):
        AiqClient.for_entity(pulled).create_general_journal(
            {
                "ExternalReference": "BI-GJ",
                "Lines": {
                    "GeneralJournalLine": [
                        {"GLAccountCode": "4000", "Debit": Decimal(1), "DepartmentID": "SH"},
                        {"GLAccountCode": "4200", "Credit": Decimal(1)},
                    ]
                },
            }
        )
    assert aiq_sandbox.state.transactions("BI-GJ") == []


def test_a_credit_note_keeps_its_invoice_lines_bi_codes_in_aiq(pulled, aiq_sandbox, alice, bob):
    source = crm_source(pulled, invoice_type=InvoiceType.ITEM)
    row = sales_invoice_submit(
        entity=pulled,
        source=source,
        invoice=_invoice("BI-CN", ("100.00", "NV"), ("50.00", "SS")),
        actor=alice,
    )
    drain_all()
    row.refresh_from_db()
    assert row.state == SalesInvoice.State.POSTED
    invoice_lines = [x for x in _aiq_lines(aiq_sandbox, row.aiq_transaction_id) if x.get("TaxCode")]
    assert [x["DepartmentID"] for x in invoice_lines] == ["NV", "SS"]

    invoice = Invoice.objects.get(entity=pulled, aiq_transaction_id=row.aiq_transaction_id)
    with transaction.atomic():
        drafts = credit_lines_for(invoice=invoice, amount=Decimal("90.00"))
        note = credit_note_draft(invoice=invoice, reference="CN-BI-1", lines=drafts, reason="x")
        outbox_enqueue(
            entity=pulled,
            kind=OutboxCommand.Kind.CREATE_CREDIT_NOTE,
            payload=credit_note_payload(note),
            external_reference=note.external_reference,
        )
    assert [line.department_id for line in note.lines.all()] == ["NV", "SS"]
    assert all(line.invoice_line_id for line in note.lines.all())
    drain_all()
    [credit] = aiq_sandbox.state.transactions("CN-BI-1")
    lines = [x for x in _aiq_lines(aiq_sandbox, credit["transaction_id"]) if x.get("TaxCode")]
    assert {x["DepartmentID"]: Decimal(str(x["Amount"])) for x in lines} == {
        "NV": Decimal("50.00"),  # 90.00 gross over 120.00 + 60.00: 60.00 gross, 50.00 net
        "SS": Decimal("25.00"),
    }

    # once a code is retired, a credit note cannot put it on a new line either
    department_change(
        department=Department.objects.get(entity=pulled, department_id="SS"),
        actor=bob,
        active=False,
    )
    with pytest.raises(CreditNoteRefused, match="BI code SS .* is retired"):
        credit_lines_for(invoice=invoice)
