"""GoCardless: the real gocardless-pro SDK pointed at a local HTTP server that answers with
payloads shaped like GoCardless's documented ones; signed webhooks through the view."""

import hashlib
import hmac
import json
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from payments.models import Payment, Payout, WebhookEvent
from payments.sources.gocardless_source import gocardless_import
from staff.models import AuditEntry
from tests.conftest import free_port

SECRET = "gc_webhook_secret_for_tests_123"
URL = "/webhooks/gocardless/"


def _payment(pid, amount, status="confirmed", refunded=0, currency="GBP", mandate="MD000123"):
    return {
        "id": pid,
        "created_at": "2025-03-01T09:00:00.000Z",
        "charge_date": "2025-03-04",
        "amount": amount,
        "amount_refunded": refunded,
        "currency": currency,
        "description": "Invoice INV-1050",
        "reference": "ACME-INV1050",
        "status": status,
        "metadata": {"invoice": "INV-1050"},
        "retry_if_possible": False,
        "scheme": "bacs",
        "links": {"mandate": mandate, "creditor": "CR123", "payout": None},
    }


def _mandate(mid, customer):
    return {
        "id": mid,
        "created_at": "2025-02-20T10:00:00.000Z",
        "reference": f"REF-{mid}",
        "status": "active",
        "scheme": "bacs",
        "next_possible_charge_date": "2025-03-10",
        "payments_require_approval": False,
        "metadata": {},
        "links": {"customer_bank_account": "BA000111", "creditor": "CR123", "customer": customer},
    }


def _customer(cid, email, given="Jane", family="Doe", company=None):
    return {
        "id": cid,
        "created_at": "2025-02-20T09:59:00.000Z",
        "email": email,
        "given_name": given,
        "family_name": family,
        "company_name": company,
        "address_line1": "1 High Street",
        "address_line2": None,
        "address_line3": None,
        "city": "London",
        "region": None,
        "postal_code": "EC1V 7LQ",
        "country_code": "GB",
        "language": "en",
        "phone_number": None,
        "swedish_identity_number": None,
        "danish_identity_number": None,
        "metadata": {},
    }


def _payer_add(fake, mandate_id, customer):
    """A mandate of this customer (both as GET /mandates/{id} and /customers/{id} answer)."""
    fake.mandates[mandate_id] = _mandate(mandate_id, customer["id"])
    fake.customers[customer["id"]] = customer


class FakeGoCardless(BaseHTTPRequestHandler):
    """Answers the few GET endpoints the SDK calls, with GoCardless's JSON envelope. Records
    the paths asked in `asked`; a path in `failing` answers GoCardless's 500 error ("error")
    or closes the connection unanswered ("drop", what a network failure looks like)."""

    payments: dict = {}
    payouts: dict = {}
    payout_items: dict = {}
    refunds: dict = {}
    mandates: dict = {}
    customers: dict = {}
    asked: list = []
    failing: dict = {}

    def do_GET(self):  # noqa: N802
        url = urlparse(self.path)
        self.asked.append(url.path)
        failure = self.failing.get(url.path)
        if failure == "drop":
            self.close_connection = True
            return
        if failure == "error":
            self._error(500, "gocardless", "internal_server_error", "Internal server error")
            return
        query = parse_qs(url.query)
        parts = url.path.strip("/").split("/")
        if parts == ["payments"]:
            items = list(self.payments.values())
            after = query.get("after", [None])[0]
            start = int(after) if after else 0
            page = items[start : start + 2]  # small pages: exercise the SDK's cursor
            nxt = str(start + 2) if start + 2 < len(items) else None
            body = {
                "payments": page,
                "meta": {"cursors": {"before": None, "after": nxt}, "limit": 2},
            }
        elif parts[0] == "payments" and parts[1] in self.payments:
            body = {"payments": self.payments[parts[1]]}
        elif parts[0] == "refunds" and len(parts) == 2 and parts[1] in self.refunds:
            body = {"refunds": self.refunds[parts[1]]}
        elif parts[0] == "payouts" and len(parts) == 2 and parts[1] in self.payouts:
            body = {"payouts": self.payouts[parts[1]]}
        elif parts == ["payout_items"]:
            body = {
                "payout_items": self.payout_items[query["payout"][0]],
                "meta": {"cursors": {"before": None, "after": None}, "limit": 500},
            }
        elif parts[0] == "mandates" and len(parts) == 2 and parts[1] in self.mandates:
            body = {"mandates": self.mandates[parts[1]]}
        elif parts[0] == "customers" and len(parts) == 2 and parts[1] in self.customers:
            body = {"customers": self.customers[parts[1]]}
        else:
            self._error(404, "invalid_api_usage", "resource_not_found", "Resource not found")
            return
        self._send(200, body)

    def _error(self, status, error_type, reason, message):
        error = {
            "message": message,
            "documentation_url": "x",
            "type": error_type,
            "request_id": "r",
            "code": status,
            "errors": [{"reason": reason, "message": message}],
        }
        self._send(status, {"error": error})

    def _send(self, status, body):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps(body).encode())

    def log_message(self, *args):
        pass


@pytest.fixture
def gocardless(settings, monkeypatch):
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)  # the view's queued processing runs at once
    FakeGoCardless.payments = {}
    FakeGoCardless.payouts = {}
    FakeGoCardless.payout_items = {}
    FakeGoCardless.refunds = {}
    FakeGoCardless.mandates = {}
    FakeGoCardless.customers = {}
    FakeGoCardless.asked = []
    FakeGoCardless.failing = {}
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), FakeGoCardless)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.GOCARDLESS_ACCESS_TOKEN = "gc_access_token_test_value"
    settings.GOCARDLESS_API_BASE = f"http://127.0.0.1:{server.server_address[1]}"
    settings.GOCARDLESS_WEBHOOK_SECRETS = ["gc_old_secret_000000", SECRET]
    yield FakeGoCardless
    server.shutdown()
    server.server_close()


def _body(*events):
    return json.dumps({"events": list(events)}).encode()


def _event(eid, resource_type, action, **links):
    return {
        "id": eid,
        "created_at": "2025-03-04T10:00:00.000Z",
        "resource_type": resource_type,
        "action": action,
        "links": links,
        "details": {"origin": "gocardless", "cause": "payment_confirmed"},
        "metadata": {},
    }


def _post(client, body, secret=SECRET, capture=None):
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    with capture(execute=True):
        return client.post(
            URL, data=body, content_type="application/json", HTTP_WEBHOOK_SIGNATURE=signature
        )


def test_signed_payment_event_creates_the_payment_from_the_api(
    client, entity, gocardless, django_capture_on_commit_callbacks
):
    gocardless.payments["PM0001"] = _payment("PM0001", 123456)
    _payer_add(gocardless, "MD000123", _customer("CU000123", "jane@example.test"))
    body = _body(
        _event("EV0001", "payments", "confirmed", payment="PM0001"),
        _event("EV0002", "mandates", "active", mandate="MD000123"),
    )
    response = _post(client, body, capture=django_capture_on_commit_callbacks)
    assert response.status_code == 204
    payment = Payment.objects.get()
    assert (payment.source, payment.external_id, payment.amount, payment.status) == (
        "gocardless",
        "PM0001",
        Decimal("1234.56"),
        "succeeded",
    )
    assert {"source": "reference", "value": "ACME-INV1050"} in payment.references
    assert payment.payer_reference == "MD000123"
    assert (payment.payer_name, payment.payer_email) == ("Jane Doe", "jane@example.test")
    assert dict(WebhookEvent.objects.values_list("event_id", "state")) == {
        "EV0001": "processed",
        "EV0002": "ignored",
    }

    # the same batch again: no new rows; later status from the API wins
    gocardless.payments["PM0001"] = _payment("PM0001", 123456, refunded=6000)
    _post(client, body, capture=django_capture_on_commit_callbacks)
    assert Payment.objects.count() == 1 and WebhookEvent.objects.count() == 2
    _post(
        client,
        _body(_event("EV0003", "refunds", "paid", payment="PM0001", refund="RF1")),
        capture=django_capture_on_commit_callbacks,
    )
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == ("partially_refunded", Decimal("60"))


@pytest.mark.parametrize("tamper", ["flipped", "wrong_secret", "missing"])
def test_bad_signatures_get_498_and_store_nothing(
    client, entity, gocardless, tamper, caplog, django_capture_on_commit_callbacks
):
    body = _body(_event("EV0009", "payments", "confirmed", payment="PM0009"))
    if tamper == "missing":
        response = client.post(URL, data=body, content_type="application/json")
    elif tamper == "flipped":
        forged = body.replace(b"PM0009", b"PM0008")  # one byte changed after signing
        signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        response = client.post(
            URL, data=forged, content_type="application/json", HTTP_WEBHOOK_SIGNATURE=signature
        )
    else:
        response = _post(
            client, body, secret="not_the_secret_0000", capture=django_capture_on_commit_callbacks
        )
    assert response.status_code == 498
    assert WebhookEvent.objects.count() == 0
    assert SECRET not in caplog.text + response.content.decode()


def test_unreachable_api_keeps_the_event_for_retry(
    client, entity, gocardless, django_capture_on_commit_callbacks
):
    body = _body(_event("EV0010", "payments", "confirmed", payment="PM_MISSING"))
    assert _post(client, body, capture=django_capture_on_commit_callbacks).status_code == 204
    event = WebhookEvent.objects.get()
    assert event.state == "retry" and "gocardless_access_token" not in event.last_error.lower()


def test_import_pages_through_payments_with_the_sdk(entity, gocardless):
    for n in range(5):
        gocardless.payments[f"PM10{n}"] = _payment(f"PM10{n}", 1000 + n, currency="EUR")
    gocardless.payments["PM104"]["status"] = "failed"
    assert gocardless_import() == {"created": 5, "updated": 0}
    assert gocardless_import() == {"created": 0, "updated": 5}
    assert Payment.objects.get(external_id="PM104").status == "failed"
    assert Payment.objects.get(external_id="PM101").amount == Decimal("10.01")


def test_payout_event_links_payments_and_checks_the_net(
    client, entity, gocardless, django_capture_on_commit_callbacks
):
    gocardless.payments["PM2"] = _payment("PM2", 10000)
    gocardless_import()
    gocardless.payouts["PO1"] = {
        "id": "PO1",
        "amount": 9980,
        "arrival_date": "2025-03-06",
        "currency": "GBP",
        "deducted_fees": 20,
        "payout_type": "merchant",
        "reference": "GC-PO1",
        "status": "paid",
        "created_at": "2025-03-05T08:00:00.000Z",
        "links": {"creditor": "CR123", "creditor_bank_account": "BA1"},
    }
    gocardless.payout_items["PO1"] = [
        {"amount": "10000.0", "type": "payment_paid_out", "links": {"payment": "PM2"}},
        {"amount": "-20.0", "type": "gocardless_fee", "links": {"payment": "PM2"}},
    ]
    body = _body(_event("EV0100", "payouts", "paid", payout="PO1"))
    assert _post(client, body, capture=django_capture_on_commit_callbacks).status_code == 204
    payout = Payout.objects.get()
    assert (payout.amount, payout.status) == (Decimal("99.8"), "paid")
    assert Payment.objects.get(external_id="PM2").payout == payout
    assert AuditEntry.objects.get(action="payout.reconcile").after["balanced"] is True
