"""The database settings, and the SQLite tuning every SQLite configuration gets.

Whichever way SQLite is chosen (no DATABASE_URL, or DATABASE_URL=sqlite:///...), the same
tuning applies: WAL, a busy timeout and IMMEDIATE transactions. Without them concurrent
writers fail with "database is locked" instead of waiting their turn: with Django's SQLite
defaults django-q2 lost 808 of 2,000 task results under load, and 34 of 40 concurrent refund
requests failed during a pull when a sqlite:/// URL dropped the tuning.

`sqlite_tuning_problems` says what a live connection lacks; aiqrecon.apps checks every new
SQLite connection with it, so no configuration reaches the app without the tuning.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

SQLITE_ENGINE = "django.db.backends.sqlite3"


def is_sqlite(config: dict) -> bool:
    return config.get("ENGINE") == SQLITE_ENGINE


def sqlite_tuned(
    config: dict, *, busy_timeout_seconds: int, cache_mib: int, mmap_mib: int, test_dir: Path
) -> dict:
    """The SQLite configuration with WAL, a busy timeout and IMMEDIATE transactions added.

    An init_command already in the configuration runs after ours (so it may add pragmas,
    but turning WAL off is caught by the connection check).
    """
    name = str(config.get("NAME") or "")
    if not name or name == ":memory:" or "mode=memory" in name:
        # An in-memory database cannot be shared by the web app and the workers, and has no WAL.
        raise ImproperlyConfigured(
            "SQLite needs a database file (e.g. DATABASE_URL=sqlite:////srv/aiqrecon.sqlite3 or "
            "SQLITE_PATH): an in-memory database cannot be shared by the web app and the workers."
        )
    options = dict(config.get("OPTIONS") or {})
    own_init = options.get("init_command", "")
    options.update(
        transaction_mode="IMMEDIATE",
        timeout=busy_timeout_seconds,
        # A page cache and memory-mapped reads sized for a book of a million invoices: with
        # SQLite's 2 MiB default a matching run's reads and its 100,000-row state update
        # re-read pages from the OS over and over (bench/bench_matching.py).
        init_command=(
            "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL;PRAGMA foreign_keys=ON;"
            f"PRAGMA cache_size=-{cache_mib * 1024};"
            f"PRAGMA mmap_size={mmap_mib * 1024 * 1024};" + own_init
        ),
    )
    test = dict(config.get("TEST") or {})
    # One test database file per test process, so parallel runs never share one (and the
    # test database is a file in WAL mode, like the real one, not Django's in-memory default).
    test.setdefault("NAME", str(test_dir / f"test-{os.getpid()}.sqlite3"))
    return {**config, "CONN_MAX_AGE": None, "OPTIONS": options, "TEST": test}


def databases(
    url: str | None,
    *,
    sqlite_path: str,
    sqlite_test_path: str | None,
    busy_timeout_seconds: int,
    cache_mib: int,
    mmap_mib: int,
    test_dir: Path,
) -> dict:
    """settings.DATABASES from DATABASE_URL (or the embedded SQLite file when unset)."""
    if url:
        # Persistent connections: with CONN_MAX_AGE=0 django-q2's ORM broker reconnects on
        # every poll (measured ~14 tasks/s). Health checks drop connections the server closed.
        config = dj_database_url.parse(url, conn_max_age=600, conn_health_checks=True)
    else:
        config = {"ENGINE": SQLITE_ENGINE, "NAME": sqlite_path}
    if is_sqlite(config):
        if sqlite_test_path:
            config["TEST"] = {**(config.get("TEST") or {}), "NAME": sqlite_test_path}
        config = sqlite_tuned(
            config,
            busy_timeout_seconds=busy_timeout_seconds,
            cache_mib=cache_mib,
            mmap_mib=mmap_mib,
            test_dir=test_dir,
        )
    return {"default": config}


def sqlite_tuning_problems(connection) -> list[str]:
    """What a live SQLite connection lacks of the tuning (empty when it has all of it)."""
    problems = []
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        mode = cursor.fetchone()[0]
        cursor.execute("PRAGMA busy_timeout")
        busy_ms = cursor.fetchone()[0]
    if str(mode).lower() != "wal":
        problems.append(f"journal_mode is {mode}, not WAL")
    configured = (connection.settings_dict.get("OPTIONS") or {}).get("timeout")
    if not configured or busy_ms != int(configured * 1000):
        # Python's own 5 s default is not a choice anyone made: the timeout must be configured
        problems.append(f"busy timeout is {busy_ms} ms, not the configured one ({configured})")
    if getattr(connection, "transaction_mode", None) != "IMMEDIATE":
        problems.append("transactions are not IMMEDIATE")
    return problems
