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
