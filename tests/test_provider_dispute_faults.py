"""A lost dispute's reversal and a won dispute's restoring, and an undone allocation's FX
reversal, exactly once under the outbox's faults (RELIABILITY.md): every write's answer lost
after AIQ committed it, a pull from AIQ while those writes wait for their read-back, and a
worker killed right after AIQ committed a write (its row left in flight until its lease runs
out). AIQ's books hold each write once; the invoice, the customer and the disputes account end
where they must. Against the AIQ sandbox's books, the provider's objects as documented."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from ledger.aiq.operations import AiqOperations
from ledger.models import OutboxCommand
from ledger.outbox.runner import default_client_factory, drain
from ledger.sync.services import sync_claim, sync_run
from payments.models import Dispute
from payments.services.provider_disputes import dispute_loss_approve
from tests import test_provider_disputes as disputes
from tests.refunds_support import drain_all

State = OutboxCommand.State
pytestmark = pytest.mark.django_db(transaction=True)
books, dispute_books, gc_books = disputes.books, disputes.dispute_books, disputes.gc_books
deliver, gocardless = disputes.deliver, disputes.gocardless
REVERSAL_OPS = [
    "UnallocateTransactions",
    "PostSalesDebitJournalGetBackTransactionID",
    "AllocateTransactions",
]
RESTORE_OPS = [
    "CreateGeneralJournalGetBackTransactionID",
    "PostSalesCreditJournalGetBackTransactionID",
    "AllocateTransactions",
]


class WorkerKilled(BaseException):
    """What a SIGKILL does to the worker: nothing after the call runs (not an Exception: the
    runner's error handling never sees it)."""


def killed_after(operation: str):
    """A client factory whose worker dies just after AIQ committed `operation`."""

    def factory(entity):
        client = default_client_factory(entity)

        class Client(AiqOperations):
            def __getattr__(self, name):
                return getattr(client, name)

            def call(self, op, **kw):
                answer = client.call(op, **kw)
                if op == operation:
                    raise WorkerKilled(op)
                return answer

        return Client()

    return factory


def settle_and_drain(rounds: int = 20) -> None:
    """Time passes (the settle period and any lease run out) and the outbox runs until done."""
    for _ in range(rounds):
        past = timezone.now() - timedelta(hours=1)
        OutboxCommand.objects.filter(state__in=[State.UNCERTAIN, State.IN_FLIGHT]).update(
            sent_at=past, lease_until=past, next_attempt_at=timezone.now()
        )
        OutboxCommand.objects.filter(state=State.PENDING).update(next_attempt_at=timezone.now())
        if not OutboxCommand.objects.exclude(state=State.CONFIRMED).exists():
            return
        drain(budget_seconds=30, batch_size=20)


def pull(entity) -> None:
    sync_claim(entity=entity)
    sync_run(entity=entity)


def test_a_lost_then_won_dispute_is_reversed_and_restored_once_under_lost_answers_and_kills(
    dispute_books, entity, alice, bob, deliver, monkeypatch
):
    from ledger.outbox import services as outbox_services

    # no worker is woken after a commit: this test plays the workers (each drain below)
    monkeypatch.setattr(outbox_services, "_wake_workers", lambda ids: None)
    aiq = dispute_books
    charges, payments = disputes._day_of_payments(entity, alice, bob, 2)
    disputed = payments[1]  # 107.00
    disputed.refresh_from_db()
    invoice, code = disputes._invoice_of(disputed), disputed.customer.code
    owed_before, clearing_before = aiq.state.customer_balance(code), aiq.bank_balance("1150")
    withdrawal = disputes._balance_txn(1, -10700, 2000, "dispute")
    disputes._stripe_dispute(monkeypatch, disputed, "lost", [withdrawal])
    event = {"id": f"dp_{disputed.external_id}", "object": "dispute"}
    deliver("charge.dispute.funds_withdrawn", event)
    deliver("charge.dispute.closed", event)
    drain_all()
    dispute = Dispute.objects.get()
    dispute_loss_approve(dispute=dispute, actor=bob)

    # every write of the reversal: AIQ commits it, its answer is lost; a pull runs while they
    # wait for their read-back
    aiq.faults.update(drop_next=len(REVERSAL_OPS), ops=REVERSAL_OPS)
    for _ in REVERSAL_OPS:
        drain(budget_seconds=30, batch_size=20)
        settle_and_drain(rounds=1)
    pull(entity)
    settle_and_drain()
    assert aiq.faults.snapshot()["stats"]["dropped_ops"] == REVERSAL_OPS
    assert aiq.state.outstanding(invoice.aiq_transaction_id) == Decimal("107.00")
    assert aiq.state.customer_balance(code) - owed_before == Decimal("107.00")
    assert aiq.state.gl_total(disputes.DISPUTES_GL) == 0
    assert len(aiq.state.transactions(f"DISPLOST-{dispute.pk}")) == 1
    receipt_txn = disputed.receipt.aiq_transaction_id
    assert len(aiq.state.allocations(receipt_txn)) == 1  # the debit journal, once
    assert aiq.state.outstanding(receipt_txn) == 0

    # the dispute is won after all; the worker sending the money back dies right after AIQ
    # committed it, and the credit journal's and its allocation's answers are lost
    aiq.faults.reset()
    reinstated = disputes._balance_txn(2, 10700, -2000, "dispute_reversal")
    disputes._stripe_dispute(monkeypatch, disputed, "won", [withdrawal, reinstated])
    deliver("charge.dispute.funds_reinstated", event)
    deliver("charge.dispute.closed", event)
    with pytest.raises(WorkerKilled):
        drain(budget_seconds=30, batch_size=20,
              client_factory=killed_after("CreateGeneralJournalGetBackTransactionID"))  # fmt: skip
    dispute.refresh_from_db()
    assert dispute.reinstatement_command.state == State.IN_FLIGHT  # left as a kill leaves it
    aiq.faults.update(drop_next=2, ops=RESTORE_OPS[1:])
    settle_and_drain()
    assert aiq.faults.snapshot()["stats"]["dropped_ops"] == RESTORE_OPS[1:]
    # once each: the money back in clearing, the invoice paid again, the customer as before
    assert len(aiq.state.transactions(f"DISPWON-{dispute.pk}")) == 1
    assert len(aiq.state.transactions(f"DISPRESTORE-{dispute.pk}")) == 1
    assert aiq.bank_balance("1150") == clearing_before
    assert aiq.state.outstanding(invoice.aiq_transaction_id) == 0
    assert aiq.state.customer_balance(code) == owed_before
    assert aiq.state.gl_total(disputes.DISPUTES_GL) == 0
    assert not OutboxCommand.objects.exclude(state=State.CONFIRMED).exists()
    pull(entity)  # a pull afterwards changes nothing
    assert aiq.state.outstanding(invoice.aiq_transaction_id) == 0
    assert len(aiq.state.transactions(f"DISPRESTORE-{dispute.pk}")) == 1
