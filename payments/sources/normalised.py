"""The shape every source (Stripe, GoCardless, SmartDebit, bank files) is normalised into.

Plain data: the sources build these, payments.services.payments writes them in bulk. The bulk
write skips Django's per-row full_clean (its cost at 100,000 rows is the reason for the bulk
path), so NormalisedPayment.check() is the validation: every item passes it before any row is
written, and a bad one stops the batch with an error naming the payment and the field.
"""

from dataclasses import dataclass, field, fields
from datetime import datetime
from decimal import Decimal
from operator import attrgetter

# Column limits of payments.Payment / payments.Fee (CharField max_length): SQLite does not
# enforce them, PostgreSQL does; checking here gives both the same clear error.
LIMITS = {
    "external_id": 100,
    "currency": 3,
    "exchange_rate": 30,
    "payer_name": 200,
    "payer_email": 254,
    "payer_reference": 100,
    "payer_account": 70,
    "bank_reference": 140,
    "end_to_end_id": 140,
    "status": 20,
}
FEE_LIMITS = {"kind": 40, "description": 200, "currency": 3}
MONEY = ("amount", "fee_amount", "net_amount", "amount_refunded")
_LIMIT_ITEMS = tuple(LIMITS.items())
_LIMITED = attrgetter(*LIMITS)  # every limited field's value at once


@dataclass(frozen=True, slots=True)
class NormalisedFee:
    kind: str
    description: str
    amount: Decimal
    currency: str


@dataclass(slots=True)
class NormalisedPayment:
    source: str
    external_id: str
    amount: Decimal
    currency: str
    received_at: datetime
    status: str = "succeeded"
    fee_amount: Decimal | None = None
    net_amount: Decimal | None = None
    amount_refunded: Decimal = Decimal(0)
    exchange_rate: str = ""
    payer_name: str = ""
    payer_email: str = ""
    payer_reference: str = ""
    description: str = ""
    # bank statement entries: see payments.models.Payment
    payer_account: str = ""
    bank_reference: str = ""
    end_to_end_id: str = ""
    statement_account_id: int | None = None
    references: list[dict] = field(default_factory=list)
    raw: dict = field(default_factory=dict)
    # An AIQ customer code the payer told us (e.g. Stripe metadata.aiq_customer_code).
    customer_code_hint: str = ""
    fees: list[NormalisedFee] = field(default_factory=list)
    # Refund objects as the source reports them (Stripe), for the external-refund hook.
    refunds: list[dict] = field(default_factory=list)
    charge_id: str = ""

    def __reduce__(self):
        # pickled as its values (a statement's preview keeps its reading for the import):
        # one C-level attrgetter call each instead of slots dataclasses' Python __getstate__
        return NormalisedPayment, _ALL_FIELDS(self)

    def _label(self) -> str:
        return f"{self.source} payment {self.external_id!r}"

    def check(self) -> None:
        """Raise ValueError naming the payment and field if this cannot be stored as is."""
        if not self.external_id:
            raise ValueError(f"{self.source} payment without an external id")
        for (name, limit), value in zip(_LIMIT_ITEMS, _LIMITED(self), strict=True):
            if not isinstance(value, str) or len(value) > limit:
                raise ValueError(
                    f"{self._label()}: {name} must be text of at most {limit} characters"
                )
        for name in MONEY:
            value = getattr(self, name)
            # exact decimals only; MoneyField refuses more than 3 places when it stores them
            if not (isinstance(value, Decimal) or (value is None and name in MONEY[1:3])):
                raise ValueError(f"{self._label()}: {name} must be a Decimal, got {value!r}")
        if not isinstance(self.description, str):
            raise ValueError(f"{self._label()}: description must be text")
        if not isinstance(self.received_at, datetime) or self.received_at.tzinfo is None:
            raise ValueError(f"{self._label()}: received_at must be a timezone-aware datetime")
        label = self._label() if self.fees else ""
        for fee in self.fees:
            if not isinstance(fee.amount, Decimal):
                raise ValueError(f"{label}: fee amount must be a Decimal, got {fee.amount!r}")
            for name, limit in FEE_LIMITS.items():
                value = getattr(fee, name)
                if not isinstance(value, str) or len(value) > limit:
                    raise ValueError(
                        f"{label}: fee {name} must be text of at most {limit} characters"
                    )


_ALL_FIELDS = attrgetter(*(f.name for f in fields(NormalisedPayment)))
