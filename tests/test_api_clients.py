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
