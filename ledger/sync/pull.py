"""Pull AIQ -> mirror, one step per object type. AIQ is the book of record, with one exception:
a row that a command still waiting in the outbox will change keeps our value until that command
is confirmed (otherwise a sync between "sent" and "confirmed" would show an invoice as open
again, or paid twice).

Transactions and allocations are incremental: each pass reads from the last cursor minus an
overlap (AIQ's modified dates are not guaranteed to be monotonic across its servers), and rows
are de-duplicated on AIQ's transaction id, so reading one twice is harmless. Customer statements
are pulled after them (ledger/sync/statements.py).

The long steps take `progress`, called with the rows done so far, for the sync screen.
"""

import calendar
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ledger.aiq.results import as_date, as_decimal, get, unwrap
from ledger.duplicates import duplicate_flag, duplicate_flag_extra
from ledger.models import (
    Allocation,
    AnalysisDimension,
    BankAccount,
    CreditNote,
    Customer,
    Department,
    DocumentStatus,
    DuplicateWrite,
    GLAccount,
    Invoice,
    InvoiceLine,
    OutboxCommand,
    Receipt,
    Supplier,
    TaxCode,
)

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
OPEN = (OutboxCommand.State.PENDING, OutboxCommand.State.IN_FLIGHT, OutboxCommand.State.UNCERTAIN)
MAX_PAGES = 10_000

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


def _money(value) -> Decimal:
    return abs(as_decimal(value or 0))


# --- lists -----------------------------------------------------------------------------------


def sync_banks(client, entity) -> int:
    now = timezone.now()
    rows = client.get_bank_list()
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


def gl_account_rows(rows) -> list[tuple[str, str, str]]:
    """GetGLAccountList answers each account as an array of strings: code, name, category."""
    found = []
    for row in rows:
        values = row if isinstance(row, list) else unwrap(row, "string")
        if values:
            found.append(tuple((list(values) + ["", ""])[:3]))
    return found


def sync_gl_accounts(client, entity) -> int:
    now = timezone.now()
    rows = client.get_gl_account_list()
    for code, name, kind in gl_account_rows(rows):
        GLAccount.objects.update_or_create(
            entity=entity,
            code=code,
            defaults={"name": name or "", "account_type": kind or "", "last_synced_at": now},
        )
    return len(rows)


def sync_tax_codes(client, entity) -> int:
    now = timezone.now()
    rows = client.get_tax_code_list()
    for row in rows:
        TaxCode.objects.update_or_create(
            entity=entity,
            code=get(row, "Code"),
            defaults={
                "description": get(row, "Description") or "",
                "rate": as_decimal(get(row, "Rate") or 0),
                "last_synced_at": now,
            },
        )
    return len(rows)


# the outbox kind that renames, retires or activates a BI code in AIQ (ledger/outbox/kinds.py)
UPDATE_DEPARTMENT = "update_department"


def _department_fields(row, now) -> dict:
    codes = [get(row, f"AnalysisCode{n}") or "" for n in range(1, 7)]
    return {
        "name": get(row, "Description") or "",
        "bi_code": codes[0],
        "analysis_codes": codes,
        "active": bool(get(row, "IsActive", True)),
        "last_synced_at": now,
    }


def departments_store(entity, rows) -> int:
    """AIQ's departments (GetDepartmentList, GetDepartmentById, GetDepartmentsByAnalysisCode
    all answer Department records) into the mirror. A BI code an open update_department
    command is changing keeps our value until AIQ confirms it."""
    now = timezone.now()
    changing = {
        str(code)
        for code in OutboxCommand.objects.filter(
            entity=entity, kind=UPDATE_DEPARTMENT, state__in=OPEN
        ).values_list("payload__department_id", flat=True)
    }
    for row in rows:
        department_id = get(row, "DepartmentID")
        if not department_id or department_id in changing:
            continue
        Department.objects.update_or_create(
            entity=entity, department_id=department_id, defaults=_department_fields(row, now)
        )
    return len(rows)


def sync_analysis_setup(client, entity) -> int:
    """The BI dimensions (GetAnalysisDimensionSetup), AnalysisCode1 first."""
    now = timezone.now()
    dimensions = client.get_analysis_dimension_setup()
    for position, row in enumerate(dimensions, start=1):
        codes = (get(row, "DimensionCodes") and unwrap(get(row, "DimensionCodes"),
                 "WSAnalysisDimensionCode")) or []  # fmt: skip
        AnalysisDimension.objects.update_or_create(
            entity=entity,
            position=position,
            defaults={
                "code": get(row, "Code") or "",
                "description": get(row, "Description") or "",
                "codes": [
                    {"code": get(c, "Code") or "", "description": get(c, "Description") or ""}
                    for c in codes
                ],
                "last_synced_at": now,
            },
        )
    AnalysisDimension.objects.filter(entity=entity, position__gt=len(dimensions)).delete()
    return len(dimensions)


def sync_departments(client, entity) -> int:
    """The analysis set-up, then every BI code (active and retired)."""
    sync_analysis_setup(client, entity)
    return departments_store(entity, client.get_department_list())


def sync_department(client, entity, department_id: str) -> Department | None:
    """One BI code read again from AIQ (GetDepartmentById)."""
    departments_store(entity, [client.get_department_by_id(department_id)])
    return Department.objects.filter(entity=entity, department_id=department_id).first()


def sync_departments_by_analysis_code(client, entity, position: int, code: str) -> list[str]:
    """The BI codes AIQ files under one analysis code (GetDepartmentsByAnalysisCode), stored
    and returned by DepartmentID."""
    rows = client.get_departments_by_analysis_code({position: [code]})
    departments_store(entity, rows)
    return [get(row, "DepartmentID") for row in rows]


def _suppliers_store(entity, rows) -> None:
    now = timezone.now()
    for row in rows:
        code = str(get(row, "Code") or "").upper()
        if not code:
            continue
        Supplier.objects.update_or_create(
            entity=entity,
            code=code,
            defaults={
                "name": (get(row, "Name") or "")[:200],
                "currency": (get(row, "CurrencyCode") or entity.base_currency)[:3].upper(),
                "aiq_account_id": get(row, "AccountID") or None,
                "active": bool(get(row, "IsActive", True)),
                "last_synced_at": now,
            },
        )


def sync_suppliers(client, entity) -> int:
    """Every AIQ supplier, active and not (GetSupplierList): what purchase invoices are checked
    against before they are queued."""
    rows = client.get_supplier_list()
    _suppliers_store(entity, rows)
    return len(rows)


def sync_supplier(client, entity, code: str) -> Supplier | None:
    """One supplier read again from AIQ (GetSupplier): one made since the last pull."""
    _suppliers_store(entity, [client.get_supplier(code)])
    return Supplier.objects.filter(entity=entity, code=code.upper()).first()


def sync_customers(client, entity) -> int:
    now = timezone.now()
    terms = {
        str(get(t, "ID")): (get(t, "CreditDays"), bool(get(t, "EndOfMonth")))
        for t in client.get_credit_term_list()
    }
    rows = client.get_active_customer_list()
    for row in rows:
        days, end_of_month = terms.get(str(get(row, "CreditTermID")), (None, False))
        Customer.objects.update_or_create(
            entity=entity,
            code=str(get(row, "Code")).upper(),
            defaults={
                "name": get(row, "Name") or "",
                "email": (get(row, "Email") or "")[:254],
                "currency": get(row, "CurrencyCode") or entity.base_currency,
                "credit_limit": _money(get(row, "CreditLimit")),
                "credit_days": days,
                "credit_end_of_month": end_of_month,
                "aiq_account_id": get(row, "AccountID"),
                "active": bool(get(row, "IsActive", True)),
                "last_synced_at": now,
            },
        )
    return len(rows)


def sync_balances(client, entity) -> int:
    rows = client.get_account_balance_information(at=timezone.now())
    for row in rows:
        if get(row, "AccountType") not in (None, "Customer"):
            continue
        Customer.objects.filter(entity=entity, code=str(get(row, "AccountCode")).upper()).update(
            balance=as_decimal(get(row, "Balance") or 0), updated_at=timezone.now()
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
    lines = unwrap(get(row, "LineDetails"), "WSTransactionDetail")
    tax = sum((_money(get(line, "Amount")) for line in lines if get(line, "IsTaxLine")), Decimal(0))
    tax = min(tax, gross)
    return gross - tax, tax, gross


def due_date(invoice_date, customer: Customer):
    """When an invoice falls due on the customer's AIQ credit term (None: no term known)."""
    if customer.credit_days is None or invoice_date is None:
        return None
    start = invoice_date
    if customer.credit_end_of_month:
        start = invoice_date.replace(
            day=calendar.monthrange(invoice_date.year, invoice_date.month)[1]
        )
    return start + timedelta(days=customer.credit_days)


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
        "invoice_date": as_date(get(row, "TransactionDate")),
        "due_date": due_date(as_date(get(row, "TransactionDate")), customer),
        "exchange_rate": as_decimal(get(row, "ExchangeRate")) if get(row, "ExchangeRate") else None,
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


def _invoice_line(invoice: Invoice, number: int, item) -> InvoiceLine:
    net, tax = as_decimal(get(item, "NetAmount") or 0), as_decimal(get(item, "TaxAmount") or 0)
    return InvoiceLine(
        invoice=invoice,
        line_number=number,
        aiq_invoice_item_id=get(item, "InvoiceItemID") or None,
        stock_item_id=(get(item, "StockItemID") or "")[:50],
        description=(get(item, "StockItemDescription") or get(item, "Notes") or "")[:500],
        gl_account_code=(get(item, "GLAccountCode") or "")[:50],
        department_id=(get(item, "DepartmentID") or "")[:50],
        tax_code=(get(item, "TaxCode") or "")[:20],
        tax_rate=as_decimal(get(item, "TaxRate") or 0),
        quantity=as_decimal(get(item, "InvoicedQuantity") or 1),
        unit_price=as_decimal(get(item, "ActualPrice") or get(item, "StockItemPrice") or 0),
        net_amount=net,
        tax_amount=tax,
        gross_amount=net + tax,
    )


def _apply_invoice_lines(entity, document, protected: Protected) -> None:
    """AIQ's lines of one item invoice replace the mirrored ones, unless an open command is
    about to change that invoice (its lines then wait for the next pull)."""
    invoice = Invoice.objects.filter(
        entity=entity, aiq_invoice_id=get(document, "InvoiceID")
    ).first()
    if invoice is None or invoice.pk in protected.invoice_ids:
        return
    if invoice.aiq_transaction_id in protected.transaction_ids:
        return
    items = unwrap(get(document, "Lines"), "InvoiceLine")
    lines = [_invoice_line(invoice, n, item) for n, item in enumerate(items, start=1)]
    fields = [f.name for f in InvoiceLine._meta.concrete_fields if f.name not in ("id", "invoice")]
    mirrored = [
        [getattr(line, f) for f in fields] for line in invoice.lines.order_by("line_number")
    ]
    if mirrored == [[getattr(line, f) for f in fields] for line in lines]:
        return
    invoice.lines.all().delete()
    InvoiceLine.objects.bulk_create(lines)


def _apply_credit_note(entity, row, protected: Protected, now) -> None:
    txn_id = int(get(row, "TransactionID"))
    net, tax, gross = _split(row)
    outstanding = min(_money(get(row, "OutstandingAmount")), gross)
    customer = _customer(entity, get(row, "AccountCode"), get(row, "CurrencyCode"))
    values = {
        "customer": customer,
        "credit_note_number": (get(row, "InternalNumber") or "")[:50],
        "currency": get(row, "CurrencyCode") or customer.currency,
        "credit_date": as_date(get(row, "TransactionDate")),
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
            payment_date=as_date(get(row, "TransactionDate")),
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
    if "journal" in kind:
        return "journal"
    return None


def _check_journal(entity, row, protected: Protected, now) -> None:
    """Sales journals are not mirrored, but ours (write-offs, refunds' debit journals,
    reversals) carry our external reference: a second one is AIQ holding that write twice."""
    reference = (get(row, "ExternalReference") or "")[:100]
    if reference:
        _flag_second_transaction(entity, reference, int(get(row, "TransactionID")), "journal")


APPLY = {
    "invoice": _apply_invoice,
    "credit_note": _apply_credit_note,
    "receipt": _apply_receipt,
    "journal": _check_journal,
}


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
        page = client.get_transactions_modified_by(since=since, until=until, skip=skip)
        fresh = [r for r in page if int(get(r, "TransactionID")) not in seen]
        if not fresh:
            break
        # the lines of the item invoices read on this page, one call (bounded by the page)
        documents = client.get_invoices_by_ids(
            sorted(
                {
                    int(get(r, "InvoiceID"))
                    for r in fresh
                    if transaction_kind(r) == "invoice" and get(r, "InvoiceID")
                }
            )
        )
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
            for document in documents:
                _apply_invoice_lines(entity, document, protected)
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
        entries = client.allocation_entries(paying)
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
        allocation_date=as_date(get(entry, "AllocationDate") or timezone.now()),
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
    if any(as_decimal(c.payload.get("amount")) == amount for c in open_commands):
        return
    command = OutboxCommand.objects.filter(entity=entity, external_reference=references[0]).first()
    if command is not None:
        duplicate_flag_extra(command, [allocation_id], found_by="pull")


def _flag_over_allocated(entity, settled_ids: set[int]) -> None:
    """Invoices whose active allocations (with discounts) add up to more than their gross."""
    from django.db.models import Sum

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


def window(cursor: datetime | None, until: datetime) -> datetime:
    if cursor is None:
        return EPOCH
    return min(cursor, until) - timedelta(minutes=settings.AIQ_SYNC_OVERLAP_MINUTES)


@dataclass(frozen=True)
class PostedLine:
    gl_account_code: str
    department_id: str
    amount: Decimal  # in the transaction's currency, debits positive
    base_amount: Decimal | None  # AIQ's BCAmount: in the company's base currency


@dataclass(frozen=True)
class PostedTransaction:
    exchange_rate: Decimal | None  # units of its currency per base unit
    lines: list[PostedLine]


def posted_transaction(client, reference: str, around, transaction_id: int):
    """One posted transaction as AIQ books it (GetTransactionsByExternalReference): its
    ExchangeRate (on the transaction, else on its lines) and its GL lines with AIQ's own
    base-currency amounts; None when AIQ does not list it under `reference`."""
    day = datetime(around.year, around.month, around.day)
    rows = client.get_transactions_by_external_reference(
        reference, from_date=day - timedelta(days=400), to_date=day + timedelta(days=400)
    )
    for row in rows:
        if int(get(row, "TransactionID") or 0) != int(transaction_id):
            continue
        details = unwrap(get(row, "LineDetails"), "WSTransactionDetail") or []
        rate = get(row, "ExchangeRate") or next(
            (get(d, "ExchangeRate") for d in details if get(d, "ExchangeRate")), None
        )
        lines = [
            PostedLine(
                gl_account_code=str(get(d, "GLAccountCode") or ""),
                department_id=str(get(d, "DepartmentID") or ""),
                amount=as_decimal(get(d, "Amount") or 0),
                base_amount=as_decimal(get(d, "BCAmount")) if get(d, "BCAmount") is not None
                else None,
            )
            for d in details
        ]  # fmt: skip
        return PostedTransaction(as_decimal(rate) if rate else None, lines)
    return None


def mirror_invoices_by_number(client, entity, numbers: list[str]) -> list[Invoice]:
    """Invoices AIQ has that the mirror does not yet (a payment names one before the next
    pull): the posted sales invoices of these numbers (GetInvoicesBy), each one's transaction
    (GetTransactionByInvoiceID: id, gross, allocated, tax), mirrored as a pull would mirror
    them, lines included. Reads only; returns the mirrored invoices."""
    documents = client.get_posted_invoices_by_numbers(numbers)
    rows = []
    for document in documents:
        if str(get(document, "Ledger") or "Sales").lower() != "sales":
            continue
        lines = client.get_transaction_by_invoice_id(int(get(document, "InvoiceID")))
        control = next(
            (
                line
                for line in lines
                if get(line, "IsAccountControlLine")
                or get(line, "TransactionLineType") == "Control"
            ),
            None,
        )
        if control is None:
            continue
        gross = abs(_money(get(control, "Amount")))
        allocated = abs(_money(get(control, "AllocatedAmount")))
        tax = sum(
            (
                abs(_money(get(line, "Amount")))
                for line in lines
                if get(line, "TransactionLineType") == "Tax" or get(line, "IsTaxLine")
            ),
            Decimal(0),
        )
        rows.append(
            (
                document,
                {
                    "TransactionID": get(control, "TransactionID"),
                    "InvoiceID": get(document, "InvoiceID"),
                    "AccountCode": get(document, "AccountCode"),
                    "CurrencyCode": get(control, "CurrencyCode") or get(document, "CurrencyCode"),
                    "InternalNumber": get(control, "InternalNumber")
                    or get(document, "InvoiceNumber"),
                    "ExternalReference": get(document, "ExternalReference"),
                    "TransactionDate": get(control, "TransactionDate")
                    or get(document, "InvoiceDate"),
                    "ControlAmount": gross,
                    "OutstandingAmount": gross - allocated,
                    "LineDetails": {"WSTransactionDetail": [{"IsTaxLine": True, "Amount": tax}]},
                },
            )
        )
    if not rows:
        return []
    now = timezone.now()
    with transaction.atomic():
        protected = Protected.load(entity)
        for document, row in rows:
            if not row["AccountCode"] or not row["TransactionID"]:
                continue
            _apply_invoice(entity, row, protected, now)
            _apply_invoice_lines(entity, document, protected)
    return list(
        Invoice.objects.filter(
            entity=entity, aiq_transaction_id__in=[int(row["TransactionID"]) for _d, row in rows]
        )
    )
