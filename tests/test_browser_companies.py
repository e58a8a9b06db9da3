"""The company switcher in a real Chromium: group finance switches from all companies to the
Irish one and back; a clerk of the Irish company sees only it and gets "not found" for a UK
payment's page."""

import pytest

from tests.companies_support import grant, group_books
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
