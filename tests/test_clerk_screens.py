# ruff: noqa: F811  (the screen_data fixture is imported by name)
"""What clerks and approvers read on the screens (issue 16): why a plan needs approval, what
changed from the proposal, and the context around a payment."""

import csv
import io
from decimal import Decimal

import pytest
from django.urls import reverse

from payments.services.plans import plan_propose, plan_submit
from tests.test_views_data import screen_data  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def test_approvals_say_why_a_discount_plan_under_the_threshold_needs_approval(
    client, alice, bob, screen_data, settings
):
    """The engine proposed INV-1003 for 250.00; alice takes 203.25 and gives a 46.75
    settlement discount. Under the threshold only the discount needs bob."""
    settings.APPROVAL_THRESHOLD = Decimal("1000.00")
    payment = screen_data["proposed"]
    inv3 = screen_data["invoices"][2]
    proposal = payment.proposals.get()
    lines = [{"invoice_id": inv3.pk, "amount": "203.25", "discount_amount": "46.75"}]
    plan = plan_propose(payment=payment, lines=lines, actor=alice, proposal=proposal)
    plan_submit(plan=plan, actor=alice)
    client.force_login(bob)
    html = client.get(reverse("payments:approvals")).content.decode()
    assert "Settlement discount of 46.75 GBP on INV-1003" in html
    assert "is above the approval threshold" not in html.split("pi_proposed")[1].split("</tr>")[0]
    assert "INV-1003 discount:" in html and "46.75 GBP" in html
    assert "INV-1003 amount:" in html and "203.25 GBP" in html
    assert "as proposed" not in html


def test_approvals_say_when_a_payment_is_above_the_threshold(client, bob, screen_data, settings):
    settings.APPROVAL_THRESHOLD = Decimal("100.00")
    client.force_login(bob)
    html = client.get(reverse("payments:approvals")).content.decode()
    # alice's awaiting plan for the 400.00 payment
    assert "400.00 GBP is above the approval threshold of 100.00 GBP" in html


def test_outbox_pages_fifty_writes_at_a_time(client, alice, screen_data):
    from ledger.models import OutboxCommand
    from ledger.outbox.services import outbox_enqueue

    customer = screen_data["customer"]
    for n in range(55):
        outbox_enqueue(
            entity=customer.entity,
            kind=OutboxCommand.Kind.POST_RECEIPT,
            external_reference=f"CUST-PAGE-{n}",
            payload={
                "customer_code": customer.code,
                "bank_account_code": "BANK1",
                "amount": "1.50",
                "currency": "GBP",
                "payment_date": "2026-01-15",
            },
            origin_type="customer",
            origin_id=customer.pk,
        )
    client.force_login(alice)
    first = client.get(reverse("payments:outbox"), {"customer": "ACME"})
    html = first.content.decode()
    assert html.count('data-testid="outbox-row"') == 50
    assert "CUST-PAGE-54" in html and "CUST-PAGE-4<" not in html  # newest first
    assert "1.50 GBP" in html and "Acme Ltd" in html
    after = first.context["page"].next_cursor
    second = client.get(reverse("payments:outbox"), {"customer": "ACME", "after": after})
    html = second.content.decode()
    # the 5 oldest of ACME's; R-TEST-1 names no customer, so it is not among them
    assert html.count('data-testid="outbox-row"') == 5
    assert "CUST-PAGE-0<" in html and "R-TEST-1" not in html
    failed = client.get(reverse("payments:outbox"), {"state": "needs_person"})
    assert "R-TEST-1" in failed.content.decode()


def test_csv_export_reads_like_the_screens(client, alice, screen_data):
    """Amounts at the currency's decimals (not 400.000), state names as the screens say
    them, and the invoices each payment's plan settles."""
    client.force_login(alice)
    response = client.get(reverse("payments:export"), {"tab": "all"})
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    header, body = rows[0], {row[2]: dict(zip(rows[0], row, strict=True)) for row in rows[1:]}
    assert header[:5] == ["Received", "Source", "Payment id", "Amount", "Currency"]
    awaiting = body["pi_awaiting"]
    assert awaiting["Amount"] == "400.00" and awaiting["State"] == "Awaiting approval"
    assert awaiting["Invoices"] == "INV-1002" and awaiting["Source"] == "Stripe"
    assert body["pi_yen"]["Amount"] == "125000"  # yen have no decimals


def test_dates_are_typed_day_first(client, alice, screen_data):
    from datetime import date, timedelta

    client.force_login(alice)
    tomorrow = (date.today() + timedelta(days=1)).strftime("%d/%m/%Y")
    week_ago = (date.today() - timedelta(days=7)).strftime("%d/%m/%Y")
    html = client.get(
        reverse("payments:inbox"), {"tab": "all", "received_from": week_ago}
    ).content.decode()
    assert 'placeholder="dd/mm/yyyy"' in html and f'value="{week_ago}"' in html
    assert "pi_unmatched" in html
    html = client.get(
        reverse("payments:inbox"), {"tab": "all", "received_from": tomorrow}
    ).content.decode()
    assert "pi_unmatched" not in html


def test_payment_page_shows_its_company_and_the_customers_position(client, alice, screen_data):
    from datetime import date, timedelta

    from ledger.models import Invoice
    from tests.test_views_data import make_invoice

    customer = screen_data["customer"]
    late = make_invoice(customer.entity, customer, "INV-0990", "75.50", days_ago=60)
    Invoice.objects.filter(pk=late.pk).update(due_date=date.today() - timedelta(days=30))
    client.force_login(alice)
    html = client.get(
        reverse("payments:detail", args=[screen_data["unmatched"].pk])
    ).content.decode()
    company = html.split('data-testid="payment-company">')[1].split("</dd>")[0]
    assert "Demo Ltd" in company and "demo" in company
    position = html.split('data-testid="customer-position">')[1].split("</dd>")[0]
    # open: 600 + 400 + 250 + 75.50; overdue: only INV-0990; limit 5,000
    assert "open items 1,325.50 GBP (4)" in position
    assert "overdue <strong" in position and "75.50 GBP</strong> (1)" in position
    assert "credit limit 5,000.00 GBP · headroom 3,674.50 GBP" in position


def test_invoice_list_has_a_company_column_filter_count_and_totals(client, alice, screen_data):
    from ledger.models import Customer, Entity
    from tests.test_views_data import make_invoice

    ireland = Entity.objects.create(
        name="Demo Ireland", company_id="demo-ie", region="sandbox", base_currency="EUR",
        credentials_key="DEMO",
    )  # fmt: skip
    dublin = Customer.objects.create(entity=ireland, code="DUB", name="Dublin Ltd", currency="EUR")
    make_invoice(ireland, dublin, "IE-1", "99.99")
    client.force_login(alice)
    html = client.get(reverse("ledger:invoices")).content.decode()
    totals = html.split('data-testid="invoice-totals">')[1].split("</p>")[0]
    assert ">4</strong> invoices" in totals
    assert "EUR: 1, gross 99.99 EUR, outstanding 99.99 EUR" in totals
    assert "GBP: 3, gross 1,250.00 GBP, outstanding 1,250.00 GBP" in totals
    assert "<td>Demo Ireland</td>" in html and "<td>Demo Ltd</td>" in html
    html = client.get(reverse("ledger:invoices"), {"entity": ireland.pk}).content.decode()
    assert "IE-1" in html and "INV-1001" not in html
    assert ">1</strong> invoice ·" in html


def test_refund_on_account_is_offered_only_with_money_on_account(client, alice, screen_data):
    from ledger.models import Receipt

    payment = screen_data["unmatched"]
    receipt = Receipt.objects.get(check_reference="RCPT-OLD")  # fully allocated: 0.00 left
    type(payment).objects.filter(pk=payment.pk).update(receipt=receipt)
    client.force_login(alice)
    url = reverse("payments:detail", args=[payment.pk])
    assert "Refund money on account" not in client.get(url).content.decode()
    Receipt.objects.filter(pk=receipt.pk).update(unallocated_amount=Decimal("12.50"))
    assert "Refund money on account" in client.get(url).content.decode()


def test_a_fully_allocated_credit_note_does_not_say_open():
    from ledger.models import CreditNote

    assert CreditNote(status="posted", outstanding_amount=0).status_text == (
        "Posted, fully allocated"
    )
    assert CreditNote(status="posted", outstanding_amount=Decimal("5")).status_text == (
        "Posted, open"
    )


def test_inbox_tabs_show_counts_and_totals_per_currency(client, alice, screen_data):
    from django.core.cache import cache

    cache.delete("payments:inbox-tab-figures")  # figures are cached 30 s
    client.force_login(alice)
    html = client.get(reverse("payments:inbox"), {"tab": "all"}).content.decode()

    def tab(key):
        return html.split(f'data-testid="tab-{key}">')[1].split("</a>")[0]

    # unmatched: pi_unmatched 1,000.00 GBP and pi_yen 125,000 JPY
    assert '<span class="badge">2</span>' in tab("unmatched")
    assert "1,000.00 GBP" in tab("unmatched") and "125,000 JPY" in tab("unmatched")
    assert '<span class="badge">1</span>' in tab("awaiting") and "400.00 GBP" in tab("awaiting")
    assert '<span class="badge">4</span>' in tab("all")
