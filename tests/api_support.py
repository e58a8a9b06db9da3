"""An API client as an admin makes one, and a JSON caller for it (Django's test client, with
the token and an Idempotency-Key on every POST). Set-up only."""

import json
import uuid

from django.test import Client

from api.services import api_client_create


def api_client(entity, admin, *, scope="write", role="clerk", name="billing"):
    client, token = api_client_create(actor=admin, name=name, entity=entity, scope=scope, role=role)
    return client, token


class Caller:
    def __init__(self, token: str):
        self.http = Client(HTTP_AUTHORIZATION=f"Bearer {token}")

    def get(self, path: str, **params):
        return self.http.get(f"/api/v1/{path}", params)

    def post(self, path: str, body, key: str | None = None):
        return self.http.post(
            f"/api/v1/{path}",
            data=json.dumps(body),
            content_type="application/json",
            headers={"Idempotency-Key": key or str(uuid.uuid4())},
        )

    def put(self, path: str, body):
        return self.http.put(
            f"/api/v1/{path}", data=json.dumps(body), content_type="application/json"
        )
