"""The typed payloads of ledger's own command kinds: what each command carries to its executor.

A payload is stored as JSON on the OutboxCommand row (amounts as decimal strings, dates ISO
"YYYY-MM-DD", never secrets). Each kind's dataclass below is its contract: outbox_enqueue builds
it from the payload (ledger/outbox/steps.py: payload_check), so an unknown or missing field, a
non-decimal amount or a non-ISO date stops the decision that enqueues it (PayloadError) instead
of parking the command later. Executors still read the stored dict: the row is the truth.

Registered with their executors in ledger/outbox/kinds.py; a kind owned by another app keeps its
payload next to its executor (payments/services/stripe_refund_step.py: StripeRefundPayload).
"""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation


def _decimal(name: str, value, *, blank: bool = False) -> None:
    if blank and value in (None, ""):
        return
    try:
        Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ValueError(f"{name} is not a decimal amount: {value!r}") from None


def _iso_date(name: str, value) -> None:
    try:
        date.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} is not an ISO date: {value!r}") from None


def _present(**values) -> None:
    missing = [name for name, value in values.items() if value in (None, "")]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")


@dataclass(frozen=True)
class EnsureCustomerPayload:
    """ensure_customer: the customer record AIQ must hold (executors_customers.py).
    result: {"account_id", "row_version", "created": true | false | null}"""

    code: str
    name: str
    customer_id: int | None = None  # the mirror row that learns its AIQ account id
    email: str = ""
    currency: str = ""

    def __post_init__(self):
        _present(code=self.code, name=self.name)


@dataclass(frozen=True)
class ReceiptPayload:
    """post_receipt: a sales receipt; CheckReference = the command's external reference.
    result: {"transaction_id": int}"""

    customer_code: str
    bank_account_code: str
    amount: str
    payment_date: str
    currency: str = ""
    description: str = ""
    payment_id: int | None = None  # payments.Payment the receipt is for
    # AIQ's ExchangeRate (units of the receipt's currency per base unit), as the provider's
    # balance transaction gave it; empty: the company's rate for the day, asked of AIQ when it
    # is sent (never 1 for a foreign currency by default). bank_currency: the receiving bank's
    # currency, which decides BankExchangeRate.
    exchange_rate: str = ""
    bank_currency: str = ""
    # the bank's own reference for the money (a statement entry's), AIQ's LodgmentNumber (cut
    # to AIQ's 50 characters when sent); empty for card and Direct Debit providers
    lodgment_number: str = ""

    def __post_init__(self):
        _present(customer_code=self.customer_code, bank_account_code=self.bank_account_code)
        _decimal("amount", self.amount)
        _iso_date("payment_date", self.payment_date)
        _decimal("exchange_rate", self.exchange_rate, blank=True)
        if self.exchange_rate not in (None, "") and Decimal(str(self.exchange_rate)) <= 0:
            raise ValueError(f"exchange_rate must be positive: {self.exchange_rate!r}")


@dataclass(frozen=True)
class AllocatePayload:
    """allocate / allocate_discount: allocate a paying transaction (receipt, credit note,
    journal) to a settled one; allocationReference = the external reference. A transaction id
    left null is the dependency's result["transaction_id"] (executors.resolve_payload), or is
    written in when the command named in `fill` is confirmed (mirror_refunds.fill_dependents).
    result: {"allocated": true, "allocation_id": int}"""

    amount: str
    allocation_date: str
    paying_transaction_id: int | None = None
    settled_transaction_id: int | None = None
    invoice_id: int | None = None  # mirror rows, for the mirror update
    credit_note_id: int | None = None
    currency: str = ""
    discount_amount: str | None = None  # allocate_discount only
    fill: dict | None = None  # {"paying_transaction_id": external reference of the command}

    def __post_init__(self):
        _decimal("amount", self.amount)
        _decimal("discount_amount", self.discount_amount, blank=True)
        _iso_date("allocation_date", self.allocation_date)


@dataclass(frozen=True)
class UnallocatePayload:
    """unallocate: undo one mirrored allocation (UnallocateTransactions on both transactions).
    result: {"unallocated": true}"""

    transaction_ids: list
    allocation_id: int | None = None  # ledger.Allocation
    reason: str = ""
    # a duplicate's repair (ledger/outbox/repair.py): every allocation of the one transaction,
    # as AIQ listed them when the approver approved; sent only while AIQ lists exactly these
    expect_allocation_ids: list | None = None

    def __post_init__(self):
        if not self.transaction_ids:
            raise ValueError("missing transaction_ids")
        if self.expect_allocation_ids is not None and len(self.transaction_ids) != 1:
            raise ValueError("a repair unallocates exactly one transaction")


@dataclass(frozen=True)
class JournalPayload:
    """post_write_off (a sales credit journal) / post_debit_journal (a sales debit journal):
    one line to a GL account against the customer; ExternalReference = the external reference.
    result: {"transaction_id": int}"""

    customer_code: str
    gl_account_code: str
    amount: str
    journal_date: str
    currency: str = ""
    description: str = ""
    # the BI code of the line it comes from (a write-off: the invoice's), on the GL line
    department_id: str = ""
    # several GL lines instead of one (e.g. a credit note's reversal: net to its sales
    # accounts, tax to the VAT account): [{"gl_account_code", "amount", "description"?,
    # "department_id"?}]
    lines: list | None = None
    # AIQ's ExchangeRate (units of `currency` per base unit); empty: 1 in the base currency,
    # else the company's rate for the day, asked of AIQ when it is sent (never 1 by default)
    exchange_rate: str = ""

    def __post_init__(self):
        _present(customer_code=self.customer_code, gl_account_code=self.gl_account_code)
        _decimal("amount", self.amount)
        _decimal("exchange_rate", self.exchange_rate, blank=True)
        if self.exchange_rate not in (None, "") and Decimal(str(self.exchange_rate)) <= 0:
            raise ValueError(f"exchange_rate must be positive: {self.exchange_rate!r}")
        _iso_date("journal_date", self.journal_date)
        if self.lines is not None:
            if not self.lines or not all(isinstance(line, dict) for line in self.lines):
                raise ValueError("lines must be a non-empty list of objects")
            for line in self.lines:
                _present(gl_account_code=line.get("gl_account_code"))
                _decimal("line amount", line.get("amount"))
            if sum(Decimal(str(line["amount"])) for line in self.lines) != Decimal(
                str(self.amount)
            ):
                raise ValueError("the lines do not add up to the amount")


@dataclass(frozen=True)
class CreditNotePayload:
    """create_credit_note: save and post a mirrored draft credit note (executors_refunds.py).
    lines: [{"stock_item_id", "description", "gl_account_code", "department_id", "tax_code",
    "tax_rate", "quantity", "unit_price", "net_amount", "tax_amount"}].
    result: {"credit_note_id": AIQ id, "transaction_id": int, "credit_note_number": str}"""

    customer_code: str
    credit_date: str
    lines: list
    credit_note_id: int | None = None  # the mirror's draft
    currency: str = ""
    invoice_number: str = ""
    notes: str = ""
    gross_amount: str = ""

    def __post_init__(self):
        _present(customer_code=self.customer_code)
        _iso_date("credit_date", self.credit_date)
        if not self.lines:
            raise ValueError("missing lines")
        _decimal("gross_amount", self.gross_amount, blank=True)


@dataclass(frozen=True)
class AttachDocumentPayload:
    """attach_document: a stored breakdown file (ledger.Attachment) sent to an invoice's
    transaction; the bytes stay in the Attachment row (executors_documents.py).
    result: {"attached": true, "document_id": int | null}"""

    attachment_id: int
    transaction_id: int
    filename: str
    invoice_id: int | None = None
    sha256: str = ""
    comments: str = ""

    def __post_init__(self):
        _present(
            attachment_id=self.attachment_id,
            transaction_id=self.transaction_id,
            filename=self.filename,
        )


@dataclass(frozen=True)
class OtherReceiptPayload:
    """other_receipt: a sundry receipt straight to a GL account (executors_sundry.py).
    result: {"transaction_id": int}"""

    bank_account_code: str
    gl_account_code: str
    amount: str
    receipt_date: str
    tax_code: str = ""
    tax_rate: str = "0"
    net_amount: str = ""
    tax_amount: str = "0"
    currency: str = ""
    description: str = ""
    lodgment_number: str = ""

    def __post_init__(self):
        _present(bank_account_code=self.bank_account_code, gl_account_code=self.gl_account_code)
        _decimal("amount", self.amount)
        for name in ("tax_rate", "net_amount", "tax_amount"):
            _decimal(name, getattr(self, name), blank=True)
        _iso_date("receipt_date", self.receipt_date)
