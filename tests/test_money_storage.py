"""MoneyField keeps amounts exact on SQLite and PostgreSQL, up to 10^12 major units."""

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db.models import Sum
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from ledger.models import Customer, Entity, Invoice


def _invoice(entity, customer, amount, number):
    return Invoice(
        entity=entity,
        customer=customer,
        invoice_number=number,
        currency="KWD",
        invoice_date=date(2026, 1, 1),
        net_amount=amount,
        gross_amount=amount,
        outstanding_amount=amount,
    )


class TestMoneyStorage(TestCase):
    def setUp(self):
        self.entity = Entity.objects.create(name="E", company_id="e", credentials_key="E")
        self.customer = Customer.objects.create(
            entity=self.entity, code="C1", name="C", currency="KWD"
        )

    @settings(max_examples=60, deadline=None)
    @given(st.integers(min_value=0, max_value=10**15))
    def test_round_trips_exactly_up_to_10_to_the_12(self, thousandths):
        amount = Decimal(thousandths).scaleb(-3)
        invoice = _invoice(self.entity, self.customer, amount, f"N{thousandths}")
        invoice.save()
        stored = Invoice.objects.get(pk=invoice.pk)
        assert stored.gross_amount == amount
        assert Invoice.objects.filter(gross_amount=amount, pk=invoice.pk).exists()
        invoice_sum = Invoice.objects.filter(pk=invoice.pk).aggregate(s=Sum("gross_amount"))["s"]
        assert invoice_sum == amount


@pytest.mark.django_db
def test_refuses_amounts_finer_than_a_thousandth(entity):
    customer = Customer.objects.create(entity=entity, code="C1", name="C", currency="GBP")
    with pytest.raises(ValidationError):
        _invoice(entity, customer, Decimal("0.0001"), "X").save()


@pytest.mark.django_db
def test_sum_of_largest_amounts_is_exact(entity):
    customer = Customer.objects.create(entity=entity, code="C1", name="C", currency="KWD")
    big = Decimal("999999999999.999")
    for n in range(3):
        _invoice(entity, customer, big, f"B{n}").save()
    assert Invoice.objects.aggregate(s=Sum("gross_amount"))["s"] == big * 3
