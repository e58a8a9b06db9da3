"""Refund screens: request from an invoice, the plan the approver reads, maker-checker in the
view and the service, the refusal for an allocated receipt with its "unallocate first" path."""

from datetime import date
from decimal import Decimal

import pytest

from ledger.models import (
    Allocation,
    BankAccount,
    Customer,
    Invoice,
    InvoiceLine,
    OutboxCommand,
    Receipt,
)
from payments.models import Payment, Refund

pytestmark = pytest.mark.django_db


@pytest.fixture
def invoice(entity):
    customer = Customer.objects.create(entity=entity, code="ACME", name="Acme", currency="GBP")
    invoice = Invoice.objects.create(
        entity=entity,
        customer=customer,
        invoice_number="INV-7",
        aiq_invoice_id=7,
        aiq_transaction_id=700,
        currency="GBP",
        invoice_date=date(2026, 11, 1),
        net_amount=Decimal("100.00"),
        tax_amount=Decimal("20.00"),
        gross_amount=Decimal("120.00"),
        outstanding_amount=Decimal("120.00"),
    )
    for number, (text, net, tax) in enumerate(
        [("Pro plan", "75.00", "15.00"), ("Setup", "25.00", "5.00")], 1
    ):
        InvoiceLine.objects.create(
            invoice=invoice,
            line_number=number,
            description=text,
            gl_account_code="4000",
            tax_code="T1",
            tax_rate=Decimal("20"),
            net_amount=Decimal(net),
            tax_amount=Decimal(tax),
            gross_amount=Decimal(net) + Decimal(tax),
        )
    return invoice


def _login(client, user):
    client.force_login(user)
    return client


def test_a_clerk_requests_a_credit_note_and_another_person_approves_it(client, invoice, alice, bob):
    _login(client, alice)
    page = client.get(f"/refunds/new?kind=cancel_invoice&invoice={invoice.pk}")
    assert page.status_code == 200 and b"Setup" in page.content
    assert b"Request the credit note</button>" in page.content  # no money goes back
    setup = invoice.lines.get(description="Setup")
    response = client.post(
        "/refunds/new",
        {"kind": "cancel_invoice", "invoice": invoice.pk, "line": [setup.pk], "reason": "No setup"},
    )
    refund = Refund.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/refunds/{refund.pk}/"
    assert refund.amount == Decimal("30.00") and refund.state == "requested"

    detail = client.get(f"/refunds/{refund.pk}/").content.decode()
    assert (
        "AIQ credit note REF-" in detail
        and "AIQ allocation of the credit note against INV-7" in detail
    )
    assert "Approve the refund" not in detail  # the requester sees no approve button
    assert "Reason for withdrawing it" in detail  # her own request: she withdraws it
    client.post(f"/refunds/{refund.pk}/approve")  # forged: alice is no approver
    refund.refresh_from_db()
    assert refund.state == "requested" and not OutboxCommand.objects.exists()

    _login(client, bob)
    assert "Approve the refund" in client.get(f"/refunds/{refund.pk}/").content.decode()
    approved = client.post(f"/refunds/{refund.pk}/approve", follow=True).content.decode()
    assert "Approved: the credit note is on its way to AIQ." in approved  # not to Stripe
    refund.refresh_from_db()
    assert (refund.state, refund.approver) == ("sent", bob)
    kinds = list(OutboxCommand.objects.order_by("pk").values_list("kind", "depends_on__kind"))
    assert kinds == [("create_credit_note", None), ("allocate", "create_credit_note")]


def test_an_approver_cannot_approve_their_own_refund_even_as_superuser(client, invoice, carol):
    _login(client, carol)
    client.post("/refunds/new", {"kind": "cancel_invoice", "invoice": invoice.pk, "reason": "dup"})
    refund = Refund.objects.get()
    response = client.post(f"/refunds/{refund.pk}/approve", follow=True)
    assert b"a different person must approve it" in response.content
    refund.refresh_from_db()
    assert refund.state == "requested"


def test_too_much_is_refused_with_a_message_and_nothing_is_written(client, invoice, alice):
    _login(client, alice)
    response = client.post(
        "/refunds/new",
        {"kind": "cancel_invoice", "invoice": invoice.pk, "amount": "500", "reason": "x"},
    )
    assert response.status_code == 200
    assert b"more than invoice INV-7 has open to credit" in response.content
    assert not Refund.objects.exists()


def test_rejecting_removes_the_draft_credit_note(client, invoice, alice, bob):
    _login(client, alice)
    client.post("/refunds/new", {"kind": "cancel_invoice", "invoice": invoice.pk, "reason": "x"})
    refund = Refund.objects.get()
    _login(client, bob)
    client.post(f"/refunds/{refund.pk}/reject", {"reason": "not agreed"})
    refund.refresh_from_db()
    assert refund.state == "rejected" and refund.credit_note is None
    assert not invoice.credit_notes.exists()


def test_an_allocated_receipt_offers_unallocate_first(client, invoice, entity, alice):
    bank = BankAccount.objects.create(
        entity=entity, bank_code="1200", bank_account_code="BANK-GBP", name="Bank", currency="GBP"
    )
    receipt = Receipt.objects.create(
        entity=entity,
        customer=invoice.customer,
        bank_account=bank,
        check_reference="RCPT-1",
        aiq_transaction_id=900,
        currency="GBP",
        payment_date=date(2026, 11, 2),
        amount=Decimal("120.00"),
        unallocated_amount=Decimal("0"),
    )
    Allocation.objects.create(
        entity=entity,
        transaction_id_1=900,
        transaction_id_2=700,
        receipt=receipt,
        invoice=invoice,
        amount=Decimal("120.00"),
        currency="GBP",
        allocation_date=date(2026, 11, 2),
        reference="ALLOC-1",
    )
    payment = Payment.objects.create(
        entity=entity,
        source="bank",
        external_id="row-1",
        amount=Decimal("120.00"),
        currency="GBP",
        received_at="2026-11-02T10:00:00Z",
        customer=invoice.customer,
        receipt=receipt,
    )
    _login(client, alice)
    page = client.post(
        "/refunds/new",
        {"kind": "refund_on_account", "payment": payment.pk, "amount": "120", "reason": "x"},
    ).content.decode()
    assert "Unallocate first" in page and "Unallocate from INV-7" in page
    assert not Refund.objects.exists()

    client.post(f"/payments/{payment.pk}/unallocate-for-refund", {"reason": "x"})
    command = OutboxCommand.objects.get()
    assert (command.kind, command.payload["transaction_ids"]) == ("unallocate", [900, 700])


@pytest.mark.parametrize("path", ["/refunds/", "/refunds/new?kind=cancel_invoice"])
def test_people_without_a_role_cannot_see_refunds(client, mallory, path):
    assert _login(client, mallory).get(path).status_code == 403


def test_a_refund_is_changed_before_approval_and_the_editor_cannot_approve_it(
    client, invoice, alice, bob
):
    """Alice asks for a 60.00 credit; Bob, an approver, thinks 36.00 is right and changes it on
    the refund's page. He is now its maker: his page has no approve button and his approval
    is refused; Dave, another approver, approves the 36.00 Bob saved, not Alice's 60.00."""
    from django.contrib.auth.models import Group, User

    from staff.models import AuditEntry

    _login(client, alice)
    client.post(
        "/refunds/new",
        {"kind": "cancel_invoice", "invoice": invoice.pk, "amount": "60.00", "reason": "Late"},
    )
    refund = Refund.objects.get()
    assert (refund.amount, refund.maker) == (Decimal("60.00"), alice)

    _login(client, bob)
    page = client.get(f"/refunds/{refund.pk}/").content.decode()
    assert "Change the amount or reason" in page and "Approve the refund" in page
    response = client.post(
        f"/refunds/{refund.pk}/edit", {"amount": "36.00", "reason": "Late: 30 % off"}, follow=True
    )
    page = response.content.decode()
    assert "You are now its maker" in page
    assert "Approve the refund" not in page and "last changed this refund" in page
    refund.refresh_from_db()
    assert (refund.amount, refund.reason, refund.maker) == (Decimal("36.00"), "Late: 30 % off", bob)
    assert refund.credit_note.gross_amount == Decimal("36.00")  # the draft follows the change
    edit = AuditEntry.objects.get(action="refund.edit", object_id=str(refund.pk))
    assert edit.actor == bob
    assert (Decimal(edit.before["amount"]), Decimal(edit.after["amount"])) == (60, 36)

    response = client.post(f"/refunds/{refund.pk}/approve", follow=True)
    assert "Not approved" in response.content.decode()
    assert Refund.objects.get(pk=refund.pk).state == "requested"

    dave = User.objects.create_user(username="dave", password="dave-pass-123")
    dave.groups.add(Group.objects.get(name="approver"))
    _login(client, dave)
    response = client.post(f"/refunds/{refund.pk}/approve", follow=True)
    assert "Approved" in response.content.decode()
    refund.refresh_from_db()
    assert (refund.state, refund.approver, refund.amount) == ("sent", dave, Decimal("36.00"))


def test_a_refund_cannot_be_changed_once_decided_or_beyond_what_can_go_back(
    client, invoice, alice, bob
):
    _login(client, alice)
    client.post(
        "/refunds/new",
        {"kind": "cancel_invoice", "invoice": invoice.pk, "amount": "60.00", "reason": "Late"},
    )
    refund = Refund.objects.get()
    too_much = client.post(
        f"/refunds/{refund.pk}/edit", {"amount": "120.01", "reason": "x"}, follow=True
    ).content.decode()
    assert "Not changed" in too_much
    letters = client.post(
        f"/refunds/{refund.pk}/edit", {"amount": "abc", "reason": "x"}, follow=True
    ).content.decode()
    assert "Not changed" in letters
    assert Refund.objects.get(pk=refund.pk).amount == Decimal("60.00")
    _login(client, bob)
    client.post(f"/refunds/{refund.pk}/approve")
    assert Refund.objects.get(pk=refund.pk).state != "requested"
    page = client.get(f"/refunds/{refund.pk}/").content.decode()
    assert "Change the amount or reason" not in page
    late = client.post(
        f"/refunds/{refund.pk}/edit", {"amount": "10.00", "reason": "x"}, follow=True
    ).content.decode()
    assert "Not changed" in late and "cannot be changed" in late
