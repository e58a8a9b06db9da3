"""The sandbox's own money rules, as AccountsIQ applies them to what it is sent.

The sandbox stands in for AIQ and checks what the app sends, so it does not share the app's
money code (core.money): a rounding bug there must not be mirrored here and pass unseen.
Amounts are Decimals at the currency's ISO 4217 minor unit; anything finer is refused.
"""

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

_DECIMALS = {
    **dict.fromkeys(
        "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split(), 0
    ),
    **dict.fromkeys("BHD IQD JOD KWD LYD OMR TND".split(), 3),
}


class MoneyError(ValueError):
    """An amount or currency code AIQ would refuse."""


def currency_code(value: str) -> str:
    """'gbp ' -> 'GBP'; anything but three ASCII letters is refused."""
    code = (value or "").strip().upper()
    if len(code) != 3 or not (code.isascii() and code.isalpha()):
        raise MoneyError(f"{value!r} is not an ISO 4217 currency code (three letters).")
    return code


def decimals(currency: str) -> int:
    return _DECIMALS.get(currency_code(currency), 2)


def amount_in(value, currency: str) -> Decimal:
    """The amount at its currency's precision; floats, non-numbers and extra places refused."""
    if isinstance(value, bool | float):
        raise MoneyError(f"{value!r}: an amount must be a decimal, never a float.")
    try:
        number = Decimal(str(value).strip())
        finite = number.is_finite()
    except InvalidOperation:
        finite = False
    if not finite:
        raise MoneyError(f"{value!r} is not a finite number.")
    step = Decimal(1).scaleb(-decimals(currency))
    if number % step:
        raise MoneyError(
            f"{number} has more decimal places than {currency_code(currency)} allows "
            f"({decimals(currency)})."
        )
    return number.quantize(step)


def shown(amount: Decimal, currency: str, *, with_code: bool = True) -> str:
    """Decimal('1234.5') GBP -> '1,234.50 GBP', as AIQ prints amounts on its documents."""
    places = decimals(currency)
    rounded = Decimal(str(amount)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    text = f"{rounded:,.{places}f}"
    return f"{text} {currency_code(currency)}" if with_code else text
