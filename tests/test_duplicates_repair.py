"""A duplicate that slipped into AIQ is found, listed on the Sync screen and reversed by an
approver with one action: a reversing entry through the outbox, never a delete, audited.

Worked example: a receipt of 40.00 is confirmed; AIQ then commits the same receipt a second time
(a send that landed after the settle period). The next pull flags the second one; the approver
reverses it; AIQ ends with the extra receipt settled by a sales debit journal of 40.00, so the
customer's account holds the payment once.
"""

from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse

from ledger.models import DuplicateWrite, OutboxCommand
from ledger.outbox.runner import default_client_factory, drain
from ledger.outbox.services import outbox_enqueue
from ledger.sync.services import sync_claim, sync_run
from staff.models import AuditEntry

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def world(entity, audit_flushable, tmp_path, settings, monkeypatch):
    from tests.outbox_support import start_world

    settings.OUTBOX_BACKOFF_BASE_MS = 10
    world = start_world(tmp_path, entity, settings, monkeypatch, extra_invoices=1)
    yield world
    world.server.stop()


def test_a_receipt_aiq_holds_twice_is_listed_and_reversed_by_an_approver(world, client, alice, bob):
    command = outbox_enqueue(
        entity=world.entity,
        kind="post_receipt",
        payload={
            "customer_code": world.customer.code,
            "bank_account_code": world.bank.bank_account_code,
            "amount": "40.00",
            "currency": world.customer.currency,
            "payment_date": date.today().isoformat(),
            "description": "payment",
            "payment_id": None,
        },
        external_reference="RCPT-TWICE",
    )
    drain(budget_seconds=30, batch_size=5)
    command.refresh_from_db()
    assert command.state == OutboxCommand.State.CONFIRMED
    # the late commit: AIQ records the same receipt again
    from ledger.outbox.executors import receipt_send

    receipt_send(default_client_factory(world.entity), command, command.payload)
    [kept, extra] = world.server.state.transactions("RCPT-TWICE")
    assert kept["transaction_id"] == command.result["transaction_id"]

    sync_claim(entity=world.entity)
    sync_run(entity=world.entity)
    [flag] = DuplicateWrite.objects.all()
    assert (flag.kind, flag.found_by, flag.extra_aiq_ids) == (
        "transaction",
        "pull",
        [extra["transaction_id"]],
    )

    client.force_login(alice)
    page = client.get(reverse("ledger:sync")).content.decode()
    assert "In AIQ more than once" in page and "RCPT-TWICE" in page and "40.00" in page
    # a clerk cannot reverse it
    url = reverse("ledger:duplicate_reverse", args=[flag.pk])
    client.post(url)
    assert not OutboxCommand.objects.filter(origin_type="duplicate").exists()

    client.force_login(bob)
    client.post(url)
    drain(budget_seconds=30, batch_size=5)
    flag.refresh_from_db()
    assert flag.state == DuplicateWrite.State.REVERSED
    # AIQ: both receipts are still there (nothing deleted), the extra one settled by the
    # reversing journal, the kept one untouched
    [journal] = world.server.state.transactions(f"REV-{extra['transaction_id']}")
    assert abs(journal["amount"]) == Decimal("40.00")
    assert world.server.state.outstanding(extra["transaction_id"]) == 0
    assert world.server.state.outstanding(journal["transaction_id"]) == 0
    assert abs(world.server.state.outstanding(kept["transaction_id"])) == Decimal("40.00")
    assert len(world.server.state.transactions("RCPT-TWICE")) == 2
    entry = AuditEntry.objects.get(action="duplicate.reverse")
    assert entry.actor == bob and "RCPT-TWICE" in entry.summary
    page = client.get(reverse("ledger:sync")).content.decode()
    assert "Nothing: every write of ours is in AIQ once." in page


def test_the_nightly_drift_check_finds_a_write_aiq_holds_twice(world):
    from io import StringIO

    from django.core.management import call_command

    from ledger.outbox.executors import receipt_send

    command = outbox_enqueue(
        entity=world.entity,
        kind="post_receipt",
        payload={
            "customer_code": world.customer.code,
            "bank_account_code": world.bank.bank_account_code,
            "amount": "25.00",
            "currency": world.customer.currency,
            "payment_date": date.today().isoformat(),
            "description": "payment",
            "payment_id": None,
        },
        external_reference="RCPT-DRIFT",
    )
    drain(budget_seconds=30, batch_size=5)
    command.refresh_from_db()
    receipt_send(default_client_factory(world.entity), command, command.payload)  # late commit

    out = StringIO()
    call_command("aiq_drift_check", days=1, stdout=out)
    assert "1 checked, 1 duplicated, 0 missing" in out.getvalue()
    [flag] = DuplicateWrite.objects.all()
    assert (flag.found_by, flag.external_reference, flag.kept_aiq_id) == (
        "drift_check",
        "RCPT-DRIFT",
        command.result["transaction_id"],
    )
    call_command("aiq_drift_check", days=1, stdout=StringIO())  # found again: still one flag
    assert DuplicateWrite.objects.count() == 1
