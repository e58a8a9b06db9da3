"""Invoices AIQ has but the mirror does not yet (issue 14.5): a payment naming one is matched
in the same run, the invoice looked up in the AIQ sandbox over HTTP (GetInvoicesBy by number,
GetTransactionByInvoiceID) and mirrored; a number AIQ does not have is asked once only."""

from decimal import Decimal

import pytest
from django.core.cache import cache

from ledger.aiq.client import AiqClient
from ledger.models import DocumentStatus, Invoice
from payments.models import MatchProposal, MatchRule
from payments.services.aiq_invoice_lookup import _miss_key
from payments.services.matching_runs import matching_run
from tests.refunds_support import make_invoice, setup_books
from tests.test_plans_factories import make_payment

pytestmark = pytest.mark.django_db


@pytest.fixture
def books(aiq_sandbox, entity):
    setup_books(entity)
    cache.clear()
    return aiq_sandbox


def posted_in_aiq_only(entity, code: str, net: str) -> dict:
    """An invoice posted in AIQ that no pull has mirrored yet: its AIQ record."""
    client = AiqClient.for_entity(entity)
    record = client.get_new_sales_invoice(code)
    record.update(
        ExternalReference="NOT-MIRRORED-1",
        Lines={
            "InvoiceLine": [
                {
                    "StockItemDescription": "Support",
                    "GLAccountCode": "4010",
                    "InvoicedQuantity": Decimal(1),
                    "NetAmount": Decimal(net),
                    "TaxCode": "T0",
                }
            ]
        },
    )
    invoice_id = client.save_invoice_get_back_invoice_id(record)
    client.post_invoice(invoice_id)
    return client.get_invoice(invoice_id)


def test_a_reference_to_an_invoice_only_aiq_has_is_mirrored_and_matched_in_the_same_run(
    books, entity
):
    make_invoice(entity, "ACME", [("Support", "4010", "10.00", "T0")])  # the mirror's shape
    record = posted_in_aiq_only(entity, "ACME", "42.50")
    number = record["InvoiceNumber"]
    assert not Invoice.objects.filter(invoice_number=number).exists()
    payment = make_payment(entity, "42.50", refs=[number.replace("-", " ")])

    report = matching_run(dry_run=False)

    assert report.aiq_mirrored == 1
    mirrored = Invoice.objects.get(invoice_number=number)
    assert mirrored.aiq_invoice_id == record["InvoiceID"]
    assert books.state.outstanding(mirrored.aiq_transaction_id) == Decimal("42.50")
    assert (mirrored.gross_amount, mirrored.outstanding_amount) == (Decimal("42.50"),) * 2
    assert mirrored.status == DocumentStatus.POSTED and mirrored.customer.code == "ACME"
    best = MatchProposal.objects.get(payment=payment, rank=1)
    assert best.rule_kind == MatchRule.Kind.REFERENCE
    assert [line["invoice_id"] for line in best.lines] == [mirrored.pk]


def test_a_number_aiq_does_not_have_is_asked_once_then_remembered(books, entity, monkeypatch):
    make_invoice(entity, "ACME", [("Support", "4010", "10.00", "T0")])
    shape = Invoice.objects.get().invoice_number
    unknown = shape[:-3] + "999"
    payment = make_payment(entity, "42.50", refs=[unknown])
    asked = []
    real = AiqClient.get_posted_invoices_by_numbers

    def counted(self, numbers):
        asked.append(list(numbers))
        return real(self, numbers)

    monkeypatch.setattr(AiqClient, "get_posted_invoices_by_numbers", counted)

    assert matching_run(dry_run=False).aiq_mirrored == 0
    assert matching_run(dry_run=False).aiq_mirrored == 0

    assert asked == [[unknown]]  # asked once; the answer (none) is remembered
    assert cache.get(_miss_key(entity.pk, unknown))
    assert "nothing" not in str(payment.match_notes)
    assert not MatchProposal.objects.filter(payment=payment).exists()
