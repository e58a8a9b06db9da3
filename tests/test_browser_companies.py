# ruff: noqa: F811  (the browser fixtures are imported by name)
"""The company switcher in a real Chromium: group finance switches from all companies to the
Irish one and back; a clerk of the Irish company sees only it and gets "not found" for a UK
payment's page; the Irish approver approves a EUR payment's plan in the EUR company."""

from decimal import Decimal

import pytest

from tests.companies_support import grant, group_books, stripe_account
from tests.test_browser_screens import _fast_passwords, _roles, login, page  # noqa: F401
from tests.test_plans_factories import make_payment

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_switching_companies_in_the_header(page, live_server, entity, carol, alice):  # noqa: F811
    books = group_books(entity)
    uk = make_payment(books["uk"], "120.00", refs=["INV-1001"])
    ie = make_payment(books["ie"], "95.00", currency="EUR", refs=["INV-1001"])
    grant(alice, books["ie"])

    login(page, live_server, "carol")
    page.goto(f"{live_server.url}/payments/?tab=all")
    rows = page.locator("tbody tr")
    assert page.get_by_label("Company", exact=True).first.input_value() == "all"
    assert rows.filter(has_text=uk.shown_reference).count() == 1
    assert rows.filter(has_text=ie.shown_reference).count() == 1

    switcher = page.locator("form.company-switch")
    switcher.get_by_label("Company").select_option(label="Demo Trading Ireland (EUR)")
    switcher.get_by_role("button", name="Switch").click()
    page.wait_for_url("**/payments/?tab=all")
    assert rows.filter(has_text=ie.shown_reference).count() == 1
    assert rows.filter(has_text=uk.shown_reference).count() == 0
    page.goto(f"{live_server.url}/")  # the dashboard is the Irish company's
    totals = page.get_by_role("table", name="Unmatched totals by currency")
    assert "EUR" in totals.inner_text() and "GBP" not in totals.inner_text()

    switcher = page.locator("form.company-switch")
    switcher.get_by_label("Company").select_option(label="All companies")
    switcher.get_by_role("button", name="Switch").click()
    page.goto(f"{live_server.url}/payments/?tab=all")
    assert page.locator("tbody tr").filter(has_text=uk.shown_reference).count() == 1

    page.context.clear_cookies()
    login(page, live_server, "alice")
    page.goto(f"{live_server.url}/payments/?tab=all")
    assert page.locator("form.company-switch").count() == 0  # one company: named, no choice
    assert "Demo Trading Ireland" in page.locator("header").inner_text()
    assert page.locator("tbody tr").filter(has_text=uk.shown_reference).count() == 0
    answer = page.goto(f"{live_server.url}/payments/{uk.pk}/")
    assert answer.status == 404
    answer = page.goto(f"{live_server.url}/payments/{ie.pk}/")
    assert answer.status == 200
    assert "Demo Trading Ireland" in page.get_by_test_id("payment-company").inner_text()


def test_the_irish_approver_approves_a_eur_payment_and_sees_nothing_of_the_uk_company(
    page,
    live_server,
    entity,
    alice,
    bob,
    carol,
    settings,  # noqa: F811
):
    """The multi-company walk: group finance switches to the Irish company and sees only its
    payments and invoices; the Irish clerk gets "not found" for UK objects; the Irish approver
    approves the clerk's plan for a EUR payment in the EUR company, and never sees the UK
    company's plan waiting beside it."""
    from payments.models import AllocationPlan
    from payments.services.plans import plan_propose, plan_submit
    from staff.models import AuditEntry

    settings.APPROVAL_THRESHOLD = Decimal("1.00")  # every plan waits for a second person
    books = group_books(entity)
    for company, currency in ((books["uk"], "GBP"), (books["ie"], "EUR")):
        stripe_account(company, currency)  # each company's own Stripe and bank account
    grant(alice, books["ie"])  # clerk-ie
    grant(bob, books["ie"])  # the Irish approver
    ie = make_payment(books["ie"], "120.00", currency="EUR", refs=["INV-1001"])
    uk = make_payment(books["uk"], "120.00", refs=["INV-1001"])
    plans = {}
    for key, payment, invoice, customer in (
        ("ie", ie, books["ie_invoice"], books["ie_customer"]),
        ("uk", uk, books["uk_invoice"], books["uk_customer"]),
    ):
        plan = plan_propose(
            payment=payment, lines=[{"invoice_id": invoice.pk, "amount": "120.00"}],
            actor=alice if key == "ie" else carol, customer=customer,
        )  # fmt: skip
        plans[key] = plan_submit(plan=plan, actor=alice if key == "ie" else carol)
        assert plans[key].state == AllocationPlan.State.AWAITING_APPROVAL

    # group finance: all companies, then the Irish one only (payments and invoices)
    login(page, live_server, "carol")
    page.goto(f"{live_server.url}/invoices/")
    assert "Acme Ltd" in page.locator("main").inner_text()
    switcher = page.locator("form.company-switch")
    switcher.get_by_label("Company").select_option(label="Demo Trading Ireland (EUR)")
    switcher.get_by_role("button", name="Switch").click()
    page.wait_for_url("**/invoices/")
    listed = page.locator("main").inner_text()
    assert "Acme Ireland" in listed and "Acme Ltd" not in listed
    page.goto(f"{live_server.url}/payments/?tab=all")
    rows = page.locator("tbody tr")
    assert rows.filter(has_text=ie.shown_reference).count() == 1
    assert rows.filter(has_text=uk.shown_reference).count() == 0

    # the Irish clerk: UK objects are not found
    page.context.clear_cookies()
    login(page, live_server, "alice")
    for url in (
        f"/payments/{uk.pk}/",
        f"/invoices/{books['uk_invoice'].pk}/",
        f"/customers/{books['uk_customer'].pk}/",
    ):
        assert page.goto(f"{live_server.url}{url}").status == 404, url
    assert page.goto(f"{live_server.url}/invoices/{books['ie_invoice'].pk}/").status == 200

    # the Irish approver approves the EUR payment's plan in the EUR company
    page.context.clear_cookies()
    login(page, live_server, "bob")
    page.goto(f"{live_server.url}/approvals/")
    main = page.locator("main")
    assert "120.00 EUR" in main.inner_text() or "EUR 120.00" in main.inner_text()
    assert (
        main.get_by_role("button", name=f"Approve the plan for {uk.shown_reference}").count() == 0
    )
    main.get_by_role("button", name=f"Approve the plan for {ie.shown_reference}").click()
    page.wait_for_url("**/approvals/")
    said = page.locator("ul.messages").inner_text()
    assert f"Approved the plan for {ie.external_id}" in said, said
    plans["ie"].refresh_from_db()
    plans["uk"].refresh_from_db()
    assert (plans["ie"].state, plans["ie"].approver) == (AllocationPlan.State.SENT, bob)
    assert plans["uk"].state == AllocationPlan.State.AWAITING_APPROVAL
    assert AuditEntry.objects.filter(action="plan.approve", object_id=str(plans["ie"].pk)).exists()
    assert page.goto(f"{live_server.url}/payments/{uk.pk}/").status == 404
