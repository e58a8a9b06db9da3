# ruff: noqa: F811  (fixtures imported by name)
"""The writes to AIQ, read by people, in a real browser (issue 16, point 7).

Two customers paid by Stripe (localstripe), each payment allocated by an approved plan and
pushed to the AIQ sandbox. alice (clerk) opens "Writes to AIQ": each receipt and allocation
shows its customer, its amount and the payment it is for; she filters by customer, then by
payment, follows a row to its payment, and finds no retry button (that is an approver's).
The page reads on a 390 px phone without widening the screen.
"""

import pytest

from tests.refunds_support import allocate, make_invoice, stripe_payment
from tests.test_browser_refunds import _fast_passwords, _login, _seeded, books  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_clerk_reads_writes_to_aiq_by_customer_and_payment(
    browser, live_server, books, localstripe, entity, alice, bob
):
    bright = make_invoice(entity, "BRIGHT", [("Support hours", "4010", "100.00", "T1")])
    castle = make_invoice(entity, "CASTLE", [("Card reader", "4020", "50.00", "T0")])
    bright_pay = stripe_payment(entity, bright.customer, 12000, bright)
    castle_pay = stripe_payment(entity, castle.customer, 5000, castle)
    allocate(bright_pay, [(bright, "120.00")], alice, bob)
    allocate(castle_pay, [(castle, "50.00")], alice, bob)

    context, page, errors = _login(browser, live_server, "alice")
    page.goto(f"{live_server.url}/sync/")
    page.get_by_role("link", name="All writes to AIQ").click()
    rows = page.get_by_test_id("outbox-row")
    texts = rows.all_inner_texts()
    receipt = next(t for t in texts if f"RCPT-{bright_pay.pk}" in t)
    assert "Post sales receipt" in receipt and "BRIGHT" in receipt
    assert "120.00 GBP" in receipt and f"Payment {bright_pay.external_id}" in receipt
    assert "Confirmed" in receipt
    assert any("CASTLE" in t and "50.00 GBP" in t for t in texts)

    # by customer: only BRIGHT's receipt and allocation
    page.get_by_label("Customer (code or name)").fill("bright")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**customer=bright**")
    texts = rows.all_inner_texts()
    assert len(texts) == 2 and all("BRIGHT" in t for t in texts), texts
    assert not any("CASTLE" in t for t in texts)

    # by payment: CASTLE's payment, named by its Stripe id
    page.get_by_role("link", name="Clear").click()
    page.get_by_label("Payment (its id or number)").fill(castle_pay.external_id)
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**payment=**")
    texts = rows.all_inner_texts()
    assert len(texts) == 2 and all(f"Payment {castle_pay.external_id}" in t for t in texts)
    assert page.get_by_role("button", name="Retry").count() == 0  # clerks do not retry

    # a row leads to its payment
    rows.first.get_by_role("link", name=f"Payment {castle_pay.external_id}").click()
    page.wait_for_url(f"**/payments/{castle_pay.pk}/")

    # on a phone the page does not widen the screen: the table scrolls in its own box
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/outbox/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    context.close()
    assert not errors, errors
