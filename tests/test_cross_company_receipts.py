"""Cross-company receipts, worked against the sandbox's books of both companies.

Demo Trading Ltd (UK, GBP) receives EUR 150.00 into its EUR bank account from a customer of its
Irish sister company (Dublin Bay Bakery, DUBLNB), naming the Irish company's invoice. Matching
never proposes another company's invoice; the payment page says whose the invoice is, and:
- while the group does not allow cross-company receipts, that it is not allowed;
- once group finance allows them (audited), a clerk proposes one and a second person approves:
  in the UK books a sales receipt into BANK-EUR on DEMOIE (the customer account AIQ's
  intercompany connection names for the Irish company: the UK company now owes it 150.00), in
  the Irish books a sales credit journal on DUBLNB to the intercompany GL account, allocated
  against the invoice, which is paid. Each entry exactly once, also when AIQ's answer to one
  of them is lost after it committed.
"""

from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied

from ledger.aiq.client import AiqClient
from ledger.models import BankAccount, Entity, OutboxCommand
from ledger.sync.intercompany import sync_intercompany_connections
from ledger.sync.pull import sync_banks, sync_customers, sync_gl_accounts, sync_tax_codes
from payments.models import CrossCompanyReceipt, Payment
from payments.services.cross_company import (
    cross_company_invoices,
    cross_company_receipt_approve,
    cross_company_receipt_propose,
    cross_company_receipts_allowed,
    group_policy_set,
)
from payments.services.later import LaterRefused
from staff.models import AuditEntry
from tests.refunds_support import (
    account_balance,
    drain_all,
    make_invoice,
    seed_roles_without_matching,
    setup_books,
)
from tests.test_plans_factories import make_payment

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _seeded(transactional_db, settings):
    seed_roles_without_matching()
    settings.OUTBOX_SETTLE_SECONDS = 0


@pytest.fixture
def group(aiq_sandbox, entity, audit_flushable):
    """Both companies' books from the sandbox, and AIQ's intercompany connection."""
    setup_books(entity)
    ireland = Entity.objects.create(
        name="Demo Trading Ireland", company_id="demo-ie", region="sandbox", api_version="2.0",
        base_currency="EUR", credentials_key="DEMO",
    )  # fmt: skip
    client = AiqClient.for_entity(ireland)
    for sync in (sync_banks, sync_gl_accounts, sync_tax_codes, sync_customers):
        sync(client, ireland)
    ireland.default_bank_account = BankAccount.objects.get(entity=ireland, currency="EUR")
    ireland.save(update_fields=["default_bank_account"])
    assert sync_intercompany_connections(AiqClient.for_entity(entity), entity) == 1
    invoice = make_invoice(ireland, "DUBLNB", [("Ovens serviced", "4010", "150.00", "T0")])
    payment = make_payment(entity, "150.00", currency="EUR", refs=[invoice.invoice_number])
    return {"uk": entity, "ie": ireland, "invoice": invoice, "payment": payment}


def test_not_allowed_by_the_group_the_payment_page_explains_and_nothing_is_booked(
    group, alice, client
):
    payment, invoice = group["payment"], group["invoice"]
    [found] = cross_company_invoices(payment)
    assert found.invoice == invoice
    assert found.text == (
        f"{invoice.invoice_number} belongs to Demo Trading Ireland; cross-company receipts "
        "are not allowed."
    )
    with pytest.raises(LaterRefused, match="cross-company receipts are not allowed"):
        cross_company_receipt_propose(actor=alice, payment=payment, invoice=invoice)
    client.force_login(alice)
    page = client.get(f"/payments/{payment.pk}/").content.decode()
    assert "belongs to Demo Trading Ireland; cross-company receipts are not allowed" in page
    answer = client.post(f"/payments/{payment.pk}/cross-company", {"invoice_id": str(invoice.pk)})
    assert answer.status_code == 400
    assert "cross-company receipts are not allowed" in answer.content.decode()
    assert not CrossCompanyReceipt.objects.exists() and not OutboxCommand.objects.exists()


def test_from_the_payment_page_a_clerk_proposes_and_an_approver_approves(
    group, alice, bob, carol, client
):
    payment, invoice = group["payment"], group["invoice"]
    group_policy_set(actor=carol, cross_company_receipts=True)
    client.force_login(alice)
    page = client.get(f"/payments/{payment.pk}/").content.decode()
    assert f"{invoice.invoice_number} belongs to Demo Trading Ireland." in page
    assert "Propose a cross-company receipt" in page
    answer = client.post(f"/payments/{payment.pk}/cross-company", {"invoice_id": str(invoice.pk)})
    assert answer.status_code == 302
    row = CrossCompanyReceipt.objects.get()
    page = client.get(f"/payments/{payment.pk}/").content.decode()
    assert "Awaiting approval" in page and "Propose a cross-company receipt" not in page
    # the maker cannot approve it; the approver can, from the list
    client.post(f"/later/cross-company/{row.pk}/approve")
    row.refresh_from_db()
    assert row.state == "awaiting_approval" and not OutboxCommand.objects.exists()
    client.force_login(bob)
    assert f"cross-company-{row.pk}" in client.get("/later/").content.decode()
    client.post(f"/later/cross-company/{row.pk}/approve")
    row.refresh_from_db()
    assert row.state == "sent" and OutboxCommand.objects.count() == 3


@pytest.mark.parametrize(
    "dropped",
    [None, "SaveSalesReceiptGetBackTransactionID", "PostSalesCreditJournalGetBackTransactionID"],
    ids=["no fault", "receipt's answer lost", "journal's answer lost"],
)
def test_allowed_both_companies_entries_are_made_once_each(
    group, alice, bob, carol, aiq_sandbox, dropped
):
    payment, invoice = group["payment"], group["invoice"]
    group_policy_set(actor=carol, cross_company_receipts=True)
    assert AuditEntry.objects.filter(action="group_policy.change").count() == 1
    demoie_before = account_balance(aiq_sandbox, "DEMOIE", "demo")
    bakery_before = account_balance(aiq_sandbox, "DUBLNB", "demo-ie")
    gl_before = aiq_sandbox.state.gl_total("1400", entity="demo-ie")

    [found] = cross_company_invoices(payment)
    assert found.problem == ""
    row = cross_company_receipt_propose(actor=alice, payment=payment, invoice=invoice)
    # money between companies always waits for a second person; nothing is queued before
    assert (row.state, row.amount, row.intercompany_customer_code) == (
        "awaiting_approval", Decimal("150.00"), "DEMOIE",
    )  # fmt: skip
    assert not OutboxCommand.objects.exists()
    payment.refresh_from_db()
    assert payment.match_state == Payment.MatchState.AWAITING_APPROVAL
    with pytest.raises(PermissionDenied):
        cross_company_receipt_approve(receipt=row, actor=alice)  # the maker
    # while it waits, the invoice's money is held: a second proposal is refused
    other = make_payment(group["uk"], "150.00", currency="EUR", refs=[invoice.invoice_number])
    with pytest.raises(LaterRefused, match="more than the invoice has open"):
        cross_company_receipt_propose(actor=alice, payment=other, invoice=invoice)

    cross_company_receipt_approve(receipt=row, actor=bob)
    if dropped:
        aiq_sandbox.faults.update(drop_next=1, ops=[dropped])
    drain_all()
    if dropped:
        assert aiq_sandbox.faults.stats.drops == 1

    row.refresh_from_db()
    assert row.state == "confirmed"
    commands = {
        c.external_reference: (c.entity.company_id, c.state) for c in OutboxCommand.objects.all()
    }
    assert commands == {
        f"XCR-{row.pk}-RCPT": ("demo", "confirmed"),
        f"XCR-{row.pk}-JNL": ("demo-ie", "confirmed"),
        f"XCR-{row.pk}-ALLOC": ("demo-ie", "confirmed"),
    }
    # the UK books: one receipt into BANK-EUR on the Irish company's customer account, on account
    [receipt] = aiq_sandbox.state.transactions(f"XCR-{row.pk}-RCPT", entity="demo")
    assert receipt["type"] == "SalesReceipt" and receipt["currency"] == "EUR"
    assert aiq_sandbox.state.account_code(receipt["account_id"]) == ("Sales", "DEMOIE")
    assert account_balance(aiq_sandbox, "DEMOIE", "demo") == demoie_before - Decimal("150.00")
    # the Irish books: one credit journal on the bakery, allocated: the invoice is paid, and
    # what the UK company owes is on the intercompany GL account
    [journal] = aiq_sandbox.state.transactions(f"XCR-{row.pk}-JNL", entity="demo-ie")
    assert aiq_sandbox.state.account_code(journal["account_id"]) == ("Sales", "DUBLNB")
    assert aiq_sandbox.state.outstanding(invoice.aiq_transaction_id) == 0
    assert account_balance(aiq_sandbox, "DUBLNB", "demo-ie") == bakery_before - Decimal("150.00")
    assert aiq_sandbox.state.gl_total("1400", entity="demo-ie") == gl_before + Decimal("150.00")
    assert not aiq_sandbox.state.transactions(f"XCR-{row.pk}-RCPT", entity="demo-ie")

    payment.refresh_from_db()
    invoice.refresh_from_db()
    assert payment.match_state == Payment.MatchState.SENT
    assert (invoice.outstanding_amount, invoice.status) == (Decimal("0.00"), "paid")
    actions = set(AuditEntry.objects.filter(object_id=str(row.pk)).values_list("action", flat=True))
    assert {
        "cross_company_receipt.create",
        "cross_company_receipt.approve",
        "cross_company_receipt.confirm",
    } <= actions


def test_an_approver_of_one_company_only_cannot_approve_it(group, alice, bob, carol):
    from tests.companies_support import grant

    group_policy_set(actor=carol, cross_company_receipts=True)
    row = cross_company_receipt_propose(
        actor=alice, payment=group["payment"], invoice=group["invoice"]
    )
    grant(bob, group["uk"])  # bob approves for the UK company only
    with pytest.raises(PermissionDenied, match="both companies"):
        cross_company_receipt_approve(receipt=row, actor=bob)
    assert not OutboxCommand.objects.exists()
    with pytest.raises(PermissionDenied):
        group_policy_set(actor=bob, cross_company_receipts=False)  # group finance only


def test_group_finance_allows_them_on_the_group_policy_screen_audited(client, bob, carol):
    client.force_login(bob)
    page = client.get("/group-policy/").content.decode()
    assert "not allowed" in page and "Allow cross-company receipts" not in page
    assert client.post("/group-policy/", {"cross_company_receipts": "on"}).status_code == 403
    assert not cross_company_receipts_allowed()
    client.force_login(carol)
    assert client.post("/group-policy/", {"cross_company_receipts": "yes"}).status_code == 400
    answer = client.post("/group-policy/", {"cross_company_receipts": "on"}, follow=True)
    assert "Cross-company receipts are allowed." in answer.content.decode()
    assert cross_company_receipts_allowed()
    [entry] = AuditEntry.objects.filter(action="group_policy.change")
    assert (entry.actor, entry.before, entry.after) == (
        carol, {"cross_company_receipts": False}, {"cross_company_receipts": True},
    )  # fmt: skip
    client.post("/group-policy/", {"cross_company_receipts": "off"})
    assert not cross_company_receipts_allowed()
    assert AuditEntry.objects.filter(action="group_policy.change").count() == 2
