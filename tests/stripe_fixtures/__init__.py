"""Helpers for the Stripe tests: signing like Stripe does, and event envelopes."""

import hashlib
import hmac
import json
import time
import uuid
from pathlib import Path

FIXTURES = Path(__file__).parent  # the JSON files beside this module
SECRET = "whsec_test_primary_0123456789"
OLD_SECRET = "whsec_test_rotated_out_98765"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def sign(payload: bytes, secret: str = SECRET, at: int | None = None) -> str:
    """The Stripe-Signature header Stripe would send (scheme v1, HMAC-SHA256 of "t.body")."""
    at = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"{at}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={at},v1={digest}"


def event(event_type: str, obj: dict, *, event_id: str | None = None) -> bytes:
    """An event envelope shaped like Stripe's (the object is only a snapshot: we re-fetch)."""
    body = {
        "id": event_id or f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "api_version": "2024-06-20",
        "created": int(time.time()),
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }
    return json.dumps(body, indent=2).encode()
