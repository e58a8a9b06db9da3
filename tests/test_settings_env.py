import subprocess
import sys
from decimal import Decimal

import pytest
from django.core.exceptions import ImproperlyConfigured

from aiqrecon import env


@pytest.mark.parametrize(
    "raw, expected", [("1", True), ("yes", True), ("off", False), ("0", False)]
)
def test_env_bool_reads_accepted_values(monkeypatch, raw, expected):
    monkeypatch.setenv("X_FLAG", raw)
    assert env.env_bool("X_FLAG", not expected) is expected


def test_env_bool_rejects_other_values_naming_the_variable(monkeypatch):
    monkeypatch.setenv("X_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="X_FLAG.*accepted values"):
        env.env_bool("X_FLAG", False)


def test_env_int_rejects_text_and_out_of_range(monkeypatch):
    monkeypatch.setenv("X_N", "ten")
    with pytest.raises(ImproperlyConfigured, match="X_N"):
        env.env_int("X_N", 1)
    monkeypatch.setenv("X_N", "0")
    with pytest.raises(ImproperlyConfigured, match="X_N=0 is out of range"):
        env.env_int("X_N", 1, minimum=1, maximum=5)


def test_env_choice_lists_accepted_values(monkeypatch):
    monkeypatch.setenv("X_MODE", "staging")
    with pytest.raises(ImproperlyConfigured, match="accepted values: development, production"):
        env.env_choice("X_MODE", "development", ("development", "production"))


def test_env_decimal_and_defaults(monkeypatch):
    monkeypatch.delenv("X_AMOUNT", raising=False)
    assert env.env_decimal("X_AMOUNT", Decimal("5")) == Decimal("5")
    monkeypatch.setenv("X_AMOUNT", "12.50")
    assert env.env_decimal("X_AMOUNT", Decimal("5")) == Decimal("12.50")
    monkeypatch.setenv("X_AMOUNT", "NaN")
    with pytest.raises(ImproperlyConfigured):
        env.env_decimal("X_AMOUNT", Decimal("5"))


def test_env_url_checks_scheme(monkeypatch):
    monkeypatch.setenv("X_URL", "mysql://localhost/db")
    with pytest.raises(ImproperlyConfigured, match="X_URL.*postgres"):
        env.env_url("X_URL", schemes=("postgres",))


def _clean_environment() -> dict:
    """This process's environment without what other tests set for themselves (database
    URLs; DJANGO_ALLOW_ASYNC_UNSAFE, which the browser tests need and check --deploy refuses)."""
    import os

    dropped = ("DATABASE_URL", "REDIS_URL", "DJANGO_ALLOW_ASYNC_UNSAFE")
    return {k: v for k, v in os.environ.items() if k not in dropped}


def _start(extra_env):
    """Run Django's start-up in a fresh interpreter with the given environment."""

    environment = _clean_environment()
    environment.update(extra_env)
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_startup_stops_on_a_bad_value_naming_the_variable():
    result = _start({"AIQRECON_MODE": "staging"})
    assert result.returncode != 0
    assert "AIQRECON_MODE='staging' is not accepted" in result.stderr
    assert "development, production" in result.stderr


def test_production_requires_a_secret_key():
    result = _start({"AIQRECON_MODE": "production", "DJANGO_ALLOWED_HOSTS": "x.example"})
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def test_production_settings_pass_check_deploy():

    environment = _clean_environment()
    environment.update(
        AIQRECON_MODE="production",
        DJANGO_SECRET_KEY="k" * 20 + "a-long-random-production-secret-value-1234567890",
        DJANGO_ALLOWED_HOSTS="recon.example.com",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout


def test_embedded_default_uses_orm_broker_and_wal(settings):
    if settings.DATABASE_URL:
        pytest.skip("this run uses DATABASE_URL; the embedded default is checked without it")
    assert settings.Q_CLUSTER["orm"] == "default"
    options = settings.DATABASES["default"]["OPTIONS"]
    assert options["transaction_mode"] == "IMMEDIATE"
    assert "journal_mode=WAL" in options["init_command"]


def test_wal_is_active_on_sqlite(db):
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("SQLite-only")
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"
