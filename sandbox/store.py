"""The sandbox's books, persisted to one SQLite file.

Amounts are stored as integer thousandths of the currency unit (`*_milli` columns), never as
floats; rates and amounts inside JSON documents are decimal text. Every SOAP call runs in one
`BEGIN IMMEDIATE` transaction under a process-wide lock, so concurrent HTTP threads see the
books change one whole operation at a time (what a real accounting system's serialisable
write path looks like from outside) and a failed operation leaves nothing half-written.
"""

import json
import sqlite3
import threading
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal

SCHEMA = """
CREATE TABLE IF NOT EXISTS entity (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    base_currency TEXT NOT NULL,
    partner_key TEXT,
    user_key TEXT,
    gl_defaults TEXT NOT NULL DEFAULT '{}'
);
-- Exchange rates: units of `currency` per one unit of the entity's base currency.
CREATE TABLE IF NOT EXISTS currency_rate (
    entity_id TEXT NOT NULL REFERENCES entity(id),
    currency TEXT NOT NULL,
    rate TEXT NOT NULL,
    PRIMARY KEY (entity_id, currency)
);
CREATE TABLE IF NOT EXISTS api_client (
    client_id TEXT PRIMARY KEY,
    client_secret TEXT NOT NULL,
    entities TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS account (
    id INTEGER PRIMARY KEY,
    entity_id TEXT NOT NULL REFERENCES entity(id),
    ledger TEXT NOT NULL CHECK (ledger IN ('Sales', 'Purchases')),
    code TEXT NOT NULL CHECK (code = upper(code) AND code <> ''),
    name TEXT NOT NULL,
    currency TEXT NOT NULL,
    is_active INTEGER NOT NULL DEFAULT 1,
    credit_limit_milli INTEGER NOT NULL DEFAULT 0,
    row_version INTEGER NOT NULL DEFAULT 1,
    data TEXT NOT NULL,
    created_at TEXT NOT NULL,
    modified_at TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS account_code_unique ON account (entity_id, ledger, code);
CREATE TABLE IF NOT EXISTS gl_account (
    entity_id TEXT NOT NULL REFERENCES entity(id),
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    -- bank, debtors, creditors, sales, purchases, tax, discount, writeoff, expense, equity
    category TEXT NOT NULL,
    PRIMARY KEY (entity_id, code)
);
CREATE TABLE IF NOT EXISTS tax_code (
    entity_id TEXT NOT NULL REFERENCES entity(id),
    code TEXT NOT NULL,
    description TEXT NOT NULL,
    rate TEXT NOT NULL,
    is_default INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (entity_id, code)
);
CREATE TABLE IF NOT EXISTS bank (
    id INTEGER PRIMARY KEY,
    entity_id TEXT NOT NULL REFERENCES entity(id),
    gl_code TEXT NOT NULL,
    bank_account_code TEXT NOT NULL,
    name TEXT NOT NULL,
    currency TEXT NOT NULL,
    sort_code TEXT NOT NULL DEFAULT '',
    iban TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX IF NOT EXISTS bank_account_code_unique ON bank (entity_id, bank_account_code);
CREATE TABLE IF NOT EXISTS department (
    entity_id TEXT NOT NULL REFERENCES entity(id),
    id TEXT NOT NULL,
    description TEXT NOT NULL,
    a1 TEXT, a2 TEXT, a3 TEXT, a4 TEXT, a5 TEXT, a6 TEXT,
    is_active INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (entity_id, id)
);
CREATE TABLE IF NOT EXISTS analysis_dimension (
    entity_id TEXT NOT NULL REFERENCES entity(id),
    position INTEGER NOT NULL CHECK (position BETWEEN 1 AND 6),
    code TEXT NOT NULL,
    description TEXT NOT NULL,
    PRIMARY KEY (entity_id, position)
);
CREATE TABLE IF NOT EXISTS analysis_code (
    entity_id TEXT NOT NULL REFERENCES entity(id),
    position INTEGER NOT NULL,
    code TEXT NOT NULL,
    description TEXT NOT NULL,
    PRIMARY KEY (entity_id, position, code)
);
CREATE TABLE IF NOT EXISTS intercompany (
    id INTEGER PRIMARY KEY,
    entity_id TEXT NOT NULL REFERENCES entity(id),
    local_account_code TEXT NOT NULL,
    -- which account the code names: the seller's customer and the buyer's supplier
    local_ledger TEXT NOT NULL DEFAULT 'Sales' CHECK (local_ledger IN ('Sales', 'Purchases')),
    remote_entity_id TEXT NOT NULL REFERENCES entity(id),
    remote_account_code TEXT NOT NULL,
    remote_ledger TEXT NOT NULL DEFAULT 'Purchases'
        CHECK (remote_ledger IN ('Sales', 'Purchases'))
);
-- Item invoices and credit notes before and after posting (batch invoices skip this table).
CREATE TABLE IF NOT EXISTS invoice (
    id INTEGER PRIMARY KEY,
    entity_id TEXT NOT NULL REFERENCES entity(id),
    kind TEXT NOT NULL CHECK (kind IN ('invoice', 'credit_note')),
    ledger TEXT NOT NULL,
    account_id INTEGER NOT NULL REFERENCES account(id),
    status TEXT NOT NULL CHECK (status IN ('saved', 'posted')),
    invoice_number TEXT NOT NULL,
    external_reference TEXT,
    transaction_id INTEGER,
    row_version INTEGER NOT NULL DEFAULT 1,
    data TEXT NOT NULL,
    created_at TEXT NOT NULL,
    modified_at TEXT NOT NULL,
    CHECK ((status = 'posted') = (transaction_id IS NOT NULL))
);
CREATE INDEX IF NOT EXISTS invoice_external_reference ON invoice (entity_id, external_reference);
-- Posted transactions. amount_milli is signed as on the customer's account (invoices and
-- debit journals positive, receipts, credit notes, credit journals and discounts negative);
-- outstanding_milli moves towards zero as allocations settle it.
CREATE TABLE IF NOT EXISTS txn (
    id INTEGER PRIMARY KEY,
    entity_id TEXT NOT NULL REFERENCES entity(id),
    account_id INTEGER REFERENCES account(id),
    type TEXT NOT NULL,
    internal_number TEXT NOT NULL,
    external_reference TEXT,
    currency TEXT NOT NULL,
    amount_milli INTEGER NOT NULL,
    outstanding_milli INTEGER NOT NULL,
    exchange_rate TEXT NOT NULL DEFAULT '1',
    transaction_date TEXT NOT NULL,
    creation_date TEXT NOT NULL,
    modified_at TEXT NOT NULL,
    invoice_id INTEGER REFERENCES invoice(id),
    is_batch INTEGER NOT NULL DEFAULT 0,
    description TEXT,
    bank_id INTEGER REFERENCES bank(id),
    department_id TEXT,
    lines TEXT NOT NULL,
    extra TEXT NOT NULL DEFAULT '{}',
    CONSTRAINT txn_outstanding_within_amount CHECK (
        abs(outstanding_milli) <= abs(amount_milli)
        AND outstanding_milli * amount_milli >= 0)
);
CREATE INDEX IF NOT EXISTS txn_external_reference ON txn (entity_id, external_reference);
CREATE INDEX IF NOT EXISTS txn_modified ON txn (entity_id, modified_at);
CREATE INDEX IF NOT EXISTS txn_account ON txn (entity_id, account_id);
CREATE TABLE IF NOT EXISTS allocation (
    id INTEGER PRIMARY KEY,
    entity_id TEXT NOT NULL REFERENCES entity(id),
    debit_txn INTEGER NOT NULL REFERENCES txn(id),
    credit_txn INTEGER NOT NULL REFERENCES txn(id),
    amount_milli INTEGER NOT NULL CHECK (amount_milli > 0),
    reference TEXT,
    allocation_date TEXT NOT NULL,
    created_at TEXT NOT NULL,
    user_id TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 1,
    unallocated_at TEXT
);
CREATE INDEX IF NOT EXISTS allocation_debit ON allocation (debit_txn);
CREATE INDEX IF NOT EXISTS allocation_credit ON allocation (credit_txn);
CREATE TABLE IF NOT EXISTS document (
    id INTEGER PRIMARY KEY,
    entity_id TEXT NOT NULL REFERENCES entity(id),
    master_type TEXT NOT NULL,
    master_id TEXT NOT NULL,
    filename TEXT NOT NULL,
    content BLOB NOT NULL,
    comments TEXT,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sequence (
    entity_id TEXT NOT NULL,
    name TEXT NOT NULL,
    value INTEGER NOT NULL,
    PRIMARY KEY (entity_id, name)
);
"""


def now() -> datetime:
    """Naive UTC, as AIQ's .NET service renders DateTime (no offset)."""
    return datetime.now(UTC).replace(tzinfo=None)


def iso(value: datetime | date | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.isoformat(timespec="microseconds")
    return datetime(value.year, value.month, value.day).isoformat(timespec="microseconds")


def parse_iso(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def to_milli(amount: Decimal) -> int:
    value = Decimal(amount).scaleb(3)
    if value != value.to_integral_value():
        raise ValueError(f"{amount} is finer than a thousandth")
    return int(value)


def from_milli(milli: int) -> Decimal:
    """12340 -> Decimal('12.34'); 12345 -> Decimal('12.345') (two places unless finer)."""
    value = Decimal(milli).scaleb(-3)
    cents = value.quantize(Decimal("0.01"))
    return cents if cents == value else value


def _json_default(value):
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime | date):
        return iso(value)
    if isinstance(value, bytes):
        raise TypeError("bytes do not belong in a JSON document")
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps(value) -> str:
    return json.dumps(value, default=_json_default, separators=(",", ":"))


def loads(text: str):
    # parse_float=Decimal: a JSON number never becomes a float on its way back out.
    return json.loads(text, parse_float=Decimal)


class Store:
    """One SQLite connection shared by the server's threads, serialised by a lock."""

    def __init__(self, path: str):
        self.path = str(path)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a commit survives a crash of this process (what the
        # commit-then-drop fault needs); it may not survive a power cut, which no test makes.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(SCHEMA)

    @contextmanager
    def transaction(self):
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()


def next_number(db: sqlite3.Connection, entity_id: str, name: str, start: int = 1) -> int:
    """Per-entity counters (invoice numbers, receipt numbers)."""
    row = db.execute(
        "SELECT value FROM sequence WHERE entity_id = ? AND name = ?", (entity_id, name)
    ).fetchone()
    value = start if row is None else row["value"] + 1
    db.execute(
        "INSERT INTO sequence (entity_id, name, value) VALUES (?, ?, ?) "
        "ON CONFLICT (entity_id, name) DO UPDATE SET value = excluded.value",
        (entity_id, name, value),
    )
    return value
