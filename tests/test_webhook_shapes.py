# ruff: noqa: F811  (the gocardless fixture is imported by name)
"""Webhooks of any shape: a bad signature header is a clean refusal, and a signed event of a
shape the provider does not document never fails its task (issue 20 point 2, issue 15 point 5).

Stripe events are processed against a real localstripe; GoCardless events against the local
server answering with GoCardless's documented payloads (tests/test_gocardless_webhooks.py).
"""

import hashlib
import hmac
import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from payments.models import Payment, WebhookEvent
from payments.services.stripe_events import HANDLED_EVENT_TYPES, stripe_event_process
from payments.sources.gocardless_source import gocardless_event_process
from tests.stripe_fixtures import SECRET as STRIPE_SECRET
from tests.stripe_fixtures import event as stripe_event
from tests.stripe_fixtures import sign
from tests.test_gocardless_webhooks import SECRET as GC_SECRET
from tests.test_gocardless_webhooks import (  # noqa: F401 - gocardless: the fixture, by name
    _body,
    _customer,
    _event,
    _payer_add,
    _payment,
    gocardless,
)

STRIPE_URL = "/webhooks/stripe/"
GC_URL = "/webhooks/gocardless/"
FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def stripe_secrets(settings):
    settings.STRIPE_WEBHOOK_SECRETS = [STRIPE_SECRET]
    settings.STRIPE_WEBHOOK_TOLERANCE_SECONDS = 300


def _gc_signature(body: bytes) -> str:
    return hmac.new(GC_SECRET.encode(), body, hashlib.sha256).hexdigest()


# --- signature headers ------------------------------------------------------------------------
NOT_ASCII = ["t=1,v1=caf\xe9", "\u00b2" * 64, "t=1,v1=\u2603", "\x00\x01", "é"]


@pytest.mark.parametrize("header", NOT_ASCII)
def test_a_stripe_signature_with_non_ascii_bytes_is_refused_with_400(
    client, db, stripe_secrets, header
):
    body = stripe_event("payment_intent.succeeded", {"id": "pi_1", "object": "payment_intent"})
    response = client.post(
        STRIPE_URL, data=body, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
    )
    assert response.status_code == 400
    assert STRIPE_SECRET not in response.content.decode()
    assert WebhookEvent.objects.count() == 0


@pytest.mark.parametrize("header", NOT_ASCII)
def test_a_gocardless_signature_with_non_ascii_bytes_is_refused_as_invalid(
    client, db, gocardless, header
):
    body = _body(_event("EV1", "payments", "confirmed", payment="PM1"))
    response = client.post(
        GC_URL, data=body, content_type="application/json", HTTP_WEBHOOK_SIGNATURE=header
    )
    assert response.status_code == 498  # GoCardless's documented "invalid signature"
    assert GC_SECRET not in response.content.decode()
    assert WebhookEvent.objects.count() == 0


# --- GoCardless events the provider documents that used to fail their task --------------------
def _store_gc(client, capture, *events):
    body = _body(*events)
    with capture(execute=True):
        response = client.post(
            GC_URL,
            data=body,
            content_type="application/json",
            HTTP_WEBHOOK_SIGNATURE=_gc_signature(body),
        )
    assert response.status_code == 204


def test_a_signed_payouts_event_without_its_payout_link_is_kept_as_failed_with_the_reason(
    client, entity, gocardless, django_capture_on_commit_callbacks
):
    _store_gc(
        client,
        django_capture_on_commit_callbacks,
        _event("EV_PO_NOLINK", "payouts", "paid", organisation="OR1"),
    )
    event = WebhookEvent.objects.get()
    assert event.state == WebhookEvent.State.FAILED
    assert event.last_error == "the event has no links.payout"
    assert gocardless.asked == []  # nothing to ask GoCardless about
    # the sweep and a redelivery leave it alone: it is final
    assert gocardless_event_process(event_pk=event.pk) == WebhookEvent.State.FAILED


def test_a_documented_refunds_created_event_refreshes_the_payment_its_refund_names(
    client, entity, gocardless, django_capture_on_commit_callbacks
):
    """refunds.created carries only links.refund (GoCardless's own example): the refund
    names the payment, which is fetched and stored with the refunded amount."""
    gocardless.payments["PM77"] = _payment("PM77", 5000, refunded=1500)
    _payer_add(gocardless, "MD000123", _customer("CU77", "jo@example.test"))
    gocardless.refunds["RF77"] = {
        "id": "RF77",
        "created_at": "2025-03-05T10:00:00.000Z",
        "amount": 1500,
        "currency": "GBP",
        "reference": "partial-refund",
        "status": "created",
        "metadata": {},
        "links": {"payment": "PM77", "mandate": "MD000123"},
    }
    documented = {
        "id": "EV_RF77",
        "created_at": "2025-03-05T10:00:01.000Z",
        "action": "created",
        "resource_type": "refunds",
        "links": {"refund": "RF77", "organisation": "OR123"},
        "details": {
            "origin": "api",
            "cause": "refund_created",
            "description": "The refund has been created, and will be submitted in the next batch.",
        },
        "metadata": {},
    }
    _store_gc(client, django_capture_on_commit_callbacks, documented)
    assert WebhookEvent.objects.get().state == WebhookEvent.State.PROCESSED
    payment = Payment.objects.get(external_id="PM77")
    assert (str(payment.amount), str(payment.amount_refunded), payment.status) == (
        "50.000",
        "15.000",
        "partially_refunded",
    )
    assert "/refunds/RF77" in gocardless.asked


# --- any shape: hypothesis --------------------------------------------------------------------
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.text(max_size=12)
    | st.sampled_from(["", "pi_1", "ch_1", "po_1", "dp_1", "re_1", "PM1", "PO1", "RF1", "\x00"])
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
_DROP = object()


@st.composite
def mutated(draw, base: dict, paths: list[tuple]):
    """The documented event with some of its fields dropped or replaced by any JSON value."""
    event = json.loads(json.dumps(base))
    for path in paths:
        choice = draw(st.sampled_from(["keep", "keep", "drop", "replace"]))
        parent = event
        for key in path[:-1]:
            parent = parent.get(key) if isinstance(parent, dict) else None
        if not isinstance(parent, dict) or choice == "keep":
            continue
        if choice == "drop":
            parent.pop(path[-1], None)
        else:
            parent[path[-1]] = draw(json_values)
    return event


STRIPE_PATHS = [("type",), ("data",), ("data", "object"), ("data", "object", "id"),
                ("data", "object", "object")]  # fmt: skip


def _stripe_base(event_type: str) -> dict:
    kind = event_type.split(".")[0]
    kind = "refund" if "refund" in event_type else kind
    return json.loads(stripe_event(event_type, {"id": f"{kind[:2]}_1", "object": kind}))


stripe_events = st.sampled_from(sorted(HANDLED_EVENT_TYPES)).flatmap(
    lambda event_type: mutated(_stripe_base(event_type), STRIPE_PATHS)
)


@pytest.mark.django_db
@FUZZ
@given(shape=stripe_events, n=st.integers(min_value=0, max_value=10**9))
def test_no_stripe_event_shape_fails_its_task(
    client, entity, localstripe, stripe_secrets, shape, n
):
    shape = {**shape, "id": f"evt_fuzz_{n}"} if isinstance(shape.get("id"), str) else shape
    body = json.dumps(shape).encode()
    response = client.post(
        STRIPE_URL,
        data=body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign(body, STRIPE_SECRET, at=int(time.time())),
    )
    assert response.status_code in (200, 400)
    for event in WebhookEvent.objects.filter(state=WebhookEvent.State.RECEIVED):
        state = stripe_event_process(event_pk=event.pk)  # never raises
        assert state in WebhookEvent.State.values
        event.refresh_from_db()
        assert event.state != WebhookEvent.State.RECEIVED


GC_PATHS = [("resource_type",), ("action",), ("links",), ("links", "payment"),
            ("links", "refund"), ("links", "payout")]  # fmt: skip
gc_events = st.sampled_from(["payments", "refunds", "payouts", "mandates"]).flatmap(
    lambda resource: mutated(
        _event("EV", resource, "created", payment="PM1", refund="RF1", payout="PO1"), GC_PATHS
    )
)


@pytest.mark.django_db
@FUZZ
@given(shapes=st.lists(gc_events, min_size=1, max_size=3), n=st.integers(0, 10**9))
def test_no_gocardless_event_shape_fails_its_task(client, entity, gocardless, shapes, n):
    gocardless.payments["PM1"] = _payment("PM1", 1000)
    gocardless.refunds["RF1"] = {"id": "RF1", "amount": 100, "currency": "GBP",
                                 "links": {"payment": "PM1"}}  # fmt: skip
    gocardless.payouts["PO1"] = {"id": "PO1", "amount": 1000, "currency": "GBP",
                                 "status": "pending", "arrival_date": None}  # fmt: skip
    gocardless.payout_items["PO1"] = []
    events = [{**shape, "id": f"EV{n}_{i}"} for i, shape in enumerate(shapes)]
    body = json.dumps({"events": events}).encode()
    response = client.post(
        GC_URL, data=body, content_type="application/json",
        HTTP_WEBHOOK_SIGNATURE=_gc_signature(body),
    )  # fmt: skip
    assert response.status_code in (204, 498)
    for event in WebhookEvent.objects.filter(state=WebhookEvent.State.RECEIVED):
        state = gocardless_event_process(event_pk=event.pk)  # never raises
        assert state in WebhookEvent.State.values
        event.refresh_from_db()
        assert event.state != WebhookEvent.State.RECEIVED
