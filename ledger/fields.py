"""The name migrations use for the money column: every migration written before the column
moved to core.fields imports ledger.fields.MoneyField, and MoneyField.deconstruct() still gives
this path so no app needs a no-op AlterField migration. New code imports core.fields."""

from core.fields import MoneyField  # noqa: F401
