"""Customer statements mirrored by the pull sync, against the AIQ sandbox over HTTP: stored with
AIQ's exact amounts, replaced (never duplicated), re-pulled only for customers whose books
moved, left intact when AIQ fails; the customer page shows them and refreshes one on demand;
the sync screen counts rows while a step runs."""

import math
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from ledger.aiq.client import AiqClient
from ledger.models import Customer, CustomerStatement, CustomerStatementLine, SyncState
from ledger.sync import services as sync_services
from ledger.sync import statements
from ledger.sync.services import sync_claim, sync_run
from sandbox.store import from_milli

pytestmark = pytest.mark.django_db

STATEMENT = "GetCustomersStatement"


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # no overlap: a second pull reads only what changed since the first (the overlap's re-reads
    # would bring every customer of the last minutes back, by design)
    settings.AIQ_SYNC_OVERLAP_MINUTES = 0


def pull_all(entity) -> SyncState:
    sync_claim(entity=entity)
    sync_run(entity=entity)
    return SyncState.objects.get(entity=entity, object_type="all")


def open_items_in_aiq(sandbox, code: str) -> list[tuple[int, Decimal, Decimal]]:
    """(transaction id, amount, outstanding) of the customer's open items, read straight from
    the sandbox's books in the order its statement lists them."""
    rows = sandbox.state._rows(
        "SELECT t.id, t.amount_milli, t.outstanding_milli FROM txn t "
        "JOIN account a ON a.id = t.account_id WHERE a.code = ? AND t.outstanding_milli <> 0 "
        "ORDER BY t.transaction_date, t.id",
        (code,),
    )
    return [
        (r["id"], from_milli(r["amount_milli"]), from_milli(r["outstanding_milli"])) for r in rows
    ]


def statement_calls(sandbox) -> int:
    return sandbox.server.calls().get(STATEMENT, 0)


def post_receipt(entity, code: str, amount: str) -> int:
    """A receipt written to AIQ by someone else (through its API): the customer's books move."""
    return AiqClient.for_entity(entity).save_sales_receipt(
        {
            "CustomerCode": code,
            "CheckReference": f"ST-{uuid.uuid4().hex[:10].upper()}",
            "PaymentAmount": Decimal(amount),
            "BankAccountCode": "BANK-GBP",
            "PaymentDate": timezone.now() - timedelta(minutes=5),
        }
    )


def lines_of(code: str) -> list[tuple[int, Decimal, Decimal, Decimal]]:
    return list(
        CustomerStatementLine.objects.filter(statement__customer__code=code)
        .order_by("position")
        .values_list("aiq_transaction_id", "amount", "outstanding_amount", "running_balance")
    )


def test_statements_are_stored_with_aiqs_exact_amounts(entity, aiq_sandbox):
    state = pull_all(entity)
    assert state.last_error == ""
    customers = Customer.objects.filter(entity=entity)
    assert CustomerStatement.objects.filter(entity=entity).count() == customers.count() >= 20
    for customer in customers:
        expected = open_items_in_aiq(aiq_sandbox, customer.code)
        stored = lines_of(customer.code)
        assert [row[:3] for row in stored] == expected, customer.code
        running = [sum(o for _, _, o in expected[: n + 1]) for n in range(len(expected))]
        assert [row[3] for row in stored] == running
        statement = customer.statement
        total = sum((o for _, _, o in expected), Decimal(0))
        assert statement.balance == total == customer.balance
        buckets = (statement.days_0_30, statement.days_30_60, statement.days_60_90)
        buckets += (statement.days_90_120, statement.days_120_plus, statement.future)
        assert sum(buckets) == total
        assert statement.currency == customer.currency
    # a known figure with pence, to the penny (ACME's part-paid invoice in the demo books)
    acme = lines_of("ACME")
    assert acme and any(
        outstanding != outstanding.to_integral_value() for _, _, outstanding, _ in acme
    )


def test_a_second_pull_replaces_and_pulls_only_the_customers_that_moved(entity, aiq_sandbox):
    pull_all(entity)
    before = {
        s.customer.code: s.up_to for s in CustomerStatement.objects.select_related("customer")
    }
    acme_lines = len(lines_of("ACME"))
    calls = statement_calls(aiq_sandbox)

    # nothing moved in AIQ: no statement is asked for
    assert pull_all(entity).last_error == ""
    assert statement_calls(aiq_sandbox) == calls
    assert (
        CustomerStatementLine.objects.filter(statement__customer__code="ACME").count() == acme_lines
    )

    receipt_id = post_receipt(entity, "ACME", "12.34")
    assert pull_all(entity).last_error == ""
    assert statement_calls(aiq_sandbox) == calls + 1
    after = {s.customer.code: s.up_to for s in CustomerStatement.objects.select_related("customer")}
    assert {code for code in after if after[code] != before[code]} == {"ACME"}
    # replaced, not added to: AIQ's open items now, the receipt among them, each once
    stored = lines_of("ACME")
    assert [row[:3] for row in stored] == open_items_in_aiq(aiq_sandbox, "ACME")
    assert len(stored) == acme_lines + 1
    # a receipt is a credit on the statement: negative, and open until allocated
    assert (receipt_id, Decimal("-12.34"), Decimal("-12.34")) in {row[:3] for row in stored}
    assert Customer.objects.get(code="ACME").statement.balance == stored[-1][3]


def test_a_statement_a_day_old_is_pulled_again(entity, aiq_sandbox):
    pull_all(entity)
    CustomerStatement.objects.filter(customer__code="ACME").update(
        up_to=timezone.now() - statements.STATEMENT_MAX_AGE - timedelta(minutes=1)
    )
    assert statements.statements_due(entity) == ["ACME"]


def test_an_aiq_fault_in_the_statement_step_keeps_the_stored_statement(entity, aiq_sandbox):
    pull_all(entity)
    kept = lines_of("ACME")
    kept_up_to = Customer.objects.get(code="ACME").statement.up_to
    post_receipt(entity, "ACME", "5.00")
    aiq_sandbox.faults.update(failure_rate=1.0, ops=[STATEMENT])

    state = pull_all(entity)
    assert "statements:" in state.last_error and not state.running
    assert lines_of("ACME") == kept
    assert Customer.objects.get(code="ACME").statement.up_to == kept_up_to

    # the customer stays due (its receipt was read after its statement), so the next pull
    # after AIQ recovers brings the statement up to date
    aiq_sandbox.faults.reset()
    assert pull_all(entity).last_error == ""
    assert [row[:3] for row in lines_of("ACME")] == open_items_in_aiq(aiq_sandbox, "ACME")
    assert len(lines_of("ACME")) == len(kept) + 1


def test_a_customer_aiq_refuses_does_not_hold_back_its_batch(entity, aiq_sandbox):
    pull_all(entity)
    # known here with an AIQ account id, but gone from AIQ: AIQ refuses any batch naming it
    ghost = Customer.objects.create(
        entity=entity, code="GHOST", name="Gone Ltd", currency="GBP", aiq_account_id=99999
    )
    CustomerStatement.objects.filter(entity=entity).update(up_to=timezone.now() - timedelta(days=2))
    codes = statements.statements_due(entity)
    assert "GHOST" in codes and "ACME" in codes
    with pytest.raises(statements.StatementsIncomplete, match="GHOST"):
        statements.sync_statements(AiqClient.for_entity(entity), entity, codes)
    assert not CustomerStatement.objects.filter(customer=ghost).exists()
    fresh = CustomerStatement.objects.filter(up_to__gt=timezone.now() - timedelta(minutes=5))
    assert fresh.count() == len(codes) - 1


def test_statements_come_in_batches_and_progress_counts_rows(entity, aiq_sandbox, monkeypatch):
    pull_all(entity)
    CustomerStatement.objects.all().delete()  # never pulled: every customer is due
    codes = statements.statements_due(entity)
    monkeypatch.setattr(statements, "STATEMENT_BATCH", 5)
    monkeypatch.setattr(sync_services, "ROWS_EVERY_SECONDS", 0)
    client = AiqClient.for_entity(entity)
    read = client.get_customers_statement
    seen = []

    def reading_progress_first(**kwargs):
        # what the sync screen would show at the moment each batch is asked for
        state = SyncState.objects.get(entity=entity, object_type="all")
        seen.append((state.progress_step, state.progress_rows))
        return read(**kwargs)

    client.get_customers_statement = reading_progress_first
    calls = statement_calls(aiq_sandbox)
    sync_claim(entity=entity)
    sync_run(entity=entity, client=client)

    batches = math.ceil(len(codes) / 5)
    assert statement_calls(aiq_sandbox) - calls == batches > 2
    assert seen == [("statements", 5 * n) for n in range(batches)]
    state = SyncState.objects.get(entity=entity, object_type="all")
    assert (state.progress_step, state.progress_rows) == ("statements", len(codes))


def test_storing_a_batch_costs_as_many_queries_for_30_customers_as_for_3(entity, aiq_sandbox):
    client = AiqClient.for_entity(entity)
    codes = [f"BATCH{n:02d}" for n in range(30)]
    receipts = {}
    for code in codes:
        client.update_customer(
            {"Code": code, "Name": f"{code} Ltd", "CurrencyCode": "GBP"}, create=True
        )
        receipts[code] = post_receipt(entity, code, "1.50")
    pull_all(entity)  # mirrors the new customers and stores a first statement for each
    # every other one never pulled: each batch below both adds statements and replaces some
    CustomerStatement.objects.filter(customer__code__in=codes[::2]).delete()

    def queries_to_store(batch: list[str]) -> int:
        with CaptureQueriesContext(connection) as queries:
            assert statements.pull_statements(client, entity, batch) == len(batch)
        return len(queries)

    assert queries_to_store(codes[:3]) == queries_to_store(codes)
    # and each statement is AIQ's, replaced whole: its receipt once, open in full
    fresh = CustomerStatement.objects.filter(up_to__gt=timezone.now() - timedelta(minutes=5))
    assert set(fresh.values_list("customer__code", flat=True)) >= set(codes)
    for code in codes:
        paid = Decimal("-1.50")
        assert lines_of(code) == [(receipts[code], paid, paid, paid)], code
        assert Customer.objects.get(code=code).statement.balance == paid


def test_the_sync_screen_says_how_many_rows_a_running_step_has_read(client, alice, entity):
    SyncState.objects.create(
        entity=entity, object_type="all", running=True, progress_done=5, progress_total=9,
        progress_step="transactions", progress_rows=1240, last_started_at=timezone.now(),
    )  # fmt: skip
    client.force_login(alice)
    html = client.get(reverse("ledger:sync_progress"), HTTP_HX_REQUEST="true").content.decode()
    assert "transactions: 1,240 rows" in html and 'value="5"' in html


def test_the_customer_page_shows_the_stored_statement_without_asking_aiq(
    client, alice, entity, aiq_sandbox
):
    pull_all(entity)
    acme = Customer.objects.get(code="ACME")
    calls = statement_calls(aiq_sandbox)
    client.force_login(alice)
    html = client.get(reverse("ledger:customer", args=[acme.pk])).content.decode()
    assert statement_calls(aiq_sandbox) == calls
    assert (
        f"As AIQ reported it on {timezone.localtime(acme.statement.up_to):%d/%m/%Y %H:%M}" in html
    )
    for line in acme.statement.lines.all():
        assert (line.external_reference or line.internal_number) in html
    assert "Refresh from AIQ" in html
    # the partial (the URL name the page's htmx asks) shows the same stored statement
    url = reverse("ledger:customer_statement", args=[acme.pk])
    partial = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert statement_calls(aiq_sandbox) == calls and "Balance in AIQ" in partial


def test_refresh_pulls_the_customer_statement_now(client, alice, entity, aiq_sandbox):
    pull_all(entity)
    acme = Customer.objects.get(code="ACME")
    old_up_to = acme.statement.up_to
    post_receipt(entity, "ACME", "7.77")
    client.force_login(alice)
    url = reverse("ledger:customer_statement", args=[acme.pk])
    html = client.post(url, HTTP_HX_REQUEST="true").content.decode()
    assert "AIQ did not answer" not in html and "7.77" in html
    acme.statement.refresh_from_db()
    assert acme.statement.up_to > old_up_to
    assert [row[:3] for row in lines_of("ACME")] == open_items_in_aiq(aiq_sandbox, "ACME")
    # without htmx: back to the customer page with a message
    response = client.post(url, follow=True)
    assert response.redirect_chain[-1][0] == reverse("ledger:customer", args=[acme.pk])
    assert "Statement refreshed from AIQ." in response.content.decode()


def test_a_failed_refresh_says_so_and_keeps_the_stored_statement(
    client, alice, entity, aiq_sandbox
):
    pull_all(entity)
    acme = Customer.objects.get(code="ACME")
    kept = lines_of("ACME")
    aiq_sandbox.faults.update(failure_rate=1.0, failure_mode="aiq", ops=[STATEMENT])
    client.force_login(alice)
    url = reverse("ledger:customer_statement", args=[acme.pk])
    response = client.post(url, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200
    assert "Not refreshed: AIQ did not answer" in html and "Traceback" not in html
    assert lines_of("ACME") == kept and "Balance in AIQ" in html


def test_refresh_needs_a_clerk(client, mallory, entity, aiq_sandbox):
    pull_all(entity)
    acme = Customer.objects.get(code="ACME")
    url = reverse("ledger:customer_statement", args=[acme.pk])
    assert client.post(url).status_code == 302  # anonymous: to the login page
    client.force_login(mallory)
    calls = statement_calls(aiq_sandbox)
    assert client.post(url).status_code == 403
    assert statement_calls(aiq_sandbox) == calls
    with pytest.raises(PermissionDenied, match="Only staff"):
        sync_services.statement_refresh(customer=acme, actor=mallory)
