"""Money on account and unidentified money in a real browser (Debian's Chromium via
Playwright), against the AIQ sandbox over HTTP (issue 16 points 3 and 4):

alice (clerk) finds a receipt entered in AIQ with money on account on the customer's page,
allocates it to two invoices, one of them partly; a wrong amount is refused with the reason and
nothing reaches AIQ. She parks an unidentified payment on suspense, marks another Not for AIQ
with a reason, and records an other receipt with VAT above the threshold; bob approves it.
After the outbox runs, AIQ's books hold exactly what the screens showed."""

from decimal import Decimal

import pytest

from ledger.models import OutboxCommand
from payments.models import ContactAllocation, OtherReceipt, Payment
from tests.later_support import receipt_in_aiq
from tests.refunds_support import drain_all, make_invoice, seed_roles_without_matching, setup_books

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _seeded(transactional_db):
    seed_roles_without_matching()


@pytest.fixture
def books(aiq_sandbox, entity, audit_flushable):
    setup_books(entity)
    return aiq_sandbox


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _login(browser, live_server, username, width=1280):
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(f"{username}-pass-123")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server.url}/")
    return context, page, errors


def test_money_on_account_from_aiq_is_allocated_from_the_customer_page(
    browser, live_server, books, entity, alice
):
    receipt = receipt_in_aiq(entity, "ACME", "100.00")
    first = make_invoice(entity, "ACME", [("Support", "4010", "60.00", "T0")])
    second = make_invoice(entity, "ACME", [("Support", "4010", "70.00", "T0")])
    context, page, errors = _login(browser, live_server, "alice")
    page.goto(f"{live_server.url}/customers/{receipt.customer_id}/")
    page.get_by_role("link", name="Allocate…").click()
    assert page.get_by_test_id("credit-open").inner_text() == "100.00 GBP"

    page.get_by_label(f"Allocate to {first}").fill("60.00")
    page.get_by_label(f"Allocate to {second}").fill("50.0x")
    page.get_by_role("button", name="Allocate").click()
    assert "allocated_artefacts[2].amount" in page.get_by_role("alert").inner_text()
    assert not OutboxCommand.objects.exists()  # nothing reached the outbox

    page.get_by_label(f"Allocate to {second}").fill("40.00")
    page.get_by_role("button", name="Allocate").click()
    page.wait_for_url(f"{live_server.url}/later/")
    assert (
        "Approved, on its way to AIQ"
        in page.get_by_test_id(f"allocation-{ContactAllocation.objects.get().pk}").inner_text()
    )
    drain_all()
    assert books.state.outstanding(receipt.aiq_transaction_id) == 0
    assert books.state.outstanding(first.aiq_transaction_id) == 0
    assert books.state.outstanding(second.aiq_transaction_id) == Decimal("30.00")
    page.reload()
    assert (
        "Confirmed in AIQ"
        in page.get_by_test_id(f"allocation-{ContactAllocation.objects.get().pk}").inner_text()
    )
    assert errors == []
    context.close()


def test_unidentified_money_parked_ignored_and_an_other_receipt_approved(
    browser, live_server, books, entity, alice, bob, settings
):
    settings.APPROVAL_THRESHOLD = Decimal("100.00")
    suspense_before = books.state.gl_total("9990")
    unknown, transfer, interest = (
        Payment.objects.create(
            entity=entity, source="bank", external_id=ref, amount=Decimal(amount),
            currency="GBP", received_at="2026-12-01T10:00:00Z",
        )
        for ref, amount in (("BANK-U1", "45.10"), ("BANK-U2", "5000.00"), ("BANK-U3", "120.00"))
    )  # fmt: skip
    context, page, errors = _login(browser, live_server, "alice", width=390)
    page.goto(f"{live_server.url}/payments/{unknown.pk}/")
    page.get_by_label("Park on the suspense account (why)").fill("no reference, no payer")
    page.get_by_role("button", name="Park on suspense").click()
    page.get_by_text("Parked on the suspense account.").wait_for()

    page.goto(f"{live_server.url}/payments/{transfer.pk}/")
    page.get_by_label("Not for AIQ (why)").fill("Transfer from our own savings account")
    page.get_by_role("button", name="Mark Not for AIQ").click()
    page.get_by_text("Reason: Transfer from our own savings account").wait_for()

    page.goto(f"{live_server.url}/payments/{interest.pk}/")
    page.get_by_role("link", name="Not a customer's money").click()
    page.get_by_label("What is it").fill("Grant instalment")
    page.get_by_label("GL account").select_option("4200")
    page.get_by_label("VAT", exact=True).select_option("T1")
    page.get_by_label("Net amount").fill("100.00")
    page.get_by_role("button", name="Record the other receipt").click()
    page.get_by_text("Other receipt waits for an approver.").wait_for()
    context.close()

    row = OtherReceipt.objects.get(payment=interest)
    assert (row.total_amount, row.state) == (Decimal("120.00"), "awaiting_approval")
    context, page, errors2 = _login(browser, live_server, "bob")
    page.goto(f"{live_server.url}/later/")
    page.get_by_test_id(f"other-receipt-{row.pk}").get_by_role("button", name="Approve").click()
    page.get_by_text("Approved and queued for AIQ.").wait_for()
    drain_all()

    assert books.state.gl_total("9990") - suspense_before == Decimal("-45.10")
    (txn,) = books.state.transactions(f"OREC-{row.pk}-1")
    assert txn["amount"] == Decimal("120.00")
    transfer.refresh_from_db()
    assert (transfer.match_state, transfer.not_for_aiq_reason) == (
        "ignored", "Transfer from our own savings account",
    )  # fmt: skip
    assert not books.state.transactions(f"RCPT-{transfer.pk}")
    assert errors == errors2 == []
    context.close()
