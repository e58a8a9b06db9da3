"""SmartDebit through its API, faked only at the HTTP boundary: a local server answers the
calls SmartDebit documents (Basic auth, the service user's pslid on every call) with the shapes
its API returns; everything from our HTTP client on is the real code. A day's collection report
becomes payments (rejected collections never), the ARUDD report SmartDebit lists reverses the
collections it returns, ADDACS flags the payer, and pulling the same days again changes nothing.
"""

import base64
import threading
from datetime import date
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.management import CommandError, call_command

from ledger.management.commands.setup_schedules import SCHEDULES
from payments.models import DirectDebitNotice, Payment
from payments.services.smartdebit import smartdebit_pull
from payments.sources.smartdebit_api import SmartDebitClient, SmartDebitError
from payments.tasks import smartdebit_pull_task
from tests.test_direct_debit_returns import ADDACS, ARUDD

pytestmark = pytest.mark.django_db

USER, PASSWORD, PSLID = "apiuser", "s3cret", "demotest"

# get_successful_collection_report, as SmartDebit answers it (attributes on Success/Rejected)
REPORT = b"""<?xml version="1.0" encoding="UTF-8"?>
<CollectionReport xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<Successes>
<Success customer_id="1668701" amount="120.00" debit_date="01/03/2025 00:00" account_name="ACME LTD" transaction_ref="" reference_number="ACME0001"/>
<Success customer_id="1668702" amount="75.50" debit_date="01/03/2025 00:00" account_name="GLOBEX PLC" transaction_ref="" reference_number="GLOBEX01"/>
</Successes>
<Rejects>
<Rejected customer_id="1765852" amount="30.00" debit_date="01/03/2025 00:00" account_name="INITECH" error_message="" transaction_ref="" reference_number="INITECH1"/>
</Rejects>
<Summary><CollectionDate>01/03/2025</CollectionDate>
<Succesful number_submitted="2" amount_submitted="195.50"/><Rejected amount_rejected="30.00" number_rejected="1"/></Summary>
</CollectionReport>"""
NO_REPORT = b"""<?xml version="1.0" encoding="UTF-8"?>
<CollectionReport><Summary>No collections on this date</Summary></CollectionReport>"""


def _listing(kind: str, ids: list[str]) -> bytes:
    items = "".join(
        f'<{kind} summary="true" uri="/api/{kind}/{i}"><file_name>BacsReports_{i}.xml</file_name>'
        f"<current_processing_date>2025-03-06T00:00:00Z</current_processing_date>"
        f"<{kind}_id>{i}</{kind}_id></{kind}>"
        for i in ids
    )
    return f'<Response results="{len(ids)}">{items}<Status>OK</Status></Response>'.encode()


def _file(content: bytes) -> bytes:
    # SmartDebit's base64 reaches clients with '+' as spaces (form decoding)
    encoded = base64.b64encode(content).decode().replace("+", " ")
    return f"<Response><file>{encoded}</file></Response>".encode()


class FakeSmartDebit(BaseHTTPRequestHandler):
    calls: list = []

    def log_message(self, *args):
        pass

    def _answer(self, method):
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        FakeSmartDebit.calls.append((method, url.path, query))
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if self.headers.get("Authorization") != expected:
            return self._send(401, b"<error>Invalid credentials</error>")
        if query.get("query[service_user][pslid]") != [PSLID]:
            return self._send(422, b"<error>Unknown service user</error>")
        routes = {
            ("GET", "/api/get_successful_collection_report"): (
                REPORT if query.get("query[collection_date]") == ["2025-03-01"] else NO_REPORT
            ),
            ("POST", "/api/arudd/list"): _listing("arudd", ["115178"]),
            ("GET", "/api/arudd/115178"): _file(ARUDD),
            ("POST", "/api/addac/list"): _listing("addac", ["77"]),
            ("GET", "/api/addac/77"): _file(ADDACS),
            ("POST", "/api/auddis/list"): _listing("auddis", []),
        }
        body = routes.get((method, url.path))
        return self._send(200, body) if body else self._send(404, b"<error>Not found</error>")

    def _send(self, status, body):
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802
        self._answer("GET")

    def do_POST(self):  # noqa: N802
        self._answer("POST")


@pytest.fixture
def smartdebit(settings):
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeSmartDebit)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    FakeSmartDebit.calls = []
    settings.SMARTDEBIT_API_URL = f"http://127.0.0.1:{server.server_address[1]}"
    settings.SMARTDEBIT_API_USER, settings.SMARTDEBIT_API_PASSWORD = USER, PASSWORD
    settings.SMARTDEBIT_PSLID = PSLID
    yield server
    server.shutdown()
    server.server_close()


def test_collections_become_payments_and_returns_reverse_them(entity, smartdebit):
    pull = smartdebit_pull(since=date(2025, 3, 1), until=date(2025, 3, 7))

    assert (pull.days, pull.collected, pull.rejected, pull.errors) == (7, 2, 1, [])
    collected = {p.payer_reference: p for p in Payment.objects.filter(source="smartdebit")}
    assert set(collected) == {"ACME0001", "GLOBEX01"}  # the rejected collection is no money
    assert collected["ACME0001"].amount == Decimal("120.00")
    assert collected["GLOBEX01"].amount == Decimal("75.50")
    assert collected["ACME0001"].currency == "GBP"
    assert collected["ACME0001"].payer_name == "ACME LTD"
    assert str(collected["ACME0001"].received_at.date()) == "2025-03-01"
    # ARUDD (listed by SmartDebit, fetched as base64) returned both: reversed, not deleted
    assert (pull.reports, pull.reversed) == (2, 2)
    assert set(Payment.objects.filter(source="smartdebit").values_list("status", flat=True)) == {
        "failed"
    }
    flags = DirectDebitNotice.objects.filter(payer_reference="ACME0001")
    assert sorted(flags.values_list("kind", flat=True)) == ["addacs", "arudd"]


def test_pulling_the_same_days_again_changes_nothing(entity, smartdebit):
    smartdebit_pull(since=date(2025, 3, 1), until=date(2025, 3, 2))
    again = smartdebit_pull(since=date(2025, 3, 1), until=date(2025, 3, 2))

    assert (again.collected, again.refreshed, again.notices, again.reversed) == (0, 2, 0, 0)
    assert Payment.objects.filter(source="smartdebit").count() == 2
    # a returned collection stays Failed: the report listing it again does not revive it
    assert not Payment.objects.filter(source="smartdebit", status="succeeded").exists()
    assert DirectDebitNotice.objects.count() == 3


def test_every_call_carries_the_service_user_and_a_refusal_is_a_clear_error(
    entity, smartdebit, settings
):
    smartdebit_pull(since=date(2025, 3, 1), until=date(2025, 3, 1))
    assert FakeSmartDebit.calls and all(
        q.get("query[service_user][pslid]") == [PSLID] for _, _, q in FakeSmartDebit.calls
    )

    settings.SMARTDEBIT_API_PASSWORD = "wrong"
    with pytest.raises(SmartDebitError, match="HTTP 401 Invalid credentials"):
        SmartDebitClient.from_settings().collection_report(date(2025, 3, 1))
    with pytest.raises(CommandError, match="problem"):
        call_command("smartdebit_import", "--since", "2025-03-01", "--until", "2025-03-01")


def test_the_command_says_when_smartdebit_is_not_configured(entity, settings):
    settings.SMARTDEBIT_API_URL = ""
    with pytest.raises(CommandError, match="not configured"):
        call_command("smartdebit_import")
    # the nightly schedule runs the pull; unconfigured, it does nothing
    assert SCHEDULES["smartdebit-pull"] == ("payments.tasks.smartdebit_pull_task", 24 * 60)
    assert smartdebit_pull_task() == "SmartDebit API not configured"


def test_the_ready_smartdebit_layout_reads_the_report_in_its_documented_fields(entity, alice):
    from payments.models import ImportFormat
    from payments.services.statements import statement_import, statement_preview

    layout = ImportFormat.objects.get(name="SmartDebit collection report (CSV)")
    content = (
        b"customer_id,reference_number,account_name,debit_date,amount,transaction_ref\n"
        b"1668701,ACME0001,ACME LTD,01/03/2025 00:00,120.00,\n"
        b"1668702,GLOBEX01,GLOBEX PLC,01/03/2025 00:00,75.50,\n"
    )
    preview = statement_preview(
        user=alice, import_format=layout, filename="sd.csv", content=content
    )
    assert preview.ok, preview.file_error or preview.parsed.errors
    statement_import(user=alice, batch=preview.batch, content=content)
    rows = {p.payer_reference: p for p in Payment.objects.filter(source="smartdebit")}
    assert rows["ACME0001"].amount == Decimal("120.00")
    assert rows["GLOBEX01"].payer_name == "GLOBEX PLC"
