import pytest
from django.apps import apps
from django.contrib import admin
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_anonymous_is_sent_to_login(client):
    response = client.get(reverse("dashboard"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_login_page_renders(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert b"Log in" in response.content


def test_wrong_password_shows_the_form_again_with_an_error(client, alice):
    response = client.post(reverse("login"), {"username": "alice", "password": "nope"})
    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content


def test_repeated_failures_are_throttled_even_with_the_right_password(client, alice, settings):
    for _ in range(settings.LOGIN_FAILURE_LIMIT):
        client.post(reverse("login"), {"username": "alice", "password": "nope"})
    response = client.post(reverse("login"), {"username": "alice", "password": "alice-pass-123"})
    assert response.status_code == 200
    assert b"Too many failed attempts" in response.content
    assert "_auth_user_id" not in client.session


def test_login_then_dashboard_shell(client, alice):
    response = client.post(
        reverse("login"), {"username": "alice", "password": "alice-pass-123"}, follow=True
    )
    assert response.status_code == 200
    assert b"Dashboard" in response.content
    assert b"clerk" in response.content


def test_admin_lists_every_model(client, carol):
    client.force_login(carol)
    index = client.get(reverse("admin:index")).content.decode()
    for app_label in ("ledger", "payments", "sales", "staff", "api"):
        for model in apps.get_app_config(app_label).get_models():
            assert model in admin.site._registry, f"{model.__name__} is not in the admin"
            url = reverse(f"admin:{app_label}_{model._meta.model_name}_changelist")
            assert url in index
            assert client.get(url).status_code == 200


def test_money_rows_cannot_be_deleted_in_admin(client, carol, entity):
    from ledger.models import Customer

    customer = Customer.objects.create(entity=entity, code="A1", name="A", currency="GBP")
    client.force_login(carol)
    url = reverse("admin:ledger_customer_delete", args=[customer.pk])
    assert client.get(url).status_code == 403
