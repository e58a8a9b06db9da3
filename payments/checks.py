"""Start-up checks of the provider books (issue 17.1): every provider account with money in
has a clearing account, and what its books name exists in AIQ as last pulled.

Run by `manage.py check`, runserver and qcluster (registered in PaymentsConfig.ready()).
The mirror's bank and GL lists are AIQ's GetBankList / GetGLAccountList as the last pull
saw them (a clearing or payout bank the last pull did not see is named); `manage.py
provider_books_check` pulls both lists from AIQ first, then runs the same checks. A database that is not migrated
yet has nothing to check.
"""

from django.core.checks import Warning, register
from django.db import DatabaseError
from django.db.models import Max

from ledger.models import BankAccount, GLAccount
from payments.models import Payment, ProviderAccount
from payments.services.provider_setup import GL_ROLES, gl_problems


def provider_books_problems() -> list[str]:
    problems = []
    configured = {
        (a.entity_id, a.source, a.currency): a
        for a in ProviderAccount.objects.select_related(
            "entity", "clearing_bank_account", "payout_bank_account"
        )
    }
    seen = (
        Payment.objects.filter(source__in=["stripe", "gocardless"])
        .values_list("entity_id", "entity__name", "source", "currency")
        .distinct()
    )
    for entity_id, name, source, currency in seen:
        if (entity_id, source, currency) not in configured:
            problems.append(
                f"{name}: {source} {currency} payments have no provider account (clearing "
                "bank account, fees GL account): their receipts would go to the real bank"
            )
    # when each company's bank list was last pulled: a bank the pull did not see then is no
    # longer in AIQ's GetBankList
    last_pull = dict(
        BankAccount.objects.filter(entity_id__in={a.entity_id for a in configured.values()})
        .values("entity_id")
        .annotate(latest=Max("last_synced_at"))
        .values_list("entity_id", "latest")
    )
    for account in configured.values():
        entity = account.entity
        for label, bank in (
            ("clearing", account.clearing_bank_account),
            ("payout", account.payout_bank_account),
        ):
            if bank.entity_id != account.entity_id:
                problems.append(f"{account}: {label} bank {bank} belongs to another company")
            elif bank.last_synced_at is None or bank.last_synced_at < last_pull.get(
                bank.entity_id, bank.last_synced_at
            ):
                problems.append(
                    f"{account}: {label} bank {bank.bank_account_code} was not in AIQ's bank "
                    "list at the last pull (closed or renamed in AIQ?)"
                )
            elif bank.currency != account.currency:
                problems.append(
                    f"{account}: {label} bank {bank.bank_account_code} is in {bank.currency}, "
                    f"not {account.currency}"
                )
        known = dict(
            GLAccount.objects.filter(entity=entity, active=True).values_list("code", "account_type")
        )
        codes = {field: getattr(account, field) for _label, field in GL_ROLES}
        problems.extend(
            f"{entity.name}: {account}'s {text}"
            for text in gl_problems(codes, known, account.currency, entity.base_currency)
        )
    return problems


@register("aiqrecon")
def check_provider_books(app_configs=None, **kwargs):
    try:
        problems = provider_books_problems()
    except DatabaseError:  # not migrated yet (a fresh database, makemigrations --check)
        return []
    return [
        Warning(
            text, hint="Set it up in the admin: Payments > Provider accounts.", id="payments.W201"
        )
        for text in problems
    ]
