"""A pull from AIQ between a write's lost answer and its read-back (RELIABILITY.md 18).

For every kind of write the product makes, AIQ commits it and the answer is lost; a pull then
runs while the command is still open (during the send: the row is in flight; between: the row
waits, uncertain, for its read-back; after: once it is confirmed). Whatever the pull stored in
the mirror meanwhile, the read-back must find the command's own write by its own reference (and
AIQ's transaction or allocation id): exactly one entry in AIQ's books, the command confirmed,
never "failed" while AIQ holds it, and a mirror that shows it once.

On the code before this change, the allocation cases failed: the pull stored the allocation as
AIQ-<id>, the read-back subtracted it as "another of ours", sent again, and AIQ either got a
second allocation (partial) or refused with over-allocation and the plan was marked failed
(whole invoice). The other kinds were already found by reference; they guard the rule.
"""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from ledger.aiq.errors import AiqAmbiguousError
from ledger.aiq.operations import AiqOperations
from ledger.models import (
    Allocation,
    CreditNote,
    DocumentStatus,
    Invoice,
    Journal,
    OutboxCommand,
    Receipt,
)
from ledger.outbox.runner import default_client_factory, drain
from ledger.outbox.services import outbox_enqueue
from ledger.sync.services import sync_claim, sync_run
from staff.models import AuditEntry

State = OutboxCommand.State
pytestmark = pytest.mark.django_db(transaction=True)
TODAY = date.today().isoformat()


@pytest.fixture
def world(entity, audit_flushable, tmp_path, settings, monkeypatch):
    from tests.outbox_support import start_world

    settings.OUTBOX_BACKOFF_BASE_MS = 10
    world = start_world(tmp_path, entity, settings, monkeypatch, extra_invoices=4)
    yield world
    world.server.stop()


def pull(world) -> None:
    sync_claim(entity=world.entity)
    sync_run(entity=world.entity)


def let_settle(command) -> None:
    """Time passes: the settle period after the command's last send is over."""
    OutboxCommand.objects.filter(pk=command.pk).update(
        sent_at=timezone.now() - timedelta(hours=1), next_attempt_at=timezone.now()
    )


def drain_now(**kw) -> dict:
    return drain(budget_seconds=30, batch_size=10, **kw)


def receipt_command(world, reference: str, amount: Decimal) -> OutboxCommand:
    return outbox_enqueue(
        entity=world.entity,
        kind="post_receipt",
        payload={
            "customer_code": world.customer.code,
            "bank_account_code": world.bank.bank_account_code,
            "amount": str(amount),
            "currency": world.customer.currency,
            "payment_date": TODAY,
            "description": f"payment {reference}",
            "payment_id": None,
        },
        external_reference=reference,
    )


def allocate_command(world, reference, receipt_txn, invoice, amount) -> OutboxCommand:
    return outbox_enqueue(
        entity=world.entity,
        kind="allocate",
        payload={
            "paying_transaction_id": receipt_txn,
            "settled_transaction_id": invoice.aiq_transaction_id,
            "invoice_id": invoice.pk,
            "credit_note_id": None,
            "amount": str(amount),
            "allocation_date": TODAY,
            "currency": invoice.currency,
        },
        external_reference=reference,
    )


def posted_receipt(world, reference: str, amount: Decimal) -> int:
    """A receipt already confirmed in AIQ (set-up, sent without faults)."""
    command = receipt_command(world, reference, amount)
    drain_now(prefer=[command.pk])
    command.refresh_from_db()
    assert command.state == State.CONFIRMED
    return command.result["transaction_id"]


# --- one builder per kind: (command under test, AIQ operation whose answer is lost, a probe of
# how many times AIQ's books hold the write) --------------------------------------------------


def build_receipt(world):
    command = receipt_command(world, "RCPT-LOST-1", Decimal("300.00"))

    def in_aiq():
        return world.server.state.receipt_count("RCPT-LOST-1")

    return command, "SaveSalesReceiptGetBackTransactionID", in_aiq


def _build_allocation(world, part: bool):
    [invoice] = world.invoices(1)
    receipt_txn = posted_receipt(world, "RCPT-300", Decimal("300.00"))
    amount = (invoice.gross_amount / 2).quantize(Decimal("0.01")) if part else invoice.gross_amount
    command = allocate_command(world, "ALLOC-LOST-1", receipt_txn, invoice, amount)

    def in_aiq():
        return len(
            [
                a
                for a in world.server.state.allocations(invoice.aiq_transaction_id)
                if a["amount"] == amount
            ]
        )

    return command, "AllocateTransactions", in_aiq


def build_allocation_whole_invoice(world):
    return _build_allocation(world, part=False)


def build_allocation_part_of_invoice(world):
    return _build_allocation(world, part=True)


def _build_journal(world, kind: str, operation: str, reference: str):
    command = outbox_enqueue(
        entity=world.entity,
        kind=kind,
        payload={
            "customer_code": world.customer.code,
            "gl_account_code": "8100",
            "amount": "7.50",
            "currency": world.customer.currency,
            "journal_date": TODAY,
            "description": reference,
        },
        external_reference=reference,
    )

    def in_aiq():
        return len(world.server.state.transactions(reference))

    return command, operation, in_aiq


def build_write_off(world):
    return _build_journal(
        world, "post_write_off", "PostSalesCreditJournalGetBackTransactionID", "WO-LOST-1"
    )


def build_debit_journal(world):
    return _build_journal(
        world, "post_debit_journal", "PostSalesDebitJournalGetBackTransactionID", "SDJ-LOST-1"
    )


def build_credit_note(world):
    [invoice] = world.invoices(1)
    note = CreditNote.objects.create(
        entity=world.entity,
        customer=world.customer,
        invoice=invoice,
        external_reference="CN-LOST-1",
        status=DocumentStatus.DRAFT,
        currency=invoice.currency,
        credit_date=date.today(),
        net_amount=Decimal("10.00"),
        tax_amount=Decimal("2.00"),
        gross_amount=Decimal("12.00"),
        outstanding_amount=Decimal("0"),
    )
    command = outbox_enqueue(
        entity=world.entity,
        kind="create_credit_note",
        payload={
            "credit_note_id": note.pk,
            "customer_code": world.customer.code,
            "currency": invoice.currency,
            "credit_date": TODAY,
            "invoice_number": invoice.invoice_number,
            "notes": "goodwill",
            "gross_amount": "12.00",
            "lines": [
                {
                    "stock_item_id": "",
                    "description": "Goodwill credit",
                    "gl_account_code": "4000",
                    "tax_code": "T1",
                    "tax_rate": "20",
                    "quantity": "1",
                    "unit_price": "10.00",
                    "net_amount": "10.00",
                    "tax_amount": "2.00",
                }
            ],
        },
        external_reference="CN-LOST-1",
    )

    def in_aiq():
        return len(world.server.state.transactions("CN-LOST-1"))

    return command, "PostCreditNotesGetBackTransactionIDs", in_aiq


def build_unallocation(world):
    [invoice] = world.invoices(1)
    receipt_txn = posted_receipt(world, "RCPT-U", invoice.gross_amount)
    allocation = allocate_command(world, "ALLOC-U", receipt_txn, invoice, invoice.gross_amount)
    drain_now(prefer=[allocation.pk])
    row = Allocation.objects.get(reference="ALLOC-U", state=Allocation.State.ACTIVE)
    command = outbox_enqueue(
        entity=world.entity,
        kind="unallocate",
        payload={"transaction_ids": [receipt_txn], "allocation_id": row.pk, "reason": "wrong"},
        external_reference="UNALLOC-LOST-1",
    )

    def in_aiq():
        # "held once" for an unallocation: the allocation is gone and nothing else was undone
        gone = not world.server.state.allocations(invoice.aiq_transaction_id)
        return int(gone)

    return command, "UnallocateTransactions", in_aiq


def build_general_journal(world):
    """A payout's fees (issue 17): Dr fees, Dr VAT on fees, Cr the Stripe clearing GL."""
    reference = "POFEE-LOST-1"
    lines = [("7510", "12.50", "0"), ("2200", "2.50", "0"), ("1150", "0", "15.00")]
    command = outbox_enqueue(
        entity=world.entity,
        kind="post_general_journal",
        payload={
            "journal_date": TODAY,
            "description": "Stripe GBP fees, payout po_lost",
            "currency": "GBP",
            "lines": [
                {"gl_account_code": gl, "debit": dr, "credit": cr, "description": reference}
                for gl, dr, cr in lines
            ],
        },
        external_reference=reference,
    )

    def in_aiq():
        return len(world.server.state.transactions(reference))

    return command, "CreateGeneralJournalGetBackTransactionID", in_aiq


def build_bank_entry(world):
    """A EUR account's fees in a GBP company (issue 17.5): a bank payment out of the EUR bank
    (BANK-EUR) to the fees account, in euros at the company's rate."""
    reference = "POFEE-EUR-LOST-1"
    command = outbox_enqueue(
        entity=world.entity,
        kind="bank_entry",
        payload={
            "bank_account_code": "BANK-EUR",
            "gl_account_code": "7510",
            "amount": "-15.00",
            "currency": "EUR",
            "exchange_rate": "1.25",
            "entry_date": TODAY,
            "description": "Stripe EUR fees, payout po_lost",
        },
        external_reference=reference,
    )

    def in_aiq():
        return len(world.server.state.transactions(reference))

    return command, "SaveSundryReceiptPaymentsGetBackTransactionIDs", in_aiq


KINDS = {
    "receipt": build_receipt,
    "allocation of a whole invoice": build_allocation_whole_invoice,
    "allocation of part of an invoice": build_allocation_part_of_invoice,
    "write-off journal": build_write_off,
    "sales debit journal": build_debit_journal,
    "credit note": build_credit_note,
    "unallocation": build_unallocation,
    "general journal (payout fees)": build_general_journal,
    "bank entry (EUR payout fees)": build_bank_entry,
}


class PullWhenTheAnswerIsLost:
    """A client whose lost answer to `operation` is followed, before the error reaches the
    runner, by a pull (the row is in flight while AIQ's books already hold the write)."""

    def __init__(self, world, operation):
        self.world, self.operation = world, operation

    def __call__(self, entity):
        client = default_client_factory(entity)
        world, operation = self.world, self.operation

        class Client(AiqOperations):  # typed operations run through the call below
            def __getattr__(self, name):
                return getattr(client, name)

            def call(self, op, **kw):
                try:
                    return client.call(op, **kw)
                except AiqAmbiguousError:
                    if op == operation:
                        pull(world)
                    raise

        return Client()


def assert_mirror_shows_it_once(world, command) -> None:
    if command.kind == "allocate":
        payload = command.payload
        rows = Allocation.objects.filter(
            state=Allocation.State.ACTIVE,
            transaction_id_1=payload["paying_transaction_id"],
            transaction_id_2=payload["settled_transaction_id"],
        )
        assert [r.reference for r in rows] == [command.external_reference]
        invoice = Invoice.objects.get(pk=payload["invoice_id"])
        assert invoice.outstanding_amount == world.server.state.outstanding(
            invoice.aiq_transaction_id
        )
    if command.kind == "post_receipt":
        [txn] = world.server.state.transactions(command.external_reference)
        rows = Receipt.objects.filter(aiq_transaction_id=txn["transaction_id"])
        assert [r.check_reference for r in rows] == [command.external_reference]
        assert rows[0].unallocated_amount == abs(txn["amount"])
    if command.kind == "unallocate":
        row = Allocation.objects.get(pk=command.payload["allocation_id"])
        assert row.state == Allocation.State.UNALLOCATED
    if command.kind == "create_credit_note":
        [txn] = world.server.state.transactions(command.external_reference)
        rows = CreditNote.objects.filter(aiq_transaction_id=txn["transaction_id"])
        assert [(r.external_reference, r.status) for r in rows] == [
            (command.external_reference, DocumentStatus.POSTED)
        ]
    if command.kind == "post_general_journal":
        [txn] = world.server.state.transactions(command.external_reference)
        rows = Journal.objects.filter(reference=command.external_reference)
        assert [r.aiq_transaction_id for r in rows] == [txn["transaction_id"]]
        assert world.server.state.gl_total("1150") == Decimal("-15.00")
    # the confirmation's mirror update went through (a failure is noted in its audit entry)
    confirmed = AuditEntry.objects.get(action="outbox.confirm", object_id=str(command.pk))
    assert "mirror update failed" not in confirmed.summary, confirmed.summary


@pytest.mark.parametrize("when", ["during the send", "between answer and read-back"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_a_pull_while_an_answer_is_lost_never_doubles_nor_fails_the_write(world, kind, when):
    command, operation, in_aiq = KINDS[kind](world)
    world.server.faults.update(drop_next=1, ops=[operation])
    factory = PullWhenTheAnswerIsLost(world, operation)

    drain_now(prefer=[command.pk], client_factory=factory)
    command.refresh_from_db()
    assert world.server.faults.snapshot()["stats"]["drops"] == 1
    assert command.state == State.UNCERTAIN, command.last_error_message
    assert in_aiq() == 1  # AIQ committed it; only the answer was lost
    if when == "between answer and read-back":
        pull(world)

    let_settle(command)
    drain_now(prefer=[command.pk])
    command.refresh_from_db()
    assert command.state == State.CONFIRMED, (command.last_error_code, command.last_error_message)
    assert in_aiq() == 1
    assert world.server.faults.snapshot()["stats"]["drops"] == 1
    assert_mirror_shows_it_once(world, command)

    pull(world)  # and a pull after the confirmation changes nothing of it
    assert in_aiq() == 1
    assert_mirror_shows_it_once(world, command)


def test_the_issue_s_worked_example_a_payment_of_300_part_allocated_then_a_pull(world):
    """Issue 19's reproduction: 300.00 received, part of it allocated to an invoice with room
    for the same amount again, the AllocateTransactions answer dropped, the scheduled pull,
    then the outbox drain: one allocation in AIQ, not two with one reference."""
    [invoice] = world.invoices(1)
    receipt_txn = posted_receipt(world, "PAY-300", Decimal("300.00"))
    amount = (invoice.gross_amount / 2).quantize(Decimal("0.01"))
    command = allocate_command(world, "ALLOC-100", receipt_txn, invoice, amount)
    world.server.faults.update(drop_next=1, ops=["AllocateTransactions"])
    drain_now(prefer=[command.pk])
    pull(world)
    let_settle(command)
    drain_now(prefer=[command.pk])

    command.refresh_from_db()
    assert command.state == State.CONFIRMED
    in_aiq = world.server.state.allocations(invoice.aiq_transaction_id)
    assert [(a["amount"], a["credit_transaction_id"]) for a in in_aiq] == [(amount, receipt_txn)]
    assert world.server.state.outstanding(invoice.aiq_transaction_id) == (
        invoice.gross_amount - amount
    )
    receipt = Receipt.objects.get(aiq_transaction_id=receipt_txn)
    assert receipt.unallocated_amount == Decimal("300.00") - amount
