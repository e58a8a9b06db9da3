"""Money: Decimal amounts with the currency's exponent. Never a float.

Every conversion between major units (what AIQ and people use: 12.34) and minor units (what
Stripe uses: 1234) goes through this module, with the ISO 4217 exponent of the currency:
0 for JPY and other zero-decimal currencies, 3 for BHD/JOD/KWD/OMR/TND, 2 for the rest.
"""

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

# ISO 4217 minor-unit exponents that are not 2.
_ZERO_DECIMAL = frozenset(
    "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split()
)
_THREE_DECIMAL = frozenset("BHD IQD JOD KWD LYD OMR TND".split())
MAX_EXPONENT = 3
# The largest amount anything here holds: MoneyField keeps thousandths in a signed 64-bit
# integer (9.2 * 10^15 major units). A bound also keeps every quantize() inside Decimal's
# 28-digit precision: 1e30 or 1E+999999 used to raise InvalidOperation deep in a service.
MAX_AMOUNT = Decimal(10) ** 15


class MoneyError(ValueError):
    """An amount that cannot be represented exactly in its currency, or a bad currency code."""


def normalise_currency(currency: str) -> str:
    code = (currency or "").strip().upper()
    if len(code) != 3 or not code.isalpha() or not code.isascii():
        raise MoneyError(f"{currency!r} is not an ISO 4217 currency code (three letters).")
    return code


def exponent(currency: str) -> int:
    code = normalise_currency(currency)
    if code in _ZERO_DECIMAL:
        return 0
    if code in _THREE_DECIMAL:
        return 3
    return 2


def to_decimal(value) -> Decimal:
    """Accept Decimal, int or a decimal string; refuse floats, which are never exact."""
    if isinstance(value, bool) or isinstance(value, float):
        raise MoneyError(f"{value!r}: money must be a Decimal, int or string, never a float.")
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation:
        raise MoneyError(f"{value!r} is not a number.") from None
    if not number.is_finite():
        raise MoneyError(f"{value!r} is not a finite amount.")
    if abs(number) > MAX_AMOUNT:
        raise MoneyError(f"{str(value)[:30]!r} is too large for an amount.")
    return number


def amount_from_text(text, currency: str | None = None) -> Decimal | None:
    """An amount a person typed ("1,250.00"): None when empty, else exact in the currency
    (when given). MoneyError with a plain message otherwise: the caller names the field."""
    cleaned = (text if isinstance(text, str) else "").replace(",", "").replace(" ", "").strip()
    if not cleaned:
        return None
    if len(cleaned) > 40 or not cleaned.isascii():
        raise MoneyError(f"{cleaned[:30]!r} is not an amount.")
    return exact(cleaned, currency) if currency else to_decimal(cleaned)


def quantize(amount, currency: str, rounding: str = ROUND_HALF_UP) -> Decimal:
    """Round an amount to the currency's minor unit (e.g. after applying a rate)."""
    return to_decimal(amount).quantize(Decimal(1).scaleb(-exponent(currency)), rounding=rounding)


def exact(amount, currency: str) -> Decimal:
    """The amount at the currency's precision, refusing anything that would need rounding."""
    number = to_decimal(amount)
    rounded = quantize(number, currency)
    if rounded != number:
        raise MoneyError(
            f"{number} has more decimal places than {normalise_currency(currency)} allows "
            f"({exponent(currency)})."
        )
    return rounded


def to_minor(amount, currency: str) -> int:
    """12.34 GBP -> 1234; 1234 JPY -> 1234; 1.234 KWD -> 1234. Refuses inexact amounts."""
    return int(exact(amount, currency).scaleb(exponent(currency)))


def from_minor(minor: int, currency: str) -> Decimal:
    """1234 GBP -> Decimal('12.34'). Minor units are whole numbers (Stripe sends ints)."""
    if isinstance(minor, bool) or not isinstance(minor, int):
        raise MoneyError(f"{minor!r}: minor units must be an integer.")
    return quantize(Decimal(minor).scaleb(-exponent(currency)), currency)


def split(amount, currency: str, weights: Sequence[int | Decimal]) -> list[Decimal]:
    """Split an amount in proportion to weights so that the parts add back up exactly.

    Remainders of the minor unit go to the parts with the largest fractional share (largest
    remainder method), so splitting 100.00 three ways gives 33.34, 33.33, 33.33.
    """
    if not weights:
        raise MoneyError("split needs at least one weight.")
    weights = [to_decimal(w) for w in weights]
    if any(w < 0 for w in weights) or sum(weights) == 0:
        raise MoneyError("split weights must be non-negative and not all zero.")
    total_minor = to_minor(amount, currency)
    total_weight = sum(weights)
    sign = -1 if total_minor < 0 else 1
    magnitude = abs(total_minor)
    raw = [Decimal(magnitude) * w / total_weight for w in weights]
    floors = [int(r) for r in raw]
    leftover = magnitude - sum(floors)
    by_remainder = sorted(range(len(raw)), key=lambda i: (raw[i] - floors[i], -i), reverse=True)
    for index in by_remainder[:leftover]:
        floors[index] += 1
    parts = [from_minor(sign * f, currency) for f in floors]
    if sum(parts) != exact(amount, currency):  # pragma: no cover - guarded by property tests
        raise MoneyError("split lost money; this is a bug.")
    return parts


def format_money(amount, currency: str, *, with_code: bool = True) -> str:
    """1234.5 GBP -> '1,234.50 GBP' with the currency's own number of decimals."""
    places = exponent(currency)
    text = f"{quantize(amount, currency):,.{places}f}"
    return f"{text} {normalise_currency(currency)}" if with_code else text
