"""The bank side of money in, as a clerk reads it: each statement's figures beside what we hold
for that account and period ("the bank says X, we hold Y"), and the Direct Debit payers the
Bacs reports flagged. Counts, totals, en-GB dates and currencies on both."""

from decimal import Decimal

import pytest
from django.urls import reverse

from payments.models import Statement
from payments.services.direct_debit_returns import direct_debit_notices_apply
from payments.services.statements import statement_import, statement_preview
from payments.sources.bacs_reports import bacs_report_read
from tests.statement_samples import camt053
from tests.test_direct_debit_returns import ADDACS, ARUDD, collected  # noqa: F401

pytestmark = pytest.mark.django_db


def _import(user, content, name):
    preview = statement_preview(user=user, import_format=None, filename=name, content=content)
    assert preview.ok, preview.file_error or preview.parsed.errors
    return statement_import(user=user, batch=preview.batch, content=content)


def test_a_statement_shows_what_the_bank_booked_beside_what_we_hold(client, alice, entity):
    _import(alice, camt053(), "march.xml")
    statement = Statement.objects.get()
    # the file's credits: 120.50 and a batch of 100.00 + 150.00 + 50.00; 900.00 out
    assert (statement.money_in, statement.credit_count) == (Decimal("420.500"), 4)
    assert statement.money_out == Decimal("900.000")

    client.force_login(alice)
    page = client.get(reverse("payments:bank_balances")).content.decode()
    assert "03/03/2025 to 04/03/2025" in page
    assert "1,000.00 GBP" in page and "520.50 GBP" in page  # opening and closing
    assert "420.50 GBP <span" in page  # bank says and we hold: the same
    assert "the bank says 420.50 GBP in, we hold 420.50 GBP, difference 0.00 GBP" in page


def test_the_same_money_imported_twice_from_two_files_shows_as_a_difference(client, alice, entity):
    # an intraday file and the day's statement with the bank's other references: both import
    _import(alice, camt053(), "intraday.xml")
    _import(alice, camt053(stmt_id="STMT-B", prefix="EOD"), "end-of-day.xml")
    assert Statement.objects.count() == 2

    client.force_login(alice)
    page = client.get(reverse("payments:bank_balances")).content.decode()
    assert "<strong>2</strong> statements" in page
    # each statement's period holds 8 payments (841.00) where the bank booked 420.50
    assert page.count("<strong>-420.50 GBP</strong>") == 2
    assert "we hold 1,682.00 GBP, difference -841.00 GBP" in page


def test_an_account_filter_and_bad_input_never_fail(client, alice, entity):
    _import(alice, camt053(), "march.xml")
    client.force_login(alice)
    account = Statement.objects.get().account
    assert client.get(reverse("payments:bank_balances"), {"account": account.pk}).status_code == 200
    assert client.get(reverse("payments:bank_balances"), {"account": "²"}).status_code == 400
    assert client.get(reverse("payments:payer_flags"), {"kind": "x" * 500}).status_code == 200


def test_flagged_payers_are_listed_with_counts_and_returned_totals(
    client,
    alice,
    entity,
    collected,  # noqa: F811
):
    direct_debit_notices_apply(notices=bacs_report_read(ARUDD)[1], filename="arudd.xml")
    direct_debit_notices_apply(notices=bacs_report_read(ADDACS)[1], filename="addacs.xml")

    client.force_login(alice)
    page = client.get(reverse("payments:payer_flags")).content.decode()
    assert "<strong>2</strong> flagged payers, 3 notices" in page
    assert "Returned unpaid: 195.50 GBP (2)" in page
    assert 'data-testid="flag-ACME0001"' in page and 'data-testid="flag-GLOBEX01"' in page
    # ACME's latest notice is the ADDACS cancellation of 07/03/2025; GLOBEX's the return
    assert "07/03/2025" in page and "01/03/2025" in page
    assert "Instruction cancelled by the payer" in page

    only_returns = client.get(reverse("payments:payer_flags"), {"kind": "arudd"})
    assert "<strong>2</strong> flagged payers, 2 notices" in only_returns.content.decode()
