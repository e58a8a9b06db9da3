"""Sales invoicing into AIQ, as worked scenarios against the sandbox's books.

A CRM's invoice file is uploaded, checked, its customers made in AIQ first, its credit checked,
and its invoices posted once: linked where AIQ has them already, never created twice.
"""

from datetime import datetime
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from ledger.aiq.client import AiqClient
from ledger.models import OutboxCommand
from ledger.outbox.runner import drain
from sales.models import InvoiceType, SalesBatch, SalesInvoice, SalesSettings
from sales.services.invoices import sales_invoice_release
from sales.services.uploads import sales_batch_approve, sales_upload_import, sales_upload_preview
from staff.models import AuditEntry
from tests.sales_support import (
    aiq_create_customer,
    aiq_customer_codes,
    aiq_invoices,
    aiq_set_credit_limit,
    aiq_vat,
    crm_source,
    drain_all,
    invoice_file,
    row,
)

S = SalesInvoice.State
GBP_CUSTOMERS = [
    "ACME", "BRIGHT", "CASTLE", "DELTA", "EVERGR", "FOXTON", "GRANIT", "HARBOR",
    "IVYLN", "JUNIPR", "KESTRL", "LUMEN", "MERIDN", "NORTHS", "OAKTRE", "PENNY",
]  # fmt: skip


@pytest.fixture(autouse=True)
def _quick_outbox(settings):
    settings.OUTBOX_SETTLE_SECONDS = 0


@pytest.fixture
def books(entity, aiq_sandbox):
    """AIQ as the scenario finds it: 25 GBP customers (9 added to the seeded 16), two of them
    with a credit limit they are close to, three invoices of the file already in AIQ."""
    extra = [f"EXTRA{n}" for n in range(1, 10)]
    client = AiqClient.for_entity(entity)
    for code in extra:
        aiq_create_customer(client, code, f"Extra customer {code[-1]}")
    for code in ("ACME", "BRIGHT"):
        balance = Decimal(
            client.get_account_balance_information(
                at=datetime(2030, 1, 1),
                account_ids=[client.get_customer(code)["AccountID"]],
            )[0]["Balance"]
        )
        aiq_set_credit_limit(client, code, balance + Decimal("100.00"))
    for ref, code in (("CRM-0048", "PENNY"), ("CRM-0049", "PENNY"), ("CRM-0050", "OAKTRE")):
        client.create_batch_sales_invoice(
            {
                "CustomerCode": code,
                "InvoiceDate": datetime(2026, 11, 15),
                "ExternalReference": ref,
                "Description": "keyed in AIQ by hand",
                "Lines": {
                    "BatchSalesInvoiceLine": [
                        {"NetAmount": Decimal("10.00"), "TaxAmount": Decimal("2.00"),
                         "TaxCode": "T1"}
                    ]
                },
            }
        )  # fmt: skip
    return GBP_CUSTOMERS + extra


def fifty_invoices(customers: list[str]) -> list[list]:
    """50 invoices (2 lines each) for 30 customers: 25 known to AIQ, 5 new."""
    new = [("NEWCO1", "New Co One"), ("NEWCO2", "New Co Two"), ("NEWCO3", "New Co Three"),
           ("NEWCO4", "New Co Four"), ("newco5", "New Co Five")]  # fmt: skip
    others = [(c, f"Name of {c}") for c in customers if c not in ("ACME", "BRIGHT")] + new
    rows = []
    for n in range(1, 51):
        ref = f"CRM-{n:04d}"
        code, name = others[(n - 3) % len(others)]
        if n in (1, 2):  # the customers near their limit: over it after this invoice
            code, name = ("ACME", "Acme") if n == 1 else ("BRIGHT", "Bright")
        if n in (48, 49):
            code, name = "PENNY", "Penny"
        if n == 50:
            code, name = "OAKTRE", "Oak"
        # VAT as the CRM computed it, rounded per line its own way (not net * 20 %)
        rows.append(row(ref, code, name, f"{100 + n}.10", f"{20 + n / 5:.2f}", text="Licences"))
        rows.append(row(ref, code, name, "33.33", "6.67", text="Support"))
    return rows


def test_a_file_of_50_invoices_posts_45_once_creates_5_customers_holds_2_links_3(
    entity, books, aiq_sandbox, alice, bob
):
    source = crm_source(entity)
    content = invoice_file(fifty_invoices(books))
    before_codes = aiq_customer_codes(aiq_sandbox)

    preview = sales_upload_preview(source=source, filename="nov.csv", content=content, actor=alice)
    assert preview.ok and len(preview.parsed.invoices) == 50 and preview.parsed.rows == 100

    batch = sales_upload_import(source=source, filename="nov.csv", content=content, actor=alice)
    assert batch.state == SalesBatch.State.QUEUED  # under the entity's approval total
    invoices = {i.external_reference: i for i in SalesInvoice.objects.all()}
    held = {ref for ref, i in invoices.items() if i.state == S.HELD_CREDIT}
    assert held == {"CRM-0001", "CRM-0002"}
    assert "over the credit limit" in invoices["CRM-0001"].held_reason
    assert invoices["CRM-0001"].credit_figures["credit_limit"]
    assert SalesInvoice.objects.filter(customer_code="NEWCO5").exists()  # upper-cased for AIQ

    drain_all()
    invoices = {i.external_reference: i for i in SalesInvoice.objects.all()}
    states = {}
    for i in invoices.values():
        states[i.state] = states.get(i.state, 0) + 1
    assert states == {S.POSTED: 45, S.LINKED: 3, S.HELD_CREDIT: 2}
    assert aiq_customer_codes(aiq_sandbox) - before_codes == {f"NEWCO{n}" for n in range(1, 6)}
    # each invoice exactly once in AIQ; the three keyed in by hand were linked, not re-created
    for ref, invoice in invoices.items():
        found = aiq_invoices(aiq_sandbox, ref)
        assert len(found) == (0 if ref in held else 1), ref
        if found and invoice.state == S.LINKED:  # keyed in AIQ with other amounts
            assert invoice.aiq_transaction_id == found[0]["transaction_id"]
            assert "check it in AIQ" in invoice.error
        elif found:
            assert found[0]["transaction_id"] == invoice.aiq_transaction_id
            # the VAT AIQ posted is the CRM's, to the cent
            assert aiq_vat(aiq_sandbox, invoice.aiq_transaction_id) == invoice.tax_amount, ref
            assert found[0]["amount"] == invoice.gross_amount
    assert invoices["CRM-0048"].state == S.LINKED
    assert (
        invoices["CRM-0048"].aiq_transaction_id
        == aiq_invoices(aiq_sandbox, "CRM-0048")[0]["transaction_id"]
    )
    assert OutboxCommand.objects.filter(kind="sales_invoice_bulk").exists()

    # the approver lets the held ones go (never the clerk who uploaded them)
    with pytest.raises(PermissionDenied):
        sales_invoice_release(invoice=invoices["CRM-0001"], actor=alice)
    for ref in ("CRM-0001", "CRM-0002"):
        sales_invoice_release(invoice=invoices[ref], actor=bob)
    drain_all()
    for ref in ("CRM-0001", "CRM-0002"):
        invoice = SalesInvoice.objects.get(external_reference=ref)
        assert invoice.state == S.POSTED and len(aiq_invoices(aiq_sandbox, ref)) == 1
    assert AuditEntry.objects.filter(action="sales_invoice.release", actor=bob).count() == 2

    # the same file again changes nothing
    snapshot = aiq_sandbox.state.snapshot("demo")
    again = sales_upload_preview(source=source, filename="nov-copy.csv", content=content)
    assert not again.ok and "imported already" in again.errors[0]
    with pytest.raises(ValidationError, match="imported already"):
        sales_upload_import(source=source, filename="nov-copy.csv", content=content, actor=alice)
    drain_all()
    assert aiq_sandbox.state.snapshot("demo") == snapshot
    assert SalesInvoice.objects.count() == 50


def test_a_file_with_bad_rows_names_every_error_and_imports_nothing(entity, alice):
    source = crm_source(entity)
    content = invoice_file(
        [
            row("CRM-1", "ACME", "Acme", "100.00", "20.00"),
            row("CRM-1", "ACME", "Acme", "50.00", "10.00", date="16/11/2026"),
            row("CRM-2", "BRIGHT", "Bright", "abc", "20.00"),
            row("CRM-3", "CASTLE", "Castle", "100.005", "20.00"),
            row("", "DELTA", "Delta", "100.00", "20.00", date="31/02/2026"),
            row("CRM-4", "DELTA", "Delta", "100.00", "20.00", vat_code=""),
        ]
    )
    preview = sales_upload_preview(source=source, filename="bad.csv", content=content)
    errors = "\n".join(preview.errors)
    assert "row 3: invoice CRM-1 has a different invoice date than on row 2" in errors
    assert "row 4: net" in errors
    assert "rows 5 (CRM-3): line 1 net amount" in errors
    assert "row 6: external reference is empty" in errors and "row 6: invoice date" in errors
    assert "rows 7 (CRM-4): line 1: VAT without a VAT code" in errors
    with pytest.raises(ValidationError):
        sales_upload_import(source=source, filename="bad.csv", content=content, actor=alice)
    assert not SalesInvoice.objects.exists() and not SalesBatch.objects.exists()
    assert not OutboxCommand.objects.exists()


def test_order_numbers_make_an_item_invoice_saved_and_posted_once_despite_lost_answers(
    entity, aiq_sandbox, alice
):
    source = crm_source(entity)
    content = invoice_file(
        [
            row("ORD-1", "ACME", "Acme", "100.00", "20.00", order="PO-77", delivered="14/11/2026"),
            row("ORD-1", "ACME", "Acme", "10.00", "2.00", order="PO-77", item="SKU-1"),
        ]
    )
    sales_upload_import(source=source, filename="orders.csv", content=content, actor=alice)
    invoice = SalesInvoice.objects.get()
    assert invoice.invoice_type == InvoiceType.ITEM and "order numbers" in invoice.type_reason
    # the save commits but its answer is lost; then the post commits and its answer is lost
    aiq_sandbox.faults.update(drop_next=1, ops=["SaveInvoiceGetBackInvoiceID"])
    drain(budget_seconds=30, batch_size=5)
    assert OutboxCommand.objects.get().state == "uncertain"
    aiq_sandbox.faults.update(drop_next=1, ops=["PostInvoiceGetBackTransactionID"])
    drain_all()
    invoice.refresh_from_db()
    assert invoice.state == S.POSTED
    [posted] = aiq_invoices(aiq_sandbox, "ORD-1")
    assert posted["transaction_id"] == invoice.aiq_transaction_id
    assert aiq_sandbox.server.calls()["SaveInvoiceGetBackInvoiceID"] == 1
    documents = AiqClient.for_entity(entity).get_invoices_by_external_reference("ORD-1")
    assert len(documents) == 1 and documents[0]["OrderNumber"] == "PO-77"


def test_a_lost_bulk_answer_is_read_back_and_nothing_is_created_twice(entity, aiq_sandbox, alice):
    source = crm_source(entity)
    rows = [row(f"BULK-{n}", GBP_CUSTOMERS[n % 16], "x", "10.00", "2.00") for n in range(12)]
    sales_upload_import(source=source, filename="bulk.csv", content=invoice_file(rows), actor=alice)
    aiq_sandbox.faults.update(drop_next=1, ops=["CreateBatchSalesInvoiceBulkGetBackTransactionIDs"])
    aiq_sandbox.faults.update(token_expire_every=20)
    drain_all()
    assert aiq_sandbox.server.calls()["CreateBatchSalesInvoiceBulkGetBackTransactionIDs"] == 1
    for n in range(12):
        assert len(aiq_invoices(aiq_sandbox, f"BULK-{n}")) == 1
    assert set(SalesInvoice.objects.values_list("state", flat=True)) == {S.POSTED}


def test_once_aiq_has_an_invoice_a_changed_copy_is_refused_raise_a_credit_note(
    entity, aiq_sandbox, alice
):
    source = crm_source(entity)
    sales_upload_import(
        source=source,
        filename="a.csv",
        content=invoice_file([row("CRM-9", "ACME", "Acme", "100.00", "20.00")]),
        actor=alice,
    )
    drain_all()
    changed = invoice_file([row("CRM-9", "ACME", "Acme", "120.00", "24.00")])
    with pytest.raises(ValidationError, match="Raise a credit note"):
        sales_upload_import(source=source, filename="b.csv", content=changed, actor=alice)
    assert len(aiq_invoices(aiq_sandbox, "CRM-9")) == 1
    assert SalesInvoice.objects.get().gross_amount == Decimal("120.00")


def test_a_batch_above_the_entity_total_waits_for_a_second_person(entity, aiq_sandbox, alice, bob):
    SalesSettings.objects.create(entity=entity, batch_approval_total=Decimal("100.00"))
    source = crm_source(entity)
    content = invoice_file([row("BIG-1", "ACME", "Acme", "1000.00", "200.00")])
    batch = sales_upload_import(source=source, filename="big.csv", content=content, actor=alice)
    assert batch.state == SalesBatch.State.AWAITING_APPROVAL
    drain_all()
    assert SalesInvoice.objects.get().state == S.AWAITING_BATCH and not aiq_invoices(
        aiq_sandbox, "BIG-1"
    )
    with pytest.raises(PermissionDenied):
        sales_batch_approve(batch=batch, actor=alice)
    sales_batch_approve(batch=batch, actor=bob)
    drain_all()
    assert SalesInvoice.objects.get().state == S.POSTED
    assert len(aiq_invoices(aiq_sandbox, "BIG-1")) == 1


def test_a_posted_invoice_gets_its_breakdown_attached_in_aiq_and_its_pdf_e_mailed(
    entity, aiq_sandbox, alice, settings
):
    from django.core import mail

    from ledger.models import Invoice
    from sales.tasks import invoice_email

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    SalesSettings.objects.create(entity=entity, email_invoices=True)
    source = crm_source(entity)
    content = invoice_file(
        [row("MAIL-1", "ACME", "Acme", "100.00", "20.00", email="ap@acme.example")]
    )
    sales_upload_import(source=source, filename="mail.csv", content=content, actor=alice)
    drain_all()
    drain_all()  # the attachment's command, queued when the invoice was confirmed
    invoice = SalesInvoice.objects.get()
    mirror = Invoice.objects.get(aiq_transaction_id=invoice.aiq_transaction_id)
    assert mirror.kind == Invoice.Kind.BATCH and mirror.outstanding_amount == Decimal("120.00")
    listed = AiqClient.for_entity(entity).get_attached_document_list(
        "Transaction", invoice.aiq_transaction_id
    )
    assert [d["Filename"] for d in listed] == [mirror.attachments.get().aiq_filename]
    assert mirror.attachments.get().filename == "MAIL-1-breakdown.csv"

    assert invoice_email(invoice.pk) is True
    [message] = mail.outbox
    assert message.to == ["ap@acme.example"]
    names = [a[0] for a in message.attachments]
    assert names == ["MAIL-1.pdf", "MAIL-1-breakdown.csv"]
    assert message.attachments[0][1].startswith(b"%PDF")


def test_an_already_paid_order_posts_invoice_receipt_and_allocation_once_despite_a_lost_answer(
    entity, aiq_sandbox, alice
):
    from datetime import date

    from ledger.models import Invoice
    from sales.normalised import NormalisedInvoice, NormalisedLine, NormalisedPaid
    from sales.services.invoices import sales_invoice_submit

    source = crm_source(entity, code="SHOP")
    order = NormalisedInvoice(
        external_reference="SHOP-1001",
        customer_code="ACME",
        customer_name="Acme",
        invoice_date=date(2026, 11, 20),
        currency="GBP",
        lines=[
            NormalisedLine(
                net_amount=Decimal("49.99"),
                tax_amount=Decimal("10.00"),
                tax_code="T1",
                description="Card reader",
            )
        ],  # fmt: skip
        paid=NormalisedPaid(
            amount=Decimal("59.99"),
            bank_account_code="BANK-GBP",
            reference="SHOP-PAY-1001",
            paid_on=date(2026, 11, 20),
        ),
    )
    invoice = sales_invoice_submit(entity=entity, source=source, invoice=order, actor=alice)
    assert invoice.command.kind == "sales_paid_invoice"
    aiq_sandbox.faults.update(drop_next=1, ops=["PostPayAndAllocateSalesInvoice"])
    drain_all()
    invoice.refresh_from_db()
    assert invoice.state == S.POSTED and invoice.receipt_transaction_id
    [posted] = aiq_invoices(aiq_sandbox, "SHOP-1001")
    assert posted["transaction_id"] == invoice.aiq_transaction_id
    assert posted["outstanding"] == Decimal("0")  # settled by its receipt, no matching run
    assert aiq_sandbox.state.receipt_count("SHOP-PAY-1001") == 1
    assert aiq_sandbox.server.calls()["PostPayAndAllocateSalesInvoice"] == 1
    mirror = Invoice.objects.get(aiq_transaction_id=invoice.aiq_transaction_id)
    assert mirror.outstanding_amount == 0 and mirror.status == "paid"
    # the same order again (the shop retries its webhook): nothing new
    assert sales_invoice_submit(entity=entity, source=source, invoice=order, actor=alice) == invoice


def test_an_already_paid_order_aiq_refused_is_sent_again_still_paid(
    entity, aiq_sandbox, alice, bob
):
    from datetime import date

    from ledger.outbox.services import outbox_cancel
    from sales.normalised import NormalisedInvoice, NormalisedLine, NormalisedPaid
    from sales.services.invoices import sales_invoice_retry, sales_invoice_submit

    source = crm_source(entity, code="SHOP")
    order = NormalisedInvoice(
        external_reference="SHOP-2002", customer_code="ACME", customer_name="Acme",
        invoice_date=date(2026, 11, 21), currency="GBP",
        lines=[NormalisedLine(net_amount=Decimal("20.00"), tax_amount=Decimal("4.00"),
                              tax_code="T1", description="Cable")],
        paid=NormalisedPaid(amount=Decimal("24.00"), bank_account_code="BANK-GBP",
                            reference="SHOP-PAY-2002", paid_on=date(2026, 11, 21)),
    )  # fmt: skip
    invoice = sales_invoice_submit(entity=entity, source=source, invoice=order, actor=alice)
    # an approver stops it in the outbox before it went (AIQ was down that morning)
    outbox_cancel(command=invoice.command, actor=bob, reason="AIQ down")
    drain_all()
    invoice.refresh_from_db()
    assert invoice.state == S.FAILED and not aiq_invoices(aiq_sandbox, "SHOP-2002")
    sales_invoice_retry(invoice=invoice, actor=bob)
    drain_all()
    invoice.refresh_from_db()
    # sent again as what it is: the invoice with its receipt and allocation, not a bare invoice
    assert invoice.command.kind == "sales_paid_invoice"
    assert invoice.state == S.POSTED and invoice.receipt_transaction_id
    [posted] = aiq_invoices(aiq_sandbox, "SHOP-2002")
    assert posted["outstanding"] == 0
    assert aiq_sandbox.state.receipt_count("SHOP-PAY-2002") == 1


def test_a_new_customer_waits_for_an_approver_when_the_company_asks(
    entity, aiq_sandbox, alice, bob
):
    SalesSettings.objects.create(entity=entity, approve_new_customers=True)
    source = crm_source(entity)
    content = invoice_file(
        [row("NEW-1", "FRESH", "Fresh Start Ltd", "80.00", "16.00"),
         row("OLD-1", "ACME", "Acme", "10.00", "2.00")]
    )  # fmt: skip
    sales_upload_import(source=source, filename="new.csv", content=content, actor=alice)
    drain_all()
    fresh = SalesInvoice.objects.get(external_reference="NEW-1")
    assert fresh.state == S.HELD_CUSTOMER and "new customer" in fresh.held_reason
    assert "FRESH" not in aiq_customer_codes(aiq_sandbox)
    assert SalesInvoice.objects.get(external_reference="OLD-1").state == S.POSTED
    sales_invoice_release(invoice=fresh, actor=bob)
    drain_all()
    fresh.refresh_from_db()
    assert fresh.state == S.POSTED and "FRESH" in aiq_customer_codes(aiq_sandbox)
    assert len(aiq_invoices(aiq_sandbox, "NEW-1")) == 1
