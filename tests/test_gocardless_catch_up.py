"""GoCardless like Stripe: an event that could not be processed (GoCardless down) is retried
by the sweep, and the nightly catch-up (or a backfill with --since) lists the events and
payments the webhook never delivered. GoCardless's API is faked at our boundary with its
documented JSON envelopes (the fake of test_gocardless_webhooks, plus /events)."""

import threading
from decimal import Decimal
from http.server import ThreadingHTTPServer
from urllib.parse import urlparse

import pytest
from django.core.management import call_command

from ledger.management.commands.setup_schedules import SCHEDULES
from ledger.models import SyncState
from payments.models import Payment, WebhookEvent
from payments.sources.gocardless_source import gocardless_catch_up, gocardless_events_retry_due
from tests.conftest import free_port
from tests.test_gocardless_webhooks import (
    FakeGoCardless,
    _customer,
    _event,
    _payer_add,
    _payment,
)


class FakeWithEvents(FakeGoCardless):
    events: list = []

    def do_GET(self):  # noqa: N802
        url = urlparse(self.path)
        if url.path.strip("/") == "events":
            self.asked.append(url.path + "?" + url.query)
            body = {
                "events": self.events,
                "meta": {"cursors": {"before": None, "after": None}, "limit": 500},
            }
            self._send(200, body)
            return
        super().do_GET()


@pytest.fixture
def gocardless(settings):
    for name in ("payments", "payouts", "payout_items", "refunds", "mandates", "customers"):
        setattr(FakeWithEvents, name, {})
    FakeWithEvents.asked, FakeWithEvents.failing, FakeWithEvents.events = [], {}, []
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), FakeWithEvents)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.GOCARDLESS_ACCESS_TOKEN = "gc_access_token_test_value"
    settings.GOCARDLESS_API_BASE = f"http://127.0.0.1:{server.server_address[1]}"
    yield FakeWithEvents
    server.shutdown()
    server.server_close()


def test_an_event_that_failed_while_gocardless_was_down_is_retried(entity, gocardless):
    from payments.services.stripe_events import webhook_event_store
    from payments.sources.gocardless_source import gocardless_event_process

    gocardless.payments["PM0100"] = _payment("PM0100", 5000)
    _payer_add(gocardless, "MD000123", _customer("CU000123", "jane@example.test"))
    stored = webhook_event_store(
        source="gocardless",
        event_id="EV0100",
        event_type="payments.confirmed",
        payload=_event("EV0100", "payments", "confirmed", payment="PM0100"),
        handled=True,
    ).event
    gocardless.failing = {"/payments/PM0100": "error"}
    assert gocardless_event_process(event_pk=stored.pk) == WebhookEvent.State.RETRY
    assert not Payment.objects.exists()

    gocardless.failing = {}  # GoCardless is back: the 5-minute sweep finds the event
    assert gocardless_events_retry_due(older_than_seconds=0) == 1
    stored.refresh_from_db()
    assert stored.state == WebhookEvent.State.PROCESSED and stored.attempts == 2
    assert Payment.objects.get(external_id="PM0100").amount == Decimal("50.00")


def test_the_nightly_catch_up_stores_missed_events_and_payments(entity, gocardless):
    gocardless.payments["PM0200"] = _payment("PM0200", 12345, status="paid_out")
    _payer_add(gocardless, "MD000123", _customer("CU000123", "jane@example.test"))
    missed = _event("EV0200", "payments", "paid_out", payment="PM0200")
    missed["created_at"] = "2025-03-05T01:00:00.000Z"
    gocardless.events = [missed]

    result = gocardless_catch_up()
    assert (result["stored"], result["processed"]) == (1, 1)
    event = WebhookEvent.objects.get(event_id="EV0200")
    assert event.state == WebhookEvent.State.PROCESSED
    payment = Payment.objects.get(external_id="PM0200")
    assert (payment.amount, payment.status) == (Decimal("123.45"), "succeeded")
    cursor = SyncState.objects.get(object_type="gocardless.events").last_modified_cursor
    assert cursor.isoformat().startswith("2025-03-05T01:00")

    # the next night asks from the cursor (less the overlap) and stores nothing twice
    again = gocardless_catch_up()
    assert again["stored"] == 0 and WebhookEvent.objects.count() == 1
    asked = [path for path in gocardless.asked if path.startswith("/events")]
    assert "created_at%5Bgt%5D=2025-03-05T00%3A55%3A00.000Z" in asked[-1]


def test_backfill_command_and_schedules(entity, gocardless, capsys):
    gocardless.payments["PM0300"] = _payment("PM0300", 700)
    _payer_add(gocardless, "MD000123", _customer("CU000123", "jane@example.test"))
    call_command("gocardless_catch_up", "--since", "2024-01-01")
    assert "1 new" in capsys.readouterr().out
    assert Payment.objects.filter(external_id="PM0300").exists()
    assert any("created_at%5Bgt%5D=2023-12-31T23%3A55" in p for p in gocardless.asked)
    assert SCHEDULES["gocardless-events-retry"][0] == "payments.tasks.gocardless_events_sweep_task"
    assert SCHEDULES["gocardless-catch-up"][1] == 24 * 60
    assert SCHEDULES["stripe-import"][0] == "payments.tasks.stripe_import_task"


class FakeTwoAccounts(FakeWithEvents):
    """Answers as the GoCardless account the access token is of: each token sees only its
    own account's events and payments (as GoCardless does), and asks are kept per token."""

    by_token: dict = {}
    asked_by: list = []

    def do_GET(self):  # noqa: N802
        token = self.headers.get("Authorization", "").removeprefix("Bearer ")
        books = self.by_token.get(token)
        if books is None:
            self._error(401, "invalid_api_usage", "unauthorized", "Access token not active")
            return
        self.asked_by.append((token, urlparse(self.path).path))
        self.events, self.payments = books["events"], books["payments"]
        super().do_GET()


@pytest.fixture
def two_accounts(entity, gocardless, settings, monkeypatch):
    from tests.companies_support import ireland, stripe_account

    server_port = settings.GOCARDLESS_API_BASE.rsplit(":", 1)[1]
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), FakeTwoAccounts)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.GOCARDLESS_API_BASE = f"http://127.0.0.1:{server.server_address[1]}"
    assert server_port != str(server.server_address[1])
    FakeTwoAccounts.asked_by = []
    uk_payment = _payment("PM0UK1", 4200)
    ie_payment = _payment("PM0IE1", 9550, currency="EUR", mandate="MD000IE")
    uk_event = _event("EV0UK1", "payments", "confirmed", payment="PM0UK1")
    ie_event = _event("EV0IE1", "payments", "confirmed", payment="PM0IE1")
    uk_event["created_at"] = ie_event["created_at"] = "2025-03-05T01:00:00.000Z"
    FakeTwoAccounts.by_token = {
        "gc_uk_token_value": {"events": [uk_event], "payments": {"PM0UK1": uk_payment}},
        "gc_ie_token_value": {"events": [ie_event], "payments": {"PM0IE1": ie_payment}},
    }
    _payer_add(FakeTwoAccounts, "MD000123", _customer("CU000123", "jane@example.test"))
    _payer_add(FakeTwoAccounts, "MD000IE", _customer("CU000IE", "aoife@example.ie"))
    monkeypatch.setenv("GC_UK_TOKEN", "gc_uk_token_value")
    monkeypatch.setenv("GC_IE_TOKEN", "gc_ie_token_value")
    ie = ireland()
    accounts = {
        "uk": stripe_account(entity, "GBP", key_env="GC_UK_TOKEN", source="gocardless"),
        "ie": stripe_account(ie, "EUR", key_env="GC_IE_TOKEN", source="gocardless"),
        "uk_entity": entity,
        "ie_entity": ie,
    }
    yield accounts
    server.shutdown()
    server.server_close()


def test_each_gocardless_account_is_caught_up_with_its_own_token_into_its_company(two_accounts):
    from payments.tasks import gocardless_catch_up_task

    result = gocardless_catch_up_task()  # what the nightly schedule runs
    assert (result["stored"], result["processed"], result["problems"]) == (2, 2, [])
    uk = Payment.objects.get(external_id="PM0UK1")
    ie = Payment.objects.get(external_id="PM0IE1")
    assert (uk.entity, uk.currency, uk.amount) == (
        two_accounts["uk_entity"],
        "GBP",
        Decimal("42.00"),
    )
    assert (ie.entity, ie.currency, ie.amount) == (
        two_accounts["ie_entity"],
        "EUR",
        Decimal("95.50"),
    )
    assert WebhookEvent.objects.get(event_id="EV0IE1").provider_account == two_accounts["ie"]
    # each token asked only for its own account's objects
    asked = FakeTwoAccounts.asked_by
    assert ("gc_ie_token_value", "/payments/PM0IE1") in asked
    assert ("gc_uk_token_value", "/payments/PM0IE1") not in asked
    # a cursor per account
    cursors = dict(
        SyncState.objects.filter(object_type__startswith="gocardless.events").values_list(
            "object_type", "entity_id"
        )
    )
    assert cursors == {
        "gocardless.events:GC_UK_TOKEN": two_accounts["uk_entity"].pk,
        "gocardless.events:GC_IE_TOKEN": two_accounts["ie_entity"].pk,
    }
    again = gocardless_catch_up_task()
    assert again["stored"] == 0 and Payment.objects.count() == 2


def test_an_account_whose_token_is_unset_is_reported_and_the_others_are_caught_up(
    two_accounts, monkeypatch, capsys
):
    monkeypatch.delenv("GC_UK_TOKEN")
    call_command("gocardless_catch_up")
    out, err = capsys.readouterr()
    assert "Not caught up: GoCardless GBP (Demo Ltd)" in err and "GC_UK_TOKEN is not set" in err
    assert "gc_uk_token_value" not in err + out
    assert "1 missed event(s) stored" in out
    assert Payment.objects.filter(external_id="PM0IE1").exists()
    assert not Payment.objects.filter(external_id="PM0UK1").exists()
