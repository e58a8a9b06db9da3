"""The sales invoicing screens: upload, preview with every row error, import, the batch page
with its rows and progress, the invoice page, an approver's release. AIQ is the sandbox."""

import pytest

from sales.models import SalesInvoice
from tests.sales_support import crm_source, drain_all, invoice_file, row


@pytest.fixture(autouse=True)
def _quick_outbox(settings):
    settings.OUTBOX_SETTLE_SECONDS = 0


def _upload(client, source, name, content):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return client.post(
        "/sales/upload",
        {"source": source.pk, "file": SimpleUploadedFile(name, content, "text/csv")},
    )


def test_a_bad_file_is_previewed_with_its_row_errors_and_offers_no_import(client, entity, alice):
    source = crm_source(entity)
    client.force_login(alice)
    response = _upload(
        client, source, "bad.csv", invoice_file([row("X-1", "ACME", "Acme", "ten", "2.00")])
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "row 2: net" in page and "Import" not in page.split("Nothing can be imported")[0][-200:]
    assert not SalesInvoice.objects.exists()


def test_upload_import_batch_page_invoice_page_and_release(client, entity, aiq_sandbox, alice, bob):
    from decimal import Decimal

    from ledger.aiq.client import AiqClient
    from tests.sales_support import aiq_set_credit_limit

    aiq_set_credit_limit(AiqClient.for_entity(entity), "CASTLE", Decimal("0.01"))
    source = crm_source(entity)
    client.force_login(alice)
    content = invoice_file(
        [
            row("WEB-1", "ACME", "Acme", "100.00", "20.00"),
            row("WEB-2", "CASTLE", "Castle", "50.00", "10.00"),
        ]
    )
    preview = _upload(client, source, "web.csv", content)
    assert preview.status_code == 200 and "Import 2 invoices" in preview.content.decode()
    sha = preview.context["preview"].sha256
    response = client.post(
        "/sales/import", {"source": source.pk, "sha256": sha, "filename": "web.csv"}
    )
    assert response.status_code == 302
    batch_url = response["Location"]
    drain_all()
    page = client.get(batch_url).content.decode()
    assert "WEB-1" in page and "Posted in AIQ" in page and "Held: credit check" in page
    assert "1 of 2 settled" in page and "180.00 GBP" in page  # the batch's gross
    held = SalesInvoice.objects.get(external_reference="WEB-2")
    page = client.get(f"/sales/invoices/{held.pk}/").content.decode()
    assert "over the credit limit" in page and "Release to AIQ" in page
    # the clerk cannot release; the approver can
    assert client.post(f"/sales/invoices/{held.pk}/release").status_code == 403
    client.force_login(bob)
    client.post(f"/sales/invoices/{held.pk}/release")
    drain_all()
    held.refresh_from_db()
    assert held.state == SalesInvoice.State.POSTED and held.aiq_transaction_id
    page = client.get(f"/sales/invoices/{held.pk}/").content.decode()
    assert str(held.aiq_transaction_id) in page and "Raise a credit note" in page
    # the same file again is refused on the preview
    client.force_login(alice)
    again = _upload(client, source, "web-again.csv", content).content.decode()
    assert "imported already" in again


def test_an_approver_retries_every_refused_invoice_of_a_batch_once_each(
    client, entity, aiq_sandbox, alice, bob
):
    from django.contrib.messages import get_messages

    from ledger.outbox.services import outbox_cancel
    from sales.services.uploads import sales_upload_import
    from staff.models import AuditEntry
    from tests.sales_support import aiq_invoices

    source = crm_source(entity)
    batch = sales_upload_import(
        source=source,
        filename="november.csv",
        content=invoice_file(
            [
                row("RT-1", "ACME", "Acme", "100.00", "20.00"),
                row("RT-2", "ACME", "Acme", "10.00", "2.00"),
                row("RT-3", "ACME", "Acme", "1.00", "0.20"),
            ]
        ),
        actor=alice,
    )
    # AIQ was down: an approver stopped two of them in the outbox; they failed
    for reference in ("RT-1", "RT-2"):
        command = SalesInvoice.objects.get(external_reference=reference).command
        outbox_cancel(command=command, actor=bob, reason="AIQ down")
    drain_all()
    assert set(
        SalesInvoice.objects.filter(state=SalesInvoice.State.FAILED).values_list(
            "external_reference", flat=True
        )
    ) == {"RT-1", "RT-2"}
    url = f"/sales/batches/{batch.pk}/"
    client.force_login(alice)
    page = client.get(url).content.decode()
    assert "Retry all 2 refused invoices (132.00 GBP)" in page
    assert "3 of 3 settled" in page and "Refused by AIQ: 2" in page  # counted per state
    assert client.post(f"{url}retry-failed").status_code == 403  # a clerk cannot
    client.force_login(bob)
    first = client.post(f"{url}retry-failed")
    again = client.post(f"{url}retry-failed")  # a double click
    assert first.status_code == again.status_code == 302
    texts = [str(m) for m in get_messages(first.wsgi_request)]
    assert any("2 refused invoice(s) sent to AIQ again" in t for t in texts), texts
    texts = [str(m) for m in get_messages(again.wsgi_request)]
    assert any("nothing to retry" in t for t in texts), texts
    drain_all()
    for reference in ("RT-1", "RT-2", "RT-3"):
        assert len(aiq_invoices(aiq_sandbox, reference)) == 1
        assert SalesInvoice.objects.get(external_reference=reference).state == "posted"
    [entry] = AuditEntry.objects.filter(action="sales_batch.retry_failed")
    assert entry.actor == bob and "2 refused invoice(s) sent again, 132.00 GBP" in entry.summary
    assert AuditEntry.objects.filter(action="sales_invoice.retry").count() == 2
    assert "Retry all" not in client.get(url).content.decode()


def test_the_batch_list_filters_by_company_with_totals_per_currency(client, entity, bob):
    from decimal import Decimal

    from ledger.models import Entity
    from sales.models import InvoiceSource, SalesBatch

    sister = Entity.objects.create(
        name="Sister Company DAC", company_id="sister-ie", region="sandbox",
        base_currency="EUR", credentials_key="DEMO",
    )  # fmt: skip
    for company, name, currency, gross in (
        (entity, "demo-november.csv", "GBP", "120.00"),
        (sister, "sister-november.csv", "EUR", "99.50"),
    ):
        source = InvoiceSource.objects.create(entity=company, code="CRM", name="CRM")
        batch = SalesBatch.objects.create(
            entity=company, source=source, filename=name, sha256=name, invoice_count=1,
            gross_total=Decimal(gross),
        )  # fmt: skip
        SalesInvoice.objects.create(
            entity=company, source=source, batch=batch, external_reference=f"{name}-1",
            customer_code="ACME", customer_name="Acme", invoice_date="2026-11-15",
            currency=currency, invoice_type="batch", net_amount=Decimal(gross),
            tax_amount=0, gross_amount=Decimal(gross), content_hash="x",
        )  # fmt: skip
    client.force_login(bob)
    page = client.get("/sales/").content.decode()
    assert 'name="company"' in page and "Sister Company DAC" in page
    assert "demo-november.csv" in page and "sister-november.csv" in page
    assert "99.50 EUR" in page and "120.00 GBP" in page
    page = client.get("/sales/", {"company": sister.pk}).content.decode()
    assert "sister-november.csv" in page and "demo-november.csv" not in page
    totals = page.split('data-testid="batch-totals">')[1].split("</p>")[0]
    assert ">1</strong> batch:" in totals and "99.50 EUR" in totals and "GBP" not in totals
