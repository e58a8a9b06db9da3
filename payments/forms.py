"""Forms for the payment screens. Amounts are parsed exactly in the payment's currency."""

from collections import Counter
from decimal import Decimal

from core.inputs import is_id
from core.money import MoneyError, amount_from_text
from ledger.models import Invoice


def _amount(text: str, currency: str) -> Decimal:
    value = amount_from_text(text, currency)  # raises MoneyError with a plain message
    if value is None:
        return Decimal(0)
    if value < 0:
        raise MoneyError("Amounts cannot be negative.")
    return value


class AllocationForm:
    """The allocation editor: one row per invoice; what is not allocated stays on account.

    Rows arrive as repeated `invoice` ids with `amount_<id>`, `discount_<id>`, `write_off_<id>`
    and `write_off_account_<id>`. Errors are kept per field so each shows next to its input.
    """

    def __init__(self, data, *, payment):
        self.data = data
        self.payment = payment
        self.errors: dict[str, str] = {}
        self.non_field_errors: list[str] = []
        self.lines: list[dict] = []
        self.shown_on_account = None
        self.invoices: dict[int, Invoice] = {}

    def is_valid(self) -> bool:
        currency = self.payment.currency
        posted = self.data.getlist("invoice")
        ids = []
        for raw in posted:
            if not is_id(raw):
                self.non_field_errors.append("An invoice row was not understood; reload the page.")
                continue
            ids.append(int(raw))
        self.invoices = Invoice.objects.select_related("customer").in_bulk(ids)
        self._refuse_repeated_rows(ids)
        for invoice_id in dict.fromkeys(ids):
            invoice = self.invoices.get(invoice_id)
            if invoice is None:
                self.non_field_errors.append(f"Invoice #{invoice_id} no longer exists.")
                continue
            line = {"invoice_id": invoice.pk}
            for key, name in (
                ("amount", f"amount_{invoice_id}"),
                ("discount_amount", f"discount_{invoice_id}"),
                ("write_off_amount", f"write_off_{invoice_id}"),
            ):
                for text in self.data.getlist(name) or [""]:
                    try:
                        line[key] = _amount(text, currency)
                    except MoneyError as error:
                        self.errors[name] = str(error)
            line["write_off_gl_account_code"] = self.data.get(
                f"write_off_account_{invoice_id}", ""
            ).strip()
            if invoice.currency != currency:
                self.errors[f"amount_{invoice_id}"] = (
                    f"{invoice} is in {invoice.currency}; the payment is in {currency}."
                )
            if all(line.get(k, 0) == 0 for k in ("amount", "discount_amount", "write_off_amount")):
                continue  # an empty row is simply not part of the plan
            self.lines.append(line)
        self.shown_on_account = self._shown_on_account()
        if not self.lines and not self.errors and not self.non_field_errors:
            self.non_field_errors.append("Allocate an amount to at least one invoice.")
        return not self.errors and not self.non_field_errors

    def _refuse_repeated_rows(self, ids: list[int]) -> None:
        """One row per invoice. Two rows of one invoice cannot both be posted (their inputs
        share names), so the submit is refused rather than one row silently winning."""
        for invoice_id, count in Counter(ids).items():
            if count > 1:
                invoice = self.invoices.get(invoice_id) or f"Invoice #{invoice_id}"
                self.non_field_errors.append(
                    f"{invoice} is in the allocation {count} times; remove the extra rows and "
                    "submit again. Nothing was submitted."
                )

    def _shown_on_account(self):
        """What the editor's footer showed as left on account (set by its script; absent
        when the page ran without scripts): the service refuses lines that leave another."""
        try:
            return amount_from_text(self.data.get("shown_on_account", ""), self.payment.currency)
        except MoneyError:
            return None
