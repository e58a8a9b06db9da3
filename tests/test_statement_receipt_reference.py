"""A bank payment's receipt in AIQ carries the bank's own reference (issue 15, defect 8).

AIQ's SalesReceipt has one reference of its own, CheckReference, "the check reference/external
reference of the transaction": the outbox reads a receipt back by it, so it stays ours
(RCPT-<id>). The bank's reference for the money goes in LodgmentNumber (at most 50 characters,
AIQ's limit), and the description keeps the bank's reference, narrative and payer. Worked from a
camt.053 statement through approval and the outbox into the AIQ sandbox's books."""

from datetime import datetime
from decimal import Decimal

import pytest

from ledger.aiq.client import AiqClient
from ledger.models import BankAccount, OutboxCommand
from payments.models import Payment, StatementAccount
from payments.services.plans import plan_propose, plan_submit
from payments.services.statements import statement_import, statement_preview
from tests import statement_samples as samples
from tests.refunds_support import drain_all, make_invoice, seed_roles_without_matching, setup_books

pytestmark = pytest.mark.django_db(transaction=True)

LONG_PREFIX = "NWB-FASTER-PAYMENTS-CREDIT-2025-03-04-SETTLEMENT-CYCLE-3-"  # 56 characters


@pytest.fixture(autouse=True)
def _seeded(transactional_db):
    seed_roles_without_matching()


@pytest.fixture
def books(aiq_sandbox, entity, audit_flushable):
    setup_books(entity)
    bank = BankAccount.objects.get(entity=entity, bank_account_code="BANK-GBP")
    StatementAccount.objects.create(
        entity=entity, bank_account=bank, account_key="GB29NWBK60161331926819", name="NatWest"
    )
    return aiq_sandbox


def _import(alice, content: bytes) -> None:
    preview = statement_preview(user=alice, import_format=None, filename="s.xml", content=content)
    assert preview.ok, preview.parsed.errors
    statement_import(user=alice, batch=preview.batch, content=content)


def _settle(entity, alice, payment: Payment, amount: str) -> dict:
    """Acme's invoice for the amount, settled by the payment; the receipt as AIQ gives it."""
    invoice = make_invoice(entity, "ACME", [("Support", "4010", amount, "T0")])
    plan = plan_propose(
        payment=payment, lines=[{"invoice_id": invoice.pk, "amount": amount}], actor=alice
    )
    plan_submit(plan=plan, actor=alice)  # under the approval threshold: queued at once
    drain_all()
    command = OutboxCommand.objects.get(kind="post_receipt", payload__payment_id=payment.pk)
    assert command.state == "confirmed"
    client = AiqClient.for_entity(entity)
    [found] = client.get_transactions_by_external_reference(
        command.external_reference, from_date=datetime(2025, 1, 1), to_date=datetime(2100, 1, 1)
    )
    answer = client.call("GetTransaction", transactionID=int(found["TransactionID"])).result
    return {"summary": found, "lines": unwrap_lines(answer["Lines"]), "command": command}


def unwrap_lines(lines) -> list[dict]:
    """GetTransaction's Lines, as the client reads them (a list, or {"TransactionLine": [...]})."""
    return lines["TransactionLine"] if isinstance(lines, dict) else list(lines)


def test_the_aiq_receipt_carries_the_banks_reference_and_ours_for_read_back(books, entity, alice):
    _import(alice, samples.camt053())
    payment = Payment.objects.get(end_to_end_id="E2E-ACME-1001")
    assert payment.bank_reference == "NWB0001"

    receipt = _settle(entity, alice, payment, "120.50")

    assert receipt["summary"]["ExternalReference"] == f"RCPT-{payment.pk}"  # ours: read-back
    assert Decimal(str(receipt["summary"]["ControlAmount"])) == Decimal("-120.50")
    assert {line["LodgmentNumber"] for line in receipt["lines"]} == {"NWB0001"}
    bank_line = next(line for line in receipt["lines"] if line["IsBankLine"])
    assert bank_line["Description"] == "NWB0001 INV-1001 THANK YOU (ACME LTD)"
    assert books.state.receipt_count(f"RCPT-{payment.pk}") == 1


def test_a_bank_reference_longer_than_aiq_keeps_is_cut_to_its_50_characters(books, entity, alice):
    _import(alice, samples.camt053(prefix=LONG_PREFIX))
    payment = Payment.objects.get(end_to_end_id="E2E-ACME-1001")
    assert payment.bank_reference == f"{LONG_PREFIX}0001"  # 60 characters, kept whole here

    receipt = _settle(entity, alice, payment, "120.50")

    assert receipt["command"].payload["lodgment_number"] == f"{LONG_PREFIX}0001"  # as approved
    assert {line["LodgmentNumber"] for line in receipt["lines"]} == {LONG_PREFIX[:50]}
    assert receipt["summary"]["ExternalReference"] == f"RCPT-{payment.pk}"
