"""The document's worked scenarios (Sage's payments API, ../shared/reference/003_*) sent to
/api/v1/ and followed to the AIQ sandbox's books: full allocation to one invoice; partial (77.77
of 99.99, 22.22 on account); unallocated; on-account money to three invoices later (33.32 x 3
against -99.96); a credit note refunded; an allocated receipt refused a refund, its allocations
removed, then refunded; an other receipt with VAT."""

from decimal import Decimal

import pytest

from ledger.models import Customer, Invoice
from payments.models import Payment
from tests.api_support import Caller, api_client
from tests.later_support import credit_note_in_aiq
from tests.refunds_support import (
    account_balance,
    drain_all,
    make_invoice,
    seed_roles_without_matching,
    setup_books,
)

pytestmark = pytest.mark.django_db(transaction=True)


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


def _invoice(entity, net: str, code: str = "ACME") -> Invoice:
    return make_invoice(entity, code, [("Support hours", "4010", net, "T0")])


def _receipt(contact="ACME", total="55.55", artefacts=None) -> dict:
    body = {
        "transaction_type_id": "CUSTOMER_RECEIPT",
        "payment_method_id": "CREDIT_DEBIT",
        "contact_id": contact,
        "bank_account_id": "BANK-GBP",
        "date": "2026-12-01",
        "total_amount": total,
    }
    if artefacts is not None:
        body["allocated_artefacts"] = artefacts
    return {"contact_payment": body}


def _aiq_receipt(books, payment_id: str) -> dict:
    (txn,) = books.state.transactions(f"RCPT-{payment_id.removeprefix('pay_')}")
    return txn


def test_the_full_amount_goes_onto_one_invoice(api, books, entity):
    invoice = _invoice(entity, "55.55")
    answer = api.post(
        "contact_payments",
        _receipt(artefacts=[{"artefact_id": f"inv_{invoice.pk}", "amount": "55.55"}]),
    )
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert (body["status"], body["total_amount"]) == ("sent", "55.55")  # queued for AIQ
    assert body["allocated_artefacts"] == [{"artefact_id": f"inv_{invoice.pk}", "amount": "55.55"}]
    drain_all()
    assert _aiq_receipt(books, body["id"])["outstanding"] == 0
    assert books.state.outstanding(invoice.aiq_transaction_id) == 0
    read = api.get(f"invoices/inv_{invoice.pk}", show_payments_allocations="true").json()
    assert read["status"] == "paid"
    assert [(a["amount"], a["artefact_id"][:5]) for a in read["payments_allocations"]] == [
        ("55.55", "rcpt_")
    ]
    assert api.get(f"contact_payments/{body['id']}").json()["status"] == "confirmed"


def test_the_payment_is_not_fully_allocated(api, books, entity):
    invoice = _invoice(entity, "100.00")
    body = api.post(
        "contact_payments",
        _receipt(
            total="99.99", artefacts=[{"artefact_id": f"inv_{invoice.pk}", "amount": "77.77"}]
        ),
    ).json()
    drain_all()
    assert _aiq_receipt(books, body["id"])["outstanding"] == Decimal("-22.22")
    assert books.state.outstanding(invoice.aiq_transaction_id) == Decimal("22.23")
    again = api.get(f"contact_payments/{body['id']}").json()
    assert again["payment_on_account"]["amount"] == "22.22"


def test_the_payment_is_not_allocated_at_all_then_later_to_three_invoices(api, books, entity):
    body = api.post("contact_payments", _receipt(total="99.96")).json()
    assert body["allocated_artefacts"] == []
    drain_all()
    assert _aiq_receipt(books, body["id"])["outstanding"] == Decimal("-99.96")
    invoices = [_invoice(entity, "33.32") for _ in range(3)]
    before = account_balance(books, "ACME")

    answer = api.post(
        "contact_allocations",
        {
            "contact_allocation": {
                "transaction_type_id": "CUSTOMER_ALLOCATION",
                "allocated_artefacts": [
                    *({"artefact_id": f"inv_{i.pk}", "amount": 33.32} for i in invoices),
                    {"artefact_id": body["id"], "amount": -99.96},
                ],
            }
        },
    )
    assert answer.status_code == 201, answer.json()
    drain_all()
    assert _aiq_receipt(books, body["id"])["outstanding"] == 0
    assert all(books.state.outstanding(i.aiq_transaction_id) == 0 for i in invoices)
    assert account_balance(books, "ACME") == before
    assert api.get(f"contact_allocations/{answer.json()['id']}").json()["status"] == "confirmed"

    fully_paid = api.post(
        "contact_allocations",
        {"contact_allocation": {"allocated_artefacts": [
            {"artefact_id": f"inv_{invoices[0].pk}", "amount": 1},
            {"artefact_id": body["id"], "amount": -1},
        ]}},
    )  # fmt: skip
    assert fully_paid.status_code == 422
    assert fully_paid.json()["detail"] == "You can only pay unpaid or part-paid invoices."


def test_signed_amounts_must_sum_to_zero(api, books, entity):
    invoice = _invoice(entity, "10.00")
    body = api.post("contact_payments", _receipt(total="10.00")).json()
    answer = api.post(
        "contact_allocations",
        {"contact_allocation": {"allocated_artefacts": [
            {"artefact_id": f"inv_{invoice.pk}", "amount": "5"},
            {"artefact_id": body["id"], "amount": "-4"},
        ]}},
    )  # fmt: skip
    assert answer.status_code == 422
    assert answer["Content-Type"] == "application/problem+json"
    assert answer.json()["errors"] == [
        {
            "field": "contact_allocation.allocated_artefacts",
            "message": "The amounts must sum to zero (they sum to 1).",
        }
    ]


def test_refunding_an_outstanding_sales_credit_note(api, books, entity, alice, bob):
    from payments.models import Refund
    from payments.services.refunds import refund_approve

    note = credit_note_in_aiq(entity, "ACME", "100.00")
    answer = api.post(
        "contact_payments",
        {"contact_payment": {
            "transaction_type_id": "CUSTOMER_REFUND", "payment_method_id": "CREDIT_DEBIT",
            "contact_id": "ACME", "bank_account_id": "BANK-GBP", "date": "2026-12-01",
            "total_amount": "100.00",
            "allocated_artefacts": [{"artefact_id": f"cn_{note.pk}", "amount": "100.00"}],
        }},
    )  # fmt: skip
    assert answer.status_code == 201, answer.json()
    assert answer.json()["status"] == "requested"  # refunds always need a second person
    refund_approve(refund=Refund.objects.get(), actor=bob)
    drain_all()
    assert books.state.outstanding(note.aiq_transaction_id) == 0
    assert api.get(f"contact_payments/{answer.json()['id']}").json()["status"] == "completed"
    listed = api.get("contact_payments", transaction_type_id="CUSTOMER_REFUND").json()
    assert [r["id"] for r in listed["results"]] == [answer.json()["id"]]


def test_an_allocated_receipt_is_refunded_only_after_its_allocations_are_removed(
    api, books, entity, bob
):
    from payments.models import Refund
    from payments.services.refunds import refund_approve

    invoice = _invoice(entity, "40.00")
    body = api.post(
        "contact_payments",
        _receipt(
            total="40.00", artefacts=[{"artefact_id": f"inv_{invoice.pk}", "amount": "40.00"}]
        ),
    ).json()
    drain_all()
    refund = {"contact_payment": {
        "transaction_type_id": "CUSTOMER_REFUND", "contact_id": "ACME",
        "bank_account_id": "BANK-GBP", "date": "2026-12-02", "total_amount": "40.00",
        "allocated_artefacts": [{"artefact_id": body["id"], "amount": "40.00"}],
    }}  # fmt: skip
    refused = api.post("contact_payments", refund)
    assert refused.status_code == 422
    assert "Unallocate first" in refused.json()["detail"]

    removed = api.put(
        f"contact_payments/{body['id']}", {"contact_payment": {"allocated_artefacts": []}}
    )
    assert removed.status_code == 200, removed.json()
    drain_all()
    assert books.state.outstanding(invoice.aiq_transaction_id) == Decimal("40.00")
    assert _aiq_receipt(books, body["id"])["outstanding"] == Decimal("-40.00")
    # as Sage says: the refund names the payment_on_account id the PUT's answer gave
    on_account = api.get(f"contact_payments/{body['id']}").json()["payment_on_account"]
    assert on_account == {"id": removed.json()["payment_on_account"]["id"], "amount": "40.00"}
    assert on_account["id"].startswith("rcpt_")
    refund["contact_payment"]["allocated_artefacts"][0]["artefact_id"] = on_account["id"]
    answer = api.post("contact_payments", refund)
    assert answer.status_code == 201, answer.json()
    refund_approve(refund=Refund.objects.get(), actor=bob)
    drain_all()
    assert _aiq_receipt(books, body["id"])["outstanding"] == 0
    assert Payment.objects.get(pk=int(body["id"][4:])).refunds.get().state == "completed"


def test_an_other_receipt_with_vat(api, books, entity):
    before = {gl: books.state.gl_total(gl) for gl in ("4200", "2200", "1200")}
    answer = api.post(
        "other_payments",
        {"other_payment": {
            "transaction_type_id": "OTHER_RECEIPT", "payment_method_id": "CREDIT_DEBIT",
            "bank_account_id": "BANK-GBP", "date": "2026-12-01", "total_amount": "100.00",
            "payment_lines": [{"ledger_account_id": "4200", "tax_rate_id": "T1",
                               "net_amount": "83.33", "tax_amount": "16.67", "total_amount": "100.00"}],
        }},
    )  # fmt: skip
    assert answer.status_code == 201, answer.json()
    drain_all()
    moved = {gl: books.state.gl_total(gl) - before[gl] for gl in before}
    assert moved == {"4200": Decimal("-83.33"), "2200": Decimal("-16.67"), "1200": Decimal("100")}
    assert api.get(f"other_payments/{answer.json()['id']}").json()["status"] == "confirmed"


def test_read_scope_cannot_write_and_a_revoked_token_is_refused(books, entity, carol):
    from api.services import api_client_revoke

    client, token = api_client(entity, carol, scope="read", name="crm")
    caller = Caller(token)
    assert caller.get("customers").status_code == 200
    assert caller.post("contact_payments", _receipt()).status_code == 403
    api_client_revoke(actor=carol, client=client)
    answer = caller.get("customers")
    assert (answer.status_code, answer["Content-Type"]) == (401, "application/problem+json")
    assert Customer.objects.filter(entity=entity).count() > 0


def test_lists_filter_by_customer_state_date_and_updated_since(api, books, entity):
    """Incremental sync as an integrator does it: every list takes contact_id, status,
    from_date/to_date and updated_since, and pages by cursor."""
    from django.utils import timezone

    acme = api.post("contact_payments", _receipt(total="10.00")).json()
    other = api.post("contact_payments", _receipt(contact="BRIGHT", total="20.00")).json()
    invoice = _invoice(entity, "30.00")
    paid = api.post(
        "contact_payments",
        _receipt(
            total="30.00", artefacts=[{"artefact_id": f"inv_{invoice.pk}", "amount": "30.00"}]
        ),
    ).json()

    def ids(path, **params):
        answer = api.get(path, **params)
        assert answer.status_code == 200, answer.json()
        return [row["id"] for row in answer.json()["results"]]

    assert ids("contact_payments", contact_id="acme") == [acme["id"], paid["id"]]
    assert ids("contact_payments", contact_id="BRIGHT") == [other["id"]]
    assert ids("contact_payments", status="sent") == [acme["id"], other["id"], paid["id"]]
    assert ids("contact_payments", from_date="2026-12-02") == []
    assert ids("contact_payments", to_date="2026-12-01", page_size=2) == [acme["id"], other["id"]]
    marker = timezone.now().isoformat()
    drain_all()  # the plans are confirmed in AIQ: they changed since the marker
    assert ids("contact_payments", status="confirmed", updated_since=marker) == [
        acme["id"], other["id"], paid["id"]
    ]  # fmt: skip
    assert ids("contact_payments", status="sent") == []
    bad = api.get("contact_payments", from_date="someday")
    assert (bad.status_code, bad.json()["errors"][0]["field"]) == (400, "from_date")

    other_receipt = api.post(
        "other_payments",
        {"other_payment": {
            "transaction_type_id": "OTHER_RECEIPT", "bank_account_id": "BANK-GBP",
            "date": "2026-11-30", "payment_lines": [
                {"ledger_account_id": "4200", "tax_rate_id": "T0", "net_amount": "5.00"}],
        }},
    ).json()  # fmt: skip
    assert ids("other_payments", from_date="2026-11-30", to_date="2026-11-30") == [
        other_receipt["id"]
    ]
    assert ids("other_payments", from_date="2026-12-01") == []
    assert ids("other_payments", transaction_type_id="OTHER_RECEIPT", status="sent") == [
        other_receipt["id"]
    ]
    assert ids("other_payments", transaction_type_id="OTHER_PAYMENT") == []
    assert api.get("other_payments", transaction_type_id="PURCHASE").status_code == 400
    assert ids("contact_allocations", contact_id="ACME") == []

    # Sage's own names for the documents read the same rows
    sage = api.get(f"sales_invoices/inv_{invoice.pk}", show_payments_allocations="true").json()
    assert sage == api.get(f"invoices/inv_{invoice.pk}", show_payments_allocations="true").json()
    assert sage["status"] == "paid" and len(sage["payments_allocations"]) == 1
    assert ids("sales_invoices", contact_id="ACME", status="paid") == [f"inv_{invoice.pk}"]
