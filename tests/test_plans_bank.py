"""Which bank account a receipt lands in: the default one, or the one in the payment's currency."""

import pytest

from ledger.models import BankAccount, OutboxCommand
from payments.services.plan_lines import PlanRefused
from payments.services.plan_outbox import receiving_bank

pytestmark = pytest.mark.django_db


def _bank(entity, code, currency):
    return BankAccount.objects.create(
        entity=entity, bank_code="1200", bank_account_code=code, name=code, currency=currency
    )


def test_the_default_bank_when_it_is_in_the_payments_currency(entity):
    gbp = _bank(entity, "BANK-GBP", "GBP")
    _bank(entity, "BANK-GBP-2", "GBP")
    entity.default_bank_account = gbp
    assert receiving_bank(entity, "GBP") == gbp


def test_the_only_bank_in_the_payments_currency_otherwise(entity):
    entity.default_bank_account = _bank(entity, "BANK-GBP", "GBP")
    eur = _bank(entity, "BANK-EUR", "EUR")
    assert receiving_bank(entity, "EUR") == eur


def test_the_default_when_no_single_bank_has_the_currency(entity):
    gbp = _bank(entity, "BANK-GBP", "GBP")
    entity.default_bank_account = gbp
    assert receiving_bank(entity, "USD") == gbp
    _bank(entity, "EUR-1", "EUR")
    _bank(entity, "EUR-2", "EUR")
    assert receiving_bank(entity, "EUR") == gbp


def test_refuses_clearly_without_any_default(entity):
    with pytest.raises(PlanRefused, match="no default bank account"):
        receiving_bank(entity, "GBP")
    assert not OutboxCommand.objects.exists()
