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
    world = start_world(tmp_path, entity, settings, monkeypatch, extra_invoices=3)
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


def _pull(world):
    sync_claim(entity=world.entity)
    sync_run(entity=world.entity)


def _receipt(world, reference: str, amount: str):
    return outbox_enqueue(
        entity=world.entity,
        kind="post_receipt",
        payload={
            "customer_code": world.customer.code,
            "bank_account_code": world.bank.bank_account_code,
            "amount": amount,
            "currency": world.customer.currency,
            "payment_date": date.today().isoformat(),
            "description": "payment",
            "payment_id": None,
        },
        external_reference=reference,
    )


def _allocation(world, reference: str, receipt, invoice, amount):
    return outbox_enqueue(
        entity=world.entity,
        kind="allocate",
        payload={
            "paying_transaction_id": None,
            "settled_transaction_id": invoice.aiq_transaction_id,
            "invoice_id": invoice.pk,
            "credit_note_id": None,
            "amount": str(amount),
            "allocation_date": date.today().isoformat(),
            "currency": invoice.currency,
        },
        external_reference=reference,
        depends_on=receipt,
    )


def test_an_allocation_aiq_holds_twice_is_undone_and_the_rest_made_again(world, client, bob):
    """A payment of 60.00 settles half of WL-0 and all of WL-1. AIQ commits the WL-0
    allocation a second time (a late commit), so WL-0 is settled twice over by one payment.
    Reversal: AIQ removes allocations per transaction, so the invoice's (fewer) are removed
    and the one that is ours alone is made again; WL-1's allocation is never touched."""
    from ledger.outbox.executors import allocate_send, resolve_payload

    wl0, wl1 = world.invoices(2)
    half = (wl0.gross_amount / 2).quantize(Decimal("0.01"))
    receipt = _receipt(world, "RCPT-SPLIT", str(half + wl1.gross_amount + Decimal("20.00")))
    first = _allocation(world, "ALC-HALF", receipt, wl0, half)
    _allocation(world, "ALC-WHOLE", receipt, wl1, wl1.gross_amount)
    drain(budget_seconds=30, batch_size=5)
    first.refresh_from_db()
    assert first.state == OutboxCommand.State.CONFIRMED
    allocate_send(default_client_factory(world.entity), first, resolve_payload(first))
    assert [a["amount"] for a in world.server.state.allocations(wl0.aiq_transaction_id)] == [
        half,
        half,
    ]
    _pull(world)
    [flag] = DuplicateWrite.objects.filter(kind="allocation")
    assert flag.command == first and flag.found_by == "pull"
    client.force_login(bob)  # one action on the Sync screen
    page = client.get(reverse("ledger:sync")).content.decode()
    assert "ALC-HALF" in page and "Reverse the extra" in page
    client.post(reverse("ledger:duplicate_reverse", args=[flag.pk]))
    assert AuditEntry.objects.filter(action="duplicate.reverse", actor=bob).exists()
    drain(budget_seconds=30, batch_size=5)
    flag.refresh_from_db()
    assert flag.state == DuplicateWrite.State.REVERSED, OutboxCommand.objects.filter(
        origin_type="duplicate"
    ).values_list("external_reference", "state", "last_error_message")
    # AIQ's books: WL-0 settled once by half, WL-1 still settled by its one allocation,
    # the payment's remainder on account
    [kept] = world.server.state.allocations(wl0.aiq_transaction_id)
    assert kept["amount"] == half
    assert world.server.state.outstanding(wl0.aiq_transaction_id) == wl0.gross_amount - half
    [whole] = world.server.state.allocations(wl1.aiq_transaction_id)
    assert whole["amount"] == wl1.gross_amount
    [rcpt] = world.server.state.transactions("RCPT-SPLIT")
    assert world.server.state.outstanding(rcpt["transaction_id"]) == Decimal("-20.00")
    # two removed by AllocateTransactions' undo, never deleted: kept as inactive history
    assert len(world.server.state.allocations(wl0.aiq_transaction_id, active=False)) == 2


def test_an_allocation_repair_is_refused_when_aiq_changed_since_the_approval(world, bob):
    """Between the approval and the send, another allocation appears on the transaction to be
    unallocated: removing it too would lose it, so the unallocation is not sent, and the
    duplicate is open again saying why."""
    from ledger.outbox.executors import allocate_send, resolve_payload
    from ledger.outbox.repair import duplicate_reverse

    [wl0] = world.invoices(1)
    half = (wl0.gross_amount / 4).quantize(Decimal("0.01"))
    wl1 = world.invoices(2)[1]
    receipt = _receipt(world, "RCPT-Q", str(wl0.gross_amount))
    first = _allocation(world, "ALC-Q", receipt, wl0, half)
    drain(budget_seconds=30, batch_size=5)
    first.refresh_from_db()
    receipt.refresh_from_db()
    allocate_send(default_client_factory(world.entity), first, resolve_payload(first))
    _pull(world)
    [flag] = DuplicateWrite.objects.filter(kind="allocation")
    duplicate_reverse(flag=flag, actor=bob)  # will unallocate the receipt (2 each side)
    # before the reversal is sent, someone allocates 1.00 more of the receipt, to WL-1
    client = default_client_factory(world.entity)
    client.allocate_transactions(
        transaction_id_1=receipt.result["transaction_id"],
        transaction_id_2=wl1.aiq_transaction_id,
        reference="BY-HAND",
        amount=Decimal("1.00"),
        date=None,
    )
    drain(budget_seconds=30, batch_size=5)
    flag.refresh_from_db()
    assert flag.state == DuplicateWrite.State.OPEN and "changed since" in flag.detail
    assert len(world.server.state.allocations(wl0.aiq_transaction_id)) == 2  # nothing removed
    assert len(world.server.state.allocations(wl1.aiq_transaction_id)) == 1


def test_a_credit_note_aiq_holds_twice_is_reversed_with_its_vat(world, bob):
    """A goodwill credit note (1.00 + 0.20 VAT) is posted twice in AIQ. Its reversal is a
    sales debit journal crediting 1.00 back to sales and 0.20 to VAT, allocated against the
    extra note, so the customer's account and the VAT account hold the credit once."""
    from ledger.models import CreditNote, DocumentStatus
    from ledger.outbox.repair import duplicate_reverse

    [invoice] = world.invoices(1)
    note = CreditNote.objects.create(
        entity=world.entity,
        customer=world.customer,
        invoice=invoice,
        external_reference="CN-TWICE",
        status=DocumentStatus.DRAFT,
        currency=invoice.currency,
        credit_date=date.today(),
        net_amount=Decimal("1.00"),
        tax_amount=Decimal("0.20"),
        gross_amount=Decimal("1.20"),
        outstanding_amount=Decimal("0"),
    )
    payload = {
        "credit_note_id": note.pk,
        "customer_code": world.customer.code,
        "currency": invoice.currency,
        "credit_date": date.today().isoformat(),
        "invoice_number": invoice.invoice_number,
        "notes": "goodwill",
        "gross_amount": "1.20",
        "lines": [
            {
                "stock_item_id": "",
                "description": "Goodwill credit",
                "gl_account_code": "4000",
                "tax_code": "T1",
                "tax_rate": "20",
                "quantity": "1",
                "unit_price": "1.00",
                "net_amount": "1.00",
                "tax_amount": "0.20",
            }
        ],
    }
    command = outbox_enqueue(
        entity=world.entity, kind="create_credit_note", payload=payload,
        external_reference="CN-TWICE",
    )  # fmt: skip
    drain(budget_seconds=30, batch_size=5)
    command.refresh_from_db()
    assert command.state == OutboxCommand.State.CONFIRMED
    once = {gl: world.server.state.gl_total(gl) for gl in ("2200", "4000")}
    _aiq_posts_credit_note_again(world.server, "CN-TWICE")
    [kept, extra] = world.server.state.transactions("CN-TWICE")
    _pull(world)
    [flag] = DuplicateWrite.objects.all()
    assert flag.extra_aiq_ids == [extra["transaction_id"]]
    duplicate_reverse(flag=flag, actor=bob)
    drain(budget_seconds=30, batch_size=5)
    flag.refresh_from_db()
    assert flag.state == DuplicateWrite.State.REVERSED
    [journal] = world.server.state.transactions(f"REV-{extra['transaction_id']}")
    assert journal["type"] == "SalesDebitJournal" and journal["amount"] == Decimal("1.20")
    assert world.server.state.outstanding(extra["transaction_id"]) == 0
    assert world.server.state.outstanding(journal["transaction_id"]) == 0
    assert world.server.state.outstanding(kept["transaction_id"]) == Decimal("-1.20")
    # VAT and sales hold the credit once again (the reversal's lines, not one gross line)
    assert {gl: world.server.state.gl_total(gl) for gl in ("2200", "4000")} == once


def _aiq_posts_credit_note_again(server, reference: str) -> None:
    """AIQ ends up with a second posted credit note carrying our reference (set-up, through
    the sandbox's own book-keeping: the late commit of a save + post)."""
    from datetime import datetime

    from sandbox import books, invoicing

    with server.store.transaction() as db:
        entity = db.execute("SELECT * FROM entity WHERE id = 'demo'").fetchone()
        ctx = books.Ctx(db=db, entity=entity, now=datetime.now(), user="test")
        record = invoicing.template(ctx, "ACME", "credit_note")
        line = {
            "StockItemDescription": "Goodwill credit",
            "GLAccountCode": "4000",
            "InvoicedQuantity": Decimal(1),
            "StockItemPrice": Decimal("1.00"),
            "TaxCode": "T1",
            "DepartmentID": "NS",
        }
        record.update(
            Lines={"InvoiceLine": [line]}, ExternalReference=reference, InvoiceDate=ctx.now
        )
        invoicing.post(ctx, invoicing.save(ctx, record, True, "credit_note"), "credit_note")


def test_a_write_off_journal_aiq_holds_twice_is_reversed_by_a_debit_journal(world, bob):
    from ledger.outbox.executors import EXECUTORS
    from ledger.outbox.repair import duplicate_reverse

    command = outbox_enqueue(
        entity=world.entity,
        kind="post_write_off",
        payload={
            "customer_code": world.customer.code,
            "gl_account_code": "8100",
            "amount": "7.50",
            "currency": world.customer.currency,
            "journal_date": date.today().isoformat(),
            "description": "bad debt",
        },
        external_reference="WO-TWICE",
    )
    drain(budget_seconds=30, batch_size=5)
    command.refresh_from_db()
    EXECUTORS["post_write_off"].send(default_client_factory(world.entity), command, command.payload)
    [kept, extra] = world.server.state.transactions("WO-TWICE")
    _pull(world)  # the pull checks sales journals carrying a reference of ours
    [flag] = DuplicateWrite.objects.all()
    assert (flag.found_by, flag.extra_aiq_ids) == ("pull", [extra["transaction_id"]])
    duplicate_reverse(flag=flag, actor=bob)
    drain(budget_seconds=30, batch_size=5)
    flag.refresh_from_db()
    assert flag.state == DuplicateWrite.State.REVERSED
    [journal] = world.server.state.transactions(f"REV-{extra['transaction_id']}")
    assert journal["type"] == "SalesDebitJournal" and journal["amount"] == Decimal("7.50")
    assert world.server.state.outstanding(extra["transaction_id"]) == 0
    assert world.server.state.outstanding(kept["transaction_id"]) == Decimal("-7.50")
