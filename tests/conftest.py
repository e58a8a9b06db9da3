"""Shared fixtures: personas (alice the clerk, bob the approver, carol the admin, mallory
with no role), an entity, and helpers for tests that need a real PostgreSQL, Redis or Chromium.

Tests needing a service that is absent skip with the reason printed, except in CI (CI=true),
where the same absence fails the test: CI must run them.
"""

import os
import socket

import pytest
from django.contrib.auth.models import Group, User


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
    require(
        settings.DATABASES["default"]["ENGINE"].endswith("postgresql"),
        "needs PostgreSQL: set DATABASE_URL=postgres://postgres@127.0.0.1:5432/aiqrecon",
    )


@pytest.fixture
def requires_redis(settings):
    require(
        bool(settings.REDIS_URL) and port_open("127.0.0.1", 6379),
        "needs Redis: set REDIS_URL=redis://127.0.0.1:6379/0",
    )


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
def entity(db):
    from ledger.models import Entity

    return Entity.objects.create(
        name="Demo Ltd",
        company_id="demo",
        region="sandbox",
        base_currency="GBP",
        credentials_key="DEMO",
    )


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Login throttling and PDF caches live in the cache: no test sees another's."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()
