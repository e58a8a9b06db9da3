"""Undoing an allocation whose realised exchange gain or loss was booked (issue 17.5): the FX
journal's part for that allocation is reversed once, after the undo itself lands in AIQ.
Worked against the AIQ sandbox's books (FX GL account, debtors control, invoice outstanding)."""

from decimal import Decimal

import pytest

from ledger.models import Allocation, Customer, OutboxCommand
from payments.models import Payment, ProviderAccount, Unallocation
from payments.services.plan_lines import PlanRefused
from payments.services.provider_fx import debtors_control_code
from payments.services.unallocations import allocation_unallocate, unallocation_approve
from payments.sources import stripe_source
from staff.models import AuditEntry
from tests import test_provider_books as stripe_books
from tests.refunds_support import allocate, drain_all, make_invoice, seed_roles_without_matching
from tests.test_provider_payouts import _rate_in_aiq

pytestmark = pytest.mark.django_db(transaction=True)
books = stripe_books.books  # the UK company (GBP) with its Stripe GBP clearing account


@pytest.fixture(autouse=True)
def _seeded(transactional_db):
    seed_roles_without_matching()


def test_undoing_an_allocation_reverses_its_realised_exchange_loss_once(books, entity, alice, bob):
    """A EUR 200.00 invoice booked at 1.15 (173.91 GBP), paid by card and converted by Stripe
    at 0.80 (160.00 GBP): the payout books a 13.91 GBP loss. The allocation was wrong: undoing
    it reopens the invoice and takes the 13.91 back off the FX account, once."""
    from payments.services.payments import payments_upsert

    books.add_gl_account("7900", "Realised exchange gains and losses", "expense")
    ProviderAccount.objects.update(fx_gl_account_code="7900")
    control = debtors_control_code(entity.pk)
    invoice = make_invoice(entity, "QUAYSD", [("Service", "4010", "200.00", "T0")])
    invoice.exchange_rate = _rate_in_aiq(books, invoice)
    invoice.save(update_fields=["exchange_rate"])
    charge = stripe_books._charge(58, "QUAYSD", 20000, 260, 52)
    charge["currency"] = "eur"
    charge["balance_transaction"].update(currency="gbp", amount=16000, net=16000 - 312,
                                         exchange_rate=0.8)  # fmt: skip
    payments_upsert(items=[stripe_source.normalise_charge(charge)], origin="test", entity=entity)
    payment = Payment.objects.get(external_id=stripe_source.payment_key(charge))
    payment.customer = Customer.objects.get(entity=entity, code="QUAYSD")
    payment.save(update_fields=["customer"])
    allocate(payment, [(invoice, "200.00")], alice, bob)
    drain_all()
    fx_before, control_before = books.state.gl_total("7900"), books.state.gl_total(control)
    payout = stripe_books._pay_out([charge], payout_id="po_fx_undo")
    drain_all()
    assert books.state.gl_total("7900") - fx_before == Decimal("13.91")
    # the debtors control in GBP: the invoice's 173.91 less the receipt's 160.00, less the
    # realised 13.91: nothing left for this customer
    assert books.state.gl_total(control) - control_before == Decimal("-13.91")
    assert books.state.outstanding(invoice.aiq_transaction_id) == 0

    payment.refresh_from_db()
    allocation = Allocation.objects.get(receipt=payment.receipt, invoice=invoice)
    undo = allocation_unallocate(allocation=allocation, actor=alice, reason="wrong invoice")
    if undo.state == Unallocation.State.REQUESTED:  # above the company's threshold
        undo = unallocation_approve(unallocation=undo, actor=bob)
    with pytest.raises(PlanRefused):  # approving again queues nothing more
        unallocation_approve(unallocation=undo, actor=bob)
    line = payment.plans.get().lines.get()
    reversal = OutboxCommand.objects.get(external_reference=f"FXRREV-{line.pk}")
    assert reversal.depends_on_id == undo.command_id  # only once the undo is in AIQ
    drain_all()
    drain_all()
    # the invoice is open again for its full 200.00; the receipt is on account; the realised
    # loss is gone from the FX account; the debtors control holds the invoice's 173.91 less
    # the receipt's 160.00 at their own rates again
    assert books.state.outstanding(invoice.aiq_transaction_id) == Decimal("200.00")
    assert books.state.gl_total("7900") == fx_before
    assert books.state.gl_total(control) - control_before == 0
    assert len(books.state.transactions(f"FXRREV-{line.pk}")) == 1
    assert len(books.state.transactions(f"FXR-{payout.pk}")) == 1
    reversal.refresh_from_db()
    assert reversal.state == OutboxCommand.State.CONFIRMED
    entry = AuditEntry.objects.get(action="payout.fx_reversed")
    assert f"FXR-{payout.pk}" in str(entry.after) and "13.91" in entry.summary
    undo_entry = AuditEntry.objects.get(action="allocation.unallocate")
    assert undo_entry.after["fx_reversal"] == f"FXRREV-{line.pk}"
