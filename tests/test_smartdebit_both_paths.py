"""One SmartDebit collection, two ways in: the portal's collection report (CSV, read through
the ready layout) and SmartDebit's API (get_successful_collection_report, faked only at HTTP).
Whichever arrives first, the collection is one payment: both paths spell its id from the
payer reference, the debit date and the amount; the second path counts it as already here."""

from datetime import date
from decimal import Decimal

import pytest

from payments.models import ImportFormat, Payment
from payments.services.smartdebit import smartdebit_collections_import
from payments.services.statements import statement_import, statement_preview
from payments.sources.smartdebit_api import SmartDebitClient
from tests.test_smartdebit_api import smartdebit  # noqa: F401  (the fake SmartDebit server)

pytestmark = pytest.mark.django_db

# the same collections as the API's REPORT in tests/test_smartdebit_api.py, as the portal's
# CSV gives them: amounts without pence, references in another case, a transaction_ref the
# API leaves empty, and a row order of its own
PORTAL_CSV = (
    b"customer_id,reference_number,account_name,debit_date,amount,transaction_ref\n"
    b"1668702,globex01,GLOBEX PLC,01/03/2025 00:00,75.5,T-2\n"
    b"1668701,ACME0001,ACME LTD,01/03/2025,120,T-1\n"
)


def _portal(alice):
    layout = ImportFormat.objects.get(name="SmartDebit collection report (CSV)")
    preview = statement_preview(
        user=alice, import_format=layout, filename="collections.csv", content=PORTAL_CSV
    )
    assert preview.ok, preview.file_error or preview.parsed.errors
    statement_import(user=alice, batch=preview.batch, content=PORTAL_CSV)
    return preview


def _api():
    return smartdebit_collections_import(
        day=date(2025, 3, 1), client=SmartDebitClient.from_settings()
    )


def _collections():
    return {
        p.payer_reference.upper(): (p.amount, p.received_at.date(), p.external_id)
        for p in Payment.objects.filter(source="smartdebit")
    }


EXPECTED = {
    "ACME0001": (Decimal("120.00"), date(2025, 3, 1), "sd:ACME0001|2025-03-01|120.00"),
    "GLOBEX01": (Decimal("75.50"), date(2025, 3, 1), "sd:GLOBEX01|2025-03-01|75.50"),
}


def test_report_file_first_then_the_api_adds_nothing(entity, alice, smartdebit):  # noqa: F811
    _portal(alice)
    assert _collections() == EXPECTED

    pull = _api()
    assert (pull.collected, pull.refreshed, pull.rejected, pull.errors) == (0, 2, 1, [])
    assert Payment.objects.filter(source="smartdebit").count() == 2
    assert _collections() == EXPECTED


def test_api_first_then_the_report_file_is_all_duplicates(entity, alice, smartdebit):  # noqa: F811
    pull = _api()
    assert (pull.collected, pull.refreshed) == (2, 0)
    assert _collections() == EXPECTED

    preview = _portal(alice)
    assert preview.batch.duplicate_count == 2 and not preview.new_items
    assert {d["rule"] for d in preview.duplicates} == {
        "same SmartDebit collection (payer reference, debit date and amount)"
    }
    assert Payment.objects.filter(source="smartdebit").count() == 2
    assert _collections() == EXPECTED


def test_two_collections_alike_in_one_report_stay_two(entity, alice):
    layout = ImportFormat.objects.get(name="SmartDebit collection report (CSV)")
    content = PORTAL_CSV + b"1668701,ACME0001,ACME LTD,01/03/2025,120.00,T-3\n"
    preview = statement_preview(user=alice, import_format=layout, filename="c.csv", content=content)
    assert preview.ok
    ids = sorted(i.external_id for i in preview.parsed.items)
    assert ids == [
        "sd:ACME0001|2025-03-01|120.00",
        "sd:ACME0001|2025-03-01|120.00#2",
        "sd:GLOBEX01|2025-03-01|75.50",
    ]
