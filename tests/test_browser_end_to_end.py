"""The whole day of a payment, in a real browser (Debian's Chromium via Playwright):

a Stripe payment made in localstripe is imported; alice (clerk) finds it unmatched, allocates
it across two invoices with a partial amount on the second and submits; bob (approver) approves;
the outbox worker pushes receipt and allocations to the AIQ sandbox over HTTP; the second
invoice then shows part-paid with the AIQ transaction id, and its PDF downloads from AIQ,
names the invoice, and is cached.
"""

import os
from decimal import Decimal

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _roles(transactional_db):
    from django.contrib.auth.models import Group

    from staff.models import Role

    for role in Role:
        Group.objects.get_or_create(name=role.value)


def _login(browser, live_server, username):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(f"{username}-pass-123")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server.url}/")
    return context, page


def _shot(page, name):
    folder = os.environ.get("UI_SCREENSHOTS")
    if folder:
        page.screenshot(path=os.path.join(folder, f"e2e-{name}.png"), full_page=True)


def _two_open_invoices(entity):
    """Two untouched open GBP invoices of one customer, from the mirror the sync filled."""
    from ledger.models import Invoice

    rows = Invoice.objects.filter(
        entity=entity, currency="GBP", status="posted", aiq_transaction_id__isnull=False
    ).select_related("customer")
    by_customer = {}
    for invoice in rows.order_by("invoice_date", "id"):
        if invoice.outstanding_amount == invoice.gross_amount and invoice.gross_amount > 10:
            by_customer.setdefault(invoice.customer_id, []).append(invoice)
    pair = next(v for v in by_customer.values() if len(v) >= 2)
    return pair[0], pair[1]


def test_clerk_allocates_approver_approves_worker_pushes_invoice_part_paid_pdf(
    browser, live_server, aiq_sandbox, localstripe, entity, alice, bob, audit_flushable, settings
):
    from ledger.models import Document, Invoice, Receipt
    from ledger.outbox.runner import drain
    from ledger.sync.services import sync_claim, sync_run
    from payments.models import AllocationPlan, Payment
    from payments.services.stripe_events import stripe_import
    from payments.sources.stripe_demo import demo_customer_create, demo_payment_create

    settings.APPROVAL_THRESHOLD = Decimal("1.00")  # this plan needs a second person
    sync_claim(entity=entity)
    sync_run(entity=entity)  # the mirror now holds the sandbox's customers and invoices
    entity.refresh_from_db()
    if entity.default_bank_account_id is None:
        from ledger.models import BankAccount

        entity.default_bank_account = BankAccount.objects.get(
            entity=entity, currency="GBP", bank_code="1200"
        )
        entity.save(update_fields=["default_bank_account"])
    first, second = _two_open_invoices(entity)
    partial = (second.outstanding_amount / 2).quantize(Decimal("0.01"))
    total = first.outstanding_amount + partial

    # money in: a real PaymentIntent in localstripe, no invoice named, imported by the app
    payer = demo_customer_create(email="someone-else@example.com", name="A payer")
    demo_payment_create(amount_minor=int(total * 100), currency="gbp", customer_id=payer["id"])
    stripe_import()
    payment = Payment.objects.get(source="stripe", amount=total)
    assert payment.match_state == Payment.MatchState.UNMATCHED

    # the clerk finds it unmatched and allocates it across two invoices
    context, page = _login(browser, live_server, "alice")
    page.get_by_role("link", name="Payments").click()
    page.get_by_role("link", name=payment.external_id).click()
    search = page.get_by_label("Find open GBP invoices of any customer")
    for invoice, amount in ((first, first.outstanding_amount), (second, partial)):
        search.fill(invoice.invoice_number)
        page.get_by_role("button", name=f"Add {invoice.invoice_number} to the allocation").click()
        page.get_by_label(f"Amount allocated to {invoice.invoice_number}").fill(f"{amount:.2f}")
    assert page.locator("[data-remainder]").inner_text() == "0.00 GBP"
    _shot(page, "1-editor")
    page.get_by_role("button", name="Submit allocation").click()
    page.get_by_text("Allocation submitted: it waits for an approver.").wait_for()
    context.close()
    plan = AllocationPlan.objects.get(payment=payment)
    assert plan.state == AllocationPlan.State.AWAITING_APPROVAL and plan.maker == alice

    # the approver approves
    context, page = _login(browser, live_server, "bob")
    page.get_by_role("link", name="Approvals").click()
    _shot(page, "2-approvals")
    page.get_by_role("button", name=f"Approve the plan for {payment.external_id}").click()
    page.get_by_text(f"Approved the plan for {payment.external_id}.").wait_for()

    # the worker pushes receipt and allocations to AIQ
    for _ in range(20):
        counts = drain(budget_seconds=30, batch_size=20)
        if not counts:
            break
    plan.refresh_from_db()
    receipt = Receipt.objects.get(check_reference=f"RCPT-{payment.pk}")
    assert receipt.aiq_transaction_id
    assert plan.state == AllocationPlan.State.CONFIRMED
    payment.refresh_from_db()
    assert payment.match_state == Payment.MatchState.SENT  # the inbox's "Approved / in AIQ" tab

    # the invoice shows part-paid with AIQ's transaction id
    page.goto(f"{live_server.url}/invoices/{second.pk}/")
    _shot(page, "3-invoice")
    assert page.get_by_test_id("invoice-status").inner_text() == "Part paid"
    assert page.get_by_test_id("invoice-outstanding").inner_text() == (
        f"{second.outstanding_amount - partial:,.2f} GBP"
    )
    assert (
        str(receipt.aiq_transaction_id)
        in page.get_by_test_id("allocation-transaction").all_inner_texts()
    )
    assert Invoice.objects.get(pk=first.pk).status == "paid"

    # the invoice PDF comes from AIQ, names the invoice, and is cached for next time
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download invoice PDF").click()
    path = download_info.value.path()
    with open(path, "rb") as handle:
        content = handle.read()
    assert content.startswith(b"%PDF")
    from io import BytesIO

    from pypdf import PdfReader

    text = "".join(p.extract_text() for p in PdfReader(BytesIO(content)).pages)
    assert second.invoice_number in text
    assert Document.objects.filter(
        kind="invoice_pdf", aiq_transaction_id=second.aiq_transaction_id
    ).exists()
    context.close()
