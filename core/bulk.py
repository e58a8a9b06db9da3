"""insert_rows: bulk_create's INSERT for many rows, without its per-value compilation.

bulk_create builds a model instance per row and sends every value through the insert
compiler (pre_save, prepare_value, field_as_sql: ~10 us a value); for thousands of rows of
a dozen columns that costs more than the database's own work. Here the SQL is written once per
statement size, each value goes through its field's get_db_prep_save (the conversion
bulk_create applies: money to thousandths, JSON, datetimes for the backend), columns not given
take the model's default once, and auto_now(_add) columns the given time. Like bulk_create it
skips save(), signals and full_clean: for services that checked their values already.
Statements are multi-row INSERTs sized to the database's variable limit (rows_per_statement,
which payments/services/payment_rows.py's upsert uses too), with RETURNING when the caller
needs the new ids.
"""

import sqlite3
from collections.abc import Sequence

from django.db import connection
from django.db.models.signals import post_save
from django.utils import timezone


def insert_rows(
    model,
    names: Sequence[str],
    rows: Sequence[Sequence],
    *,
    returning: Sequence[str] = (),
    skip_conflicts_on: Sequence[str] = (),
) -> list[tuple]:
    """Insert rows of values for the fields `names` (in that order); returns the `returning`
    columns of every inserted row (none when not asked). Call inside a transaction.
    `skip_conflicts_on`: the fields of a unique constraint; a row that would break it is not
    inserted (ON CONFLICT ... DO NOTHING, PostgreSQL and SQLite alike) and not returned, and
    no error aborts the transaction (no savepoint needed). On PostgreSQL a row a concurrent
    transaction is inserting waits for it: skipped if it commits, inserted if it rolls back."""
    if not rows:
        return []
    now = timezone.now()
    fields = [model._meta.get_field(name) for name in names]
    given = {field.attname for field in fields}
    constants = []  # (field, stored value) for every other concrete column but the pk
    for field in model._meta.concrete_fields:
        if field.primary_key or field.attname in given:
            continue
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            value = now
        else:
            value = field.get_default()
        constants.append((field, field.get_db_prep_save(value, connection)))
    prepare = [field.get_db_prep_save for field in fields]
    fixed = [value for _field, value in constants]
    params = []
    for row in rows:
        params.append(
            [
                *(
                    value if value is None else convert(value, connection)
                    for convert, value in zip(prepare, row, strict=True)
                ),
                *fixed,
            ]
        )
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in [*fields, *(f for f, _ in constants)])
    width = len(fields) + len(constants)
    placeholder = "(" + ", ".join(["%s"] * width) + ")"
    tail = ""
    if skip_conflicts_on:
        tail = " ON CONFLICT ({}) DO NOTHING".format(
            ", ".join(quote(model._meta.get_field(name).column) for name in skip_conflicts_on)
        )
    if returning:
        tail += " RETURNING " + ", ".join(
            quote(model._meta.get_field(name).column) for name in returning
        )
    table = quote(model._meta.db_table)
    per_statement = rows_per_statement(width)
    returned: list[tuple] = []
    with connection.cursor() as cursor:
        for start in range(0, len(params), per_statement):
            batch = params[start : start + per_statement]
            values = ", ".join([placeholder] * len(batch))
            cursor.execute(
                f"INSERT INTO {table} ({columns}) VALUES {values}{tail}",
                [value for row in batch for value in row],
            )
            if returning:
                returned.extend(tuple(row) for row in cursor.fetchall())
    return returned


def rows_per_statement(width: int) -> int:
    """500 rows, or fewer where the database allows fewer variables (SQLite built with the
    old 999 limit; Debian's allows 250,000, PostgreSQL 65,535)."""
    limit = 65_535
    if connection.vendor == "sqlite":
        connection.ensure_connection()
        limit = connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    return max(1, min(500, limit // width))


def insert_instance(obj) -> None:
    """obj.save() for a new row through insert_rows: every concrete column from the instance
    (auto_now/auto_now_add ones set to now on it first), its id read back with RETURNING, the
    instance marked saved. Like insert_rows it skips save(), pre_save and full_clean (the
    caller checked its values) and post_save: a caller with receivers sends it with
    instance_saved, once the row's children are written too (a receiver may read them)."""
    model = type(obj)
    now = timezone.now()
    names, values = [], []
    for field in model._meta.concrete_fields:
        if field.primary_key:
            continue
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            setattr(obj, field.attname, now)
        names.append(field.name)
        values.append(getattr(obj, field.attname))
    ((obj.pk,),) = insert_rows(model, names, [values], returning=(model._meta.pk.name,))
    obj._state.adding = False
    obj._state.db = connection.alias


def instance_saved(obj, *, created: bool) -> None:
    """post_save for a row insert_instance wrote, as save() sends it."""
    post_save.send(
        sender=type(obj), instance=obj, created=created, update_fields=None, raw=False,
        using=connection.alias,
    )  # fmt: skip
