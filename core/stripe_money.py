"""Stripe's own minor units: Stripe's list of zero-decimal and special currencies, not ISO 4217.

Stripe's "Supported currencies" page (docs.stripe.com/currencies) says which amounts mean what,
and it differs from ISO 4217 in both directions:

- Zero-decimal (an amount of 500 is 500 units): BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND
  VUV XAF XOF XPF. ISO gives MGA (and UGX historically) two decimals: Stripe does not.
- Three-decimal (an amount of 1230 is 1.230; the last digit must be 0): BHD JOD KWD OMR TND.
  IQD and LYD, three-decimal in ISO, are not in Stripe's list: two-decimal there.
- Special cases, two-decimal in the API whatever ISO says:
  ISK: "ISK will remain a two-decimal currency in the Stripe API, and an ISK amount of 100 will
  continue to represent 1 króna" (whole krónur only since April 2023; older charges may have
  fractions); HUF and TWD: two-decimal for charges (zero-decimal only for payouts, where the
  amount must still be sent as a multiple of 100).
- Every other currency: two-decimal.

Amounts come back as Decimal in major units, at the currency's ISO precision when they are
exact there (10000 ISK minor -> Decimal("100")), else at Stripe's (an old fractional króna
charge of 4010 -> Decimal("40.10")): never rounded, never a float.
"""

from decimal import Decimal

from core.money import MoneyError, exponent, normalise_currency

STRIPE_ZERO_DECIMAL = frozenset(
    "BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF".split()
)
STRIPE_THREE_DECIMAL = frozenset("BHD JOD KWD OMR TND".split())
# Two-decimal in Stripe's API although people (and ISO, for ISK) count them in whole units.
STRIPE_SPECIAL_TWO_DECIMAL = frozenset("ISK HUF TWD".split())


def stripe_exponent(currency: str) -> int:
    code = normalise_currency(currency)
    if code in STRIPE_ZERO_DECIMAL:
        return 0
    if code in STRIPE_THREE_DECIMAL:
        return 3
    return 2


def stripe_from_minor(minor: int, currency: str) -> Decimal:
    """A Stripe amount (integer, Stripe's minor unit) -> Decimal in major units."""
    if isinstance(minor, bool) or not isinstance(minor, int):
        raise MoneyError(f"{minor!r}: Stripe amounts must be an integer.")
    amount = Decimal(minor).scaleb(-stripe_exponent(currency))
    iso = Decimal(1).scaleb(-exponent(currency))
    at_iso = amount.quantize(iso)
    return (
        at_iso
        if at_iso == amount
        else amount.quantize(Decimal(1).scaleb(-stripe_exponent(currency)))
    )


def stripe_to_minor(amount, currency: str) -> int:
    """Decimal major units -> the integer Stripe expects (e.g. a refund's amount)."""
    if isinstance(amount, float | bool):
        raise MoneyError(f"{amount!r}: money must be a Decimal, never a float.")
    scaled = Decimal(amount).scaleb(stripe_exponent(currency))
    if scaled != scaled.to_integral_value():
        raise MoneyError(
            f"{amount} {normalise_currency(currency)} has more decimals than Stripe takes "
            f"({stripe_exponent(currency)})."
        )
    return int(scaled)
