"""Company settings screens (issue 21, point 2), worked against the sandbox's books.

Demo Trading Ltd (UK, GBP) and Demo Trading Ireland (EUR). Bob is a finance manager (the
approver role) of the UK company only; carol is group finance (admin, every company).

- Bob adds the UK company's own "reference" rule (approve without a person) and lowers the
  UK approval threshold to 100.00 from the screen: the next matching run leaves a 150.00
  payment naming its invoice waiting for a second person, and AIQ's books do not move. He
  raises it to 200.00: the next run approves the next 150.00 payment on its own and, through
  the outbox, AIQ holds the receipt allocated to the invoice. Each change is one audit entry
  with who, what, before and after.
- Bob cannot see or change the Irish company's settings (404), nor a setting shared by every
  company (403, nothing written); he copies the shared rule to his company instead.
"""

from decimal import Decimal

import pytest

from ledger.models import Entity, OutboxCommand
from payments.models import AllocationPlan, ImportFormat, MatchRule, Payment, StatementAccount
from payments.services.matching_runs import matching_run
from staff.models import AuditEntry
from tests.companies_support import grant, stripe_account
from tests.refunds_support import (
    account_balance,
    drain_all,
    make_invoice,
    seed_roles_without_matching,
    setup_books,
)
from tests.test_plans_factories import make_payment

MatchState = Payment.MatchState


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _ireland() -> Entity:
    return Entity.objects.create(
        name="Demo Trading Ireland", company_id="demo-ie", region="sandbox",
        base_currency="EUR", credentials_key="DEMO",
    )  # fmt: skip


def _rule_form(**changes) -> dict:
    form = {
        "name": "Reference and exact amount (UK)", "kind": "reference", "order": "10",
        "enabled": "on", "auto_approve": "on", "tolerance_absolute": "0",
        "tolerance_percent": "0", "tolerance_action": "discount",
        "write_off_gl_account_code": "", "max_invoices": "6", "max_candidates": "40",
    }  # fmt: skip
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


@pytest.mark.django_db(transaction=True)
def test_a_uk_manager_changes_the_uk_threshold_and_the_next_run_obeys_it(
    aiq_sandbox, entity, bob, client, settings, audit_flushable
):
    seed_roles_without_matching()
    settings.OUTBOX_SETTLE_SECONDS = 0
    setup_books(entity)
    _ireland()
    grant(bob, entity)
    client.force_login(bob)
    page = f"/settings/companies/{entity.pk}/"
    assert "1,000.00" in client.get(page).content.decode()  # the installation's, until set

    answer = client.post(f"/settings/companies/{entity.pk}/rules/new", _rule_form())
    assert answer.status_code == 302, answer.content.decode()
    rule = MatchRule.objects.get(entity=entity)
    assert client.post(page, {"approval_threshold": "100.00"}).status_code == 302
    entity.refresh_from_db()
    assert entity.approval_threshold == Decimal("100.00")

    owed = account_balance(aiq_sandbox, "ACME")
    first = make_invoice(entity, "ACME", [("Support", "4010", "150.00", "T0")])
    paid_first = make_payment(entity, "150.00", refs=[first.invoice_number])
    matching_run(dry_run=False, payment_ids=[paid_first.pk])
    paid_first.refresh_from_db()
    assert paid_first.match_state == MatchState.AWAITING_APPROVAL
    plan = AllocationPlan.objects.get(payment=paid_first)
    assert plan.approver is None and not OutboxCommand.objects.exists()
    drain_all()
    assert account_balance(aiq_sandbox, "ACME") == owed + Decimal("150.00")  # AIQ unmoved

    assert client.post(page, {"approval_threshold": "200.00"}).status_code == 302
    second = make_invoice(entity, "ACME", [("Support", "4010", "150.00", "T0")])
    paid_second = make_payment(entity, "150.00", refs=[second.invoice_number])
    matching_run(dry_run=False, payment_ids=[paid_second.pk])
    paid_second.refresh_from_db()
    assert paid_second.match_state in (MatchState.APPROVED, MatchState.SENT)
    drain_all()
    # AIQ: the second invoice is paid by a receipt, the first still owed
    assert account_balance(aiq_sandbox, "ACME") == owed + Decimal("150.00")
    paid_first.refresh_from_db()
    assert paid_first.match_state == MatchState.AWAITING_APPROVAL

    changes = AuditEntry.objects.filter(action="settings.entity.change").order_by("id")
    assert [(e.actor, e.before, e.after, e.entity_id) for e in changes] == [
        (bob, {"approval_threshold": None}, {"approval_threshold": "100.000"}, entity.pk),
        (bob, {"approval_threshold": "100.000"}, {"approval_threshold": "200.000"}, entity.pk),
    ]
    added = AuditEntry.objects.get(action="settings.matchrule.add")
    assert (added.actor, added.object_id, added.entity_id) == (bob, str(rule.pk), entity.pk)
    assert added.after["auto_approve"] is True and added.before is None


@pytest.mark.django_db
def test_a_uk_manager_cannot_see_or_change_the_irish_companys_settings(entity, bob, carol, client):
    ireland = _ireland()
    grant(bob, entity)
    irish_rule = MatchRule.objects.create(name="Irish reference", kind="reference", entity=ireland)
    irish_layout = ImportFormat.objects.create(
        name="Bank of Ireland CSV", entity=ireland, column_map={"date": "Date", "amount": "Amt"}
    )
    irish_bank = StatementAccount.objects.create(entity=ireland, account_key="IE29AIBK9311")
    irish_stripe = stripe_account(ireland, "EUR", key_env="STRIPE_IE_API_KEY")
    client.force_login(bob)
    before = AuditEntry.objects.count()
    for url, data in [
        (f"/settings/companies/{ireland.pk}/", {"approval_threshold": "1.00"}),
        (f"/settings/companies/{ireland.pk}/rules/new", _rule_form()),
        (f"/settings/rules/{irish_rule.pk}/", _rule_form(auto_approve=None)),
        (f"/settings/layouts/{irish_layout.pk}/", {"name": "x"}),
        (f"/settings/bank-accounts/{irish_bank.pk}/", {"name": "x"}),
        (f"/settings/provider-accounts/{irish_stripe.pk}/", {"name": "x"}),
        (f"/settings/companies/{ireland.pk}/layouts/new", {"name": "x"}),
        (f"/settings/companies/{ireland.pk}/provider-accounts/new", {"name": "x"}),
    ]:
        assert client.get(url).status_code == 404, url
        assert client.post(url, data).status_code == 404, url
    ireland.refresh_from_db()
    irish_rule.refresh_from_db()
    assert ireland.approval_threshold is None and irish_rule.auto_approve is False
    assert AuditEntry.objects.count() == before
    listed = client.get("/settings/").content.decode()
    assert "Demo Trading Ireland" not in listed and entity.name in listed
    client.force_login(carol)  # group finance sees and changes every company's
    assert "Demo Trading Ireland" in client.get("/settings/").content.decode()
    assert client.get(f"/settings/rules/{irish_rule.pk}/").status_code == 200


@pytest.mark.django_db
def test_a_shared_rule_is_group_finances_and_a_manager_copies_it(entity, bob, carol, client):
    _ireland()
    grant(bob, entity)
    shared = MatchRule.objects.create(name="Shared tolerance", kind="tolerance", order=50)
    client.force_login(bob)
    url = f"/settings/rules/{shared.pk}/"
    assert 'data-testid="read-only"' in client.get(url).content.decode()
    answer = client.post(url, _rule_form(kind="tolerance", tolerance_absolute="5.00"))
    assert answer.status_code == 403
    shared.refresh_from_db()
    assert shared.tolerance_absolute == 0
    answer = client.post(f"/settings/companies/{entity.pk}/rules/{shared.pk}/copy")
    own = MatchRule.objects.get(entity=entity)
    assert answer.status_code == 302 and answer["Location"] == f"/settings/rules/{own.pk}/"
    assert client.post(
        f"/settings/rules/{own.pk}/",
        _rule_form(name=own.name, kind="tolerance", tolerance_action="write_off", order="50",
                   tolerance_absolute="2.50", auto_approve=None),
    ).status_code == 400  # fmt: skip
    answer = client.post(
        f"/settings/rules/{own.pk}/",
        _rule_form(name=own.name, kind="tolerance", tolerance_action="write_off", order="50",
                   tolerance_absolute="2.50", auto_approve=None,
                   write_off_gl_account_code="7906"),
    )  # fmt: skip
    assert answer.status_code == 302
    own.refresh_from_db()
    assert (own.tolerance_absolute, own.write_off_gl_account_code) == (Decimal("2.50"), "7906")
    entry = AuditEntry.objects.get(action="settings.matchrule.change")
    assert entry.before == {
        "tolerance_absolute": "0.000", "tolerance_action": "discount",
        "write_off_gl_account_code": "",
    }  # fmt: skip
    assert entry.after["tolerance_absolute"] == "2.500" and entry.entity_id == entity.pk
    page = client.get(f"/settings/companies/{entity.pk}/").content.decode()
    assert "(replaced here)" in page
    # group finance changes the shared one
    client.force_login(carol)
    assert client.post(url, _rule_form(kind="tolerance", name="Shared tolerance",
                                       tolerance_absolute="1.00", auto_approve=None)
                       ).status_code == 302  # fmt: skip
    shared.refresh_from_db()
    assert shared.tolerance_absolute == Decimal("1.00")


@pytest.mark.django_db
def test_a_statement_layout_is_checked_and_a_bank_account_takes_only_its_companys(
    entity, bob, client
):
    ireland = _ireland()
    grant(bob, entity)
    client.force_login(bob)
    url = f"/settings/companies/{entity.pk}/layouts/new"
    bad = {"name": "Lloyds CSV", "source": "bank", "date_format": "dd/mm/yyyy",
           "header_row": "0", "column_amount": "Credit", "column_indicator": "#x"}  # fmt: skip
    page = client.post(url, bad)
    text = page.content.decode()
    assert page.status_code == 400
    assert "is not a date pattern" in text and "Name the column holding the date" in text
    assert "A position is # and a number" in text, text
    assert not ImportFormat.objects.filter(name="Lloyds CSV").exists()
    good = {**bad, "date_format": "%d/%m/%Y", "column_date": "Posting Date",
            "column_indicator": "D/C", "amounts_inverted": "on", "header_row": "3"}  # fmt: skip
    assert client.post(url, good).status_code == 302
    layout = ImportFormat.objects.get(name="Lloyds CSV")
    assert layout.entity == entity and layout.amounts_inverted and layout.header_row == 3
    assert layout.column_map == {"date": "Posting Date", "amount": "Credit", "indicator": "D/C"}
    irish_layout = ImportFormat.objects.create(name="AIB", entity=ireland, column_map={})
    account = StatementAccount.objects.create(entity=entity, account_key="GB29NWBK6016")
    url = f"/settings/bank-accounts/{account.pk}/"
    assert client.post(url, {"import_format": irish_layout.pk}).status_code == 400
    assert client.post(url, {"name": "Main", "import_format": layout.pk}).status_code == 302
    account.refresh_from_db()
    assert account.import_format == layout


@pytest.mark.django_db
def test_a_provider_accounts_secrets_are_named_never_shown(entity, bob, client, monkeypatch):
    grant(bob, entity)
    monkeypatch.setenv("STRIPE_UK_API_KEY", "sk_test_never_on_a_page")
    account = stripe_account(entity, "GBP", key_env="STRIPE_UK_API_KEY", secret_env="UK_WHSEC")
    client.force_login(bob)
    page = client.get(f"/settings/provider-accounts/{account.pk}/").content.decode()
    assert "sk_test_never_on_a_page" not in page
    assert "STRIPE_UK_API_KEY" in page and "UK_WHSEC" in page
    assert "<strong>set</strong>" in page and "<strong>not set</strong>" in page
    assert f"http://testserver/webhooks/stripe/{account.pk}/" in page  # the address to give Stripe


@pytest.mark.django_db(transaction=True)
def test_a_uk_manager_adds_a_gocardless_account_checked_against_aiqs_gl_list(
    aiq_sandbox, entity, bob, client, audit_flushable
):
    from ledger.aiq.client import AiqClient
    from ledger.models import BankAccount
    from ledger.sync.pull import sync_banks
    from payments.models_provider import ProviderAccount

    seed_roles_without_matching()
    setup_books(entity)
    aiq_sandbox.add_bank("GC-GBP", "1160", "GBP")
    sync_banks(AiqClient.for_entity(entity), entity)
    grant(bob, entity)
    client.force_login(bob)
    url = f"/settings/companies/{entity.pk}/provider-accounts/new"
    form = {
        "source": "gocardless", "currency": "GBP", "name": "GoCardless GBP",
        "clearing_bank_account": BankAccount.objects.get(bank_account_code="GC-GBP").pk,
        "payout_bank_account": BankAccount.objects.get(bank_account_code="BANK-GBP").pk,
        "fees_gl_account_code": "7999", "disputes_gl_account_code": "9990",
        "dispute_loss_gl_account_code": "8100", "statement_narrative": "GOCARDLESS",
        "payout_window_days": "3", "api_key_env": "GC_UK_TOKEN", "webhook_secret_env": "",
    }  # fmt: skip
    page = client.post(url, form)
    assert page.status_code == 400
    assert "fees GL account 7999 is not in AIQ&#x27;s GL list" in page.content.decode()
    assert client.post(url, {**form, "fees_gl_account_code": "7500",
                             "api_key_env": "sk_live_abc"}).status_code == 400  # fmt: skip
    assert not ProviderAccount.objects.exists()
    assert client.post(url, {**form, "fees_gl_account_code": "7500"}).status_code == 302
    account = ProviderAccount.objects.get()
    assert (account.entity, account.fees_gl_account_code) == (entity, "7500")
    entry = AuditEntry.objects.get(action="settings.provideraccount.add")
    assert (entry.actor, entry.entity_id, entry.after["api_key_env"]) == (
        bob,
        entity.pk,
        "GC_UK_TOKEN",
    )
