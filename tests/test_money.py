from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.money import (
    MoneyError,
    exact,
    exponent,
    format_money,
    from_minor,
    split,
    to_minor,
)

CURRENCIES = ["GBP", "EUR", "USD", "JPY", "KRW", "CLP", "KWD", "BHD", "JOD", "OMR", "TND"]


@pytest.mark.parametrize(
    "currency, expected",
    [
        ("GBP", 2),
        ("eur", 2),
        ("JPY", 0),
        ("KRW", 0),
        ("KWD", 3),
        ("BHD", 3),
        ("JOD", 3),
        ("OMR", 3),
        ("TND", 3),
    ],
)
def test_exponents_follow_iso_4217(currency, expected):
    assert exponent(currency) == expected


def test_worked_conversions():
    assert to_minor(Decimal("12.34"), "GBP") == 1234
    assert to_minor(1234, "JPY") == 1234
    assert to_minor("1.234", "KWD") == 1234
    assert from_minor(1234, "GBP") == Decimal("12.34")
    assert from_minor(1234, "JPY") == Decimal("1234")
    assert from_minor(1234, "KWD") == Decimal("1.234")


def test_refuses_floats_and_inexact_amounts():
    with pytest.raises(MoneyError):
        to_minor(12.34, "GBP")
    with pytest.raises(MoneyError):
        to_minor(Decimal("12.345"), "GBP")
    with pytest.raises(MoneyError):
        to_minor(Decimal("1.5"), "JPY")
    with pytest.raises(MoneyError):
        from_minor(12.0, "GBP")
    with pytest.raises(MoneyError):
        exponent("POUNDS")


@given(st.sampled_from(CURRENCIES), st.integers(min_value=-(10**15), max_value=10**15))
def test_minor_major_round_trip(currency, minor):
    assert to_minor(from_minor(minor, currency), currency) == minor


@given(
    st.sampled_from(CURRENCIES),
    st.integers(min_value=0, max_value=10**15),
    st.lists(st.integers(min_value=0, max_value=1000), min_size=1, max_size=12).filter(any),
)
def test_split_adds_back_up_exactly(currency, minor, weights):
    amount = from_minor(minor, currency)
    parts = split(amount, currency, weights)
    assert sum(parts) == amount
    assert len(parts) == len(weights)
    assert all(part == exact(part, currency) for part in parts)
    # no part is more than one minor unit away from its exact share
    unit = Decimal(1).scaleb(-exponent(currency))
    total_weight = sum(weights)
    for part, weight in zip(parts, weights, strict=True):
        assert abs(part - amount * weight / total_weight) < unit


def test_split_three_ways_gives_largest_remainder_first():
    assert split(Decimal("100.00"), "GBP", [1, 1, 1]) == [
        Decimal("33.34"),
        Decimal("33.33"),
        Decimal("33.33"),
    ]


def test_format_uses_currency_precision():
    assert format_money(Decimal("1234.5"), "GBP") == "1,234.50 GBP"
    assert format_money(Decimal("1234"), "JPY") == "1,234 JPY"
    assert format_money(Decimal("1.5"), "KWD") == "1.500 KWD"
