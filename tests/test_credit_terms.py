"""When an invoice falls due on the customer's AIQ credit term.

AIQ's invoices carry no due date; AIQ's own rule (docs/troubleshooting.md, "Getting a Due Date
for an Invoice"): without EndOfMonth the invoice date plus CreditDays, with EndOfMonth the
last day of the invoice's month plus CreditDays. These are the month ends and leap years a
clerk chasing "30 days end of month" customers meets.
"""

import sqlite3
from datetime import date, timedelta

import pytest

from ledger.models import Customer, Invoice
from ledger.sync.pull import due_date


def term(days, end_of_month=False) -> Customer:
    return Customer(code="T", name="Term", currency="GBP", credit_days=days,
                    credit_end_of_month=end_of_month)  # fmt: skip


@pytest.mark.parametrize(
    ("invoice_date", "days", "eom", "due"),
    [
        # 30 days end of month: from the last day of the invoice's month
        (date(2027, 1, 1), 30, True, date(2027, 3, 2)),  # 31 Jan + 30, February of 28 days
        (date(2027, 1, 31), 30, True, date(2027, 3, 2)),  # the month's last day itself
        (date(2028, 1, 15), 30, True, date(2028, 3, 1)),  # leap year: 31 Jan + 30 = 1 Mar
        (date(2028, 2, 1), 30, True, date(2028, 3, 30)),  # from 29 Feb 2028
        (date(2028, 2, 29), 30, True, date(2028, 3, 30)),  # leap day itself
        (date(2027, 2, 10), 30, True, date(2027, 3, 30)),  # from 28 Feb 2027
        (date(2027, 12, 31), 30, True, date(2028, 1, 30)),  # across the year end
        (date(2027, 11, 5), 60, True, date(2028, 1, 29)),  # 30 Nov + 60
        (date(2027, 4, 30), 0, True, date(2027, 4, 30)),  # "end of month" alone
        (date(2027, 4, 1), 0, True, date(2027, 4, 30)),
        # plain days: from the invoice date
        (date(2027, 1, 31), 30, False, date(2027, 3, 2)),
        (date(2028, 1, 31), 30, False, date(2028, 3, 1)),
        (date(2028, 2, 29), 14, False, date(2028, 3, 14)),
        (date(2027, 12, 20), 14, False, date(2028, 1, 3)),
        (date(2100, 2, 28), 1, False, date(2100, 3, 1)),  # 2100 is not a leap year
        (date(2000, 2, 28), 1, False, date(2000, 2, 29)),  # 2000 is
        (date(2100, 2, 1), 0, True, date(2100, 2, 28)),
        (date(2000, 2, 1), 0, True, date(2000, 2, 29)),
    ],
)
def test_an_invoice_falls_due_on_its_customers_term(invoice_date, days, eom, due):
    assert due_date(invoice_date, term(days, eom)) == due


def test_no_term_known_means_no_due_date_rather_than_a_guess():
    assert due_date(date(2027, 1, 31), term(None, True)) is None
    assert due_date(None, term(30, True)) is None


@pytest.mark.django_db(transaction=True)
def test_a_customer_on_30_days_end_of_month_gets_month_end_due_dates_from_the_pull(
    entity, audit_flushable, tmp_path, settings, monkeypatch, client, alice
):
    """The pull reads the customer's CreditTermID against AIQ's GetCreditTermList: a customer
    AIQ keeps on "30EOM" has every invoice due 30 days after the end of its month."""
    from django.urls import reverse

    from sandbox import seed
    from sandbox.server import SandboxServer
    from tests.outbox_support import seed_sandbox

    path = tmp_path / "aiq.sqlite3"
    seed_sandbox(path, 0)
    with sqlite3.connect(path) as db:  # AIQ set-up: ACME moved to "30 days end of month"
        changed = db.execute(
            "UPDATE account SET data = json_set(data, '$.CreditTermID', '30EOM') "
            "WHERE code = 'ACME' AND ledger = 'Sales'"
        ).rowcount
    assert changed == 1
    server = SandboxServer(str(path)).start()
    try:
        settings.AIQ_SANDBOX_URL = server.url
        for name, value in seed.credentials().items():
            monkeypatch.setenv(name, value)
        from ledger.sync.services import sync_claim, sync_run

        sync_claim(entity=entity)
        sync_run(entity=entity)
    finally:
        server.stop()

    acme = Customer.objects.get(entity=entity, code="ACME")
    assert (acme.credit_days, acme.credit_end_of_month) == (30, True)
    invoices = list(Invoice.objects.filter(customer=acme))
    assert invoices
    for invoice in invoices:
        d = invoice.invoice_date
        next_month = date(d.year + d.month // 12, d.month % 12 + 1, 1)
        assert invoice.due_date == next_month - timedelta(days=1) + timedelta(days=30)
    # another customer stays on plain 30 days
    other = Invoice.objects.exclude(customer=acme).first()
    assert other.due_date == other.invoice_date + timedelta(days=30)
    client.force_login(alice)
    page = client.get(reverse("ledger:invoice", args=[invoices[0].pk])).content.decode()
    assert f"due {invoices[0].due_date:%d/%m/%Y}" in page
