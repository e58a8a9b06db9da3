# ruff: noqa: F811  (fixtures imported by name)
"""The allocation editor in a real browser (Debian's Chromium via Playwright) posts exactly
what it showed, once, against the AIQ sandbox over HTTP (issue 16, points 1 and 9).

alice (clerk) has a 44.00 GBP Stripe payment from BRIGHT and two of its open invoices: 30.00
and 14.00. Under the approval threshold nobody reviews her plan, so what reaches AIQ is what
the editor posts. She adds the first invoice (Add then offers it no more), a stale copy of its
row turns up anyway, and she types letters in it: the footer says so, and the submit is refused
with the reason and nothing reaches AIQ. She removes the row, types letters in the amount:
refused again. She fixes it, adds the 14.00 invoice, double-clicks Submit, and the browser
sends the same form once more: one plan, one receipt, and exactly the two allocations shown,
in the sandbox's books.
"""

from decimal import Decimal

import pytest

from tests.refunds_support import drain_all, make_invoice, stripe_payment
from tests.test_browser_refunds import _fast_passwords, _login, _seeded, books  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _add(page, invoice):
    page.get_by_label("Find open GBP invoices of any customer").fill(invoice.invoice_number)
    add = page.get_by_role("button", name=f"Add {invoice.invoice_number} to the allocation")
    add.click()
    page.get_by_label(f"Amount allocated to {invoice.invoice_number}").first.wait_for()
    return add


def test_the_editor_posts_exactly_the_rows_it_showed_once(
    browser, live_server, books, localstripe, entity, alice, settings
):
    from payments.models import AllocationPlan

    settings.APPROVAL_THRESHOLD = Decimal("1000.00")  # under it: nobody reviews the plan
    first = make_invoice(entity, "BRIGHT", [("Support hours", "4010", "25.00", "T1")])
    second = make_invoice(entity, "BRIGHT", [("Spare part", "4010", "14.00", "T0")])
    assert (first.gross_amount, second.gross_amount) == (Decimal("30.00"), Decimal("14.00"))
    payment = stripe_payment(entity, first.customer, 4400)
    receipt_ref = f"RCPT-{payment.pk}"

    context, page, errors = _login(browser, live_server, "alice")
    page.goto(f"{live_server.url}/payments/{payment.pk}/")
    add = _add(page, first)
    # the invoice is in the editor: Add offers it no more
    assert add.is_disabled() and add.inner_text() == "Added"
    page.get_by_label(f"Amount allocated to {first.invoice_number}").fill("30.00")

    # a copy of its row turns up anyway (a stale page, a second tab), with letters in it
    page.eval_on_selector(
        f'tr[data-editor-row="{first.pk}"]',
        "row => { const copy = row.cloneNode(true); row.after(copy);"
        " copy.querySelector('input[data-alloc]').id = 'copy';"
        " copy.querySelector('input[data-alloc]').value = 'abc';"
        " copy.closest('form').dispatchEvent(new Event('input')); }",
    )
    remainder = page.locator("[data-remainder]")
    assert remainder.inner_text() == f"{first.invoice_number} is in twice: remove a row"
    page.get_by_role("button", name="Submit allocation").click()
    page.get_by_text(f"{first.invoice_number} is in the allocation 2 times").wait_for()
    assert not AllocationPlan.objects.filter(payment=payment).exists()
    assert books.state.receipt_count(receipt_ref) == 0  # nothing reached AIQ

    # she removes the second row; letters in the amount are refused too
    page.get_by_role("button", name=f"Remove {first.invoice_number} from the allocation").nth(
        1
    ).click()
    amount = page.get_by_label(f"Amount allocated to {first.invoice_number}")
    assert amount.count() == 1
    amount.fill("3O.00")  # a letter O for a zero
    assert remainder.inner_text() == "check the amounts"
    page.get_by_role("button", name="Submit allocation").click()
    page.locator(f"#err_amount_{first.pk}").wait_for()
    assert not AllocationPlan.objects.filter(payment=payment).exists()
    assert books.state.receipt_count(receipt_ref) == 0

    # fixed, and the second invoice added: the footer shows the split
    page.get_by_label(f"Amount allocated to {first.invoice_number}").fill("30.00")
    _add(page, second)
    page.get_by_label(f"Amount allocated to {second.invoice_number}").fill("14.00")
    assert page.locator("[data-total]").inner_text() == "44.00 GBP"
    assert remainder.inner_text() == "0.00 GBP"
    form = dict(
        page.eval_on_selector(
            "form[data-allocation-editor]",
            "f => Array.from(new FormData(f).entries())",
        )
    )
    # a double click on Submit
    page.get_by_role("button", name="Submit allocation").dblclick()
    page.get_by_text("Allocation approved under the threshold and queued for AIQ.").wait_for()
    # ... and the browser sends the same form again (a resend after a slow answer)
    form["shown_on_account"] = "0.00"
    again = context.request.post(
        f"{live_server.url}/payments/{payment.pk}/allocate",
        form=form,
        headers={"Referer": page.url},
        max_redirects=0,
    )
    assert again.status == 302
    context.close()
    assert not errors, errors

    [plan] = AllocationPlan.objects.filter(payment=payment)
    assert (plan.version, plan.on_account_amount) == (1, Decimal("0.00"))
    drain_all()
    plan.refresh_from_db()
    assert plan.state == AllocationPlan.State.CONFIRMED

    # the sandbox's books: one receipt of 44.00, allocated exactly as the editor showed
    assert books.state.receipt_count(receipt_ref) == 1
    [receipt] = books.state.transactions(receipt_ref)
    # (a receipt is a credit on the customer's account: AIQ signs it negative)
    assert (receipt["amount"], receipt["outstanding"]) == (Decimal("-44.00"), Decimal("0.00"))
    allocated = {
        a["debit_transaction_id"]: a["amount"]
        for a in books.state.allocations(receipt["transaction_id"])
    }
    assert allocated == {
        first.aiq_transaction_id: Decimal("30.00"),
        second.aiq_transaction_id: Decimal("14.00"),
    }
    assert books.state.outstanding(first.aiq_transaction_id) == 0
    assert books.state.outstanding(second.aiq_transaction_id) == 0
