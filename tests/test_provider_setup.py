"""Provider books set-up (issue 17.6): the provider account's admin form asks AIQ
(GetGLAccountList, the sandbox over HTTP) whether every GL account the books will post to
exists and can take a journal; AIQ has no operation that creates a GL account, so a missing or
unpostable one is named on the form and nothing is saved."""

import pytest

from ledger.aiq.client import AiqClient
from ledger.models import BankAccount
from payments.models import ProviderAccount
from staff.models import AuditEntry
from tests.refunds_support import setup_books

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/admin/payments/provideraccount/add/"


@pytest.fixture
def form(aiq_sandbox, entity, audit_flushable):
    from ledger.sync.pull import sync_banks

    setup_books(entity)
    aiq_sandbox.add_bank("GC-GBP", "1160", "GBP")
    sync_banks(AiqClient.for_entity(entity), entity)
    return {
        "entity": entity.pk, "source": "gocardless", "currency": "GBP", "name": "GoCardless GBP",
        "clearing_bank_account": BankAccount.objects.get(bank_account_code="GC-GBP").pk,
        "payout_bank_account": BankAccount.objects.get(bank_account_code="BANK-GBP").pk,
        "fees_gl_account_code": "7500", "fee_tax_gl_account_code": "",
        "disputes_gl_account_code": "9990", "dispute_loss_gl_account_code": "8100",
        "fx_gl_account_code": "", "statement_narrative": "GOCARDLESS", "payout_window_days": 3,
        "api_key_env": "", "webhook_secret_env": "",
    }  # fmt: skip


def test_set_up_names_a_gl_account_aiq_does_not_have_or_a_journal_cannot_post_to(
    client, carol, form
):
    client.force_login(carol)
    page = client.post(URL, {**form, "fees_gl_account_code": "7999",
                             "disputes_gl_account_code": "1100",
                             "dispute_loss_gl_account_code": "1200"})  # fmt: skip
    assert page.status_code == 200
    html = page.content.decode()
    assert "fees GL account 7999 is not in AIQ&#x27;s GL list" in html
    # AIQ's API cannot create it: the admin is told where to add it and why
    assert "add it in AIQ&#x27;s chart of accounts first, then save again" in html
    assert "SaveGLDefaults only sets the defaults" in html
    assert "disputes GL account 1100 is the debtors control account in AIQ" in html
    assert "dispute loss GL account 1200 is a bank account&#x27;s GL account in AIQ" in html
    assert not ProviderAccount.objects.exists()

    page = client.post(URL, {**form, "dispute_loss_gl_account_code": ""})
    assert "a lost dispute would stay on the disputes account" in page.content.decode()

    assert client.post(URL, form).status_code == 302
    account = ProviderAccount.objects.get()
    assert account.disputes_gl_account_code == "9990"
    assert AuditEntry.objects.filter(action="admin.add", object_id=str(account.pk)).exists()


def test_set_up_when_aiq_cannot_be_asked_saves_nothing_and_says_so(
    client, carol, form, aiq_sandbox
):
    aiq_sandbox.faults.update(failure_rate=1.0, failure_mode="aiq", ops=["GetGLAccountList"])
    client.force_login(carol)
    page = client.post(URL, form)
    assert page.status_code == 200
    assert "the GL accounts were not checked, so nothing was saved" in page.content.decode()
    assert not ProviderAccount.objects.exists()


def test_the_daily_clearing_check_keeps_each_accounts_balance_beside_the_providers(
    form, aiq_sandbox
):
    from ledger.management.commands.setup_schedules import SCHEDULES
    from payments.models import ClearingBalance
    from payments.tasks import clearing_checks_task

    assert SCHEDULES["clearing-check"] == ("payments.tasks.clearing_checks_task", 24 * 60)
    fields = {k: v for k, v in form.items() if not k.endswith(("_account", "entity"))}
    account = ProviderAccount.objects.create(
        entity_id=form["entity"], clearing_bank_account_id=form["clearing_bank_account"],
        payout_bank_account_id=form["payout_bank_account"], **fields,
    )  # fmt: skip
    assert clearing_checks_task() == {"checked": 1, "failed": [], "differences": []}
    row = ClearingBalance.objects.get()
    assert (row.provider_account, row.aiq_balance, row.provider_balance) == (account, 0, 0)
    assert row.checked_by is None and "our records" in row.provider_basis

    aiq_sandbox.faults.update(failure_rate=1.0, failure_mode="aiq", ops=["GetBankAccountBalance"])
    assert clearing_checks_task()["failed"] == ["GoCardless GBP"]  # tomorrow, or "Check now"
    assert ClearingBalance.objects.count() == 1
