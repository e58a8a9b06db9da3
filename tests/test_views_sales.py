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
