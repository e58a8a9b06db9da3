# ruff: noqa: F811  (the screen_data fixture is imported by name)
"""Every staff screen on a 390 px phone (issue 16: "the screens checked at 1,280 px and at
390 px wide"), in Debian's Chromium: the page itself never scrolls sideways; a table wider than
the screen scrolls inside its own box; every form field and button fits the screen.

Screenshots go to $UI_SCREENSHOTS when it is set (for looking at the screens by eye)."""

import pytest

from tests.test_browser_screens import _fast_passwords, _roles, login, shot  # noqa: F401
from tests.test_views_data import screen_data  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
WIDTH = 390

# what sticks out of the screen, outside any box that scrolls it: (tag, id/class, right edge)
OVERFLOW = """() => {
  const width = 390;
  const scrolls = (el) => {
    for (let p = el.parentElement; p; p = p.parentElement) {
      const s = getComputedStyle(p);
      if (['auto', 'scroll', 'hidden'].includes(s.overflowX)) {
        return p.getBoundingClientRect().right <= width + 1;  // a box that fits, scrolling
      }
      if (p === document.body) return false;
    }
    return false;
  };
  const out = [];
  for (const el of document.querySelectorAll('main *, header *, nav *')) {
    const box = el.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) continue;
    if (box.right > width + 1 && !scrolls(el)) {
      out.push(`${el.tagName.toLowerCase()}#${el.id}.${el.className} right=${Math.round(box.right)}`);
    }
  }
  return out.slice(0, 5);
}"""


@pytest.fixture
def phone(browser):
    context = browser.new_context(viewport={"width": WIDTH, "height": 844}, is_mobile=True)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors: {errors}"


def _screens(data, refund) -> list[tuple[str, str]]:
    return [
        ("dashboard", "/"),
        ("inbox", "/payments/?tab=all"),
        ("awaiting", "/payments/?tab=awaiting"),
        ("detail-unmatched", f"/payments/{data['unmatched'].pk}/"),
        ("detail-proposed", f"/payments/{data['proposed'].pk}/"),
        ("detail-awaiting", f"/payments/{data['awaiting'].pk}/"),
        ("approvals", "/approvals/"),
        ("invoices", "/invoices/"),
        ("invoice", f"/invoices/{data['invoices'][0].pk}/"),
        ("customers", "/customers/"),
        ("customer", f"/customers/{data['customer'].pk}/"),
        ("sync", "/sync/"),
        ("outbox", "/outbox/"),
        ("audit", "/audit/"),
        ("refunds", "/refunds/"),
        ("refund", f"/refunds/{refund.pk}/"),
        ("refund-new", f"/refunds/new?kind=cancel_invoice&invoice={data['invoices'][0].pk}"),
        ("later", "/later/"),
        ("other-receipt", f"/other-receipts/new?payment={data['unmatched'].pk}"),
        ("statement-upload", "/payments/import/"),
        ("password", "/accounts/password/"),
        ("provider-books", "/provider-books/"),
        ("disputes", "/disputes/"),
        ("sales", "/sales/"),
    ]


def test_every_screen_fits_a_390px_phone(phone, live_server, screen_data, alice, bob):
    from ledger.models import InvoiceLine
    from payments.services.refunds import refund_request

    invoice = screen_data["invoices"][0]
    line = InvoiceLine.objects.create(
        invoice=invoice, line_number=1, description="Annual support and maintenance, all sites",
        gl_account_code="4000", tax_code="T1", tax_rate=20, quantity=5,
        unit_price="100.00", net_amount="500.00", tax_amount="100.00", gross_amount="600.00",
    )  # fmt: skip
    refund = refund_request(
        actor=alice, kind="cancel_invoice", invoice=invoice, line_ids=[line.pk], reason="returned"
    )
    login(phone, live_server, "bob")
    problems = {}
    for name, path in _screens(screen_data, refund):
        response = phone.goto(f"{live_server.url}{path}")
        assert response.status == 200, (path, response.status)
        page_width = phone.evaluate("document.documentElement.scrollWidth")
        sticking_out = phone.evaluate(OVERFLOW)
        if page_width > WIDTH or sticking_out:
            problems[path] = (page_width, sticking_out)
        shot(phone, f"phone-{name}")
    assert not problems, "\n".join(
        f"{path}: page {w} px wide; {out}" for path, (w, out) in problems.items()
    )
