"""Pull AIQ -> mirror, one step per object type. AIQ is the book of record, with one exception:
a row that a command still waiting in the outbox will change keeps our value until that command
is confirmed (otherwise a sync between "sent" and "confirmed" would show an invoice as open
again, or paid twice).

Transactions and allocations are incremental: each pass reads from the last cursor minus an
overlap (AIQ's modified dates are not guaranteed to be monotonic across its servers), and rows
are de-duplicated on AIQ's transaction id, so reading one twice is harmless. Statements are
pulled for the customers whose books moved since their last statement (see statements_due).

The long steps take `progress`, called with the rows done so far, for the sync screen.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from ledger.aiq.errors import AiqConfigurationError, AiqPermanentError
from ledger.models import (
    Allocation,
    BankAccount,
    CreditNote,
    Customer,
    CustomerStatement,
    CustomerStatementLine,
    Department,
    DocumentStatus,
    GLAccount,
    Invoice,
    OutboxCommand,
    Receipt,
    TaxCode,
)
from ledger.outbox.executors import allocation_entries, decimal, items
from ledger.outbox.executors import field as get

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
OPEN = (OutboxCommand.State.PENDING, OutboxCommand.State.IN_FLIGHT, OutboxCommand.State.UNCERTAIN)
MAX_PAGES = 10_000
# GetCustomersStatement takes a list of codes: this many customers per call
STATEMENT_BATCH = 50
# ageing buckets move with the calendar even when nothing is posted, so a statement is pulled
# again at least this often (in effect the day's first pull is a full pass)
STATEMENT_MAX_AGE = timedelta(hours=24)

Progress = Callable[[int], None]


def _no_progress(rows: int) -> None:
    pass


@dataclass
class Protected:
    """Mirror rows that open outbox commands are about to change."""

    invoice_ids: set = field(default_factory=set)
    transaction_ids: set = field(default_factory=set)
    receipt_references: set = field(default_factory=set)

    @classmethod
    def load(cls, entity) -> "Protected":
        found = cls()
        for kind, payload, ref in OutboxCommand.objects.filter(
            entity=entity, state__in=OPEN
        ).values_list("kind", "payload", "external_reference"):
            if kind == OutboxCommand.Kind.POST_RECEIPT:
                found.receipt_references.add(ref)
            for key in ("invoice_id",):
                if payload.get(key):
                    found.invoice_ids.add(int(payload[key]))
            for key in ("paying_transaction_id", "settled_transaction_id"):
                if payload.get(key):
                    found.transaction_ids.add(int(payload[key]))
            for txn in payload.get("transaction_ids") or []:
                found.transaction_ids.add(int(txn))
        # unallocations name the allocation; protect both of its sides
        for allocation_id in [
            p.get("allocation_id")
            for p in OutboxCommand.objects.filter(
                entity=entity, state__in=OPEN, kind=OutboxCommand.Kind.UNALLOCATE
            ).values_list("payload", flat=True)
        ]:
            row = Allocation.objects.filter(pk=allocation_id).first()
            if row:
                found.transaction_ids |= {row.transaction_id_1, row.transaction_id_2}
                if row.invoice_id:
                    found.invoice_ids.add(row.invoice_id)
        return found


def _day(value) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return datetime.fromisoformat(str(value)).date()


def _money(value) -> Decimal:
    return abs(decimal(value or 0))


# --- lists -----------------------------------------------------------------------------------


def sync_banks(client, entity) -> int:
    now = timezone.now()
    rows = items(client.call("GetBankList", replay_safe=True), "Bank")
    for row in rows:
        BankAccount.objects.update_or_create(
            entity=entity,
            bank_account_code=get(row, "BankAccountCode") or get(row, "Code"),
            defaults={
                "bank_code": get(row, "Code") or "",
                "name": get(row, "Name") or "",
                "currency": get(row, "CurrencyCode") or entity.base_currency,
                "last_synced_at": now,
            },
        )
    if entity.default_bank_account_id is None:
        # a first pull picks the bank that receives money: the one in the base currency,
        # when there is exactly one (an admin can change it on the entity)
        base = BankAccount.objects.filter(entity=entity, currency=entity.base_currency)
        if base.count() == 1:
            entity.default_bank_account = base.get()
            entity.save(update_fields=["default_bank_account"])
    return len(rows)


def sync_gl_accounts(client, entity) -> int:
    """GetGLAccountList answers each account as an array of strings: code, name, category."""
    now = timezone.now()
    rows = items(client.call("GetGLAccountList", replay_safe=True), "ArrayOfString")
    for row in rows:
        values = row if isinstance(row, list) else items(row, "string")
        if not values:
            continue
        code, name, kind = (list(values) + ["", ""])[:3]
        GLAccount.objects.update_or_create(
            entity=entity,
            code=code,
            defaults={"name": name or "", "account_type": kind or "", "last_synced_at": now},
        )
    return len(rows)


def sync_tax_codes(client, entity) -> int:
    now = timezone.now()
    rows = items(client.call("GetTaxCodeList", replay_safe=True), "Tax")
    for row in rows:
        TaxCode.objects.update_or_create(
            entity=entity,
            code=get(row, "Code"),
            defaults={
                "description": get(row, "Description") or "",
                "rate": decimal(get(row, "Rate") or 0),
                "last_synced_at": now,
            },
        )
    return len(rows)


def sync_departments(client, entity) -> int:
    now = timezone.now()
    rows = items(client.call("GetDepartmentList", replay_safe=True), "Department")
    for row in rows:
        Department.objects.update_or_create(
            entity=entity,
            department_id=get(row, "DepartmentID"),
            defaults={
                "name": get(row, "Description") or "",
                "bi_code": get(row, "AnalysisCode1") or "",
                "active": bool(get(row, "IsActive", True)),
                "last_synced_at": now,
            },
        )
    return len(rows)


def sync_customers(client, entity) -> int:
    now = timezone.now()
    rows = items(client.call("GetActiveCustomerList", replay_safe=True), "Customer")
    for row in rows:
        Customer.objects.update_or_create(
            entity=entity,
            code=str(get(row, "Code")).upper(),
            defaults={
                "name": get(row, "Name") or "",
                "email": (get(row, "Email") or "")[:254],
                "currency": get(row, "CurrencyCode") or entity.base_currency,
                "credit_limit": _money(get(row, "CreditLimit")),
                "aiq_account_id": get(row, "AccountID"),
                "active": bool(get(row, "IsActive", True)),
                "last_synced_at": now,
            },
        )
    return len(rows)


def sync_balances(client, entity) -> int:
    rows = items(
        client.call("GetAccountBalanceInformation", replay_safe=True, edt=timezone.now()),
        "AccountBalanceInformation",
    )
    for row in rows:
        if get(row, "AccountType") not in (None, "Customer"):
            continue
        Customer.objects.filter(entity=entity, code=str(get(row, "AccountCode")).upper()).update(
            balance=decimal(get(row, "Balance") or 0), updated_at=timezone.now()
        )
    return len(rows)


# --- transactions ----------------------------------------------------------------------------


def _customer(entity, code, currency) -> Customer:
    customer, _ = Customer.objects.get_or_create(
        entity=entity,
        code=str(code).upper(),
        defaults={"name": str(code), "currency": currency or entity.base_currency},
    )
    return customer


def _split(row) -> tuple[Decimal, Decimal, Decimal]:
    gross = _money(get(row, "ControlAmount"))
    lines = items(get(row, "LineDetails"), "WSTransactionDetail")
    tax = sum((_money(get(line, "Amount")) for line in lines if get(line, "IsTaxLine")), Decimal(0))
    tax = min(tax, gross)
    return gross - tax, tax, gross


def _status(outstanding: Decimal, gross: Decimal) -> str:
    if outstanding == 0 and gross > 0:
        return DocumentStatus.PAID
    if outstanding < gross:
        return DocumentStatus.PART_PAID
    return DocumentStatus.POSTED


def _free_reference(model, entity, reference: str, txn_id: int) -> str:
    """AIQ does not enforce unique external references; our mirror does. Keep the first (a
    second transaction with a reference of ours is flagged as a duplicate)."""
    if not reference:
        return ""
    clash = model.objects.filter(entity=entity, external_reference=reference).exclude(
        aiq_transaction_id=txn_id
    )
    if clash.exists():
        _flag_second_transaction(entity, reference, txn_id, model._meta.verbose_name)
        return ""
    return reference[:100]


def _flag_second_transaction(entity, reference: str, txn_id: int, what: str) -> None:
    """A transaction carrying an external reference of one of our commands, which the mirror
    already holds under another transaction id: AIQ has that write twice."""
    from ledger.outbox.duplicates import duplicate_flag_extra

    command = OutboxCommand.objects.filter(entity=entity, external_reference=reference).first()
    if command is None or command.state != OutboxCommand.State.CONFIRMED:
        return  # not ours, or its read-back has not run yet (it counts the hits itself)
    if int(command.result.get("transaction_id") or 0) == txn_id:
        return
    duplicate_flag_extra(command, [txn_id], found_by="pull")


def _apply_invoice(entity, row, protected: Protected, now) -> None:
    txn_id = int(get(row, "TransactionID"))
    net, tax, gross = _split(row)
    outstanding = min(_money(get(row, "OutstandingAmount")), gross)
    customer = _customer(entity, get(row, "AccountCode"), get(row, "CurrencyCode"))
    invoice = Invoice.objects.filter(entity=entity, aiq_transaction_id=txn_id).first()
    values = {
        "customer": customer,
        "invoice_number": (get(row, "InternalNumber") or "")[:50],
        "aiq_invoice_id": get(row, "InvoiceID"),
        "currency": get(row, "CurrencyCode") or customer.currency,
        "invoice_date": _day(get(row, "TransactionDate")),
        "net_amount": net,
        "tax_amount": tax,
        "gross_amount": gross,
        "last_synced_at": now,
    }
    if invoice is None:
        Invoice.objects.create(
            entity=entity,
            aiq_transaction_id=txn_id,
            external_reference=_free_reference(
                Invoice, entity, get(row, "ExternalReference") or "", txn_id
            ),
            outstanding_amount=outstanding,
            status=_status(outstanding, gross),
            **values,
        )
        return
    if invoice.pk in protected.invoice_ids or txn_id in protected.transaction_ids:
        values.pop("gross_amount"), values.pop("net_amount"), values.pop("tax_amount")
    else:
        values["outstanding_amount"] = outstanding
        values["status"] = _status(outstanding, gross)
    for name, value in values.items():
        setattr(invoice, name, value)
    invoice.save()


def _apply_credit_note(entity, row, protected: Protected, now) -> None:
    txn_id = int(get(row, "TransactionID"))
    net, tax, gross = _split(row)
    outstanding = min(_money(get(row, "OutstandingAmount")), gross)
    customer = _customer(entity, get(row, "AccountCode"), get(row, "CurrencyCode"))
    values = {
        "customer": customer,
        "credit_note_number": (get(row, "InternalNumber") or "")[:50],
        "currency": get(row, "CurrencyCode") or customer.currency,
        "credit_date": _day(get(row, "TransactionDate")),
        "net_amount": net,
        "tax_amount": tax,
        "gross_amount": gross,
        "status": DocumentStatus.POSTED,
        "last_synced_at": now,
    }
    if txn_id not in protected.transaction_ids:
        values["outstanding_amount"] = outstanding
    note = CreditNote.objects.filter(entity=entity, aiq_transaction_id=txn_id).first()
    reference = (get(row, "ExternalReference") or "")[:100]
    if note is None and reference:
        # our draft, posted by a command whose confirmation has not been written yet (its
        # answer was lost): this is that note, not another one
        note = CreditNote.objects.filter(
            entity=entity, external_reference=reference, aiq_transaction_id__isnull=True
        ).first()
        if note is not None:
            note.aiq_transaction_id = txn_id
            values.setdefault("outstanding_amount", outstanding)
    if note is None:
        values.setdefault("outstanding_amount", outstanding)
        CreditNote.objects.create(
            entity=entity,
            aiq_transaction_id=txn_id,
            external_reference=_free_reference(
                CreditNote, entity, get(row, "ExternalReference") or "", txn_id
            ),
            **values,
        )
        return
    for name, value in values.items():
        setattr(note, name, value)
    note.save()


def _bank_for(entity, row) -> BankAccount | None:
    gl = get(row, "TransactionBankGLAccountNumber")
    bank = BankAccount.objects.filter(entity=entity, bank_code=gl).first() if gl else None
    return bank or entity.default_bank_account or BankAccount.objects.filter(entity=entity).first()


def _apply_receipt(entity, row, protected: Protected, now) -> None:
    txn_id = int(get(row, "TransactionID"))
    reference = (get(row, "ExternalReference") or "")[:100] or f"AIQ-{txn_id}"
    amount = _money(get(row, "ControlAmount"))
    if amount == 0:
        return
    unallocated = min(_money(get(row, "OutstandingAmount")), amount)
    receipt = Receipt.objects.filter(entity=entity, aiq_transaction_id=txn_id).first()
    if receipt is None:
        # ours, confirmed or still waiting (no transaction id yet): the same receipt
        receipt = Receipt.objects.filter(
            Q(aiq_transaction_id__isnull=True) | Q(aiq_transaction_id=txn_id),
            entity=entity,
            check_reference=reference,
        ).first()
    if (
        receipt is None
        and Receipt.objects.filter(entity=entity, check_reference=reference).exists()
    ):
        # AIQ holds a second receipt with a reference the mirror already has for another one:
        # mirrored under its own id (the books must show both), flagged if the reference is ours
        _flag_second_transaction(entity, reference, txn_id, "receipt")
        reference = f"AIQ-{txn_id}"
    if receipt is None:
        bank = _bank_for(entity, row)
        if bank is None:
            return  # no bank account synced yet; the next pass (banks come first) creates it
        customer = _customer(entity, get(row, "AccountCode"), get(row, "CurrencyCode"))
        Receipt.objects.create(
            entity=entity,
            customer=customer,
            bank_account=bank,
            check_reference=reference,
            aiq_transaction_id=txn_id,
            currency=get(row, "CurrencyCode") or customer.currency,
            payment_date=_day(get(row, "TransactionDate")),
            amount=amount,
            unallocated_amount=unallocated,
            last_synced_at=now,
        )
        return
    receipt.aiq_transaction_id = txn_id
    receipt.last_synced_at = now
    if (
        txn_id not in protected.transaction_ids
        and receipt.check_reference not in protected.receipt_references
    ):
        receipt.unallocated_amount = min(unallocated, receipt.amount)
    receipt.save()


def transaction_kind(row) -> str | None:
    kind = str(get(row, "TransactionType") or "").replace(" ", "").lower()
    ledger = str(get(row, "Ledger") or "Sales").lower()
    if ledger != "sales":
        return None
    if "creditnote" in kind:
        return "credit_note"
    if "invoice" in kind:
        return "invoice"
    if "receipt" in kind or "payment" in kind:
        return "receipt"
    return None


APPLY = {"invoice": _apply_invoice, "credit_note": _apply_credit_note, "receipt": _apply_receipt}


def sync_transactions(
    client,
    entity,
    since: datetime,
    until: datetime,
    paying_ids: set | None = None,
    progress: Progress = _no_progress,
) -> int:
    """Apply every sales transaction changed in [since, until]; collects the receipts and
    credit notes among them into `paying_ids` for the allocation step."""
    seen: set[int] = set()
    skip = 0
    for _ in range(MAX_PAGES):
        page = items(
            client.call(
                "GetTransactionsModifiedBy",
                replay_safe=True,
                query={"FromDate": since, "ToDate": until, "Skip": skip},
            ),
            "WSChangedTransactionSummary",
        )
        fresh = [r for r in page if int(get(r, "TransactionID")) not in seen]
        if not fresh:
            break
        now = timezone.now()
        with transaction.atomic():
            # protected rows re-read per page: a command may have been confirmed meanwhile
            protected = Protected.load(entity)
            for row in fresh:
                seen.add(int(get(row, "TransactionID")))
                kind = transaction_kind(row)
                if kind:
                    APPLY[kind](entity, row, protected, now)
                if kind in ("receipt", "credit_note") and paying_ids is not None:
                    paying_ids.add(int(get(row, "TransactionID")))
        skip += len(page)
        progress(len(seen))
    return len(seen)


def sync_allocations(client, entity, paying_ids, progress: Progress = _no_progress) -> int:
    """Allocations of the receipts/credit notes that changed in this window (an allocation
    changes both sides' outstanding, so their modified date moves). AIQ's allocation list does
    not carry the allocationReference: rows are told apart by AIQ's AllocationId; one of ours
    confirmed without it learns it here (pair and amount). Then the settled invoices are
    checked: allocations beyond an invoice's gross are flagged for a person."""
    created = read = 0
    settled: set[int] = set()
    for paying in sorted(paying_ids):
        entries = allocation_entries(client, paying)
        with transaction.atomic():
            for entry in entries:
                created += _apply_allocation(entity, paying, entry)
                settled.add(int(get(entry, "AllocatedToTransactionID")))
        read += len(entries)
        progress(read)
    _flag_over_allocated(entity, settled)
    return created


def _apply_allocation(entity, paying: int, entry) -> int:
    settled = int(get(entry, "AllocatedToTransactionID"))
    amount = _money(get(entry, "AllocationAmount"))
    allocation_id = int(get(entry, "AllocationId"))
    reference = f"AIQ-{allocation_id}"
    if amount == 0 or paying == settled:
        return 0
    mirrored = Allocation.objects.filter(entity=entity)
    if mirrored.filter(aiq_allocation_id=allocation_id).exists():
        return 0
    same_pair = mirrored.filter(state=Allocation.State.ACTIVE, amount=amount).filter(
        Q(transaction_id_1=paying, transaction_id_2=settled)
        | Q(transaction_id_1=settled, transaction_id_2=paying)
    )
    # one of ours confirmed without AIQ's id (or one pulled before ids were kept): this is it
    unnamed = same_pair.filter(aiq_allocation_id__isnull=True).order_by("pk").first()
    if unnamed is not None:
        unnamed.aiq_allocation_id = allocation_id
        unnamed.save(update_fields=["aiq_allocation_id", "updated_at"])
        return 0
    invoice = Invoice.objects.filter(entity=entity, aiq_transaction_id=settled).first()
    Allocation.objects.create(
        entity=entity,
        transaction_id_1=paying,
        transaction_id_2=settled,
        receipt=Receipt.objects.filter(entity=entity, aiq_transaction_id=paying).first(),
        credit_note=CreditNote.objects.filter(entity=entity, aiq_transaction_id=paying).first(),
        invoice=invoice,
        amount=amount,
        currency=invoice.currency if invoice else entity.base_currency,
        allocation_date=_day(get(entry, "AllocationDate") or timezone.now()),
        reference=reference,
        aiq_allocation_id=allocation_id,
        last_synced_at=timezone.now(),
    )
    _flag_second_allocation(entity, same_pair, paying, settled, amount, allocation_id)
    return 1


def _flag_second_allocation(entity, same_pair, paying, settled, amount, allocation_id) -> None:
    """A new allocation in AIQ with the pair and amount of one of ours already mirrored: ours
    twice, unless a command of ours for that pair and amount is still open (then this is that
    command's own write, which its confirmation will adopt)."""
    from ledger.outbox.duplicates import duplicate_flag_extra

    ours = same_pair.exclude(reference__startswith="AIQ-").exclude(aiq_allocation_id=allocation_id)
    references = list(ours.values_list("reference", flat=True))
    if not references:
        return
    open_commands = OutboxCommand.objects.filter(
        entity=entity,
        kind__in=(OutboxCommand.Kind.ALLOCATE, OutboxCommand.Kind.ALLOCATE_WITH_DISCOUNT),
        state__in=OPEN,
        payload__settled_transaction_id=settled,
    )
    if any(decimal(c.payload.get("amount")) == amount for c in open_commands):
        return
    command = OutboxCommand.objects.filter(entity=entity, external_reference=references[0]).first()
    if command is not None:
        duplicate_flag_extra(command, [allocation_id], found_by="pull")


def _flag_over_allocated(entity, settled_ids: set[int]) -> None:
    """Invoices whose active allocations (with discounts) add up to more than their gross."""
    from django.db.models import Sum

    from ledger.models import DuplicateWrite
    from ledger.outbox.duplicates import duplicate_flag

    for invoice in Invoice.objects.filter(entity=entity, aiq_transaction_id__in=settled_ids):
        totals = Allocation.objects.filter(
            invoice=invoice, state=Allocation.State.ACTIVE
        ).aggregate(amount=Sum("amount"), discount=Sum("discount_amount"))
        allocated = (totals["amount"] or 0) + (totals["discount"] or 0)
        if allocated > invoice.gross_amount:
            duplicate_flag(
                entity=entity,
                kind=DuplicateWrite.Kind.OVER_ALLOCATED,
                key=f"invoice:{invoice.aiq_transaction_id}",
                found_by="pull",
                external_reference=invoice.invoice_number,
                amount=allocated - invoice.gross_amount,
                currency=invoice.currency,
                detail=f"allocated {allocated} against a gross of {invoice.gross_amount}",
            )


# --- statements ------------------------------------------------------------------------------


class StatementsIncomplete(Exception):
    """Some customers' statements could not be pulled; their stored ones stay as they were."""


def _read_since(model):
    return Exists(
        model.objects.filter(customer=OuterRef("customer"), last_synced_at__gt=OuterRef("up_to"))
    )


def statements_due(entity, now: datetime | None = None) -> list[str]:
    """Codes of the customers whose statement should be pulled: never pulled; pulled more than
    STATEMENT_MAX_AGE ago; one of their invoices, receipts or credit notes was read from AIQ
    since (new, or its outstanding moved by an allocation); or AIQ's balance from the balances
    step differs from the statement's (e.g. a journal, which the pull does not apply).

    The transactions step re-reads its overlap window, so a change usually brings its customer
    back here twice. Only customers AIQ knows are asked for: AIQ refuses a batch naming a code
    it does not have (one created here and still waiting in the outbox)."""
    cutoff = (now or timezone.now()) - STATEMENT_MAX_AGE
    outdated = (
        CustomerStatement.objects.filter(entity=entity)
        .filter(
            Q(up_to__lt=cutoff)
            | ~Q(balance=F("customer__balance"))
            | _read_since(Invoice)
            | _read_since(Receipt)
            | _read_since(CreditNote)
        )
        .values("customer_id")
    )
    return list(
        Customer.objects.filter(entity=entity)
        .filter(Q(aiq_account_id__isnull=False) | Q(last_synced_at__isnull=False))
        .filter(Q(statement__isnull=True) | Q(pk__in=outdated))
        .order_by("code")
        .values_list("code", flat=True)
    )


def sync_statements(
    client,
    entity,
    codes: list[str],
    progress: Progress = _no_progress,
    batch_size: int | None = None,
) -> int:
    """Pull the statements of `codes`, a batch per call, and replace each customer's stored one.

    AIQ refuses a whole batch for one bad code (e.g. a customer deleted there), so a refused
    batch is asked again one customer at a time; those still refused keep their stored
    statement and are named in the StatementsIncomplete raised at the end. When every one of
    them is refused the fault is not the codes: it is raised at once, as is any error that is
    not a refusal (AIQ down), leaving the customers not yet pulled as they were."""
    batch_size = batch_size or STATEMENT_BATCH
    stored, refused = 0, {}
    for start in range(0, len(codes), batch_size):
        batch = codes[start : start + batch_size]
        try:
            stored += pull_statements(client, entity, batch)
        except AiqConfigurationError:
            raise
        except AiqPermanentError as batch_error:
            failures = {}
            for code in batch:
                try:
                    stored += pull_statements(client, entity, [code])
                except AiqPermanentError as error:
                    failures[code] = error.message
            if len(batch) > 1 and len(failures) == len(batch):
                raise batch_error
            refused.update(failures)
        progress(stored)
    if refused:
        named = "; ".join(f"{code}: {message}" for code, message in sorted(refused.items()))
        raise StatementsIncomplete(f"{len(refused)} not pulled ({named})")
    return stored


def pull_statements(client, entity, codes: list[str]) -> int:
    """One GetCustomersStatement call for `codes`, stored in one transaction; AIQ's errors
    propagate (nothing is stored then). The batch costs the same few queries however many
    customers it names: its statements in one upsert, its old lines in one delete, its new
    lines in one insert."""
    if not codes:
        return 0  # an empty list asks AIQ for every customer
    up_to = timezone.now()
    answer = client.get_customers_statement(up_to=up_to, customer_codes=codes, show_zeros=True)
    by_code = {str(get(get(s, "CustomerState"), "CustomerCode")).upper(): s for s in answer}
    with transaction.atomic():
        # in pk order, so two pulls that share customers lock their statements in the same order
        named = Customer.objects.filter(entity=entity, code__in=[c.upper() for c in codes])
        customers = list(named.order_by("pk"))
        # asked with showZeros, so a customer left out has nothing open: an empty statement
        statements = [by_code.get(customer.code) for customer in customers]
        headers = _store_headers(customers, up_to, statements)
        CustomerStatementLine.objects.filter(statement__in=headers).delete()
        CustomerStatementLine.objects.bulk_create(
            [
                line
                for header, statement in zip(headers, statements, strict=True)
                for line in _statement_lines(header, statement)
            ]
        )
    return len(customers)


STATEMENT_FIGURES = {
    "balance": "CurrentBalance",
    "days_0_30": "From0To30DaysBalanceBucket",
    "days_30_60": "From30To60DaysBalanceBucket",
    "days_60_90": "From60To90DaysBalanceBucket",
    "days_90_120": "From90To120DaysBalanceBucket",
    "days_120_plus": "From120DaysPlusBalanceBucket",
    "future": "FutureBalanceBucket",
}


def _store_headers(customers, up_to: datetime, statements) -> list[CustomerStatement]:
    """Insert or replace each customer's statement row in one upsert on its unique customer;
    the rows come back with their ids (RETURNING), new and replaced alike."""
    headers = [
        _statement_header(customer, up_to, statement)
        for customer, statement in zip(customers, statements, strict=True)
    ]
    return CustomerStatement.objects.bulk_create(
        headers,
        update_conflicts=True,
        unique_fields=["customer"],
        update_fields=["entity", "up_to", "currency", *STATEMENT_FIGURES],
    )


def _statement_header(customer, up_to: datetime, statement) -> CustomerStatement:
    state = get(statement, "CustomerState") or {}
    figures = {name: decimal(get(state, aiq) or 0) for name, aiq in STATEMENT_FIGURES.items()}
    return CustomerStatement(
        entity_id=customer.entity_id,
        customer=customer,
        up_to=up_to,
        currency=customer.currency,
        **figures,
    )


def _statement_lines(header, statement) -> list[CustomerStatementLine]:
    running = Decimal(0)
    lines = []
    for position, row in enumerate(items(get(statement, "TransactionList"), "TransactionState")):
        outstanding = decimal(get(row, "OutstandingAmount") or 0)
        running += outstanding
        lines.append(
            CustomerStatementLine(
                statement=header,
                position=position,
                aiq_transaction_id=int(get(row, "TransactionReference")),
                transaction_type=(get(row, "Type") or "")[:40],
                internal_number=(get(row, "InternalNumber") or "")[:50],
                external_reference=(get(row, "ExternalReference") or "")[:100],
                description=(get(row, "Description") or "")[:200],
                transaction_date=_day(get(row, "TransactionDate")),
                amount=decimal(get(row, "Amount") or 0),
                outstanding_amount=outstanding,
                running_balance=running,
            )
        )
    return lines


def window(cursor: datetime | None, until: datetime) -> datetime:
    if cursor is None:
        return EPOCH
    return min(cursor, until) - timedelta(minutes=settings.AIQ_SYNC_OVERLAP_MINUTES)
