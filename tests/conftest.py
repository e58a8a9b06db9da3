"""Shared fixtures: personas (alice the clerk, bob the approver, carol the admin, mallory
with no role), an entity, and helpers for tests that need a real PostgreSQL, Redis or Chromium.

Tests needing a service that is absent skip with the reason printed, except in CI (CI=true),
where the same absence fails the test: CI must run them.
"""

import os
import socket

import pytest
from django.contrib.auth.models import Group, User
from hypothesis import settings as hypothesis_settings

# Property and fuzz tests explore new random inputs on every developer run; in CI they replay
# a fixed derivation (derandomize) so the run that gates a landing checks what was checked
# before it, and a newly found input fails a developer's run, not an unrelated landing. A
# long exploration: FUZZ_EXAMPLES=5000 with HYPOTHESIS_PROFILE=explore (README, Tests).
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
hypothesis_settings.register_profile("explore", print_blob=True)
hypothesis_settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "explore")
)


def require(available: bool, reason: str) -> None:
    if available:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (required in CI)")
    pytest.skip(reason)


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def requires_postgres(settings):
    """PostgreSQL tests run in the pass whose DATABASE_URL points at PostgreSQL (CI's second
    pass); in the SQLite pass they skip, saying so."""
    if not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        pytest.skip(
            "PostgreSQL test: runs with DATABASE_URL=postgres://postgres@127.0.0.1:5432/aiqrecon"
        )


@pytest.fixture
def requires_redis(settings):
    """Redis tests run in the pass with REDIS_URL set; there a missing server fails in CI."""
    if not settings.REDIS_URL:
        pytest.skip("Redis test: runs with REDIS_URL=redis://127.0.0.1:6379/0")
    require(port_open("127.0.0.1", 6379), f"Redis is not answering at {settings.REDIS_URL}")


def _user(username: str, role: str | None) -> User:
    user = User.objects.create_user(username=username, password=f"{username}-pass-123")
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def alice(db):
    """A clerk."""
    return _user("alice", "clerk")


@pytest.fixture
def bob(db):
    """An approver."""
    return _user("bob", "approver")


@pytest.fixture
def carol(db):
    """An admin (superuser)."""
    user = _user("carol", "admin")
    user.is_staff = user.is_superuser = True
    user.save()
    return user


@pytest.fixture
def mallory(db):
    """Logged in, but with no role."""
    return _user("mallory", None)


@pytest.fixture
def entity(db, settings):
    from ledger.models import Entity

    company = Entity.objects.create(
        name="Demo Ltd",
        company_id="demo",
        region="sandbox",
        base_currency="GBP",
        credentials_key="DEMO",
    )
    if os.environ.get("AIQRECON_TEST_TWO_COMPANIES"):
        # the suite (or part of it) with a second group company present: every test's rows
        # are the first company's, and money through no account of its own is too
        Entity.objects.create(
            name="Sister Company DAC",
            company_id="sister-ie",
            region="sandbox",
            base_currency="EUR",
            credentials_key="DEMO",
        )
        settings.PAYMENTS_ENTITY = "demo"
    return company


@pytest.fixture
def barclays(db):
    """A bank statement CSV layout (credits in "Paid in", debits in "Paid out"), for the
    statement import tests of the service and of the upload screen."""
    from payments.models import ImportFormat

    return ImportFormat.objects.create(
        name="Barclays CSV",
        column_map={
            "date": "Date",
            "credit": "Paid in",
            "debit": "Paid out",
            "reference": "Description",
            "payer_name": "Name",
        },
        date_format="%d/%m/%Y",
        currency="GBP",
    )


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Login throttling and PDF caches live in the cache: no test sees another's."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


# --- localstripe (money in) -------------------------------------------------------------------
# One real localstripe process per test session on a free port; each test gets an empty store.
# Its pickle persistence (a fixed /tmp path shared with a dev instance) is switched off.
_LOCALSTRIPE_BOOT = (
    "import sys, localstripe.resources as r; r.Store.dump_to_disk = lambda self: None; "
    "from localstripe.server import start; "
    "sys.argv = ['localstripe', '--port', sys.argv[1], '--from-scratch']; start()"
)


@pytest.fixture(scope="session")
def _localstripe_process():
    import subprocess
    import sys
    import time
    import urllib.request

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", _LOCALSTRIPE_BOOT, str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(f"{base}/js.stripe.com/v3/", timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("localstripe did not start")
    yield base
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def localstripe(_localstripe_process, settings, monkeypatch):
    """A real localstripe over HTTP, emptied for this test; the app's Stripe client points at it
    and django-q2 runs tasks in-process (the webhook view's queued processing runs at once)."""
    import urllib.request

    from django_q.conf import Conf

    request = urllib.request.Request(f"{_localstripe_process}/_config/data", method="DELETE")
    urllib.request.urlopen(request, timeout=5).close()
    # Webhooks go nowhere unless the test registers its live server (localstripe_webhook):
    # a delivery left over from an earlier test must not land in this one's database.
    localstripe_register_webhook(_localstripe_process, "http://127.0.0.1:9/", "whsec_nowhere")
    settings.STRIPE_API_BASE = _localstripe_process
    settings.STRIPE_API_KEY = "sk_test_localstripe_tests"
    monkeypatch.setattr(Conf, "SYNC", True)
    return _localstripe_process


def localstripe_register_webhook(base: str, url: str, secret: str) -> None:
    import urllib.parse
    import urllib.request

    data = urllib.parse.urlencode({"url": url, "secret": secret}).encode()
    urllib.request.urlopen(f"{base}/_config/webhooks/tests", data=data, timeout=5).close()


@pytest.fixture(autouse=True)
def _audit_rows_flushable(request):
    """Every transactional test leaves audit rows behind (creating its personas is audited:
    staff/audit_hooks.py), which the append-only table would refuse to flush."""
    marker = request.node.get_closest_marker("django_db")
    if {"transactional_db", "live_server"} & set(request.fixturenames) or (
        marker is not None and marker.kwargs.get("transaction")
    ):
        request.getfixturevalue("audit_flushable")


@pytest.fixture
def audit_flushable(transactional_db):
    """For transactional tests (live_server): the audit table refuses DELETE, which the flush
    after the test needs on SQLite. Empty it with the triggers briefly dropped, then put them
    back, so the flush finds no rows for the row-level trigger to refuse."""
    yield
    import importlib

    from django.db import connection

    migration = importlib.import_module("staff.migrations.0002_roles_and_append_only_audit")
    vendor = connection.vendor
    drop = {"sqlite": migration.SQLITE_DROP, "postgresql": migration.POSTGRES_DROP}.get(vendor)
    create = {"sqlite": migration.SQLITE_TRIGGERS, "postgresql": migration.POSTGRES_TRIGGERS}
    with connection.cursor() as cursor:
        for sql in drop or []:
            cursor.execute(sql)
        cursor.execute("DELETE FROM staff_auditentry")
        for sql in create.get(vendor, []):
            cursor.execute(sql)


# --- AIQ sandbox (sandbox/testing.py) -------------------------------------------------------
# A real SOAP server over HTTP on a free port. `aiq_sandbox`: fresh seeded books per test.
# `aiq_sandbox_session`: one server for the run (faults reset per test; the books accumulate,
# so use unique references). Both point settings.AIQ_SANDBOX_URL and the AIQ_DEMO_* env
# credentials at it and return a sandbox.testing.RunningSandbox (.url, .faults, .state,
# .expire_tokens(), .credentials, .stop()).
def _point_at_sandbox(sandbox, settings, monkeypatch):
    settings.AIQ_SANDBOX_URL = sandbox.url
    for name, value in sandbox.credentials.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def aiq_sandbox(tmp_path, settings, monkeypatch):
    from sandbox.testing import start_sandbox

    sandbox = start_sandbox(tmp_path / "aiq-sandbox.sqlite3")
    _point_at_sandbox(sandbox, settings, monkeypatch)
    yield sandbox
    sandbox.stop()


@pytest.fixture(scope="session")
def _aiq_sandbox_server(tmp_path_factory):
    from sandbox.testing import start_sandbox

    sandbox = start_sandbox(tmp_path_factory.mktemp("aiq-sandbox") / "aiq-sandbox.sqlite3")
    yield sandbox
    sandbox.stop()


@pytest.fixture
def aiq_sandbox_session(_aiq_sandbox_server, settings, monkeypatch):
    _aiq_sandbox_server.faults.reset()
    _point_at_sandbox(_aiq_sandbox_server, settings, monkeypatch)
    yield _aiq_sandbox_server
    _aiq_sandbox_server.faults.reset()


# --- Browser (Playwright driving Debian's Chromium) -------------------------------------------
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium for one test module. Playwright's own browser download fails here,
    so Debian's is used; without it the test skips (fails in CI, which installs it)."""
    require(os.path.exists(CHROMIUM), f"needs Chromium at {CHROMIUM}: apt-get install -y chromium")
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # sync Playwright inside pytest
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()
