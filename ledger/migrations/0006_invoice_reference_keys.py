"""Invoices store their normalised reference keys (ledger/references.py), so a matching run
looks invoices up by key instead of normalising every open invoice's number on every run.

The existing rows get their keys here, 5,000 at a time, normalised in bulk; the indexes are
built once the keys are in, not maintained row by row while a million rows are filled."""

from django.db import migrations, models

from ledger.references import digits_keys, reference_keys

BATCH = 5_000
KEY_LENGTHS = {"number_key": 50, "external_reference_key": 100, "number_digits_key": 51}


def key_field(name: str) -> models.CharField:
    field = models.CharField(blank=True, default="", editable=False, max_length=KEY_LENGTHS[name])
    field.set_attributes_from_name(name)
    return field


def add_key_columns(apps, schema_editor):
    """SQLite rebuilds the whole table to add a NOT NULL column (7 s a column at a million
    invoices); ALTER TABLE ADD COLUMN with a constant DEFAULT is instant. The column keeps
    that database default '', which changes nothing: Django always writes the column."""
    Invoice = apps.get_model("ledger", "Invoice")
    quote = schema_editor.quote_name
    for name, length in KEY_LENGTHS.items():
        if schema_editor.connection.vendor == "sqlite":
            schema_editor.execute(
                f"ALTER TABLE {quote(Invoice._meta.db_table)} "
                f"ADD COLUMN {quote(name)} varchar({length}) DEFAULT '' NOT NULL"
            )
        else:
            schema_editor.add_field(Invoice, key_field(name))


def drop_key_columns(apps, schema_editor):
    Invoice = apps.get_model("ledger", "Invoice")
    for name in KEY_LENGTHS:
        schema_editor.remove_field(Invoice, key_field(name))


def fit(keys: list[str], length: int) -> list[str]:
    """upper() can lengthen a text ("ß" -> "SS"): cut such keys to the column, as
    Invoice.save() does (checked once per batch: cutting every key costs a second a million)."""
    if max(map(len, keys)) <= length:
        return keys
    return [key[:length] for key in keys]


def fill_invoice_keys(apps, schema_editor):
    Invoice = apps.get_model("ledger", "Invoice")
    connection = schema_editor.connection
    invoices = Invoice.objects.using(connection.alias).order_by("pk")
    lengths = list(KEY_LENGTHS.values())
    write = _write_by_arrays if connection.vendor == "postgresql" else _write_by_rows
    last_id = 0
    with connection.cursor() as cursor:
        while batch := list(
            invoices.filter(pk__gt=last_id).values_list(
                "pk", "invoice_number", "external_reference"
            )[:BATCH]
        ):
            ids, numbers, external_references = zip(*batch, strict=True)
            number_keys = reference_keys(list(numbers))
            columns = (
                number_keys,
                reference_keys(list(external_references)),
                digits_keys(number_keys),
            )
            write(cursor, Invoice._meta.db_table, list(ids), list(map(fit, columns, lengths)))
            last_id = ids[-1]


def _write_by_rows(cursor, table, ids, columns):
    quote = cursor.db.ops.quote_name
    assignments = ", ".join(f"{quote(name)} = %s" for name in KEY_LENGTHS)
    cursor.executemany(
        f"UPDATE {quote(table)} SET {assignments} WHERE id = %s", zip(*columns, ids, strict=True)
    )


def _write_by_arrays(cursor, table, ids, columns):
    """PostgreSQL: one UPDATE a batch, the batch sent as arrays (half the time of a statement
    a row, which PostgreSQL plans and runs one by one)."""
    quote = cursor.db.ops.quote_name
    assignments = ", ".join(f"{quote(name)} = batch.{quote(name)}" for name in KEY_LENGTHS)
    names = ", ".join(quote(name) for name in KEY_LENGTHS)
    cursor.execute(
        f"UPDATE {quote(table)} SET {assignments} "
        f"FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[]) AS batch(id, {names}) "
        f"WHERE {quote(table)}.id = batch.id",
        [ids, *columns],
    )


class Migration(migrations.Migration):
    dependencies = [
        ("ledger", "0005_customer_statements_and_progress_rows"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(add_key_columns, drop_key_columns)],
            state_operations=[
                migrations.AddField(model_name="invoice", name=name, field=key_field(name))
                for name in KEY_LENGTHS
            ],
        ),
        migrations.RunPython(fill_invoice_keys, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="invoice",
            index=models.Index(fields=["number_key"], name="invoice_number_key"),
        ),
        migrations.AddIndex(
            model_name="invoice",
            index=models.Index(fields=["external_reference_key"], name="invoice_external_key"),
        ),
        migrations.AddIndex(
            model_name="invoice",
            index=models.Index(fields=["number_digits_key"], name="invoice_digits_key"),
        ),
    ]
