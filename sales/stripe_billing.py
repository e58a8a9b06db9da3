"""Stripe Billing objects as the normalised shapes of sales invoicing (no database, no network).

Read as Stripe documents them (https://docs.stripe.com/api/invoices/object,
/api/credit_notes/object), in both the older line shape (`tax_amounts: [{amount, inclusive,
tax_rate}]`, `discount_amounts`) and the current one (`taxes: [{amount, tax_behavior,
tax_rate_details: {tax_rate}}]`); localstripe answers the older one.

- An invoice's external reference is its Stripe id (in_...): the duplicate check of sales
  invoicing then keeps it once, whichever of invoice.finalized, invoice.paid or the catch-up
  brings it first. Its date is when it was finalized (fixed from then on: the content, and so its
  hash, is the same for every later event).
- Line net = amount - discounts - tax included in the price; VAT = every tax amount of the
  line, as Stripe computed it (batch invoices post it to the cent). The AIQ VAT code is the tax
  rate's metadata `aiq_tax_code`, else the source's default VAT code.
- The customer code is the Stripe customer's (or invoice's) metadata `aiq_customer_code` (the
  keys payments reads too), else the AIQ customer a person mapped this Stripe customer to, else
  STRIPE-<the customer id upper-cased>.
"""

from datetime import UTC, date, datetime
from decimal import Decimal

from django.utils import timezone

from core.stripe_money import stripe_from_minor
from payments.sources.stripe_source import CUSTOMER_CODE_KEYS
from sales.normalised import NormalisedCreditNote, NormalisedInvoice, NormalisedLine


class StripeShapeError(ValueError):
    """The object cannot become an invoice or credit note in AIQ (the message says why)."""


def object_id(value) -> str:
    """An expandable field: the id string or the expanded object's id."""
    if isinstance(value, dict):
        return value.get("id") or ""
    return value or ""


def _day(epoch) -> date | None:
    if not epoch:
        return None
    return timezone.localdate(datetime.fromtimestamp(int(epoch), tz=UTC))


def customer_code(customer: dict, invoice: dict, mapped: str = "") -> str:
    for obj in (customer, invoice):
        metadata = obj.get("metadata") or {}
        for key in CUSTOMER_CODE_KEYS:
            value = metadata.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip().upper()
    if mapped:
        return mapped
    stripe_id = object_id(invoice.get("customer")) or customer.get("id") or ""
    if not stripe_id:
        raise StripeShapeError(f"invoice {invoice.get('id')} names no customer")
    return "STRIPE-" + stripe_id.removeprefix("cus_").upper()


def _tax_codes(line: dict) -> dict[str, str]:
    """tax rate id -> AIQ VAT code, from the line's tax rates (full objects on a line)."""
    codes = {}
    for rate in line.get("tax_rates") or []:
        if isinstance(rate, dict) and (rate.get("metadata") or {}).get("aiq_tax_code"):
            codes[rate["id"]] = rate["metadata"]["aiq_tax_code"]
    return codes


def _taxes(line: dict) -> list[tuple[int, bool, str]]:
    """(minor amount, included in the price, tax rate id) of each tax of the line."""
    out = []
    for tax in line.get("taxes") or []:  # the current shape
        details = tax.get("tax_rate_details") or {}
        out.append(
            (
                int(tax.get("amount") or 0),
                tax.get("tax_behavior") == "inclusive",
                object_id(details.get("tax_rate")),
            )
        )
    if not out:
        for tax in line.get("tax_amounts") or []:  # the older shape
            out.append(
                (
                    int(tax.get("amount") or 0),
                    bool(tax.get("inclusive")),
                    object_id(tax["tax_rate"]),
                )
            )
    return out


def lines_of(obj: dict, currency: str, default_tax_code: str) -> list[NormalisedLine]:
    """The lines of an invoice or credit note (obj["lines"]["data"], complete: the caller
    fetched the rest when Stripe said has_more)."""
    return [line for _, line in _kept_lines(obj, currency, default_tax_code)]


def invoice_line_numbers(invoice: dict) -> dict[str, int]:
    """Stripe invoice line id (il_...) -> the number of the line it became (free lines are
    left out, so the numbers are not Stripe's positions)."""
    currency = (invoice.get("currency") or "").upper()
    kept = _kept_lines(invoice, currency, "-")
    return {line.get("id") or "": number for number, (line, _) in enumerate(kept, start=1)}


def _kept_lines(
    obj: dict, currency: str, default_tax_code: str
) -> list[tuple[dict, NormalisedLine]]:
    """(Stripe's line, what it becomes) of each line with something to post."""
    lines = []
    for number, line in enumerate((obj.get("lines") or {}).get("data") or [], start=1):
        taxes = _taxes(line)
        codes = _tax_codes(line)
        discounts = sum(int(d.get("amount") or 0) for d in line.get("discount_amounts") or [])
        included = sum(amount for amount, inclusive, _ in taxes if inclusive)
        net_minor = int(line.get("amount") or 0) - discounts - included
        tax_minor = sum(amount for amount, _, _ in taxes)
        if net_minor == 0 and tax_minor == 0:
            continue  # a free line (trial, 100 % discount): nothing to post
        if net_minor < 0 or tax_minor < 0:
            raise StripeShapeError(
                f"{obj.get('id')} line {number} is negative (a proration or credit line): "
                "AIQ batch invoices take positive lines; raise it in AIQ by hand"
            )
        rate_codes = {codes.get(rate_id, "") for _, _, rate_id in taxes} - {""}
        if len(rate_codes) > 1:
            raise StripeShapeError(
                f"{obj.get('id')} line {number} has taxes of different VAT codes "
                f"({', '.join(sorted(rate_codes))}): one VAT code per line in AIQ"
            )
        tax_code = next(iter(rate_codes), "") or (default_tax_code if tax_minor else "")
        lines.append(
            (
                line,
                NormalisedLine(
                    net_amount=stripe_from_minor(net_minor, currency),
                    tax_amount=stripe_from_minor(tax_minor, currency),
                    tax_code=tax_code,
                    description=(line.get("description") or "Stripe line")[:500],
                    quantity=Decimal(line.get("quantity") or 1),
                ),
            )
        )
    return lines


def normalise_invoice(
    invoice: dict, customer: dict, *, default_tax_code: str = "", mapped_code: str = ""
) -> NormalisedInvoice:
    currency = (invoice.get("currency") or "").upper()
    finalized = (invoice.get("status_transitions") or {}).get("finalized_at")
    when = _day(finalized or invoice.get("created") or invoice.get("date"))
    if when is None:
        raise StripeShapeError(f"invoice {invoice.get('id')} has no date")
    address = invoice.get("customer_address") or customer.get("address") or {}
    name = invoice.get("customer_name") or customer.get("name") or ""
    email = invoice.get("customer_email") or customer.get("email") or ""
    number = invoice.get("number") or ""
    text = " ".join(part for part in (number, invoice.get("description") or "") if part)
    return NormalisedInvoice(
        external_reference=invoice["id"],
        customer_code=customer_code(customer, invoice, mapped_code),
        customer_name=(name or email or object_id(invoice.get("customer")))[:200],
        invoice_date=when,
        due_date=_day(invoice.get("due_date")),
        currency=currency,
        customer_email=email,
        customer_address=", ".join(
            p for p in (address.get("line1"), address.get("line2"), address.get("city")) if p
        ),
        customer_postcode=address.get("postal_code") or "",
        description=(f"Stripe invoice {text}".strip())[:500],
        lines=lines_of(invoice, currency, default_tax_code),
    )


def normalise_credit_note(
    note: dict, *, default_tax_code: str = "", line_numbers: dict[str, int] | None = None
) -> NormalisedCreditNote:
    """`line_numbers`: invoice_line_numbers of the credited invoice: each line credits the
    invoice line it names (`invoice_line_item`), a custom line none; without them, line by
    line in order."""
    currency = (note.get("currency") or "").upper()
    reason = note.get("memo") or (note.get("reason") or "").replace("_", " ")
    kept = _kept_lines(note, currency, default_tax_code)
    numbers = []
    if line_numbers is not None:
        numbers = [
            line_numbers.get(object_id(line.get("invoice_line_item")), 0) for line, _ in kept
        ]
    return NormalisedCreditNote(
        external_reference=note["id"],
        invoice_reference=object_id(note.get("invoice")),
        credit_date=_day(note.get("effective_at") or note.get("created")) or timezone.localdate(),
        lines=[line for _, line in kept],
        reason=(f"Stripe credit note {note.get('number') or ''} {reason}".strip())[:300],
        invoice_line_numbers=numbers,
    )


def paid_invoice_id(charge: dict) -> str:
    """The Stripe invoice a payment paid (in_...), as the charge (a payment's raw object, its
    payment intent expanded) names it: the charge's `invoice`, else its payment intent's;
    '' for a payment of no invoice."""
    found = object_id(charge.get("invoice"))
    intent = charge.get("payment_intent")
    if not found and isinstance(intent, dict):
        found = object_id(intent.get("invoice"))
    return found if isinstance(found, str) and found.startswith("in_") else ""


def credit_note_refunds(note: dict) -> tuple[int, list[str]]:
    """(minor units refunded to the customer's card, the refund ids) of a credit note: the
    current shape `refunds: [{amount_refunded, refund}]`; the older single `refund` (an id, or
    the expanded refund) counts as refunding the whole credit note, up to the refund's amount
    where it is expanded."""
    refunds = [r for r in note.get("refunds") or [] if isinstance(r, dict)]
    if refunds:
        return (
            sum(int(r.get("amount_refunded") or 0) for r in refunds),
            [object_id(r.get("refund")) for r in refunds if object_id(r.get("refund"))],
        )
    older = note.get("refund")
    if not older:
        return 0, []
    total = int(note.get("amount") or note.get("total") or 0)
    if isinstance(older, dict) and older.get("amount") is not None:
        total = min(total, int(older["amount"]))
    return total, [object_id(older)]


def voided_credit_note(
    reference: str, remainder: list[tuple[int, NormalisedLine]], voided_at
) -> NormalisedCreditNote:
    """A voided invoice that AIQ has: a credit note of what is not credited yet (AIQ posts no
    void). `remainder`: (invoice line number, what is left of that line)."""
    return NormalisedCreditNote(
        external_reference=f"{reference}-VOID",
        invoice_reference=reference,
        credit_date=_day(voided_at) or timezone.localdate(),
        lines=[line for _, line in remainder],
        invoice_line_numbers=[number for number, _ in remainder],
        reason=f"Stripe invoice {reference} voided",
    )


def customer_details(customer: dict) -> dict:
    """The AIQ Customer fields a Stripe customer sets (sales_customer_update)."""
    address = customer.get("address") or {}
    details = {
        "Name": customer.get("name") or "",
        "Email": customer.get("email") or "",
        "Phone": customer.get("phone") or "",
        "Address1": address.get("line1") or "",
        "Address2": address.get("line2") or "",
        "City": address.get("city") or "",
        "County_State": address.get("state") or "",
        "PostCode": address.get("postal_code") or "",
        "CountryCode": address.get("country") or "",
    }
    return {k: str(v)[:200] for k, v in details.items()}
