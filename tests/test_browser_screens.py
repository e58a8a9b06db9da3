# ruff: noqa: F811  (the screen_data fixture is imported by name)
"""Browser tests: a real Chromium (Debian's /usr/bin/chromium) driven by Playwright against
pytest-django's live_server. Keyboard use, the live allocation total, htmx partials, charts.

Screenshots go to $UI_SCREENSHOTS when it is set (for looking at the screens by eye).
"""

import os
import time

import pytest

from tests.test_views_data import screen_data  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _roles(transactional_db):
    """live_server needs a transactional database, which is flushed between tests, taking
    the role groups (created by a data migration) with it."""
    from django.contrib.auth.models import Group

    from staff.models import Role

    for role in Role:
        Group.objects.get_or_create(name=role.value)


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # a page that breaks the Content-Security-Policy says so on the console
    page.on(
        "console",
        lambda message: (
            errors.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    yield page
    context.close()
    assert not errors, f"JavaScript errors: {errors}"


def wait_until(page, expression: str, timeout: float = 5.0):
    """page.wait_for_function evaluates its string inside the page, which the CSP forbids
    (no eval): poll from here instead, through Playwright's own evaluation channel."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        time.sleep(0.05)


def shot(page, name):
    folder = os.environ.get("UI_SCREENSHOTS")
    if folder:
        page.screenshot(path=os.path.join(folder, f"{name}.png"), full_page=True)


def login(page, live_server, username):
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(f"{username}-pass-123")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server.url}/")


def test_every_screen_renders_with_assets_and_no_script_errors(
    page, live_server, screen_data, alice, bob
):
    login(page, live_server, "bob")
    assert page.evaluate("typeof htmx") == "object"  # installed by scripts/assets.sh, no CDN
    wait_until(page, "typeof Chart !== 'undefined'")
    # one cash chart per currency (GBP and JPY are never stacked together), drawn by Chart.js
    assert page.locator("canvas[data-cash-chart]").count() == 2
    wait_until(page, "!!Chart.getChart(document.querySelector('canvas[data-cash-chart]'))")
    shot(page, "dashboard")
    for name, path in [
        ("inbox", "/payments/?tab=all"),
        ("awaiting", "/payments/?tab=awaiting"),
        ("detail", f"/payments/{screen_data['proposed'].pk}/"),
        ("approvals", "/approvals/"),
        ("invoices", "/invoices/"),
        ("invoice", f"/invoices/{screen_data['invoices'][0].pk}/"),
        ("customers", "/customers/"),
        ("customer", f"/customers/{screen_data['customer'].pk}/"),
        ("sync", "/sync/"),
        ("outbox", "/outbox/"),
        ("audit", "/audit/"),
    ]:
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == 200, path
        # usable at 1,280 px: nothing wider than the window
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 1280, (path, width)
        shot(page, name)


def test_live_total_and_invoice_search_in_the_allocation_editor(
    page, live_server, screen_data, alice
):
    login(page, live_server, "alice")
    page.goto(f"{live_server.url}/payments/{screen_data['unmatched'].pk}/")
    page.get_by_label("Find open GBP invoices of any customer").fill("INV-100")
    page.get_by_role("button", name="Add INV-1001 to the allocation").click()
    amount = page.get_by_label("Amount allocated to INV-1001")
    amount.fill("250.5")
    remainder = page.locator("[data-remainder]")
    assert page.locator("[data-total]").inner_text() == "250.50 GBP"
    assert remainder.inner_text() == "749.50 GBP"
    amount.fill("1200")
    assert remainder.inner_text() == "-200.00 GBP"
    assert "bad" in remainder.get_attribute("class")
    amount.fill("1.001")
    assert remainder.inner_text() == "check the amounts"
    shot(page, "editor")


def test_keyboard_only_login_and_navigation(page, live_server, alice):
    page.goto(f"{live_server.url}/accounts/login/")
    # the username field has focus on arrival, so a keyboard user types straight away
    page.keyboard.type("alice")
    page.keyboard.press("Tab")
    page.keyboard.type("alice-pass-123")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/")
    page.keyboard.press("Tab")  # the skip link comes first ...
    assert page.evaluate("document.activeElement.className") == "skip-link"
    page.keyboard.press("Tab")  # ... then the navigation
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent.trim()") == "Dashboard"
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/payments/")
    assert page.get_by_role("heading", name="Payments").is_visible()


def test_sync_progress_bar_updates_while_the_pull_runs(page, live_server, entity, alice):
    from ledger.models import SyncState

    state = SyncState.objects.create(
        entity=entity, object_type="all", running=True, progress_done=2, progress_total=8
    )
    login(page, live_server, "alice")
    page.goto(f"{live_server.url}/sync/")
    bar = page.get_by_label("all sync progress")
    assert bar.get_attribute("value") == "2"
    # the worker moves on: htmx polls the partial and the bar follows without a reload
    SyncState.objects.filter(pk=state.pk).update(progress_done=6)
    wait_until(
        page,
        "!!document.querySelector('progress') && document.querySelector('progress').value == 6",
    )
    SyncState.objects.filter(pk=state.pk).update(running=False, progress_done=8)
    page.get_by_text("idle").wait_for(timeout=5000)
    shot(page, "sync-done")
