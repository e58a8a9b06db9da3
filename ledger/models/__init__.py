"""The AIQ mirror: local copies of AccountsIQ's objects, named and shaped after AIQ's own.

AIQ stays the book of record. Every row keeps its AIQ identifiers and when it was last synced;
money is MoneyField (exact Decimal). Invariants are named database constraints.

One module per concept; every model is re-exported here, so `from ledger.models import X` is
the one way the rest of the code names them (and importing this package registers them all).
"""

from ledger.models.attachments import MAX_ATTACHMENT_BYTES, Attachment
from ledger.models.documents import Document
from ledger.models.duplicates import DuplicateWrite
from ledger.models.entities import ApiVersion, Entity, EntityGrant, SyncedModel
from ledger.models.intercompany import InterCompanyConnection
from ledger.models.invoices import (
    INVOICE_KEY_FIELDS,
    CreditNote,
    CreditNoteLine,
    DocumentLine,
    DocumentStatus,
    Invoice,
    InvoiceLine,
    InvoiceQuerySet,
    set_invoice_keys,
)
from ledger.models.master_data import (
    AnalysisDimension,
    BankAccount,
    Customer,
    Department,
    GLAccount,
    Supplier,
    TaxCode,
)
from ledger.models.outbox import OutboxCommand
from ledger.models.statements import CustomerStatement, CustomerStatementLine
from ledger.models.sync import SyncState
from ledger.models.transactions import Allocation, Journal, JournalLine, Receipt

__all__ = [
    "MAX_ATTACHMENT_BYTES",
    "INVOICE_KEY_FIELDS",
    "Allocation",
    "AnalysisDimension",
    "ApiVersion",
    "Attachment",
    "BankAccount",
    "CreditNote",
    "CreditNoteLine",
    "Customer",
    "CustomerStatement",
    "CustomerStatementLine",
    "Department",
    "Document",
    "DocumentLine",
    "DocumentStatus",
    "DuplicateWrite",
    "Entity",
    "EntityGrant",
    "GLAccount",
    "InterCompanyConnection",
    "Invoice",
    "InvoiceLine",
    "InvoiceQuerySet",
    "Journal",
    "JournalLine",
    "OutboxCommand",
    "Receipt",
    "SyncState",
    "SyncedModel",
    "Supplier",
    "TaxCode",
    "set_invoice_keys",
]
