"""A bank payment as people see it: the bank's reference and narrative (never our row hash)
in the inbox, on its page and in the AIQ receipt, found by the inbox search from its narrative,
bank reference or payer account, and its receipt booked to the AIQ bank account its statement
belongs to."""

import pytest
from django.urls import reverse

from ledger.models import BankAccount, OutboxCommand
from payments.models import Payment, StatementAccount
from payments.services.plans import plan_propose, plan_submit
from payments.services.statements import statement_import, statement_preview
from tests import statement_samples as samples
from tests.test_plans_factories import make_customer, make_invoice, setup_books

pytestmark = pytest.mark.django_db


@pytest.fixture
def books(entity, alice):
    setup_books(entity)  # BANK1, the entity's default
    natwest = BankAccount.objects.create(
        entity=entity, bank_code="1210", bank_account_code="NWB-CUR", name="NatWest", currency="GBP"
    )
    StatementAccount.objects.create(
        entity=entity, bank_account=natwest, account_key="GB29NWBK60161331926819", name="NatWest"
    )
    content = samples.camt053()
    preview = statement_preview(user=alice, import_format=None, filename="s.xml", content=content)
    statement_import(user=alice, batch=preview.batch, content=content)
    return natwest


def test_the_receipt_carries_the_banks_reference_into_the_statements_aiq_bank(entity, alice, books):
    acme = make_customer(entity)
    invoice = make_invoice(acme, "120.50")
    payment = Payment.objects.get(end_to_end_id="E2E-ACME-1001")
    plan = plan_propose(
        payment=payment, lines=[{"invoice_id": invoice.pk, "amount": "120.50"}], actor=alice
    )
    plan_submit(plan=plan, actor=alice)
    receipt = OutboxCommand.objects.get(kind="post_receipt")
    assert receipt.payload["bank_account_code"] == "NWB-CUR"  # not the default BANK1
    assert receipt.payload["description"] == "NWB0001 INV-1001 THANK YOU (ACME LTD)"
    assert receipt.external_reference == f"RCPT-{payment.pk}"  # ours, for the read-back


def test_the_inbox_shows_and_finds_the_banks_own_text(client, alice, books):
    client.force_login(alice)
    inbox = reverse("payments:inbox")
    page = client.get(inbox, {"tab": "all"}).content.decode()
    assert "NWB0001" in page and "row:" not in page
    for query, expected in [
        ("INV-1003", "INITECH"),  # a token quoted in the narrative
        ("NWB0001", "ACME LTD"),  # the bank's reference
        ("GB33 BUKB 2020 1555 5555 55", "ACME LTD"),  # the payer's IBAN, typed with spaces
        ("E2E-G-1", "GLOBEX PLC"),  # the end-to-end id
        ("thank you", "ACME LTD"),  # words of the narrative
    ]:
        found = client.get(inbox, {"tab": "all", "q": query}).content.decode()
        assert expected in found, query
    payment = Payment.objects.get(end_to_end_id="E2E-ACME-1001")
    detail = client.get(reverse("payments:detail", args=[payment.pk])).content.decode()
    assert "GB33BUKB20201555555555" in detail and "NWB-CUR" in detail
    assert "Bank narrative" in detail and "INV-1001 THANK YOU" in detail


def test_a_bank_reference_of_digits_only_is_found_as_well_as_an_amount(client, alice, entity):
    """Many banks number their entries: "77300001" typed in the search box is the bank's
    reference of Acme's payment, not only an amount of 77,300,001.00."""
    content = samples.camt053(prefix="7730", iban="GB94BARC10201530093459")
    preview = statement_preview(user=alice, import_format=None, filename="d.xml", content=content)
    statement_import(user=alice, batch=preview.batch, content=content)
    client.force_login(alice)
    found = client.get(reverse("payments:inbox"), {"tab": "all", "q": "77300001"})
    page = found.content.decode()
    assert "ACME LTD" in page and "GLOBEX PLC" not in page
    found = client.get(reverse("payments:inbox"), {"tab": "all", "q": "120.50"})
    assert "ACME LTD" in found.content.decode()  # still an amount
