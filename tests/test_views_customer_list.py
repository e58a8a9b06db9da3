"""Customer screens reach every row: the customer list and a customer's open items page by
keyset with a "more" link that keeps the search, say how many match and how many are not
shown yet, and never cut silently (they used to stop at the first 200)."""

import re
from datetime import date, timedelta
from decimal import Decimal
from html import unescape

import pytest
from django.urls import reverse

from ledger.models import Customer, Invoice
from ledger.views.customers import CUSTOMERS_PER_PAGE, OPEN_ITEMS_PER_PAGE

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def make_customers(entity, count, *, email_domain=lambda i: "example.org"):
    Customer.objects.bulk_create(
        Customer(
            entity=entity,
            code=f"C{i:04d}",
            name=f"Customer number {i}",
            email=f"ap{i}@{email_domain(i)}",
            currency="GBP",
        )
        for i in range(1, count + 1)
    )


def more_link(html: str, row_id: str) -> str | None:
    """The plain (no-JS) href of the "more" row, as a browser would follow it."""
    found = re.search(rf'<tr id="{row_id}">.*?<a href="([^"]+)"', html, re.S)
    return unescape(found.group(1)) if found else None


def test_page_sizes_are_what_the_scenarios_below_assume():
    assert CUSTOMERS_PER_PAGE == 200 and OPEN_ITEMS_PER_PAGE == 200


def test_second_page_reaches_the_last_customer(client, alice, entity):
    make_customers(entity, 230)
    client.force_login(alice)
    url = reverse("ledger:customers")
    response = client.get(url)
    html = response.content.decode()
    first = response.context["page"]
    assert [c.code for c in first.items] == [f"C{i:04d}" for i in range(1, 201)]
    assert '<strong class="tnum">230</strong> customers match' in html
    assert "(30 more after these)" in html
    link = more_link(html, "customer-more")
    assert link is not None and "after=" in link

    second = client.get(url + link, **HTMX)
    assert second.templates[0].name == "ledger/_customer_rows.html"  # just the rows for htmx
    codes = [c.code for c in second.context["page"].items]
    assert codes == [f"C{i:04d}" for i in range(201, 231)]
    assert not second.context["page"].has_next
    assert more_link(second.content.decode(), "customer-more") is None

    # without htmx the same link is a whole page with a way back to the start
    plain = client.get(url + link).content.decode()
    assert "C0230" in plain and "C0001<" not in plain and "Back to the first page" in plain


@pytest.mark.parametrize(
    ("text", "expected"),
    [("c0123", ["C0123"]), ("NUMBER 45", ["C0045"]), ("AP7@Example.ORG", ["C0007"])],
)
def test_search_finds_by_code_name_or_email_in_any_case(client, alice, entity, text, expected):
    make_customers(entity, 230)
    client.force_login(alice)
    response = client.get(reverse("ledger:customers"), {"q": text})
    assert [c.code for c in response.context["page"].items] == expected
    assert response.context["total"] == 1
    assert "1</strong> customer matches" in response.content.decode()


def test_paging_keeps_the_search(client, alice, entity):
    # 215 customers at northwind, 15 elsewhere: the search spans two pages
    make_customers(entity, 230, email_domain=lambda i: "other.test" if i % 15 == 0 else "nw.test")
    client.force_login(alice)
    url = reverse("ledger:customers")
    response = client.get(url, {"q": "NW.TEST"})
    assert response.context["total"] == 215
    link = more_link(response.content.decode(), "customer-more")
    assert "q=NW.TEST" in link

    second = client.get(url + link, **HTMX).context["page"]
    seen = response.context["page"].items + second.items
    assert len(seen) == len({c.pk for c in seen}) == 215
    assert all(c.email.endswith("@nw.test") for c in seen)
    assert not second.has_next


def test_a_hand_edited_cursor_is_a_clear_400(client, alice, entity):
    make_customers(entity, 3)
    client.force_login(alice)
    assert client.get(reverse("ledger:customers"), {"after": "not-a-cursor"}).status_code == 400


def make_open_items(entity, customer, count):
    Invoice.objects.bulk_create(
        Invoice(
            entity=entity,
            customer=customer,
            invoice_number=f"OPEN-{i:04d}",
            currency="GBP",
            # several invoices share each date, so the id breaks the ties
            invoice_date=date(2026, 1, 1) + timedelta(days=i // 7),
            due_date=date(2026, 3, 1),
            net_amount=Decimal("10.00"),
            tax_amount=0,
            gross_amount=Decimal("10.00"),
            outstanding_amount=Decimal("10.00"),
        )
        for i in range(count)
    )


def test_every_open_item_is_reachable_across_pages(client, alice, entity):
    make_customers(entity, 1)
    customer = Customer.objects.get()
    make_open_items(entity, customer, 450)
    paid = Invoice.objects.filter(invoice_number="OPEN-0003")
    paid.update(outstanding_amount=0)  # paid: not an open item
    client.force_login(alice)
    url = reverse("ledger:customer", args=[customer.pk])

    response = client.get(url)
    html = response.content.decode()
    assert '<span class="tnum">449</span> open items' in html
    assert "(249 more after these)" in html
    seen = list(response.context["page"].items)
    link = more_link(html, "open-items-more")
    pages = 1
    while link:
        part = client.get(url + link.split("#")[0], **HTMX)
        assert part.templates[0].name == "ledger/_customer_open_items.html"
        seen += part.context["page"].items
        link = more_link(part.content.decode(), "open-items-more")
        pages += 1
    assert pages == 3
    expected = list(
        Invoice.objects.filter(customer=customer, outstanding_amount__gt=0)
        .order_by("invoice_date", "id")
        .values_list("pk", flat=True)
    )
    assert [inv.pk for inv in seen] == expected and len(expected) == 449


def test_a_customer_with_few_open_items_shows_them_all_without_a_more_link(client, alice, entity):
    make_customers(entity, 1)
    customer = Customer.objects.get()
    make_open_items(entity, customer, 3)
    client.force_login(alice)
    html = client.get(reverse("ledger:customer", args=[customer.pk])).content.decode()
    assert '<span class="tnum">3</span> open items' in html
    assert html.count("OPEN-") == 3 and 'id="open-items-more"' not in html


@pytest.mark.parametrize(("user", "expected"), [("mallory", 403), ("alice", 200), ("bob", 200)])
def test_later_pages_keep_the_clerk_role_check(client, request, entity, user, expected):
    make_customers(entity, 201)
    customer = Customer.objects.get(code="C0001")
    make_open_items(entity, customer, 201)
    alice = request.getfixturevalue("alice")
    client.force_login(alice)
    list_url = reverse("ledger:customers")
    detail_url = reverse("ledger:customer", args=[customer.pk])
    cursors = {
        list_url: client.get(list_url).context["page"].next_cursor,
        detail_url: client.get(detail_url).context["page"].next_cursor,
    }
    client.force_login(request.getfixturevalue(user))
    for url, cursor in cursors.items():
        for headers in ({}, HTMX):
            assert client.get(url, {"after": cursor}, **headers).status_code == expected, url
