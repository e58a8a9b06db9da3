"""Schema-driven fuzzing of the whole API (schemathesis, from the schema the app publishes),
through the WSGI app in-process: every operation, bounded examples each, valid and invalid
input. No response may be a server error, and every response must match the published schema
(status documented -> body valid against it; content type as documented)."""

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
)

from api.services import api_client_create
from ledger.models import BankAccount, Customer, DocumentStatus, GLAccount, Invoice, TaxCode

EXAMPLES = 30


@pytest.fixture
def api_books(db, entity, carol, settings):
    """A company with customers, banks, GL and tax codes and open invoices, as the mirror
    holds them, and a write client; the rate limit out of the way."""
    settings.API_RATE_LIMIT = "100000/min"
    acme = Customer.objects.create(entity=entity, code="ACME", name="Acme", currency="GBP")
    BankAccount.objects.create(
        entity=entity, bank_code="1200", bank_account_code="BANK-GBP", name="Bank", currency="GBP"
    )
    GLAccount.objects.create(entity=entity, code="4200", name="Other income")
    TaxCode.objects.create(entity=entity, code="T1", rate=20)
    for number in range(1, 4):
        Invoice.objects.create(
            entity=entity, customer=acme, invoice_number=f"INV-{number}",
            aiq_transaction_id=1000 + number, currency="GBP", invoice_date="2026-11-01",
            net_amount="100.00", tax_amount="0", gross_amount="100.00",
            outstanding_amount="100.00", status=DocumentStatus.POSTED,
        )  # fmt: skip
    _client, token = api_client_create(actor=carol, name="fuzz", entity=entity, scope="write")
    # as Django's test client does: the test's open transaction is not closed after a request
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield token
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def test_no_server_error_and_every_answer_as_published(api_books):
    from aiqrecon.wsgi import application

    schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", application)
    headers = {"Authorization": f"Bearer {api_books}"}
    checks = [not_a_server_error, response_schema_conformance, content_type_conformance]
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 16  # every resource and method is fuzzed

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def fuzz(case):
            case.validate_response(case.call(headers=headers), checks=checks)

        fuzz()
