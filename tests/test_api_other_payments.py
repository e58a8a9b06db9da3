"""Sage's other kinds of other_payments (../shared/reference/003_*), sent to /api/v1/ and
followed to the AIQ sandbox's books: money out of the bank to a ledger account with VAT
(OTHER_PAYMENT), a one-off sale given back (OTHER_RECEIPT_REFUND, the document's example), money
back from an expense (OTHER_PAYMENT_REFUND); each is one AIQ sundry entry
(SaveSundryReceiptPaymentsGetBackTransactionIDs), money out with a negative Value. And the
supplier kinds of contact_payments, which this product refuses with the reason."""

from decimal import Decimal

import pytest

from ledger.models import OutboxCommand
from payments.models import OtherReceipt, Payment
from payments.services.other_receipts import other_receipt_approve
from tests.api_support import Caller, api_client
from tests.refunds_support import drain_all, seed_roles_without_matching, setup_books

pytestmark = pytest.mark.django_db(transaction=True)
GLS = ("1200", "2200", "4200", "5000")


@pytest.fixture(autouse=True)
def _seeded(transactional_db):
    seed_roles_without_matching()


@pytest.fixture
def books(aiq_sandbox, entity, audit_flushable):
    setup_books(entity)
    return aiq_sandbox


@pytest.fixture
def api(books, entity, carol):
    _client, token = api_client(entity, carol)
    return Caller(token)


def _other(kind: str, gl: str, net: str, tax: str, total: str) -> dict:
    return {"other_payment": {
        "transaction_type_id": kind, "payment_method_id": "CREDIT_DEBIT",
        "bank_account_id": "BANK-GBP", "date": "2026-12-01", "total_amount": total,
        "payment_lines": [{"ledger_account_id": gl, "tax_rate_id": "T1", "net_amount": net,
                           "tax_amount": tax, "total_amount": total}],
    }}  # fmt: skip


def _gl(books) -> dict:
    return {gl: books.state.gl_total(gl) for gl in GLS}


def _moved(books, before: dict) -> dict:
    return {gl: total - before[gl] for gl, total in _gl(books).items() if total != before[gl]}


def test_an_other_payment_with_vat_leaves_the_bank_and_is_a_sundry_payment_in_aiq(api, books):
    """Stock bought with a card: 100.00 + 20.00 VAT out of the GBP bank. AIQ has a bank
    payment of -120.00; purchases and VAT are debited, the bank credited."""
    before = _gl(books)
    answer = api.post(
        "other_payments", _other("OTHER_PAYMENT", "5000", "100.00", "20.00", "120.00")
    )
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert (body["transaction_type_id"], body["total_amount"], body["status"]) == (
        "OTHER_PAYMENT",
        "120.00",
        "sent",
    )
    drain_all()
    assert _moved(books, before) == {
        "5000": Decimal("100.00"),
        "2200": Decimal("20.00"),
        "1200": Decimal("-120.00"),
    }
    (txn,) = books.state.transactions(f"OREC-{body['id'].removeprefix('orec_')}-1")
    assert (txn["type"], txn["amount"]) == ("BankPayment", Decimal("-120.00"))
    assert api.get(f"other_payments/{body['id']}").json()["status"] == "confirmed"
    # listed under its own kind only
    payments = api.get("other_payments", transaction_type_id="OTHER_PAYMENT").json()["results"]
    receipts = api.get("other_payments", transaction_type_id="OTHER_RECEIPT").json()["results"]
    assert [row["id"] for row in payments] == [body["id"]] and receipts == []


def test_a_one_off_sale_refunded_puts_the_books_back_where_they_were(api, books):
    """The document's example: an OTHER_RECEIPT of 83.33 + 16.67 to other income, then the
    same given back to the customer as an OTHER_RECEIPT_REFUND; and an expense refunded by the
    supplier (OTHER_PAYMENT_REFUND) is money in."""
    before = _gl(books)
    sale = _other("OTHER_RECEIPT", "4200", "83.33", "16.67", "100.00")
    assert api.post("other_payments", sale).status_code == 201
    drain_all()
    assert _moved(books, before)["1200"] == Decimal("100.00")
    back = _other("OTHER_RECEIPT_REFUND", "4200", "83.33", "16.67", "100.00")
    answer = api.post("other_payments", back)
    assert answer.status_code == 201, answer.json()
    drain_all()
    assert _moved(books, before) == {}
    (txn,) = books.state.transactions(f"OREC-{answer.json()['id'].removeprefix('orec_')}-1")
    assert txn["type"] == "BankPayment"

    refunded = api.post(
        "other_payments", _other("OTHER_PAYMENT_REFUND", "5000", "10.00", "2.00", "12.00")
    )
    assert refunded.status_code == 201, refunded.json()
    drain_all()
    assert _moved(books, before) == {
        "5000": Decimal("-10.00"),
        "2200": Decimal("-2.00"),
        "1200": Decimal("12.00"),
    }


def test_an_other_payment_above_the_threshold_waits_for_a_second_person(api, books, settings, bob):
    """A clerk-role client's 1,200.00 out: awaiting approval and nothing queued for AIQ until
    an approver (not the client's service user) approves; then it is in AIQ once."""
    settings.APPROVAL_THRESHOLD = Decimal("1000.00")
    before = _gl(books)
    answer = api.post(
        "other_payments", _other("OTHER_PAYMENT", "5000", "1000.00", "200.00", "1200.00")
    )
    assert answer.status_code == 201, answer.json()
    assert answer.json()["status"] == "awaiting_approval"
    assert not OutboxCommand.objects.filter(origin_type="other_receipt").exists()
    drain_all()
    assert _moved(books, before) == {}
    other_receipt_approve(receipt=OtherReceipt.objects.get(), actor=bob)
    drain_all()
    drain_all()
    assert _moved(books, before)["1200"] == Decimal("-1200.00")
    assert len(books.state.transactions(f"OREC-{OtherReceipt.objects.get().pk}-1")) == 1


@pytest.mark.parametrize(
    ("kind", "why"),
    [
        ("VENDOR_PAYMENT", "AIQ has an operation for them (SavePurchasePayment)"),
        ("VENDOR_REFUND", "AIQ has no operation for money a supplier pays back"),
    ],
)
def test_supplier_kinds_are_refused_with_the_reason_and_nothing_is_written(api, books, kind, why):
    body = {"contact_payment": {
        "transaction_type_id": kind, "contact_id": "ACME", "bank_account_id": "BANK-GBP",
        "date": "2026-12-01", "total_amount": "50.00",
    }}  # fmt: skip
    answer = api.post("contact_payments", body)
    assert (answer.status_code, answer["Content-Type"]) == (422, "application/problem+json")
    problem = answer.json()
    assert why in problem["detail"] and "no supplier ledger" in problem["detail"]
    assert problem["errors"][0]["field"] == "transaction_type_id"
    assert not Payment.objects.exists() and not OutboxCommand.objects.exists()
    listed = api.get("contact_payments", transaction_type_id=kind)
    assert listed.status_code == 400 and "no supplier ledger" in listed.json()["detail"]
