"""API clients as an admin makes them in the admin: the token is shown once, stored only as a
hash, works with its scope, and stops working when revoked; each step is audited."""

import hashlib

import pytest
from django.contrib.messages import get_messages

from api.models import ApiClient
from staff.models import AuditEntry
from tests.api_support import Caller


@pytest.fixture
def admin_user(carol):
    carol.is_staff = True
    carol.is_superuser = True
    carol.save()
    return carol


def test_an_admin_makes_a_client_its_token_is_shown_once_and_stored_hashed(
    client, admin_user, entity
):
    client.force_login(admin_user)
    answer = client.post(
        "/admin/api/apiclient/add/",
        {"name": "crm", "entity": entity.pk, "scope": "read", "role": "clerk"},
        follow=True,
    )
    assert answer.status_code == 200
    (message,) = [
        m.message for m in get_messages(answer.wsgi_request) if "shown this once" in m.message
    ] or [line for line in answer.content.decode().splitlines() if "shown this once" in line]
    token = message.split("shown this once: ")[1].split()[0].split("<")[0]
    stored = ApiClient.objects.get(name="crm")
    assert token.startswith("aiq_") and token not in str(stored.__dict__)
    assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert stored.user.username == "api:crm" and not stored.user.has_usable_password()

    caller = Caller(token)
    assert caller.get("customers").status_code == 200
    assert caller.post("other_payments", {}).status_code == 403  # read scope
    assert Caller(token + "x").get("customers").status_code == 401

    answer = client.post(
        "/admin/api/apiclient/",
        {"action": "revoke", "_selected_action": [stored.pk]},
        follow=True,
    )
    assert caller.get("customers").status_code == 401
    actions = list(
        AuditEntry.objects.filter(object_id=str(stored.pk), action__startswith="api_client.")
        .order_by("pk")
        .values_list("action", flat=True)
    )
    assert actions == ["api_client.create", "api_client.revoke"]


def test_no_token_is_a_problem_document_not_a_login_page(client, db):
    answer = client.get("/api/v1/invoices")
    assert (answer.status_code, answer["Content-Type"]) == (401, "application/problem+json")
    assert answer.json()["title"] == "Not authenticated"
    assert client.get("/api/v1/schema/").status_code == 200
    assert b"swagger" in client.get("/api/v1/docs/").content.lower()


def test_a_token_revoked_in_another_process_stops_working_within_the_cache_time(
    carol, entity, settings, monkeypatch
):
    """Each web process keeps a client it authenticated for API_TOKEN_CACHE_SECONDS. A revoke
    made by another process (here: the row changed behind this one's back) is seen once that
    time is up; a revoke through the service in this process is seen at once (above)."""
    from django.utils import timezone

    import api.services
    from api.services import api_client_create

    settings.API_TOKEN_CACHE_SECONDS = 5
    stored, token = api_client_create(actor=carol, name="shop", entity=entity, scope="read")
    clock = [1000.0]
    monkeypatch.setattr(api.services.time, "monotonic", lambda: clock[0])
    caller = Caller(token)
    assert caller.get("customers").status_code == 200
    ApiClient.objects.filter(pk=stored.pk).update(revoked_at=timezone.now())
    clock[0] += 4.9
    assert caller.get("customers").status_code == 200  # the window the setting allows
    clock[0] += 0.2
    assert caller.get("customers").status_code == 401
    # a wrong token is never kept: each try reads the database, and fails
    assert (
        Caller(token[:-1] + ("A" if token[-1] != "A" else "B")).get("customers").status_code == 401
    )


def test_with_no_cache_time_every_request_reads_the_client(carol, entity, settings):
    from django.utils import timezone

    from api.services import api_client_create

    settings.API_TOKEN_CACHE_SECONDS = 0
    stored, token = api_client_create(actor=carol, name="crm2", entity=entity, scope="read")
    caller = Caller(token)
    assert caller.get("customers").status_code == 200
    ApiClient.objects.filter(pk=stored.pk).update(revoked_at=timezone.now())
    assert caller.get("customers").status_code == 401


def test_a_client_over_its_rate_is_told_to_wait_and_others_are_not(carol, entity, settings):
    from django.core.cache import cache

    from api.services import api_client_create

    cache.clear()
    settings.API_RATE_LIMIT = "3/hour"
    _one, token = api_client_create(actor=carol, name="busy", entity=entity, scope="read")
    _two, other = api_client_create(actor=carol, name="calm", entity=entity, scope="read")
    busy = Caller(token)
    assert [busy.get("customers").status_code for _ in range(3)] == [200, 200, 200]
    answer = busy.get("customers")
    assert (answer.status_code, answer["Content-Type"]) == (429, "application/problem+json")
    assert 0 < int(answer["Retry-After"]) <= 3600
    assert Caller(other).get("customers").status_code == 200
