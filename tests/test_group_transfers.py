# ruff: noqa: F811  (the later allocations' fixtures are imported by name)
"""Money of one customer paying another customer's invoices inside a customer group (issue 16
point 5: a parent paying for its subsidiary), worked against the AIQ sandbox: a clerk asks, a
second person approves, and AIQ's books show the transfer as AIQ can hold it (a sales debit
journal on the payer allocated against its receipt, a sales credit journal on the customer paid
for allocated against the invoice, both to the transfer GL account, which they leave at zero),
each written once; refused outside a group; audited."""

from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from ledger.models import Customer, OutboxCommand
from payments.models import ContactAllocation
from payments.services.contact_allocations import (
    contact_allocation_approve,
    contact_allocation_create,
    customer_group_set,
)
from payments.services.later import LaterRefused
from staff.models import AuditEntry
from tests.api_support import Caller, api_client
from tests.later_support import receipt_in_aiq
from tests.refunds_support import account_balance, drain_all, make_invoice

# the later allocations' fixtures: roles seeded, no matching rule; the sandbox's books
from tests.test_later_allocations import _seeded, books  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


def _group(entity, carol, *codes):
    customers = Customer.objects.filter(entity=entity, code__in=codes)
    return customer_group_set(actor=carol, entity=entity, name="Acme group", customers=customers)


def test_a_parent_pays_its_subsidiarys_invoice_through_a_journal_pair(
    books, entity, alice, bob, carol
):
    _group(entity, carol, "ACME", "BRIGHT")
    receipt = receipt_in_aiq(entity, "ACME", "100.00")  # the parent's money on account
    invoice = make_invoice(entity, "BRIGHT", [("Nursery fees", "4010", "60.00", "T0")])
    acme_before, bright_before = account_balance(books, "ACME"), account_balance(books, "BRIGHT")

    allocation = contact_allocation_create(actor=alice, receipt=receipt, lines=[(invoice, "60")])
    # a transfer waits for a second person, whatever the amount; nothing is queued before
    assert (allocation.state, allocation.transfer_to.code) == ("awaiting_approval", "BRIGHT")
    assert not OutboxCommand.objects.exists()
    with pytest.raises(PermissionDenied):
        contact_allocation_approve(allocation=allocation, actor=alice)  # a clerk, the maker
    contact_allocation_approve(allocation=allocation, actor=bob)
    drain_all()

    allocation.refresh_from_db()
    assert allocation.state == "confirmed"
    commands = dict(OutboxCommand.objects.values_list("external_reference", "state"))
    prefix = f"GXFR-{allocation.pk}-"
    assert commands == {
        f"{prefix}{key}": "confirmed" for key in ("DR", "A", "CR", str(invoice.pk))
    }  # each once
    # AIQ: the invoice is paid, the parent has 40.00 left on account, the money moved
    assert books.state.outstanding(invoice.aiq_transaction_id) == 0
    assert abs(books.state.outstanding(receipt.aiq_transaction_id)) == Decimal("40.00")
    assert account_balance(books, "ACME") == acme_before + Decimal("60.00")
    assert account_balance(books, "BRIGHT") == bright_before - Decimal("60.00")
    invoice.refresh_from_db()
    assert (invoice.status, invoice.outstanding_amount) == ("paid", 0)
    actions = set(
        AuditEntry.objects.filter(object_id=str(allocation.pk)).values_list("action", flat=True)
    )
    assert {
        "contact_allocation.create",
        "contact_allocation.approve",
        "contact_allocation.confirm",
    } <= actions


def test_another_customers_invoice_outside_a_group_is_refused(books, entity, alice, carol):
    _group(entity, carol, "ACME", "CASTLE")  # BRIGHT is in no group with ACME
    receipt = receipt_in_aiq(entity, "ACME", "50.00")
    invoice = make_invoice(entity, "BRIGHT", [("Nursery fees", "4010", "50.00", "T0")])
    with pytest.raises(LaterRefused, match="not customers of one group"):
        contact_allocation_create(actor=alice, receipt=receipt, lines=[(invoice, "50")])
    assert not ContactAllocation.objects.exists() and not OutboxCommand.objects.exists()


def test_groups_are_set_by_an_admin_only_and_audited(entity, alice, carol, books):
    with pytest.raises(PermissionDenied):
        _group(entity, alice, "ACME", "BRIGHT")
    group = _group(entity, carol, "ACME", "BRIGHT")
    assert sorted(group.members.values_list("customer__code", flat=True)) == ["ACME", "BRIGHT"]
    entry = AuditEntry.objects.get(action="customer_group.set")
    assert entry.after == {"customers": ["ACME", "BRIGHT"]} and entry.actor == carol


def test_the_clerks_screen_offers_the_group_members_invoices(books, entity, alice, carol, client):
    _group(entity, carol, "ACME", "BRIGHT")
    receipt = receipt_in_aiq(entity, "ACME", "30.00")
    invoice = make_invoice(entity, "BRIGHT", [("Nursery fees", "4010", "30.00", "T0")])
    client.force_login(alice)
    url = f"{reverse('payments:allocate_later')}?receipt={receipt.pk}"
    page = client.get(url)
    assert page.status_code == 200
    assert "Invoices of the other customers of its group" in page.content.decode()
    assert f'name="amount-{invoice.pk}"' in page.content.decode()

    answer = client.post(url, {f"amount-{invoice.pk}": "30.00"})
    assert answer.status_code == 302
    made = ContactAllocation.objects.get()
    assert (made.state, made.transfer_to.code, made.maker) == ("awaiting_approval", "BRIGHT", alice)
    listed = client.get(reverse("payments:later")).content.decode()
    assert "paying for BRIGHT (group)" in listed


def test_an_api_client_allocates_across_the_group_and_it_waits_for_approval(books, entity, carol):
    _group(entity, carol, "ACME", "BRIGHT")
    receipt = receipt_in_aiq(entity, "ACME", "30.00")
    invoice = make_invoice(entity, "BRIGHT", [("Nursery fees", "4010", "30.00", "T0")])
    _client, token = api_client(entity, carol)
    answer = Caller(token).post(
        "contact_allocations",
        {
            "contact_allocation": {
                "allocated_artefacts": [
                    {"artefact_id": f"inv_{invoice.pk}", "amount": "30.00"},
                    {"artefact_id": f"rcpt_{receipt.pk}", "amount": "-30.00"},
                ]
            }
        },
    )
    assert answer.status_code == 201, answer.json()
    assert answer.json()["status"] == "awaiting_approval"  # same service, same approval rule
    assert ContactAllocation.objects.get().transfer_to.code == "BRIGHT"
    assert not OutboxCommand.objects.exists()
