"""Worked refund scenarios against the AIQ sandbox over HTTP (and localstripe where money goes
back through Stripe), with the outbox drained in-process: afterwards AIQ's books, the mirror,
Stripe and the refund's own record must all tell the same story."""

from decimal import Decimal

import pytest

from ledger.models import Allocation, CreditNote, Journal, OutboxCommand
from payments.models import Refund
from payments.services.refunds import (
    ReceiptAllocated,
    refund_approve,
    refund_request,
    refund_unallocate_first,
)
from payments.sources.stripe_client import request
from staff.models import AuditEntry
from tests.refunds_support import (
    account_balance,
    aiq_types,
    allocate,
    drain_all,
    make_invoice,
    seed_roles_without_matching,
    setup_books,
    stripe_payment,
)

# transaction=True: the outbox drain commits for real. Not serialized_rollback: restoring the
# serialized database on top of the content types a previous module's flush re-created fails
# with django_content_type IntegrityErrors; the role groups are re-made below instead.
pytestmark = pytest.mark.django_db(transaction=True)
LINES = [("Onboarding workshop", "4010", "650.00", "T1"), ("Card reader", "4020", "39.99", "T1")]


@pytest.fixture(autouse=True)
def _seeded(transactional_db):
    seed_roles_without_matching()


@pytest.fixture
def books(aiq_sandbox, entity, audit_flushable):
    setup_books(entity)
    return aiq_sandbox


def _stripe_refunds(payment) -> list[dict]:
    return request("get", "/v1/refunds", payment_intent=payment.external_id)["data"]


def test_cancelling_an_unpaid_invoice_posts_a_credit_note_and_allocates_it(
    books, entity, alice, bob
):
    invoice = make_invoice(entity, "ACME", LINES)  # 689.99 net + 138.00 VAT = 827.99
    before = account_balance(books, "ACME")

    refund = refund_request(actor=alice, kind="cancel_invoice", invoice=invoice, reason="Cancelled")
    assert refund.amount == invoice.gross_amount == Decimal("827.99")
    assert not OutboxCommand.objects.exists()  # nothing leaves before approval
    refund_approve(refund=refund, actor=bob)
    drain_all()

    refund.refresh_from_db()
    invoice.refresh_from_db()
    note = CreditNote.objects.get(pk=refund.credit_note_id)
    assert refund.state == "completed"
    assert aiq_types(books, note.external_reference) == ["SalesCreditNote"]
    assert books.state.outstanding(invoice.aiq_transaction_id) == 0
    assert books.state.outstanding(note.aiq_transaction_id) == 0
    assert account_balance(books, "ACME") == before - Decimal("827.99")
    # the credit note copied the invoice's lines, VAT included
    assert [
        (line.gl_account_code, line.net_amount, line.tax_amount) for line in note.lines.all()
    ] == [
        ("4010", Decimal("650.00"), Decimal("130.00")),
        ("4020", Decimal("39.99"), Decimal("8.00")),
    ]
    assert (note.status, note.outstanding_amount) == ("posted", 0)
    assert (invoice.status, invoice.outstanding_amount) == ("credited", 0)
    actions = set(
        AuditEntry.objects.filter(object_id=str(refund.pk)).values_list("action", flat=True)
    )
    assert {"refund.request", "refund.approve", "refund.complete"} <= actions


def test_cancelling_chosen_lines_reduces_the_invoice(books, entity, alice, bob):
    invoice = make_invoice(entity, "ACME", LINES)
    refund_request(actor=alice, kind="cancel_invoice", invoice=invoice, reason="x")  # fetch lines
    card_reader = invoice.lines.get(gl_account_code="4020")
    Refund.objects.all().update(state="rejected")
    refund = refund_request(
        actor=alice,
        kind="cancel_invoice",
        invoice=invoice,
        line_ids=[card_reader.pk],
        reason="Returned",
    )
    refund_approve(refund=refund, actor=bob)
    drain_all()
    invoice.refresh_from_db()
    assert refund.amount == Decimal("47.99")
    assert books.state.outstanding(invoice.aiq_transaction_id) == Decimal("780.00")
    assert (invoice.status, invoice.outstanding_amount) == ("part_paid", Decimal("780.00"))


def test_partial_refund_of_a_paid_stripe_invoice_agrees_everywhere(
    books, localstripe, entity, alice, bob
):
    invoice = make_invoice(entity, "BRIGHT", [("Support hours", "4010", "100.00", "T1")])
    payment = stripe_payment(entity, invoice.customer, 12000, invoice)
    allocate(payment, [(invoice, "120.00")], alice, bob)
    invoice.refresh_from_db()
    assert invoice.status == "paid"
    before = account_balance(books, "BRIGHT")

    refund = refund_request(
        actor=alice,
        kind="refund_invoice",
        invoice=invoice,
        amount="30.00",
        reason="Two hours unused",
    )
    refund_approve(refund=refund, actor=bob)
    drain_all()

    refund.refresh_from_db()
    payment.refresh_from_db()
    invoice.refresh_from_db()
    assert refund.state == "completed"
    # Stripe: one refund of 30.00 with our metadata; the payment knows it
    [stripe_refund] = _stripe_refunds(payment)
    assert stripe_refund["amount"] == 3000
    assert stripe_refund["metadata"] == {"aiqrecon_refund": str(refund.pk)}
    assert refund.stripe_refund_id == stripe_refund["id"]
    assert (payment.amount_refunded, payment.status) == (Decimal("30"), "partially_refunded")
    # AIQ: a credit note of 30.00 (25.00 + 5.00 VAT) and a debit journal, allocated together
    note = refund.credit_note
    assert (note.net_amount, note.tax_amount, note.gross_amount) == (
        Decimal("25.00"),
        Decimal("5.00"),
        Decimal("30.00"),
    )
    journal = Journal.objects.get(reference=f"REF-{refund.pk}-DJ")
    assert aiq_types(books, note.external_reference) == ["SalesCreditNote"]
    assert aiq_types(books, journal.reference) == ["SalesDebitJournal"]
    [pair] = books.state.allocations(journal.aiq_transaction_id)
    assert (pair["credit_transaction_id"], pair["amount"]) == (
        note.aiq_transaction_id,
        Decimal("30"),
    )
    assert books.state.outstanding(note.aiq_transaction_id) == 0
    # the customer owes what they owed; the invoice stays paid
    assert account_balance(books, "BRIGHT") == before
    assert invoice.status == "paid"
    assert (note.outstanding_amount, journal.outstanding_amount) == (0, 0)


def test_refund_of_a_payment_on_account(books, localstripe, entity, alice, bob):
    invoice = make_invoice(entity, "CASTLE", [("Card reader", "4020", "50.00", "T0")])
    payment = stripe_payment(entity, invoice.customer, 8000, invoice)
    allocate(payment, [(invoice, "50.00")], alice, bob)  # 30.00 stays on account
    receipt = payment.receipt
    assert receipt.unallocated_amount == Decimal("30")
    before = account_balance(books, "CASTLE")

    refund = refund_request(
        actor=alice, kind="refund_on_account", payment=payment, reason="Overpaid"
    )
    assert refund.amount == Decimal("30")
    refund_approve(refund=refund, actor=bob)
    drain_all()

    refund.refresh_from_db()
    receipt.refresh_from_db()
    assert refund.state == "completed"
    assert [r["amount"] for r in _stripe_refunds(payment)] == [3000]
    journal = Journal.objects.get(reference=f"REF-{refund.pk}-DJ")
    assert books.state.outstanding(receipt.aiq_transaction_id) == 0
    assert books.state.outstanding(journal.aiq_transaction_id) == 0
    assert receipt.unallocated_amount == 0
    # the 30.00 the customer had in credit went back to them
    assert account_balance(books, "CASTLE") == before + Decimal("30")


def test_an_allocated_receipt_is_refused_until_the_allocation_is_reversed(
    books, localstripe, entity, alice, bob
):
    invoice = make_invoice(entity, "DELTA", [("Support hours", "4010", "60.00", "T0")])
    payment = stripe_payment(entity, invoice.customer, 6000, invoice)
    allocate(payment, [(invoice, "60.00")], alice, bob)

    with pytest.raises(ReceiptAllocated) as refused:
        refund_request(
            actor=alice, kind="refund_on_account", payment=payment, amount="60.00", reason="r"
        )
    assert "Unallocate first" in refused.value.messages[0]
    assert [a.invoice_id for a in refused.value.allocations] == [invoice.pk]
    assert not Refund.objects.exists()

    refund_unallocate_first(payment=payment, actor=alice, reason="customer cancelled")
    drain_all()
    payment.receipt.refresh_from_db()
    assert payment.receipt.unallocated_amount == Decimal("60")
    assert Allocation.objects.get(invoice=invoice).state == "unallocated"

    refund = refund_request(actor=alice, kind="refund_on_account", payment=payment, reason="r")
    refund_approve(refund=refund, actor=bob)
    drain_all()
    refund.refresh_from_db()
    assert refund.state == "completed"
    assert books.state.outstanding(invoice.aiq_transaction_id) == Decimal("60")  # open again


@pytest.fixture
def deliver(client, settings):
    """A signed Stripe event posted to our webhook endpoint, as Stripe would send it."""
    from tests.stripe_fixtures import SECRET, event, sign

    settings.STRIPE_WEBHOOK_SECRETS = [SECRET]

    def send(event_type: str, obj: dict) -> int:
        payload = event(event_type, obj)
        return client.post(
            "/webhooks/stripe/",
            data=payload,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=sign(payload),
        ).status_code

    return send


def test_a_stripe_dashboard_refund_arrives_by_webhook_is_proposed_approved_and_booked(
    books, localstripe, entity, alice, bob, deliver
):
    invoice = make_invoice(entity, "EVERGR", [("Support hours", "4010", "200.00", "T1")])
    payment = stripe_payment(entity, invoice.customer, 24000, invoice)
    allocate(payment, [(invoice, "240.00")], alice, bob)
    before = account_balance(books, "EVERGR")
    # someone refunds 48.00 in the Stripe dashboard, outside the app
    outside = request("post", "/v1/refunds", payment_intent=payment.external_id, amount=4800)

    assert deliver("charge.refunded", {"id": outside["charge"], "object": "charge"}) == 200
    assert deliver("refund.created", {"id": outside["id"], "object": "refund"}) == 200  # again

    proposal = Refund.objects.get()
    assert (proposal.kind, proposal.state, proposal.stripe_refund_id) == (
        "external",
        "requested",
        outside["id"],
    )
    assert proposal.maker is None and proposal.amount == Decimal("48")
    assert proposal.invoice == invoice  # the receipt is fully allocated: credit the invoice
    assert not OutboxCommand.objects.filter(origin_type="refund").exists()

    refund_approve(refund=proposal, actor=bob)
    drain_all()

    proposal.refresh_from_db()
    assert proposal.state == "completed"
    assert len(_stripe_refunds(payment)) == 1  # no second refund: the money had already gone
    assert aiq_types(books, f"REF-{proposal.pk}-CN") == ["SalesCreditNote"]
    assert aiq_types(books, f"REF-{proposal.pk}-DJ") == ["SalesDebitJournal"]
    assert account_balance(books, "EVERGR") == before
    assert not OutboxCommand.objects.filter(kind="stripe_refund").exists()


def test_the_refund_task_run_three_times_makes_one_stripe_refund_and_one_set_of_entries(
    books, localstripe, entity, alice, bob
):
    invoice = make_invoice(entity, "FOXTON", [("Support hours", "4010", "80.00", "T0")])
    payment = stripe_payment(entity, invoice.customer, 8000, invoice)
    allocate(payment, [(invoice, "80.00")], alice, bob)
    refund = refund_request(
        actor=alice, kind="refund_invoice", invoice=invoice, amount="80.00", reason="Full refund"
    )
    # every AIQ write commits and then loses its answer: the worker cannot know it worked
    books.faults.update(
        drop_after_commit_rate=1.0,
        ops=[
            "SaveCreditNoteGetBackCreditNoteID",
            "PostCreditNotesGetBackTransactionIDs",
            "PostSalesDebitJournalGetBackTransactionID",
            "AllocateTransactions",
        ],
    )
    refund_approve(refund=refund, actor=bob)  # (the localstripe fixture runs tasks at once)
    commands = OutboxCommand.objects.filter(origin_type="refund", origin_id=refund.pk)
    for _run in range(3):
        drain_all(rounds=3)
        # ...and the whole task is delivered again, as if its worker died after each call
        commands.exclude(state="confirmed").update(state="uncertain")
        commands.filter(state="confirmed").update(state="uncertain", result={})
        books.faults.update(drop_after_commit_rate=0.0)
    drain_all()

    refund.refresh_from_db()
    assert set(commands.values_list("state", flat=True)) == {"confirmed"}
    assert refund.state == "completed"
    assert len(_stripe_refunds(payment)) == 1
    assert aiq_types(books, f"REF-{refund.pk}-CN") == ["SalesCreditNote"]
    assert aiq_types(books, f"REF-{refund.pk}-DJ") == ["SalesDebitJournal"]
    journal = Journal.objects.get(reference=f"REF-{refund.pk}-DJ")
    assert len(books.state.allocations(journal.aiq_transaction_id)) == 1
    assert books.faults.snapshot()["stats"]["drops"] >= 3  # the fault really fired


def test_a_refund_that_fails_later_is_reversed_in_aiq_not_deleted(
    books, localstripe, entity, alice, bob, deliver, monkeypatch
):
    from payments.sources import stripe_client

    invoice = make_invoice(entity, "GRANIT", [("Card reader", "4020", "40.00", "T0")])
    payment = stripe_payment(entity, invoice.customer, 7000, invoice)
    allocate(payment, [(invoice, "40.00")], alice, bob)
    before = account_balance(books, "GRANIT")
    refund = refund_request(actor=alice, kind="refund_on_account", payment=payment, reason="r")
    refund_approve(refund=refund, actor=bob)
    drain_all()
    refund.refresh_from_db()
    assert account_balance(books, "GRANIT") == before + Decimal("30")
    # localstripe's refunds always succeed; Stripe's documented refund.failed shape, at our edge
    failed = {**stripe_client.refund_retrieve(refund.stripe_refund_id)}
    failed.update(status="failed", failure_reason="expired_or_canceled_card")
    monkeypatch.setattr(stripe_client, "refund_retrieve", lambda _id: dict(failed))

    for _ in range(2):  # Stripe delivers events more than once
        assert deliver("refund.failed", {"id": failed["id"], "object": "refund"}) == 200
    drain_all()

    refund.refresh_from_db()
    assert refund.state == "failed"
    reverse = OutboxCommand.objects.get(external_reference=f"REF-{refund.pk}-REVERSE")
    assert reverse.state == "confirmed"
    assert aiq_types(books, f"REF-{refund.pk}-DJ") == ["SalesDebitJournal"]  # still there
    assert aiq_types(books, f"REF-{refund.pk}-REVERSE") == ["SalesCreditJournal"]
    assert account_balance(books, "GRANIT") == before  # the credit is the customer's again
    assert AuditEntry.objects.filter(action="refund.stripe_failed").count() == 1
