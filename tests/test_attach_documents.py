"""Attach a CSV/Excel breakdown to an invoice: page -> service -> outbox -> AIQ sandbox over HTTP."""

import hashlib
import sqlite3

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from ledger.documents import document_attach
from ledger.models import Attachment, Customer, Invoice, OutboxCommand
from ledger.outbox.runner import drain
from staff.models import AuditEntry

CSV = b"job,hours,amount\nA-1,3,450.00\nA-2,1,150.00\n"
XLSX = b"PK\x03\x04" + b"\x00" * 60  # the zip signature an .xlsx starts with


@pytest.fixture
def invoice(entity, aiq_sandbox):
    """The mirror row of the sandbox's demo invoice SO-2001 (a posted ACME invoice)."""
    [txn] = [t for t in aiq_sandbox.state.transactions("SO-2001") if t["type"] == "SalesInvoice"]
    customer = Customer.objects.create(entity=entity, code="ACME", name="Acme", currency="GBP")
    return Invoice.objects.create(
        entity=entity,
        customer=customer,
        invoice_number="SO-2001",
        external_reference="SO-2001",
        aiq_transaction_id=txn["transaction_id"],
        currency="GBP",
        invoice_date="2025-01-10",
        net_amount=txn["amount"],
        gross_amount=txn["amount"],
        outstanding_amount=txn["amount"],
    )


def sandbox_documents(sandbox) -> list[tuple]:
    db = sqlite3.connect(sandbox.db_path)
    try:
        return db.execute(
            "SELECT master_type, master_id, filename, content, comments FROM document ORDER BY id"
        ).fetchall()
    finally:
        db.close()


def drain_once():
    return drain(budget_seconds=20, batch_size=10)


def test_an_uploaded_csv_is_attached_to_the_invoice_in_aiq_exactly_once(
    client, alice, invoice, aiq_sandbox
):
    client.force_login(alice)
    response = client.post(
        f"/invoices/{invoice.pk}/attach",
        {"file": SimpleUploadedFile("jobs.csv", CSV, "text/csv"), "description": "Jobs"},
    )
    assert response.status_code == 302
    attachment = Attachment.objects.get()
    command = OutboxCommand.objects.get(kind="attach_document")
    assert command.external_reference == f"ATT-{attachment.pk}"
    # the payload references the stored file; the bytes are not copied into it
    assert "content" not in command.payload and len(str(command.payload)) < 300
    assert bytes(attachment.content) == CSV
    assert AuditEntry.objects.filter(action="document.attach", object_id=str(invoice.pk)).exists()

    assert drain_once() == {"confirmed": 1}
    [(master_type, master_id, filename, content, comments)] = sandbox_documents(aiq_sandbox)
    assert (master_type, master_id) == ("Transaction", str(invoice.aiq_transaction_id))
    assert filename == f"jobs [ATT-{attachment.pk}].csv" and content == CSV
    assert comments == "Jobs"
    attachment.refresh_from_db()
    assert attachment.attached_at is not None
    assert aiq_sandbox.server.calls()["AttachDocument"] == 1
    page = client.get(f"/invoices/{invoice.pk}/")
    assert b"jobs.csv" in page.content and b"in AIQ</span>" in page.content


def test_a_lost_answer_is_read_back_and_never_attaches_a_second_copy(alice, invoice, aiq_sandbox):
    upload = SimpleUploadedFile("jobs.xlsx", XLSX)
    attachment = document_attach(invoice=invoice, upload=upload, actor=alice)
    aiq_sandbox.faults.update(drop_after_commit_rate=1.0, ops=["AttachDocument"])

    assert drain_once() == {"uncertain": 1}  # AIQ stored it, we never heard back
    assert len(sandbox_documents(aiq_sandbox)) == 1

    aiq_sandbox.faults.reset()
    OutboxCommand.objects.update(next_attempt_at=None)
    assert drain_once() == {"confirmed": 1}
    command = OutboxCommand.objects.get()
    assert command.attempts == 2
    documents = sandbox_documents(aiq_sandbox)
    assert len(documents) == 1 and documents[0][3] == XLSX
    assert aiq_sandbox.server.calls()["AttachDocument"] == 1  # the retry only read back
    assert aiq_sandbox.server.calls()["GetAttachedDocumentList"] == 1
    attachment.refresh_from_db()
    assert attachment.aiq_document_id and attachment.attached_at


def test_the_same_file_twice_is_two_attachments_each_found_by_its_own_reference(
    alice, invoice, aiq_sandbox
):
    first = document_attach(invoice=invoice, filename="jobs.csv", content=CSV, actor=alice)
    second = document_attach(invoice=invoice, filename="jobs.csv", content=CSV, actor=alice)
    assert drain_once() == {"confirmed": 2}
    names = [d[2] for d in sandbox_documents(aiq_sandbox)]
    assert sorted(names) == sorted([first.aiq_filename, second.aiq_filename])
    assert first.aiq_filename != second.aiq_filename


@pytest.mark.parametrize(
    ("filename", "content", "message"),
    [
        ("report.exe", b"MZ...", "Attach a .csv or .xlsx file."),
        ("empty.csv", b"", "The file is empty."),
        ("fake.xlsx", b"job,amount\n", "This is not an Excel (.xlsx) file."),
        ("binary.csv", b"a,b\x00\x01", "This does not look like a CSV text file."),
        ("huge.csv", b"x" * (5 * 1024 * 1024 + 1), "The file is larger than 5 MB."),
    ],
)
def test_bad_files_are_refused_with_a_message_and_nothing_is_kept(
    alice, invoice, filename, content, message
):
    with pytest.raises(ValidationError) as refused:
        document_attach(invoice=invoice, filename=filename, content=content, actor=alice)
    assert message in str(refused.value)
    assert not Attachment.objects.exists() and not OutboxCommand.objects.exists()


def test_an_invoice_not_in_aiq_and_a_user_without_a_role_are_refused(alice, mallory, invoice):
    with pytest.raises(PermissionDenied):
        document_attach(invoice=invoice, filename="a.csv", content=CSV, actor=mallory)
    Invoice.objects.filter(pk=invoice.pk).update(aiq_transaction_id=None)
    with pytest.raises(ValidationError, match="not posted in AIQ"):
        document_attach(invoice=invoice, filename="a.csv", content=CSV, actor=alice)
    assert not Attachment.objects.exists() and not OutboxCommand.objects.exists()


def test_the_page_shows_a_refusal_next_to_nothing_stored(client, alice, invoice):
    client.force_login(alice)
    Invoice.objects.filter(pk=invoice.pk).update(aiq_transaction_id=None)
    response = client.post(
        f"/invoices/{invoice.pk}/attach",
        {"file": SimpleUploadedFile("jobs.csv", CSV, "text/csv")},
        follow=True,
    )
    assert response.status_code == 200
    assert b"Attachment not sent: This invoice is not posted in AIQ yet" in response.content
    assert not Attachment.objects.exists()


def test_a_file_changed_after_it_was_queued_is_parked_for_a_person(alice, invoice, aiq_sandbox):
    attachment = document_attach(invoice=invoice, filename="a.csv", content=CSV, actor=alice)
    Attachment.objects.filter(pk=attachment.pk).update(content=b"other,bytes\n")
    assert drain_once() == {"needs_person": 1}
    assert "changed since it was queued" in OutboxCommand.objects.get().last_error_message
    assert sandbox_documents(aiq_sandbox) == []
    assert hashlib.sha256(CSV).hexdigest() == attachment.sha256
