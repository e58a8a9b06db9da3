"""Make a match proposal's content immutable in the database itself: only its state may change.

A matching run writes one audit entry (who ran it) and up to 100,000s of proposal rows; a second
audit row per proposal would double the run's writes, so each proposal row IS the audit record
of that proposal (rule, confidence, explanation, evidence, amounts, when, which run). These
triggers keep that record honest: an UPDATE that changes anything but `state` is refused, on
both databases. DELETE stays allowed (test flushes and the benchmark reset delete rows).

Both triggers compare values (a full `save()` that only changed the state is allowed) and fire
only when the UPDATE names a content column, so the runs' state-only updates of 100,000 rows
never call them. A column added to MatchProposal later must be added here by a new migration;
tests/test_proposal_audit.py fails until it is.
"""

from django.db import migrations

# every column but `state`, as created by 0001_initial
CONTENT_COLUMNS = (
    "id",
    "payment_id",
    "rule_id",
    "rule_kind",
    "rank",
    "confidence",
    "explanation",
    "evidence",
    "lines",
    "on_account_amount",
    "run_id",
    "created_at",
)
JSON_COLUMNS = ("evidence", "lines")
MESSAGE = "match proposals are audit records: only their state may change"


def _sqlite_changed(column: str) -> str:
    # JSON is compared as json(): the run writes compact text, Django's save() spaced text
    if column in JSON_COLUMNS:
        return f"json(NEW.{column}) IS NOT json(OLD.{column})"
    return f"NEW.{column} IS NOT OLD.{column}"


SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER payments_matchproposal_immutable
       BEFORE UPDATE OF {", ".join(CONTENT_COLUMNS)} ON payments_matchproposal
       WHEN {" OR ".join(_sqlite_changed(c) for c in CONTENT_COLUMNS)}
       BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END;""",
]
SQLITE_DROP = ["DROP TRIGGER IF EXISTS payments_matchproposal_immutable;"]

_PG_CHECKS = "\n".join(
    f"IF NEW.{c} IS DISTINCT FROM OLD.{c} THEN RAISE EXCEPTION '{MESSAGE} ({c} changed)'; END IF;"
    for c in CONTENT_COLUMNS
)
POSTGRES_TRIGGERS = [
    f"""CREATE OR REPLACE FUNCTION payments_matchproposal_immutable() RETURNS trigger AS $$
       BEGIN
       {_PG_CHECKS}
       RETURN NEW;
       END; $$ LANGUAGE plpgsql;""",
    f"""CREATE TRIGGER payments_matchproposal_immutable
       BEFORE UPDATE OF {", ".join(CONTENT_COLUMNS)} ON payments_matchproposal
       FOR EACH ROW EXECUTE FUNCTION payments_matchproposal_immutable();""",
]
POSTGRES_DROP = [
    "DROP TRIGGER IF EXISTS payments_matchproposal_immutable ON payments_matchproposal;",
    "DROP FUNCTION IF EXISTS payments_matchproposal_immutable();",
]


def add_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for sql in {"sqlite": SQLITE_TRIGGERS, "postgresql": POSTGRES_TRIGGERS}.get(vendor, []):
        schema_editor.execute(sql)


def drop_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for sql in {"sqlite": SQLITE_DROP, "postgresql": POSTGRES_DROP}.get(vendor, []):
        schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0008_match_state_inbox_index_only"),
    ]

    operations = [
        migrations.RunPython(add_triggers, drop_triggers),
    ]
