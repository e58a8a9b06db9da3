"""Credit notes and customer changes from the selling system, as worked scenarios against the
sandbox's books: a cancelled order's credit note is posted once and allocated to its invoice;
a customer's new name, e-mail and address reach AIQ's record, audited, once."""

from datetime import date
from decimal import Decimal
from html import escape

import pytest
from django.core.exceptions import ValidationError

from ledger.aiq.client import AiqClient
from sales.models import CustomerUpdate, SalesCreditNote, SalesInvoice
from sales.normalised import NormalisedCreditNote, NormalisedInvoice, NormalisedLine
from sales.services.credit_notes import sales_credit_note_submit
from sales.services.customers import sales_customer_update
from sales.services.invoices import sales_invoice_submit
from staff.models import AuditEntry
from tests.sales_support import aiq_create_customer, crm_source, drain_all

D = Decimal


@pytest.fixture(autouse=True)
def _quick_outbox(settings):
    settings.OUTBOX_SETTLE_SECONDS = 0
    # the personas' passwords are hashed per test; the default hasher is slow on purpose
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _invoice(ref, code="ACME", lines=(("100.00", "20.00"), ("50.00", "10.00"))):
    return NormalisedInvoice(
        external_reference=ref,
        customer_code=code,
        customer_name=code.title(),
        invoice_date=date(2026, 11, 20),
        currency="GBP",
        lines=[
            NormalisedLine(net_amount=D(n), tax_amount=D(t), tax_code="T1", description="Seats")
            for n, t in lines
        ],
    )


def _note(ref, invoice_ref, net="50.00", tax="10.00"):
    return NormalisedCreditNote(
        external_reference=ref,
        invoice_reference=invoice_ref,
        credit_date=date(2026, 11, 25),
        lines=[NormalisedLine(D(net), D(tax), tax_code="T1", description="Returned")],
        reason="order partly cancelled",
    )


def test_a_credit_note_is_posted_once_and_allocated_to_its_invoice(entity, aiq_sandbox, alice):
    source = crm_source(entity)
    invoice = sales_invoice_submit(entity=entity, source=source, invoice=_invoice("CRM-77"))
    # sent before its invoice reached AIQ: it waits, then goes with the invoice's verdict
    note = sales_credit_note_submit(
        entity=entity, source=source, note=_note("CRM-77-CN1", "CRM-77"), actor=alice
    )
    assert note.state == SalesCreditNote.State.WAITING and note.command_id is None
    drain_all()
    invoice.refresh_from_db()
    note.refresh_from_db()
    assert invoice.state == SalesInvoice.State.POSTED
    assert note.state == SalesCreditNote.State.POSTED, note.error
    books = aiq_sandbox.state
    [posted] = [t for t in books.transactions("CRM-77-CN1")]
    assert posted["transaction_id"] == note.aiq_transaction_id
    # the invoice is open for what was not credited: 180.00 - 60.00
    assert books.outstanding(invoice.aiq_transaction_id) == D("120.00")
    assert books.outstanding(note.aiq_transaction_id) == D("0.00")

    # the same credit note again (a repeated delivery): nothing new anywhere
    snapshot = books.snapshot("demo")
    again = sales_credit_note_submit(
        entity=entity, source=source, note=_note("CRM-77-CN1", "CRM-77"), actor=alice
    )
    drain_all()
    assert again.pk == note.pk and books.snapshot("demo") == snapshot
    # more than is left to credit is refused, and names the figures
    with pytest.raises(ValidationError, match="credited already"):
        sales_credit_note_submit(
            entity=entity, source=source, note=_note("CRM-77-CN2", "CRM-77", "110.00", "22.00")
        )
    with pytest.raises(ValidationError, match="no invoice CRM-404"):
        sales_credit_note_submit(entity=entity, source=source, note=_note("X-CN", "CRM-404"))
    assert AuditEntry.objects.filter(action="sales_credit_note.submit").count() == 1
    assert AuditEntry.objects.filter(action="sales_credit_note.posted").count() == 1


def test_a_customers_new_details_reach_aiq_once_and_are_audited(entity, aiq_sandbox):
    client = AiqClient.for_entity(entity)
    aiq_create_customer(client, "NORTHW", "Northwind")
    details = {
        "Name": "Northwind Traders Ltd",
        "Email": "accounts@northwind.example",
        "Address1": "1 Harbour Street",
        "City": "Leith",
        "PostCode": "EH6 6AA",
    }
    row = sales_customer_update(
        entity=entity, code="northw", details=details, origin="CRM account 991"
    )
    assert row.state == CustomerUpdate.State.QUEUED
    drain_all()
    row.refresh_from_db()
    assert row.state == CustomerUpdate.State.DONE, row.error
    record = client.get_customer("NORTHW")
    assert {k: record[k] for k in details} == details
    assert record["CreditTermID"] == "30"  # AIQ's own fields are kept
    audit = AuditEntry.objects.get(action="customer.update_from_source")
    assert audit.after["Name"] == "Northwind Traders Ltd"

    # reported again (a repeated webhook): no second change; a real change goes
    assert sales_customer_update(entity=entity, code="NORTHW", details=details, origin="x") is None
    changed = sales_customer_update(
        entity=entity, code="NORTHW", details={**details, "City": "Edinburgh"}, origin="CRM"
    )
    assert changed.details == {"City": "Edinburgh"} and changed.previous == {"City": "Leith"}
    drain_all()
    assert client.get_customer("NORTHW")["City"] == "Edinburgh"
    assert client.get_customer("NORTHW")["Name"] == "Northwind Traders Ltd"


def test_a_posted_receipts_aiq_pdf_is_emailed_to_the_customer_when_the_company_says_so(
    entity, aiq_sandbox, mailoutbox, settings, monkeypatch, django_capture_on_commit_callbacks
):
    from django_q.conf import Conf

    from ledger.models import Customer, OutboxCommand
    from ledger.outbox.services import outbox_enqueue
    from sales.models import SalesSettings

    monkeypatch.setattr(Conf, "SYNC", True)  # the e-mail task runs at once
    SalesSettings.objects.create(entity=entity, email_receipts=True)
    Customer.objects.create(
        entity=entity, code="ACME", name="Acme", email="ap@acme.example", currency="GBP"
    )
    with django_capture_on_commit_callbacks(execute=True):
        outbox_enqueue(
            entity=entity,
            kind=OutboxCommand.Kind.POST_RECEIPT,
            external_reference="RCP-MAIL-1",
            payload={
                "customer_code": "ACME",
                "bank_account_code": "BANK-GBP",
                "amount": "120.00",
                "currency": "GBP",
                "payment_date": "2026-11-21",
            },
        )
    with django_capture_on_commit_callbacks(execute=True):
        drain_all()
    [receipt] = aiq_sandbox.state.transactions("RCP-MAIL-1")
    [mail] = mailoutbox
    assert mail.to == ["ap@acme.example"] and "120.00 GBP" in mail.body
    name, content, kind = mail.attachments[0]
    assert (name, kind) == ("receipt-RCP-MAIL-1.pdf", "application/pdf")
    assert content.startswith(b"%PDF") and receipt["transaction_id"]


def test_a_credit_note_aiq_refuses_is_shown_with_why_and_an_approver_cancels_it_for_a_corrected_one(
    entity, aiq_sandbox, client, alice, bob
):
    source = crm_source(entity)
    sales_invoice_submit(entity=entity, source=source, invoice=_invoice("CRM-91"))  # 180.00
    drain_all()
    wrong = _note("CRM-91-CN1", "CRM-91")  # 60.00, to a GL account AIQ does not have
    wrong.lines[0].gl_account_code = "9999"
    note = sales_credit_note_submit(entity=entity, source=source, note=wrong, actor=alice)
    drain_all()
    note.refresh_from_db()
    assert note.state == SalesCreditNote.State.FAILED and note.error

    client.force_login(alice)
    listed = client.get("/sales/credit-notes/?state=failed").content.decode()
    for text in ("CRM-91-CN1", "Demo Ltd", "60.00 GBP", "25/11/2026", "Refused by AIQ"):
        assert text in listed, text
    assert "CRM-91-CN1" not in client.get("/sales/credit-notes/?state=posted").content.decode()
    page = client.get(f"/sales/credit-notes/{note.pk}/").content.decode()
    assert escape(note.error) in page  # AIQ's reason, as it gave it
    assert client.post(f"/sales/credit-notes/{note.pk}/cancel").status_code == 403  # a clerk
    assert SalesCreditNote.objects.get(pk=note.pk).state == SalesCreditNote.State.FAILED

    client.force_login(bob)
    assert client.post(f"/sales/credit-notes/{note.pk}/cancel").status_code == 302
    note.refresh_from_db()
    assert note.state == SalesCreditNote.State.CANCELLED
    assert AuditEntry.objects.filter(action="sales_credit_note.cancel", actor=bob).count() == 1
    assert aiq_sandbox.state.transactions("CRM-91-CN1") == []
    # cancelled, it credits nothing: a corrected credit note of 168.00 of the 180.00 is taken
    fixed = sales_credit_note_submit(
        entity=entity, source=source, note=_note("CRM-91-CN2", "CRM-91", "140.00", "28.00")
    )
    drain_all()
    fixed.refresh_from_db()
    assert fixed.state == SalesCreditNote.State.POSTED, fixed.error
    invoice = SalesInvoice.objects.get(external_reference="CRM-91")
    assert aiq_sandbox.state.outstanding(invoice.aiq_transaction_id) == D("12.00")
    shown = client.get(f"/sales/invoices/{invoice.pk}/").content.decode()
    assert "CRM-91-CN1" in shown and "CRM-91-CN2" in shown and "168.00 GBP" in shown


def test_a_customer_change_aiq_refuses_waits_for_an_approver_who_sends_it_again(
    entity, aiq_sandbox, client, alice, bob
):
    update = sales_customer_update(
        entity=entity, code="NEWCO", details={"Name": "New Co", "Email": "ap@newco.example"},
        origin="CRM account 4411",
    )  # fmt: skip
    drain_all()  # AIQ has no customer NEWCO yet: refused
    update.refresh_from_db()
    assert update.state == CustomerUpdate.State.FAILED and update.error

    client.force_login(alice)
    listed = client.get("/sales/customer-changes/").content.decode()
    for text in ("NEWCO", "Demo Ltd", "Email, Name", "CRM account 4411", "Refused by AIQ"):
        assert text in listed, text
    page = client.get(f"/sales/customer-changes/{update.pk}/").content.decode()
    assert "ap@newco.example" in page and "Retry" in page
    assert client.post(f"/sales/customer-changes/{update.pk}/retry").status_code == 403

    aiq = AiqClient.for_entity(entity)
    aiq_create_customer(aiq, "NEWCO", "New Co Ltd")  # someone creates it in AIQ
    client.force_login(bob)
    assert client.post(f"/sales/customer-changes/{update.pk}/retry").status_code == 302
    drain_all()
    update.refresh_from_db()
    assert update.state == CustomerUpdate.State.DONE, update.error
    record = aiq.get_customer("NEWCO")
    assert (record["Name"], record["Email"]) == ("New Co", "ap@newco.example")
    assert AuditEntry.objects.filter(action="customer.update_retry", actor=bob).count() == 1
    # done, it can be neither sent again nor cancelled
    assert client.post(f"/sales/customer-changes/{update.pk}/cancel").status_code == 302
    assert CustomerUpdate.objects.get(pk=update.pk).state == CustomerUpdate.State.DONE
