"""The shape every source (Stripe, GoCardless, SmartDebit, bank files) is normalised into.

Plain data: the sources build these, payments.services.payments writes them in bulk.
"""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal


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
    references: list[dict] = field(default_factory=list)
    raw: dict = field(default_factory=dict)
    # An AIQ customer code the payer told us (e.g. Stripe metadata.aiq_customer_code).
    customer_code_hint: str = ""
    fees: list[NormalisedFee] = field(default_factory=list)
    # Refund objects as the source reports them (Stripe), for the external-refund hook.
    refunds: list[dict] = field(default_factory=list)
    charge_id: str = ""
