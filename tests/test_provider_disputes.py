"""Disputes and charge-backs booked (issue 17.4): a dispute takes the disputed amount and
Stripe's dispute fee out of clearing (DISP), a lost one is written off (DISPLOST), a won one
comes back (DISPWON); GoCardless late failures and charge-backs of payments already paid out
the same. Worked scenarios checking the AIQ sandbox's books; Stripe's dispute objects and
events as Stripe documents them (localstripe has no disputes), signed webhooks through the
view."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from ledger.aiq.client import AiqClient
from ledger.models import Allocation, BankAccount, OutboxCommand
from payments.models import Dispute, Payment, ProviderAccount
from payments.services.provider_disputes import (
    DisputeRefused,
    dispute_book,
    dispute_loss_approve,
)
from payments.sources import stripe_client
from staff.models import AuditEntry
from tests import test_gocardless_webhooks as gc_fake
from tests import test_provider_books as stripe_books
from tests import test_stripe_flows as stripe_flows
from tests.refunds_support import allocate, drain_all, make_invoice
from tests.stripe_fixtures import fixture

pytestmark = pytest.mark.django_db(transaction=True)
# the fixtures and helpers of the Stripe books, Stripe webhook and GoCardless fake tests
books, deliver, gocardless = stripe_books.books, stripe_flows.deliver, gc_fake.gocardless
_day_of_payments, _pay_out = stripe_books._day_of_payments, stripe_books._pay_out
_customer, _event, _payer_add, _payment = (
    gc_fake._customer,
    gc_fake._event,
    gc_fake._payer_add,
    gc_fake._payment,
)
DISPUTES_GL, LOSS_GL = "1170", "8100"


@pytest.fixture
def dispute_books(books, localstripe):
    books.add_gl_account(DISPUTES_GL, "Payments in dispute", "asset")
    ProviderAccount.objects.update(
        disputes_gl_account_code=DISPUTES_GL, dispute_loss_gl_account_code=LOSS_GL
    )
    return books


def _balance_txn(n: int, amount_minor: int, fee_minor: int, category: str) -> dict:
    """A dispute's balance transaction as Stripe documents it (type adjustment)."""
    fee_details = (
        [{"amount": fee_minor, "currency": "gbp", "description": "Dispute fee",
          "type": "stripe_fee"}] if fee_minor else []
    )  # fmt: skip
    return {
        "id": f"txn_dispute{n}",
        "object": "balance_transaction",
        "amount": amount_minor,
        "currency": "gbp",
        "created": 1796342400,  # 04/12/2026
        "exchange_rate": None,
        "fee": fee_minor,
        "fee_details": fee_details,
        "net": amount_minor - fee_minor,
        "reporting_category": category,
        "status": "pending",
        "type": "adjustment",
    }


def _stripe_dispute(monkeypatch, payment, status: str, balance_transactions: list) -> dict:
    dispute = fixture("dispute.json")
    dispute.update(
        id=f"dp_{payment.external_id}",
        amount=int(payment.amount * 100),
        currency="gbp",
        charge=payment.external_id.replace("pi_", "ch_"),
        payment_intent=payment.external_id,
        reason="fraudulent",
        status=status,
        balance_transactions=balance_transactions,
    )
    monkeypatch.setattr(stripe_client, "dispute_retrieve", lambda _id: dict(dispute))
    return dispute


def _clearing(sandbox) -> Decimal:
    return sandbox.bank_balance("1150")


def _invoice_of(payment):
    """The invoice the payment's receipt paid (mirror), with its AIQ transaction."""
    return Allocation.objects.get(receipt=payment.receipt, invoice__isnull=False).invoice


def test_a_lost_stripe_dispute_leaves_clearing_and_reopens_the_invoice_exactly_once(
    dispute_books,
    entity,
    alice,
    bob,
    deliver,
    monkeypatch,
    client,
):
    aiq = dispute_books
    charges, payments = _day_of_payments(entity, alice, bob, 3)
    _pay_out(charges)
    drain_all()
    assert _clearing(aiq) == 0  # everything paid out
    fees_before, loss_before = aiq.state.gl_total("7510"), aiq.state.gl_total(LOSS_GL)

    disputed = payments[1]  # 107.00 GBP
    disputed.refresh_from_db()
    invoice, code = _invoice_of(disputed), disputed.customer.code
    receipt_txn = disputed.receipt.aiq_transaction_id
    assert aiq.state.outstanding(invoice.aiq_transaction_id) == 0
    owed_before = aiq.state.customer_balance(code)
    withdrawal = _balance_txn(1, -10700, 2000, "dispute")
    _stripe_dispute(monkeypatch, disputed, "needs_response", [withdrawal])
    event = {"id": f"dp_{disputed.external_id}", "object": "dispute"}
    assert deliver("charge.dispute.created", event) == 200
    assert deliver("charge.dispute.funds_withdrawn", event) == 200  # the same money: once
    drain_all()
    dispute = Dispute.objects.get()
    # Stripe took 107.00 and its 20.00 dispute fee from the balance: clearing follows
    assert _clearing(aiq) == Decimal("-127.00")
    assert aiq.state.gl_total(DISPUTES_GL) == Decimal("107.00")
    assert aiq.state.gl_total("7510") - fees_before == Decimal("20.00")
    (txn,) = aiq.state.transactions(f"DISP-{dispute.pk}")
    assert txn["type"] == "GeneralJournal"

    _stripe_dispute(monkeypatch, disputed, "lost", [withdrawal])
    assert deliver("charge.dispute.closed", event) == 200
    assert deliver("charge.dispute.closed", {**event}) == 200
    drain_all()
    # lost: the write-off is proposed, not booked: it waits for a second person
    dispute.refresh_from_db()
    assert dispute.loss_awaits_approval and dispute.loss_command is None
    assert aiq.state.gl_total(DISPUTES_GL) == Decimal("107.00")
    assert aiq.state.gl_total(LOSS_GL) == loss_before
    assert not aiq.state.transactions(f"DISPLOST-{dispute.pk}")
    # nothing reversed yet: the invoice stays paid
    assert aiq.state.outstanding(invoice.aiq_transaction_id) == 0
    client.force_login(alice)  # a clerk sees it waiting, cannot approve it
    html = client.get("/disputes/").content.decode()
    assert "Reversal awaiting approval" in html and "Approve reversal" not in html
    approve = f"/disputes/{dispute.pk}/approve-loss"
    assert client.post(approve).status_code == 403
    # whoever proposed it (here: bob, as if he had) never approves it, nor does the database
    # let it happen
    Dispute.objects.filter(pk=dispute.pk).update(maker=bob)
    client.force_login(bob)
    assert "Approve reversal" not in client.get("/disputes/").content.decode()
    client.post(approve)
    dispute.refresh_from_db()
    assert dispute.approved_at is None and dispute.loss_command is None
    with pytest.raises(IntegrityError), transaction.atomic():
        Dispute.objects.filter(pk=dispute.pk).update(approver=bob, approved_at=timezone.now())
    with pytest.raises(IntegrityError), transaction.atomic():  # no reversal unapproved
        Dispute.objects.filter(pk=dispute.pk).update(loss_command=dispute.withdrawal_command)
    Dispute.objects.filter(pk=dispute.pk).update(maker=None)
    # an approver approves; a double click books it once
    assert client.post(approve).status_code == 302
    assert client.post(approve).status_code == 302
    assert "already approved" in str(list(client.get("/disputes/").context["messages"]))
    drain_all()
    dispute.refresh_from_db()
    assert dispute.approver == bob
    # the receipt is reversed: the invoice is outstanding again, the customer owes the 107.00
    # again, the money stays out of clearing, the dispute fee stays an expense, nothing is
    # left in the disputes account and nothing is written off
    assert aiq.state.outstanding(invoice.aiq_transaction_id) == Decimal("107.00")
    assert aiq.state.customer_balance(code) - owed_before == Decimal("107.00")
    assert _clearing(aiq) == Decimal("-127.00")
    assert aiq.state.gl_total(DISPUTES_GL) == 0
    assert aiq.state.gl_total(LOSS_GL) == loss_before
    assert aiq.state.gl_total("7510") - fees_before == Decimal("20.00")
    (journal,) = aiq.state.transactions(f"DISPLOST-{dispute.pk}")
    assert (journal["type"], journal["amount"]) == ("SalesDebitJournal", Decimal("107.00"))
    # the receipt is spent on the debit journal, not left on account to be matched again
    assert aiq.state.outstanding(receipt_txn) == 0
    [paired] = aiq.state.allocations(receipt_txn)
    assert paired["debit_transaction_id"] == journal["transaction_id"]
    assert len(aiq.state.transactions(f"DISP-{dispute.pk}")) == 1
    assert OutboxCommand.objects.filter(origin_type="dispute").count() == 4  # DISP + 3
    assert not OutboxCommand.objects.filter(origin_type="dispute").exclude(
        state=OutboxCommand.State.CONFIRMED
    )
    invoice.refresh_from_db()  # the mirror follows
    assert invoice.outstanding_amount == Decimal("107.00")
    actions = set(
        AuditEntry.objects.filter(object_type="payments.dispute").values_list("action", flat=True)
    )
    assert {"dispute.withdrawn", "dispute.loss_proposed", "dispute.reversed",
            "dispute.journal_confirmed"} <= actions  # fmt: skip
    reversed_ = AuditEntry.objects.get(action="dispute.reversed")
    assert reversed_.actor == bob and str(invoice) in reversed_.summary

    # the disputes screen: what it booked, who approved, what a lost dispute does
    client.force_login(alice)
    html = client.get("/disputes/").content.decode()
    assert f"DISP-{dispute.pk}" in html and f"DISPLOST-{dispute.pk}" in html
    assert f"DISPUNALLOC-{dispute.pk}" in html and f"DISPREALLOC-{dispute.pk}" in html
    assert "Confirmed</span>" in html and ">Lost<" in html
    assert "the invoice is outstanding again" in html


def test_a_won_stripe_dispute_puts_the_money_and_the_fee_back(
    dispute_books,
    entity,
    alice,
    bob,
    deliver,
    monkeypatch,
):
    aiq = dispute_books
    charges, payments = _day_of_payments(entity, alice, bob, 1)
    gross = payments[0].amount
    fees_before = aiq.state.gl_total("7510")
    event = {"id": f"dp_{payments[0].external_id}", "object": "dispute"}
    # an inquiry first: no money taken, nothing booked
    _stripe_dispute(monkeypatch, payments[0], "warning_needs_response", [])
    deliver("charge.dispute.created", event)
    assert not OutboxCommand.objects.filter(origin_type="dispute").exists()

    withdrawal = _balance_txn(1, -10000, 2000, "dispute")
    _stripe_dispute(monkeypatch, payments[0], "under_review", [withdrawal])
    deliver("charge.dispute.funds_withdrawn", event)
    drain_all()
    assert _clearing(aiq) == gross - Decimal("120.00")

    reinstated = _balance_txn(2, 10000, -2000, "dispute_reversal")  # fee given back
    _stripe_dispute(monkeypatch, payments[0], "won", [withdrawal, reinstated])
    deliver("charge.dispute.funds_reinstated", event)
    deliver("charge.dispute.closed", event)
    drain_all()
    dispute = Dispute.objects.get()
    assert dispute.loss_command is None
    assert _clearing(aiq) == gross  # back where it was
    assert aiq.state.gl_total(DISPUTES_GL) == 0
    assert aiq.state.gl_total("7510") == fees_before  # the fee came back too
    assert len(aiq.state.transactions(f"DISPWON-{dispute.pk}")) == 1
    dispute_book(dispute=dispute)  # booking again changes nothing
    assert OutboxCommand.objects.filter(origin_type="dispute").count() == 2


# --- GoCardless: a payout, then a late failure of a payment it paid out -------------------------


def _gc_payment(pid: str, amount_minor: int, status: str, payout: str | None, customer: str):
    """A GoCardless payment as GET /payments/{id} answers it."""
    payment = _payment(pid, amount_minor, status=status)
    payment["links"]["payout"] = payout
    payment["metadata"] = {"aiq_customer_code": customer}
    return payment


def _gc_payout(pid: str, amount_minor: int, fees_minor: int) -> dict:
    return {
        "id": pid, "amount": amount_minor, "arrival_date": "2026-12-04", "currency": "GBP",
        "deducted_fees": fees_minor, "payout_type": "merchant", "reference": f"REF-{pid}",
        "status": "paid", "created_at": "2026-12-03T10:00:00.000Z", "fx": None,
        "tax_currency": None, "metadata": {},
        "links": {"creditor": "CR123", "creditor_bank_account": "BA123"},
    }  # fmt: skip


def _item(kind: str, amount_minor: int, payment: str) -> dict:
    """A payout item: amounts are strings in minor units to one decimal place."""
    return {"amount": f"{amount_minor}.0", "type": kind, "links": {"payment": payment},
            "taxes": []}  # fmt: skip


@pytest.fixture
def gc_books(books, gocardless):
    from ledger.sync.pull import sync_banks

    books.add_bank("GC-GBP", "1160", "GBP")
    books.add_gl_account(DISPUTES_GL, "Payments in dispute", "asset")
    entity = ProviderAccount.objects.get().entity
    sync_banks(AiqClient.for_entity(entity), entity)
    ProviderAccount.objects.create(
        entity=entity, source="gocardless", currency="GBP", name="GoCardless GBP",
        clearing_bank_account=BankAccount.objects.get(bank_account_code="GC-GBP"),
        payout_bank_account=BankAccount.objects.get(bank_account_code="BANK-GBP"),
        fees_gl_account_code="7500", statement_narrative="GOCARDLESS",
        disputes_gl_account_code=DISPUTES_GL, dispute_loss_gl_account_code=LOSS_GL,
    )  # fmt: skip
    _payer_add(gocardless, "MD000123", _customer("CU000123", "jane@example.test"))
    return books


def _gc_event(eid: str, action: str, payment: str, cause: str) -> int:
    from payments.services.stripe_events import webhook_event_store
    from payments.sources.gocardless_source import gc_client, gocardless_event_process

    event = _event(eid, "payments", action, payment=payment)
    event["details"] = {"origin": "bank", "cause": cause, "scheme": "bacs",
                        "reason_code": "ARUDD-0", "description": "Late failure"}  # fmt: skip
    stored = webhook_event_store(
        source="gocardless", event_id=eid, event_type=f"payments.{action}", payload=event,
        handled=True,
    )  # fmt: skip
    return gocardless_event_process(event_pk=stored.event.pk, client=gc_client())


def test_gocardless_payout_then_a_late_failure_end_where_gocardless_and_the_bank_say(
    gc_books,
    gocardless,
    entity,
    alice,
    bob,
):
    from payments.services.payments import payments_upsert
    from payments.sources.gocardless_source import (
        gc_client,
        gocardless_payout_sync,
        normalise_payment,
    )

    aiq = gc_books
    codes = ["ACME", "BRIGHT", "ACME"]
    amounts = [12000, 4550, 30000]  # 120.00, 45.50, 300.00
    fees = 255  # GoCardless's fees on the three, deducted from the payout
    paid = []
    for n, (code, minor) in enumerate(zip(codes, amounts, strict=True)):
        pid = f"PM00GC{n}"
        gocardless.payments[pid] = _gc_payment(pid, minor, "paid_out", "PO00GC1", code)
        payments_upsert(items=[normalise_payment(gocardless.payments[pid])],
                        origin="test.gocardless", entity=entity)  # fmt: skip
        payment = Payment.objects.get(external_id=pid)
        invoice = make_invoice(entity, code, [("Service", "4010", str(minor / 100), "T0")])
        allocate(payment, [(invoice, str(Decimal(minor) / 100))], alice, bob)
        paid.append(payment)
    drain_all()
    gross = Decimal(sum(amounts)) / 100
    assert aiq.bank_balance("1160") == gross  # the receipts landed in GoCardless clearing

    bank_before, fees_before = aiq.state.gl_total("1200"), aiq.state.gl_total("7500")
    net = sum(amounts) - fees
    gocardless.payouts["PO00GC1"] = _gc_payout("PO00GC1", net, fees)
    gocardless.payout_items["PO00GC1"] = [
        _item("payment_paid_out", minor, f"PM00GC{n}") for n, minor in enumerate(amounts)
    ] + [_item("gocardless_fee", -fees, "PM00GC0")]
    payout = gocardless_payout_sync(payout_id="PO00GC1", client=gc_client())
    drain_all()
    # clearing holds what GoCardless still holds: nothing; bank + payout; fees on 7500
    assert aiq.bank_balance("1160") == 0
    assert aiq.state.gl_total("1200") - bank_before == Decimal(net) / 100 == payout.amount
    assert aiq.state.gl_total("7500") - fees_before == Decimal("2.55")
    assert len(aiq.state.transactions(f"POFEE-{payout.pk}")) == 1

    # the 45.50 payment fails late (after it was paid out): GoCardless takes it back
    gocardless.payments["PM00GC1"] = _gc_payment("PM00GC1", 4550, "failed", "PO00GC1", "BRIGHT")
    loss_before = aiq.state.gl_total(LOSS_GL)
    assert _gc_event("EV00LF1", "failed", "PM00GC1", "insufficient_funds") == "processed"
    assert _gc_event("EV00LF2", "late_failure_settled", "PM00GC1", "late_failure_settled") == (
        "processed"
    )
    drain_all()
    dispute = Dispute.objects.get(source="gocardless")
    assert (dispute.status, dispute.amount, dispute.reason) == (
        "late_failure", Decimal("45.50"), "insufficient_funds"
    )  # fmt: skip
    assert aiq.bank_balance("1160") == Decimal("-45.50")  # GoCardless's balance owes it
    assert aiq.state.gl_total(DISPUTES_GL) == Decimal("45.50")  # until an approver writes it off
    assert dispute.loss_awaits_approval and dispute.maker is None
    failed = paid[1]
    failed.refresh_from_db()
    failed_invoice, bright_before = _invoice_of(failed), aiq.state.customer_balance("BRIGHT")
    dispute_loss_approve(dispute=dispute, actor=bob)
    with pytest.raises(DisputeRefused):  # a second approval queues nothing more
        dispute_loss_approve(dispute=dispute, actor=bob)
    drain_all()
    # reversed: BRIGHT owes the 45.50 invoice again; nothing written off or left in dispute
    assert aiq.state.outstanding(failed_invoice.aiq_transaction_id) == Decimal("45.50")
    assert aiq.state.customer_balance("BRIGHT") - bright_before == Decimal("45.50")
    assert aiq.state.gl_total(LOSS_GL) == loss_before
    assert aiq.state.gl_total(DISPUTES_GL) == 0
    assert aiq.bank_balance("1160") == Decimal("-45.50")
    assert len(aiq.state.transactions(f"DISP-{dispute.pk}")) == 1
    assert len(aiq.state.transactions(f"DISPLOST-{dispute.pk}")) == 1

    # the next payout nets the late failure off a new payment: clearing is back at zero
    gocardless.payments["PM00GC9"] = _gc_payment("PM00GC9", 10000, "paid_out", "PO00GC2", "ACME")
    payments_upsert(items=[normalise_payment(gocardless.payments["PM00GC9"])],
                    origin="test.gocardless", entity=entity)  # fmt: skip
    late = Payment.objects.get(external_id="PM00GC9")
    invoice = make_invoice(entity, "ACME", [("Service", "4010", "100.00", "T0")])
    allocate(late, [(invoice, "100.00")], alice, bob)
    gocardless.payouts["PO00GC2"] = _gc_payout("PO00GC2", 10000 - 4550 - 55, 55)
    gocardless.payout_items["PO00GC2"] = [
        _item("payment_paid_out", 10000, "PM00GC9"),
        _item("payment_failed", -4550, "PM00GC1"),
        _item("gocardless_fee", -55, "PM00GC9"),
    ]
    gocardless_payout_sync(payout_id="PO00GC2", client=gc_client())
    drain_all()
    assert aiq.bank_balance("1160") == 0

    # the 300.00 payment is charged back (lost at once), an approver reverses it (the invoice
    # reopens), then GoCardless cancels the charge-back (the payment is paid out again): the
    # money comes back into clearing and the invoice is paid again
    charged = paid[2]
    charged.refresh_from_db()
    acme_invoice, acme_before = _invoice_of(charged), aiq.state.customer_balance("ACME")
    gocardless.payments["PM00GC2"] = _gc_payment("PM00GC2", 30000, "charged_back", "PO00GC1",
                                                 "ACME")  # fmt: skip
    assert _gc_event("EV00CB1", "charged_back", "PM00GC2", "refund_requested") == "processed"
    drain_all()
    charge_back = Dispute.objects.get(source="gocardless", status="charged_back")
    assert aiq.bank_balance("1160") == Decimal("-300.00")
    # nobody approved its reversal yet: it stays in the disputes account
    assert aiq.state.gl_total(DISPUTES_GL) == Decimal("300.00")
    assert aiq.state.outstanding(acme_invoice.aiq_transaction_id) == 0
    dispute_loss_approve(dispute=charge_back, actor=bob)
    drain_all()
    assert aiq.state.outstanding(acme_invoice.aiq_transaction_id) == Decimal("300.00")
    assert aiq.state.customer_balance("ACME") - acme_before == Decimal("300.00")
    assert aiq.state.gl_total(DISPUTES_GL) == 0
    gocardless.payments["PM00GC2"] = _gc_payment("PM00GC2", 30000, "paid_out", "PO00GC1", "ACME")
    assert _gc_event("EV00CB2", "chargeback_cancelled", "PM00GC2", "chargeback_cancelled") == (
        "processed"
    )
    assert _gc_event("EV00CB3", "chargeback_cancelled", "PM00GC2", "chargeback_cancelled") == (
        "processed"
    )
    drain_all()
    charge_back.refresh_from_db()
    assert charge_back.status == "won" and charge_back.payment.status == "succeeded"
    assert aiq.bank_balance("1160") == 0
    # restored: the invoice is paid again, ACME owes what it owed before, nothing in dispute
    assert aiq.state.outstanding(acme_invoice.aiq_transaction_id) == 0
    assert aiq.state.customer_balance("ACME") == acme_before
    assert aiq.state.gl_total(LOSS_GL) == loss_before
    assert aiq.state.gl_total(DISPUTES_GL) == 0
    assert len(aiq.state.transactions(f"DISPWON-{charge_back.pk}")) == 1
    (restore,) = aiq.state.transactions(f"DISPRESTORE-{charge_back.pk}")
    assert restore["type"] == "SalesCreditJournal" and restore["outstanding"] == 0
    assert AuditEntry.objects.filter(
        action="dispute.restored", object_id=str(charge_back.pk)
    ).exists()
    assert not charge_back.loss_awaits_approval  # decided: nothing left to approve
    with pytest.raises(DisputeRefused):
        dispute_loss_approve(dispute=charge_back, actor=bob)
    assert not OutboxCommand.objects.exclude(state=OutboxCommand.State.CONFIRMED).exists()
