# ruff: noqa: F811  (the screen_data fixture is imported by name)
"""Ledger screens: invoices (filters, keyset pages, detail, PDFs from the cache), customers
(credit check), sync (outbox retry/cancel through the outbox services, progress polling)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from ledger.models import Document, OutboxCommand, SyncState
from staff.models import AuditEntry
from tests.test_views_data import make_invoice, screen_data  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def test_invoice_list_filters_by_status_and_open_only(client, alice, screen_data):
    inv = screen_data["invoices"][0]
    type(inv).objects.filter(pk=inv.pk).update(status="paid", outstanding_amount=0)
    client.force_login(alice)
    html = client.get(reverse("ledger:invoices"), {"outstanding": "on"}).content.decode()
    assert "INV-1002" in html and "INV-1001" not in html
    html = client.get(reverse("ledger:invoices"), {"status": "paid"}).content.decode()
    assert "INV-1001" in html and "INV-1002" not in html


def test_invoice_list_pages_by_keyset(client, alice, entity, screen_data):
    for i in range(60):
        make_invoice(entity, screen_data["customer"], f"BULK-{i:03d}", "1.00", days_ago=i % 7)
    client.force_login(alice)
    first = client.get(reverse("ledger:invoices")).context["page"]
    second = client.get(reverse("ledger:invoices"), {"after": first.next_cursor}).context["page"]
    ids = [i.pk for i in first.items] + [i.pk for i in second.items]
    assert len(ids) == 63 and len(set(ids)) == 63 and not second.has_next


def test_invoice_detail_shows_aiq_ids_and_allocations(client, alice, screen_data):
    from ledger.models import Allocation, Receipt

    inv = screen_data["invoices"][0]
    receipt = Receipt.objects.create(
        entity=inv.entity, customer=inv.customer, bank_account=inv.entity.default_bank_account,
        check_reference="RCPT-9", aiq_transaction_id=7777, currency="GBP",
        payment_date=timezone.localdate(), amount=Decimal("100"), unallocated_amount=0,
    )  # fmt: skip
    Allocation.objects.create(
        entity=inv.entity, transaction_id_1=7777, transaction_id_2=5001, receipt=receipt,
        invoice=inv, amount=Decimal("100"), currency="GBP",
        allocation_date=timezone.localdate(), reference="ALLOC-9",
    )  # fmt: skip
    client.force_login(alice)
    html = client.get(reverse("ledger:invoice", args=[inv.pk])).content.decode()
    assert "5001" in html and "7777" in html and "RCPT-9" in html
    assert reverse("ledger:receipt_pdf", args=[receipt.pk]) in html


def test_cached_invoice_pdf_is_served_without_asking_aiq(client, alice, screen_data):
    inv = screen_data["invoices"][0]  # its PDF is in the cache (screen_data)
    assert Document.objects.filter(aiq_transaction_id=5001).count() == 1
    client.force_login(alice)
    response = client.get(reverse("ledger:invoice_pdf", args=[inv.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert (
        response.content.startswith(b"%PDF")
        and 'filename="INV-1001.pdf"' in response["Content-Disposition"]
    )


def test_invoice_not_in_aiq_has_no_pdf_and_says_why(client, alice, screen_data):
    inv = screen_data["invoices"][0]
    type(inv).objects.filter(pk=inv.pk).update(aiq_transaction_id=None)
    client.force_login(alice)
    response = client.get(reverse("ledger:invoice_pdf", args=[inv.pk]), follow=True)
    assert "not in AIQ yet" in response.content.decode()


def test_attachment_of_the_wrong_type_is_refused_with_a_message(client, alice, screen_data):
    from django.core.files.uploadedfile import SimpleUploadedFile

    inv = screen_data["invoices"][0]
    client.force_login(alice)
    upload = SimpleUploadedFile("notes.exe", b"MZ...", content_type="application/octet-stream")
    response = client.post(
        reverse("ledger:invoice_attach", args=[inv.pk]), {"file": upload}, follow=True
    )
    assert "Attach a .csv or .xlsx file." in response.content.decode()
    assert not OutboxCommand.objects.filter(kind="attach_document").exists()


def test_customer_detail_runs_a_plain_credit_check(client, alice, screen_data):
    client.force_login(alice)
    customer = screen_data["customer"]
    html = client.get(reverse("ledger:customer", args=[customer.pk])).content.decode()
    assert "within the limit" in html and "3,750.00 GBP" in html  # 5,000 - 1,250 open
    type(customer).objects.filter(pk=customer.pk).update(credit_limit=Decimal("1000"))
    html = client.get(reverse("ledger:customer", args=[customer.pk])).content.decode()
    assert "over the limit" in html


def test_outbox_screen_shows_aiqs_message_and_approver_retries(client, bob, screen_data):
    command = screen_data["command"]
    client.force_login(bob)
    html = client.get(reverse("payments:outbox"), {"state": "needs_person"}).content.decode()
    assert "Customer ACME is on hold" in html and "E042" in html
    back = reverse("payments:outbox") + "?state=needs_person"
    response = client.post(
        reverse("ledger:command_retry", args=[command.pk]), {"next": back}, follow=True
    )
    assert response.redirect_chain[-1][0] == back
    assert "will be sent again" in response.content.decode()
    command.refresh_from_db()
    assert command.state in ("uncertain", "pending") and command.attempts == 0
    assert AuditEntry.objects.filter(action="outbox.retry", actor=bob).exists()


def test_cancel_needs_a_reason_then_is_audited(client, bob, screen_data):
    command = screen_data["command"]
    client.force_login(bob)
    url = reverse("ledger:command_cancel", args=[command.pk])
    response = client.post(url, {"reason": ""}, follow=True)
    assert "Give a reason" in response.content.decode()
    command.refresh_from_db()
    assert command.state == "needs_person"
    client.post(url, {"reason": "customer paid by cheque"})
    command.refresh_from_db()
    assert command.state == "cancelled"
    assert AuditEntry.objects.filter(action="outbox.cancel", summary__contains="cheque").exists()


def test_clerk_sees_no_retry_button(client, alice, screen_data):
    client.force_login(alice)
    html = client.get(reverse("payments:outbox")).content.decode()
    assert "Customer ACME is on hold" in html
    assert reverse("ledger:command_retry", args=[screen_data["command"].pk]) not in html


def test_progress_partial_polls_only_while_a_pull_runs(client, alice, entity):
    state = SyncState.objects.create(
        entity=entity, object_type="invoices", running=True, progress_done=3, progress_total=10,
        last_started_at=timezone.now() - timedelta(seconds=5),
    )  # fmt: skip
    client.force_login(alice)
    html = client.get(reverse("ledger:sync_progress"), HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-trigger="every 1s"' in html and 'value="3"' in html and 'max="10"' in html
    state.running = False
    state.save()
    html = client.get(reverse("ledger:sync_progress"), HTTP_HX_REQUEST="true").content.decode()
    assert "hx-trigger" not in html and "idle" in html


def test_customer_statement_and_balance_come_from_aiq(client, alice, entity, aiq_sandbox):
    from ledger.models import Customer, Invoice
    from ledger.sync.services import sync_claim, sync_run

    sync_claim(entity=entity)
    sync_run(entity=entity)
    invoice = Invoice.objects.filter(entity=entity, outstanding_amount__gt=0).first()
    customer = Customer.objects.get(pk=invoice.customer_id)
    client.force_login(alice)
    url = reverse("ledger:customer_statement", args=[customer.pk])
    html = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "Balance in AIQ" in html and "AIQ did not answer" not in html
    assert invoice.external_reference in html or invoice.invoice_number in html


def test_statement_says_so_when_aiq_does_not_answer(client, alice, screen_data, settings):
    from tests.conftest import free_port

    settings.AIQ_SANDBOX_URL = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    client.force_login(alice)
    url = reverse("ledger:customer_statement", args=[screen_data["customer"].pk])
    response = client.get(url, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert "AIQ did not answer" in response.content.decode()


def test_receipt_pdf_is_fetched_from_aiq_once_then_cached(client, alice, entity, aiq_sandbox):
    from ledger.models import Receipt
    from ledger.sync.services import sync_claim, sync_run

    sync_claim(entity=entity)
    sync_run(entity=entity)
    receipt = Receipt.objects.filter(entity=entity, aiq_transaction_id__isnull=False).first()
    client.force_login(alice)
    response = client.get(reverse("ledger:receipt_pdf", args=[receipt.pk]))
    assert response.status_code == 200 and response.content.startswith(b"%PDF")
    assert Document.objects.filter(kind="receipt_pdf").count() == 1
    aiq_sandbox.stop()  # the second download must not need AIQ
    again = client.get(reverse("ledger:receipt_pdf", args=[receipt.pk]))
    assert again.content == response.content


def test_sync_now_starts_one_pull_and_refuses_a_second(client, alice, entity):
    client.force_login(alice)
    response = client.post(reverse("ledger:sync_now"), {"entity": entity.pk}, follow=True)
    assert f"Sync of {entity.name} started." in response.content.decode()
    assert SyncState.objects.filter(entity=entity, running=True).exists()
    response = client.post(reverse("ledger:sync_now"), {"entity": entity.pk}, follow=True)
    assert "already running" in response.content.decode()


def test_undo_an_allocation_needs_a_reason_and_queues_a_reversal(client, alice, screen_data):
    from ledger.models import Allocation, Receipt

    inv = screen_data["invoices"][0]
    receipt = Receipt.objects.create(
        entity=inv.entity, customer=inv.customer, bank_account=inv.entity.default_bank_account,
        check_reference="RCPT-77", aiq_transaction_id=7700, currency="GBP",
        payment_date=timezone.localdate(), amount=Decimal("100"), unallocated_amount=0,
    )  # fmt: skip
    allocation = Allocation.objects.create(
        entity=inv.entity, transaction_id_1=7700, transaction_id_2=5001, receipt=receipt,
        invoice=inv, amount=Decimal("100"), currency="GBP",
        allocation_date=timezone.localdate(), reference="ALLOC-77",
    )  # fmt: skip
    client.force_login(alice)
    url = reverse("payments:unallocate", args=[allocation.pk])
    assert url in client.get(reverse("ledger:invoice", args=[inv.pk])).content.decode()
    response = client.post(url, {"reason": ""}, follow=True)
    assert "Say why the allocation is undone." in response.content.decode()
    assert not OutboxCommand.objects.filter(kind="unallocate").exists()
    response = client.post(url, {"reason": "paid twice"}, follow=True)
    assert "will be undone in AIQ" in response.content.decode()
    assert OutboxCommand.objects.filter(kind="unallocate").count() == 1
