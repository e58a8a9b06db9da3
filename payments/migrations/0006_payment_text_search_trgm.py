"""Trigram indexes for the inbox's word search (payer name, description) on PostgreSQL.

The search is `UPPER(col::text) LIKE UPPER('%words%')` (Django's icontains); a GIN index with
gin_trgm_ops on the same expression answers it without reading the whole table. SQLite has no
such index: there the search reads the table, which is fine at the sizes SQLite serves.
"""

from django.db import migrations

INDEXES = {
    "payment_payer_name_trgm": "payer_name",
    "payment_description_trgm": "description",
}


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, column in INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON payments_payment "
            f"USING gin ((UPPER({column}::text)) gin_trgm_ops)"
        )


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("payments", "0005_payment_payer_reference_index")]
    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
