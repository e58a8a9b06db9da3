from django.apps import AppConfig
from django.core.exceptions import ImproperlyConfigured
from django.db.backends.signals import connection_created
from django.urls import register_converter

from aiqrecon.database import sqlite_tuning_problems
from core.inputs import IdConverter


def require_sqlite_tuning(sender, connection, **kwargs):
    """Refuse a SQLite connection without WAL, a busy timeout and IMMEDIATE transactions,
    however it was configured (aiqrecon/database.py says why they matter)."""
    if connection.vendor != "sqlite":
        return
    problems = sqlite_tuning_problems(connection)
    if problems:
        raise ImproperlyConfigured(
            f"SQLite database {connection.alias!r} is not tuned for concurrent use: "
            + "; ".join(problems)
            + ". Configure it through aiqrecon.database.sqlite_tuned()."
        )


class AiqreconConfig(AppConfig):
    """The project itself: start-up checks that belong to no app."""

    name = "aiqrecon"
    verbose_name = "aiqrecon"

    def ready(self):
        # `<id:...>` in every app's URLs: a record number that fits the database (core.inputs)
        register_converter(IdConverter, "id")
        connection_created.connect(
            require_sqlite_tuning, dispatch_uid="aiqrecon.require_sqlite_tuning"
        )
