# ruff: noqa: F811  (the screen_data fixture is imported by name)
"""Dashboard figures and charts, the audit log search, and the error pages."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from payments.models import Payment
from staff.services import audit_log
from tests.test_views_data import make_payment, screen_data  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def test_dashboard_counts_unmatched_by_currency_and_age(client, alice, entity):
    make_payment(entity, "pi_a", "10.00", hours_ago=1)
    make_payment(entity, "pi_b", "5.50", hours_ago=24 * 20)
    make_payment(entity, "pi_c", "7.00", hours_ago=24 * 90)
    make_payment(entity, "pi_d", "1000", currency="JPY", state="proposed")
    client.force_login(alice)
    response = client.get(reverse("dashboard"))
    ctx = response.context
    assert ctx["unmatched_count"] == 3
    assert [(r["currency"], r["n"]) for r in ctx["unmatched_totals"]] == [("GBP", 3)]
    assert [b["n"] for b in ctx["ageing"]] == [1, 1, 0, 1]
    assert "22.50 GBP" in response.content.decode()


def test_dashboard_chart_data_is_rendered_as_json_without_inline_script(client, alice, entity):
    make_payment(entity, "pi_a", "10.00", state="proposed")
    make_payment(entity, "pi_b", "30.00", source="bank")
    client.force_login(alice)
    html = client.get(reverse("dashboard")).content.decode()
    assert '<script id="chart-data" type="application/json">' in html
    charts = client.get(reverse("dashboard")).context["charts"]
    assert charts["match_rate"]["rates"] == [50.0]
    [gbp] = charts["cash_by_source"]
    assert gbp["currency"] == "GBP"
    assert {s["label"]: s["data"] for s in gbp["series"]} == {
        "bank": ["30.000"],
        "stripe": ["10.000"],
    }


def test_dashboard_shows_outbox_needing_attention(client, alice, screen_data):
    client.force_login(alice)
    ctx = client.get(reverse("dashboard")).context
    assert ctx["outbox"]["attention"] == 1
    assert ctx["awaiting_count"] == 1


def test_audit_log_searches_by_user_object_and_text(client, alice, bob, entity):
    payment = make_payment(entity, "pi_a", "10.00")
    with transaction.atomic():
        audit_log(actor=alice, action="plan.propose", obj=payment, summary="first try")
        audit_log(actor=bob, action="plan.approve", obj=payment, summary="looks right")
    client.force_login(alice)
    html = client.get(reverse("audit"), {"user": "bob"}).content.decode()
    assert "looks right" in html and "first try" not in html
    html = client.get(
        reverse("audit"), {"object_type": "payments.payment", "object_id": payment.pk}
    ).content.decode()
    assert "looks right" in html and "first try" in html
    html = client.get(reverse("audit"), {"q": "first"}).content.decode()
    assert "first try" in html and "looks right" not in html


def test_the_audit_change_column_reads_as_sentences(client, alice, entity):
    payment = make_payment(entity, "pi_b", "150.00")
    with transaction.atomic():
        audit_log(
            actor=alice,
            action="refund.approve",
            obj=payment,
            summary="refund approved",
            before={"state": "awaiting_approval", "amount_refunded": "0.00", "reason": "dup"},
            after={"state": "sent", "amount_refunded": "150.00", "reason": "dup", "linked": True},
        )
    client.force_login(alice)
    html = client.get(reverse("audit")).content.decode()
    assert "State: awaiting approval → sent." in html
    assert "Amount refunded: 0.00 → 150.00." in html
    assert "Linked: yes." in html
    assert "Reason:" not in html  # unchanged fields are not repeated
    assert "{&#x27;" not in html and "{'" not in html  # no raw dicts


def test_unknown_page_gets_the_404_page(client, alice):
    client.force_login(alice)
    response = client.get("/payments/999999/")
    assert response.status_code == 404
    assert b"Not found" in response.content and b"Traceback" not in response.content


def test_server_error_shows_the_500_page_without_details(alice, monkeypatch):
    from django.test import Client

    import payments.selectors

    def boom(**kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(payments.selectors, "dashboard_figures", boom)
    client = Client(raise_request_exception=False)
    client.force_login(alice)
    response = client.get(reverse("dashboard"))
    assert response.status_code == 500
    assert b"Something went wrong" in response.content
    assert b"secret internals" not in response.content


def test_unmatched_older_than_sixty_days_is_its_own_bucket(client, alice, entity):
    p = make_payment(entity, "pi_old", "1.00")
    Payment.objects.filter(pk=p.pk).update(received_at=timezone.now() - timedelta(days=61, hours=1))
    client.force_login(alice)
    assert client.get(reverse("dashboard")).context["ageing"][-1]["n"] == 1
