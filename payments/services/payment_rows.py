"""The bulk write under payments_upsert: SQL written once, values prepared once per column.

Why not bulk_create: at 100,000 charges, Django's per-row, per-field work (a model instance per
row, pre_save and get_db_prep_save through the insert compiler for 21 fields) cost more than
SQLite's own work, and it cannot be told that the normaliser already produced clean values.
The statements below are the ones `bulk_create(update_conflicts=True)` generates:

    INSERT ... VALUES (...), (...) ON CONFLICT (source, external_id) DO UPDATE SET ...
    RETURNING id, external_id

one per chunk of payments (RETURNING gives the ids of inserted and updated rows alike, so
fees need no second lookup), then multi-row INSERTs of their fees (core.bulk.insert_rows).
They run on SQLite >= 3.35 and PostgreSQL. bench/bench_stripe_ingest.py measures this against
bulk_create in one run.

Only values the normaliser produced reach here, checked by NormalisedPayment.check() (field
lengths, exact money): full_clean per row is the cost this module exists to avoid.
"""

import json
from datetime import datetime
from functools import lru_cache

import orjson
from django.db import connection
from django.utils import timezone

from core.bulk import insert_rows, rows_per_statement
from core.fields import MoneyField
from ledger.models import Customer
from payments.models import Fee, PayerMapping, Payment
from payments.sources.normalised import NormalisedPayment

# Columns refreshed when the payment is already there: what the source may have changed.
# Never match_state, payout, receipt or created_at: those are ours. The customer only fills
# a gap (a person or an earlier import may have set it).
REFRESHED = (
    "amount",
    "currency",
    "fee_amount",
    "net_amount",
    "amount_refunded",
    "exchange_rate",
    "payer_name",
    "payer_email",
    "payer_reference",
    "description",
    "payer_account",
    "bank_reference",
    "end_to_end_id",
    "references",
    "status",
    "raw",
    "updated_at",
)
INSERTED = (
    "entity",
    "source",
    "external_id",
    *REFRESHED[:-1],  # updated_at goes last, with created_at
    "received_at",
    "match_state",
    "customer",
    "statement_account",
    "created_at",
    "updated_at",
)
JSON_COLUMNS = frozenset({"references", "raw"})
FEE_COLUMNS = ("payment", "kind", "description", "amount", "currency")

_to_stored = MoneyField().get_prep_value  # Decimal -> integer thousandths, exact or refused


def _column(model, name: str) -> str:
    return connection.ops.quote_name(model._meta.get_field(name).column)


def _placeholder(name: str, qmark: bool) -> str:
    # PostgreSQL wants jsonb, not text; SQLite stores the JSON text as it is.
    if qmark:
        return "?"
    if name in JSON_COLUMNS and connection.vendor == "postgresql":
        return "CAST(%s AS jsonb)"
    return "%s"


def _qmark() -> bool:
    """On SQLite, write sqlite3's own "?" placeholders: Django's cursor rewrites every "%s" of
    a query into "?" with a regular expression before running it, and on a 1,300-row upsert
    (32,000 placeholders) that rewrite cost more than SQLite's insert itself
    (bench/bench_statements.py). A query without "%s" goes through that rewrite unchanged,
    still through Django's cursor and any execute wrapper watching it. Not while queries are
    logged (DEBUG, or a test counting them): the debug cursor formats the query with "%s"."""
    return connection.vendor == "sqlite" and not connection.queries_logged


@lru_cache(maxsize=8)
def _upsert_sql(rows: int, qmark: bool = False) -> str:
    table = connection.ops.quote_name(Payment._meta.db_table)
    columns = ", ".join(_column(Payment, name) for name in INSERTED)
    row = "(" + ", ".join(_placeholder(name, qmark) for name in INSERTED) + ")"
    updates = [f"{_column(Payment, n)} = EXCLUDED.{_column(Payment, n)}" for n in REFRESHED]
    customer = _column(Payment, "customer")
    updates.append(f"{customer} = COALESCE({table}.{customer}, EXCLUDED.{customer})")
    conflict = ", ".join(_column(Payment, name) for name in ("source", "external_id"))
    return (
        f"INSERT INTO {table} ({columns}) VALUES {', '.join([row] * rows)} "
        f"ON CONFLICT ({conflict}) DO UPDATE SET {', '.join(updates)} "
        f"RETURNING {_column(Payment, 'id')}, {_column(Payment, 'external_id')}"
    )


def _money(value):
    return None if value is None else _to_stored(value)


def _json(value) -> str:
    """JSON text of a payload or reference list: orjson (a tenth of json.dumps' time at
    100,000 rows); what orjson refuses (an integer over 64 bits) goes through json.dumps."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(value)


def payment_rows_write(
    *,
    entity_id: int,
    items: list[NormalisedPayment],
    statuses: dict[str, str],
    customers: dict[str, int],
    now: datetime | None = None,
) -> dict[str, int]:
    """Insert or refresh payments, 500 rows a statement. Returns external id -> Payment id.
    Call inside a transaction."""
    if not items:
        return {}
    ops = connection.ops
    stamp = ops.adapt_datetimefield_value(now or timezone.now())
    # a statement's rows share a few booking times; a Stripe page's are all different
    datetime_value = lru_cache(maxsize=1024)(ops.adapt_datetimefield_value)
    params: list = []
    add = params.extend
    for item in items:
        add(
            (
                entity_id,
                item.source,
                item.external_id,
                _to_stored(item.amount),
                item.currency,
                _money(item.fee_amount),
                _money(item.net_amount),
                _to_stored(item.amount_refunded),
                item.exchange_rate,
                item.payer_name,
                item.payer_email,
                item.payer_reference,
                item.description,
                item.payer_account,
                item.bank_reference,
                item.end_to_end_id,
                _json(item.references),
                statuses[item.external_id],
                _json(item.raw),
                datetime_value(item.received_at),
                Payment.MatchState.UNMATCHED.value,
                customers.get(item.external_id),
                item.statement_account_id,
                stamp,
                stamp,
            )
        )
    ids = {}
    width = len(INSERTED)
    rows = rows_per_statement(width)
    qmark = _qmark()
    with connection.cursor() as cursor:
        for start in range(0, len(items), rows):
            chunk = params[start * width : (start + rows) * width]
            cursor.execute(_upsert_sql(len(chunk) // width, qmark), chunk)
            ids.update((external_id, pk) for pk, external_id in cursor.fetchall())
    return ids


def existing_external_ids(*, source: str, external_ids) -> set[str]:
    """Which of these external ids of a source are stored already (one query per 500)."""
    table = connection.ops.quote_name(Payment._meta.db_table)
    external_id = _column(Payment, "external_id")
    sql = (
        f"SELECT {external_id} FROM {table} WHERE {_column(Payment, 'source')} = %s "
        f"AND {external_id} IN ({{}})"
    )
    return {row[0] for row in _rows_in(sql, [source], set(external_ids))}


def fee_rows_insert(*, items: list[NormalisedPayment], ids: dict[str, int]) -> int:
    """Insert the fee rows of these payments (old ones already deleted). Returns the count."""
    rows = [
        (ids[item.external_id], fee.kind, fee.description, fee.amount, fee.currency)
        for item in items
        for fee in item.fees
    ]
    insert_rows(Fee, FEE_COLUMNS, rows)
    return len(rows)


# --- lookups for a batch -------------------------------------------------------------------
# The customer of each payment is looked up with one query per 500 values. Written as SQL for
# the same reason as the write: Django's __in prepares every value through the field and its
# lookup machinery (~4 us a value, three values a payment), more than the query itself costs.

LOOKUP_CHUNK = 500


def _rows_in(sql: str, params: list, values) -> list[tuple]:
    """Run `sql`, whose last condition is `IN ({})`, once per chunk of values."""
    values = sorted(values)
    rows = []
    with connection.cursor() as cursor:
        for start in range(0, len(values), LOOKUP_CHUNK):
            chunk = values[start : start + LOOKUP_CHUNK]
            cursor.execute(sql.format(", ".join(["%s"] * len(chunk))), [*params, *chunk])
            rows.extend(cursor.fetchall())
    return rows


def _customer(name: str) -> str:
    return f"c.{_column(Customer, name)}"


def customers_by_code(*, entity_id: int, codes) -> list[tuple[int, str]]:
    """(customer id, code) of the entity's customers with these (upper-case) codes."""
    table = connection.ops.quote_name(Customer._meta.db_table)
    sql = (
        f"SELECT {_customer('id')}, {_customer('code')} FROM {table} c "
        f"WHERE {_customer('entity')} = %s AND {_customer('code')} IN ({{}})"
    )
    return _rows_in(sql, [entity_id], codes)


def customers_by_email(*, entity_id: int, emails) -> list[tuple[int, str]]:
    """(customer id, lower-cased email) of the entity's customers with these lower-cased
    emails: AIQ keeps them mixed case, so both sides are compared lower-cased."""
    table = connection.ops.quote_name(Customer._meta.db_table)
    email = f"LOWER({_customer('email')})"
    sql = (
        f"SELECT {_customer('id')}, {email} FROM {table} c "
        f"WHERE {_customer('entity')} = %s AND {email} IN ({{}})"
    )
    return _rows_in(sql, [entity_id], emails)


def payer_mappings(*, entity_id: int, source: str, keys) -> list[tuple[str, int]]:
    """(payer key, customer id) of the mappings staff confirmed for these payer keys."""
    mapping = connection.ops.quote_name(PayerMapping._meta.db_table)
    customers = connection.ops.quote_name(Customer._meta.db_table)
    key = f"m.{_column(PayerMapping, 'payer_key')}"
    customer_id = f"m.{_column(PayerMapping, 'customer')}"
    sql = (
        f"SELECT {key}, {customer_id} FROM {mapping} m "
        f"JOIN {customers} c ON {_customer('id')} = {customer_id} "
        f"WHERE {_customer('entity')} = %s AND m.{_column(PayerMapping, 'source')} = %s "
        f"AND {key} IN ({{}})"
    )
    return _rows_in(sql, [entity_id, source], keys)
