"""Cross-company receipts ranked by the matcher, worked through a bank statement import and the
sandbox's books of both companies.

Demo Ltd (UK, GBP) banks EUR in BANK-EUR. Its bank sends a camt.054 notification: EUR money
from a customer of the Irish sister company (Dublin Bay Bakery, DUBLNB) whose remittance names
the Irish company's invoice. The UK company has no invoice of that number, so:
- while the group does not allow cross-company receipts, matching proposes nothing and says so;
- once it does, matching proposes the cross-company receipt, ranked, with its explanation;
  a clerk accepts it, a second person approves, and the outbox makes both companies' entries;
- where the group's policy also lets matching approve them, the exact reference for exactly
  the open amount is booked with no person; a part payment never is, whatever the policy.
"""

from decimal import Decimal

import pytest

from ledger.aiq.client import AiqClient
from ledger.models import BankAccount, Entity, OutboxCommand
from ledger.sync.intercompany import sync_intercompany_connections
from ledger.sync.pull import sync_banks, sync_customers, sync_gl_accounts, sync_tax_codes
from payments.models import CrossCompanyReceipt, MatchProposal, Payment, StatementAccount
from payments.models_money_later import GroupPolicy
from payments.services.cross_company import cross_company_receipt_approve, group_policy_set
from payments.services.matching_runs import matching_run
from payments.services.proposals import proposal_accept
from payments.services.statements import statement_import, statement_preview
from staff.models import AuditEntry
from tests.refunds_support import (
    account_balance,
    drain_all,
    make_invoice,
    seed_roles_without_matching,
    setup_books,
)

pytestmark = pytest.mark.django_db(transaction=True)

UK_EUR_IBAN = "GB82WEST12345698765432"
NOTIFICATION = """<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.08">
  <BkToCstmrDbtCdtNtfctn>
    <GrpHdr><MsgId>NTF-{ref}</MsgId><CreDtTm>2025-03-05T10:00:00</CreDtTm></GrpHdr>
    <Ntfctn>
      <Id>NTF-{ref}-1</Id>
      <Acct><Id><IBAN>{iban}</IBAN></Id><Ccy>EUR</Ccy></Acct>
      <Ntry>
        <Amt Ccy="EUR">{amount}</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>
        <BookgDt><Dt>2025-03-05</Dt></BookgDt><AcctSvcrRef>WB-{ref}</AcctSvcrRef>
        <NtryDtls><TxDtls>
          <Refs><EndToEndId>E2E-{ref}</EndToEndId></Refs>
          <RltdPties><Dbtr><Pty><Nm>Dublin Bay Bakery</Nm></Pty></Dbtr>
            <DbtrAcct><Id><IBAN>IE64IRCE92050112345678</IBAN></Id></DbtrAcct></RltdPties>
          <RmtInf><Ustrd>{remittance}</Ustrd></RmtInf>
        </TxDtls></NtryDtls>
      </Ntry>
    </Ntfctn>
  </BkToCstmrDbtCdtNtfctn>
</Document>
"""


@pytest.fixture(autouse=True)
def _seeded(transactional_db, settings):
    seed_roles_without_matching()  # no rule of the UK company's own fits: only the policy's
    settings.OUTBOX_SETTLE_SECONDS = 0


@pytest.fixture
def group(aiq_sandbox, entity, audit_flushable):
    """Both companies' books from the sandbox, AIQ's intercompany connection, the UK
    company's EUR bank statement account and the Irish invoice (EUR 150.00)."""
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
    StatementAccount.objects.create(
        entity=entity,
        bank_account=BankAccount.objects.get(entity=entity, bank_account_code="BANK-EUR"),
        account_key=UK_EUR_IBAN,
        name="Westpac EUR",
    )
    invoice = make_invoice(ireland, "DUBLNB", [("Ovens serviced", "4010", "150.00", "T0")])
    return {"uk": entity, "ie": ireland, "invoice": invoice}


def _bank_notification(user, ref: str, amount: str, remittance: str) -> Payment:
    """The UK company's bank notification imported as a person uploads it, then matched."""
    content = NOTIFICATION.format(
        ref=ref, iban=UK_EUR_IBAN, amount=amount, remittance=remittance
    ).encode()
    preview = statement_preview(
        user=user, import_format=None, filename=f"{ref}.xml", content=content
    )
    assert preview.ok, (preview.file_error, preview.parsed and preview.parsed.errors)
    statement_import(user=user, batch=preview.batch, content=content)
    payment = Payment.objects.get(end_to_end_id=f"E2E-{ref}")
    matching_run(dry_run=False, payment_ids=[payment.pk])
    payment.refresh_from_db()
    return payment


def _books(sandbox) -> dict:
    return {
        "uk_demoie": account_balance(sandbox, "DEMOIE", "demo"),
        "ie_bakery": account_balance(sandbox, "DUBLNB", "demo-ie"),
        "ie_gl_1400": sandbox.state.gl_total("1400", entity="demo-ie"),
    }


def test_not_allowed_nothing_is_proposed_and_the_payment_says_why(group, alice, aiq_sandbox):
    invoice = group["invoice"]
    before = _books(aiq_sandbox)
    payment = _bank_notification(alice, "A1", "150.00", f"{invoice.invoice_number} OVENS")

    assert payment.entity == group["uk"]  # the account it arrived through
    assert not payment.proposals.exists()
    assert payment.match_state == Payment.MatchState.UNMATCHED
    notes = " ".join(payment.match_notes["notes"])
    assert f"{invoice.invoice_number}, which belongs to Demo Trading Ireland" in notes
    assert "the group does not allow cross-company receipts" in notes
    assert not CrossCompanyReceipt.objects.exists() and not OutboxCommand.objects.exists()
    assert _books(aiq_sandbox) == before


def test_allowed_the_matcher_proposes_it_and_both_companies_books_follow(
    group, alice, bob, carol, aiq_sandbox, client
):
    invoice = group["invoice"]
    group_policy_set(actor=carol, cross_company_receipts=True)
    before = _books(aiq_sandbox)
    payment = _bank_notification(alice, "B1", "150.00", f"{invoice.invoice_number} OVENS")

    [proposal] = payment.proposals.all()
    assert payment.match_state == Payment.MatchState.PROPOSED
    assert (proposal.rule_kind, proposal.rank, proposal.confidence) == (
        "cross_company", 1, Decimal("0.950"),
    )  # fmt: skip
    assert proposal.explanation == (
        f"'{invoice.invoice_number}' names {invoice.invoice_number} of Demo Trading Ireland; "
        "the group allows cross-company receipts. 150.00 equals its open amount 150.00."
    )
    assert proposal.lines[0]["invoice_id"] == invoice.pk
    assert proposal.evidence["cross_company"]["company"] == "Demo Trading Ireland"
    # the policy allows receipts but not approving them without a person: nothing is booked
    assert not CrossCompanyReceipt.objects.exists() and not OutboxCommand.objects.exists()
    client.force_login(alice)
    page = client.get(f"/payments/{payment.pk}/").content.decode()
    assert "of Demo Trading Ireland; the group allows cross-company receipts" in page
    assert "is Demo Trading Ireland&#x27;s invoice: received as a cross-company receipt" in page
    assert "Propose a cross-company receipt" in page
    editor = page.split("data-allocation-editor", 1)[1].split("</form>", 1)[0]
    assert f'name="proposal" value="{proposal.pk}"' not in editor  # not the editor's plan

    row = proposal_accept(payment=payment, actor=alice)  # the clerk accepts the proposal
    proposal.refresh_from_db()
    assert isinstance(row, CrossCompanyReceipt) and proposal.state == "accepted"
    assert (row.state, row.maker, row.amount) == ("awaiting_approval", alice, Decimal("150.00"))
    assert not OutboxCommand.objects.exists()
    cross_company_receipt_approve(receipt=row, actor=bob)
    drain_all()

    row.refresh_from_db()
    payment.refresh_from_db()
    assert row.state == "confirmed" and payment.match_state == Payment.MatchState.SENT
    # UK: a receipt into BANK-EUR on DEMOIE, on account (the UK company owes the Irish one);
    # Ireland: a credit journal on the bakery to 1400, allocated: the invoice is paid
    [receipt] = aiq_sandbox.state.transactions(f"XCR-{row.pk}-RCPT", entity="demo")
    assert aiq_sandbox.state.account_code(receipt["account_id"]) == ("Sales", "DEMOIE")
    assert aiq_sandbox.state.outstanding(invoice.aiq_transaction_id) == 0
    after = _books(aiq_sandbox)
    assert after == {
        "uk_demoie": before["uk_demoie"] - Decimal("150.00"),
        "ie_bakery": before["ie_bakery"] - Decimal("150.00"),
        "ie_gl_1400": before["ie_gl_1400"] + Decimal("150.00"),
    }


def test_the_policy_lets_matching_approve_only_the_exact_reference_and_amount(
    group, alice, carol, aiq_sandbox
):
    invoice = group["invoice"]
    group_policy_set(actor=carol, cross_company_receipts=True, cross_company_auto_approve=True)
    entry = AuditEntry.objects.filter(action="group_policy.change").latest("id")
    assert entry.after == {"cross_company_receipts": True, "cross_company_auto_approve": True}
    before = _books(aiq_sandbox)

    # a part payment: proposed lower and left for a person, policy or not
    part = _bank_notification(alice, "C1", "100.00", f"{invoice.invoice_number} PART")
    [proposal] = part.proposals.all()
    assert (proposal.rule_kind, proposal.confidence) == ("cross_company", Decimal("0.700"))
    assert "100.00 is part of its open amount 150.00" in proposal.explanation
    assert part.match_state == Payment.MatchState.PROPOSED
    assert not CrossCompanyReceipt.objects.exists() and not OutboxCommand.objects.exists()
    MatchProposal.objects.filter(pk=proposal.pk).update(state="rejected")  # a person's no

    # the exact reference for exactly the open amount: booked in both companies, no person
    whole = _bank_notification(alice, "C2", "150.00", f"{invoice.invoice_number}")
    row = CrossCompanyReceipt.objects.get(payment=whole)
    assert (row.maker, row.needs_approval) == (None, False)
    assert whole.proposals.get().state == "accepted"
    drain_all()
    row.refresh_from_db()
    assert row.state == "confirmed"
    assert aiq_sandbox.state.outstanding(invoice.aiq_transaction_id) == 0
    assert _books(aiq_sandbox) == {
        "uk_demoie": before["uk_demoie"] - Decimal("150.00"),
        "ie_bakery": before["ie_bakery"] - Decimal("150.00"),
        "ie_gl_1400": before["ie_gl_1400"] + Decimal("150.00"),
    }
    created = AuditEntry.objects.get(action="cross_company_receipt.create", object_id=str(row.pk))
    assert created.actor is None and "under the group's policy" in created.summary


def test_more_than_the_invoice_has_open_is_explained_not_proposed(group, alice, carol):
    invoice = group["invoice"]
    group_policy_set(actor=carol, cross_company_receipts=True, cross_company_auto_approve=True)
    payment = _bank_notification(alice, "D1", "180.00", invoice.invoice_number)
    assert not payment.proposals.exists()
    notes = " ".join(payment.match_notes["notes"])
    assert "is more than" in notes and "Demo Trading Ireland" in notes
    assert not CrossCompanyReceipt.objects.exists()
    assert GroupPolicy.objects.get().cross_company_auto_approve
