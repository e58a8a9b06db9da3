"""The credit note PDF on the refund page: AIQ draws it (GetInvoicePDFByTransactionID takes a
credit note's transaction id), the first download is kept in ledger.Document, later ones do
not ask AIQ; before the credit note is in AIQ there is a message, not an error page."""

from io import BytesIO

import pytest
from pypdf import PdfReader

from ledger.models import Document
from payments.services.refunds import refund_approve, refund_request
from tests.refunds_support import drain_all, make_invoice, seed_roles_without_matching, setup_books

# transaction=True: the outbox drain commits for real (see test_refunds_scenarios.py)
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _seeded(transactional_db):
    seed_roles_without_matching()


@pytest.fixture
def books(aiq_sandbox, entity, audit_flushable):
    setup_books(entity)
    return aiq_sandbox


def _aiq_number(books, transaction_id: int) -> str:
    with books.server.store.transaction() as db:
        row = db.execute("SELECT internal_number FROM txn WHERE id = ?", (transaction_id,))
        return row.fetchone()["internal_number"]


def test_the_credit_note_pdf_comes_from_aiq_and_is_kept(client, books, entity, alice, bob):
    invoice = make_invoice(entity, "ACME", [("Card reader", "4020", "39.99", "T1")])
    refund = refund_request(actor=alice, kind="cancel_invoice", invoice=invoice, reason="Lost")
    client.force_login(alice)
    url = f"/refunds/{refund.pk}/credit-note.pdf"

    # before approval the credit note is only a draft here: nothing to download yet
    response = client.get(url, follow=True)
    assert response.redirect_chain == [(f"/refunds/{refund.pk}/", 302)]
    assert b"This credit note is not in AIQ yet, so it has no PDF." in response.content

    refund_approve(refund=refund, actor=bob)
    drain_all()
    refund.refresh_from_db()
    note = refund.credit_note
    assert refund.state == "completed" and note.aiq_transaction_id
    page = client.get(f"/refunds/{refund.pk}/").content.decode()
    assert f'href="{url}"' in page

    response = client.get(url)
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("attachment; filename=")
    content = response.content
    text = "".join(p.extract_text() for p in PdfReader(BytesIO(content)).pages)
    assert f"Credit note {_aiq_number(books, note.aiq_transaction_id)}" in text
    assert "ACME" in text and "47.99" in text  # 39.99 + 8.00 VAT
    cached = Document.objects.get(
        kind="credit_note_pdf", aiq_transaction_id=note.aiq_transaction_id
    )
    assert bytes(cached.content) == content

    # AIQ now refuses every PDF: the second download is served from the copy we kept
    books.faults.update(failure_rate=1.0, failure_mode="aiq", ops=["GetInvoicePDFByTransactionID"])
    again = client.get(url)
    assert again.status_code == 200 and again.content == content
    assert books.faults.snapshot()["stats"]["failures"] == 0


def test_a_credit_note_pdf_aiq_refuses_is_a_message_not_an_error_page(
    client, books, entity, alice, bob
):
    invoice = make_invoice(entity, "ACME", [("Card reader", "4020", "10.00", "T0")])
    refund = refund_request(actor=alice, kind="cancel_invoice", invoice=invoice, reason="Lost")
    refund_approve(refund=refund, actor=bob)
    drain_all()
    books.faults.update(failure_rate=1.0, failure_mode="aiq", ops=["GetInvoicePDFByTransactionID"])
    client.force_login(alice)
    response = client.get(f"/refunds/{refund.pk}/credit-note.pdf", follow=True)
    assert response.redirect_chain == [(f"/refunds/{refund.pk}/", 302)]
    assert b"The credit note PDF could not be fetched from AIQ" in response.content
    assert not Document.objects.exists()
