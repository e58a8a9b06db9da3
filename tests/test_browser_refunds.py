"""A refund in a real browser (Debian's Chromium via Playwright), against the AIQ sandbox and
localstripe over HTTP:

alice (clerk) opens an invoice paid by Stripe, asks for a partial refund with a reason and
reads the plan (customer, invoice, amount, the AIQ entries, the Stripe refund); she gets no
approve button. bob (approver) approves; the outbox worker pushes it; the refund page says
completed, and the credit note and invoice PDFs download as real PDFs from AIQ. An approver
who asks for a refund is not offered the approve button either.
"""

import os
from io import BytesIO

import pytest

from tests.refunds_support import (
    allocate,
    drain_all,
    make_invoice,
    seed_roles_without_matching,
    setup_books,
    stripe_payment,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _seeded(transactional_db):
    """live_server needs a transactional database, flushed between tests: the role groups
    (made by a data migration) are made again."""
    seed_roles_without_matching()


@pytest.fixture
def books(aiq_sandbox, entity, audit_flushable):
    setup_books(entity)
    return aiq_sandbox


def _login(browser, live_server, username):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(f"{username}-pass-123")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server.url}/")
    return context, page, errors


def _shot(page, name):
    folder = os.environ.get("UI_SCREENSHOTS")
    if folder:
        page.screenshot(path=os.path.join(folder, f"refund-{name}.png"), full_page=True)


def _download_pdf_text(page, link_name: str) -> tuple[str, str]:
    """Click the link, wait for the download, check it is a PDF; its file name and text."""
    from pypdf import PdfReader

    with page.expect_download() as info:
        page.get_by_role("link", name=link_name).click()
    download = info.value
    with open(download.path(), "rb") as handle:
        content = handle.read()
    assert content.startswith(b"%PDF"), content[:80]
    text = "\n".join(p.extract_text() for p in PdfReader(BytesIO(content)).pages)
    return download.suggested_filename, text


def test_clerk_requests_a_partial_refund_approver_approves_worker_pushes_pdfs_download(
    browser, live_server, books, localstripe, entity, alice, bob
):
    from ledger.models import Document, Journal
    from payments.models import Refund
    from payments.sources.stripe_client import request

    invoice = make_invoice(entity, "BRIGHT", [("Support hours", "4010", "100.00", "T1")])
    payment = stripe_payment(entity, invoice.customer, 12000, invoice)
    allocate(payment, [(invoice, "120.00")], alice, bob)
    invoice.refresh_from_db()
    assert invoice.status == "paid"

    # the clerk opens the paid invoice and asks for 30.00 back
    context, page, errors = _login(browser, live_server, "alice")
    page.goto(f"{live_server.url}/invoices/{invoice.pk}/")
    page.get_by_role("link", name="Refund a payment of this invoice…").click()
    assert page.get_by_test_id("refund-limit").inner_text() == "120.00 GBP"
    page.get_by_label("Amount (gross, leave empty for all that can go back)").fill("30.00")
    page.get_by_label("Reason").fill("Two support hours unused")
    page.get_by_role("button", name="Request the refund").click()
    page.get_by_text("Refund requested; a second person must approve it.").wait_for()
    refund = Refund.objects.get()
    assert (refund.kind, refund.state, refund.amount) == ("refund_invoice", "requested", 30)

    # the plan: customer, invoice, amount, the AIQ entries and the Stripe refund
    _shot(page, "1-requested")
    facts = page.locator("dl.facts").inner_text()
    assert "BRIGHT" in facts and invoice.invoice_number in facts
    assert "Two support hours unused" in facts
    assert page.get_by_test_id("refund-amount").inner_text() == "30.00 GBP"
    steps = page.get_by_test_id("refund-step").all_inner_texts()
    assert any(
        s.startswith(f"Stripe refund of 30.00 GBP against {payment.external_id}") for s in steps
    ), steps
    assert any(s.startswith(f"AIQ credit note REF-{refund.pk}-CN for BRIGHT") for s in steps)
    assert any(s.startswith("AIQ sales debit journal of 30.00 GBP on BRIGHT") for s in steps)
    assert any(s.startswith("AIQ allocation of the debit journal against") for s in steps)
    # the requester is offered no approve button
    page.get_by_text(
        "You asked for or last changed this refund: another approver must approve it."
    ).wait_for()
    assert page.get_by_role("button", name="Approve the refund").count() == 0
    context.close()
    assert not errors, errors

    # the approver, a different person, approves
    context, page, errors = _login(browser, live_server, "bob")
    page.goto(f"{live_server.url}/refunds/")  # (no nav entry: refunds start on their invoice)
    page.get_by_role("link", name=f"#{refund.pk}").click()
    page.get_by_role("button", name="Approve the refund").click()
    page.get_by_text("Approved: the refund is on its way to Stripe and AIQ.").wait_for()
    refund.refresh_from_db()
    assert refund.approver == bob and refund.state in ("sent", "completed")

    # the worker pushes the Stripe refund and the AIQ entries (the localstripe fixture runs
    # queued tasks in-process, so the drain queued on approval may already have done it all;
    # the worker's loop is run until nothing is due either way)
    drain_all()
    page.reload()
    _shot(page, "2-completed")
    assert page.get_by_test_id("refund-state").inner_text() == "Completed"
    commands = page.get_by_test_id("refund-command").all_inner_texts()
    assert len(commands) >= 4 and all("Confirmed" in c for c in commands), commands
    refund.refresh_from_db()
    [stripe_refund] = request("get", "/v1/refunds", payment_intent=payment.external_id)["data"]
    assert (stripe_refund["id"], stripe_refund["amount"]) == (refund.stripe_refund_id, 3000)
    assert page.get_by_text(refund.stripe_refund_id).count() == 1
    # the credit note is allocated against the debit journal: nothing of it is left open
    assert "0.00 GBP unallocated" in page.get_by_test_id("refund-credit-note").inner_text()
    assert Journal.objects.filter(reference=f"REF-{refund.pk}-DJ").exists()

    # both documents come from AIQ as PDFs; the credit note's is kept for next time
    note = refund.credit_note
    with books.server.store.transaction() as db:
        aiq_number = db.execute(
            "SELECT internal_number FROM txn WHERE id = ?", (note.aiq_transaction_id,)
        ).fetchone()["internal_number"]
    filename, text = _download_pdf_text(page, "credit note PDF")
    assert filename == f"{note.credit_note_number or note.external_reference}.pdf"
    assert f"Credit note {aiq_number}" in text and "BRIGHT" in text and "30.00" in text
    assert Document.objects.filter(
        kind="credit_note_pdf", aiq_transaction_id=note.aiq_transaction_id
    ).exists()
    filename, text = _download_pdf_text(page, "invoice PDF")
    assert filename == f"{invoice.invoice_number}.pdf"
    assert "Invoice" in text and invoice.invoice_number in text and "120.00" in text
    context.close()
    assert not errors, errors


def test_an_approver_who_asks_for_a_refund_gets_no_approve_button(
    browser, live_server, books, entity, bob
):
    from django.contrib.auth.models import Group, User

    from payments.models import Refund

    invoice = make_invoice(entity, "ACME", [("Card reader", "4020", "40.00", "T0")])
    context, page, errors = _login(browser, live_server, "bob")
    page.goto(f"{live_server.url}/invoices/{invoice.pk}/")
    page.get_by_role("link", name="Cancel or reduce with a credit note…").click()
    page.get_by_label("Reason").fill("Ordered twice")
    page.get_by_role("button", name="Request the credit note").click()
    page.get_by_text("Refund requested; a second person must approve it.").wait_for()
    refund = Refund.objects.get()
    assert page.get_by_role("button", name="Approve the refund").count() == 0
    page.get_by_text(
        "You asked for or last changed this refund: another approver must approve it."
    ).wait_for()
    # nothing on the page to approve with: withdrawing is all the requester can do
    assert page.get_by_role("button", name="Withdraw").count() == 1
    context.close()

    # another approver is offered the button
    dave = User.objects.create_user(username="dave", password="dave-pass-123")
    dave.groups.add(Group.objects.get(name="approver"))
    context, page, more = _login(browser, live_server, "dave")
    page.goto(f"{live_server.url}/refunds/{refund.pk}/")
    assert page.get_by_role("button", name="Approve the refund").count() == 1
    context.close()
    assert not errors + more
