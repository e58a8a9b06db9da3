"""MoneyField: exact Decimal amounts stored as whole thousandths in a 64-bit integer.

Why not DecimalField: SQLite keeps decimals as 15-significant-digit floats, so 10^12 with
three decimals would be rounded. A BIGINT of thousandths is exact on SQLite and PostgreSQL
up to 9.2 * 10^15 major units, covers every currency exponent (at most 3) and keeps database
comparisons and SUM() exact. Python always sees a Decimal with three decimal places; the
currency's own precision is enforced by core.money.exact() in the services.
"""

from decimal import Decimal

from django import forms
from django.core.exceptions import ValidationError
from django.db import models

from core.money import MAX_EXPONENT, MoneyError, to_decimal

_SCALE = MAX_EXPONENT
_QUANTUM = Decimal(1).scaleb(-_SCALE)


def _to_stored(value) -> int | None:
    if value is None:
        return None
    number = to_decimal(value)
    scaled = number.scaleb(_SCALE)
    if scaled != scaled.to_integral_value():
        raise MoneyError(f"{number} has more than {_SCALE} decimal places.")
    return int(scaled)


class MoneyField(models.BigIntegerField):
    description = "Exact money amount (Decimal, stored as thousandths)"

    def deconstruct(self):
        # Migrations name the column by the path it had before it moved to the ground floor
        # (ledger/fields.py re-exports it): a new path would make makemigrations write a no-op
        # AlterField for every money column of every app.
        name, _path, args, kwargs = super().deconstruct()
        return name, "ledger.fields.MoneyField", args, kwargs

    def from_db_value(self, value, expression, connection):
        if value is None:
            return None
        return Decimal(int(value)).scaleb(-_SCALE).quantize(_QUANTUM)

    def to_python(self, value):
        if value is None or isinstance(value, Decimal):
            return value
        try:
            return to_decimal(value).quantize(_QUANTUM)
        except MoneyError as error:
            raise ValidationError(str(error), code="invalid") from None

    def get_prep_value(self, value):
        # A finite Decimal is what services pass (the payment import stores five a row): take it
        # straight to thousandths. Anything else, or more than three places, takes the full
        # path below, which also raises the error.
        if type(value) is Decimal and value.is_finite():
            scaled = value.scaleb(_SCALE)
            if scaled == scaled.to_integral_value():
                return int(scaled)
        if hasattr(value, "resolve_expression"):
            return value
        try:
            return _to_stored(value)
        except MoneyError as error:
            raise ValidationError(str(error), code="invalid") from None

    def formfield(self, **kwargs):
        defaults = {"form_class": forms.DecimalField, "decimal_places": _SCALE, "max_digits": 19}
        defaults.update(kwargs)
        return models.Field.formfield(self, **defaults)
