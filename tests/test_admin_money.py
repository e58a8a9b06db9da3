"""Mirrored and received money is read-only everywhere in the admin, even for a superuser:
corrections go through the services that need a second person (plans, refunds, undo)."""

from decimal import Decimal

import pytest
from django.contrib import admin
from django.test import RequestFactory
from django.urls import reverse

from core.fields import MoneyField
from ledger.models import Entity
from payments.models import MatchRule, Payment
from sales.models import SalesSettings

pytestmark = pytest.mark.django_db

# Money that is configuration, not money received or mirrored: a rule's tolerance, the batch
# total above which sales invoices need an approver, a company's own approval threshold.
SETTINGS_WITH_MONEY = {MatchRule, SalesSettings, Entity}


def test_no_admin_page_can_add_change_or_delete_money(carol):
    request = RequestFactory().get("/admin/")
    request.user = carol
    checked = []
    for model, model_admin in admin.site._registry.items():
        money = [f for f in model._meta.fields if isinstance(f, MoneyField)]
        if not money or model in SETTINGS_WITH_MONEY:
            continue
        checked.append(model.__name__)
        assert not model_admin.has_add_permission(request), model
        assert not model_admin.has_change_permission(request), model
        assert not model_admin.has_delete_permission(request), model
        # (a page that cannot be changed refuses every POST, its inlines' included)
    assert {"Payment", "Invoice", "Receipt", "Allocation", "Refund", "Payout"} <= set(checked)


def test_a_superuser_posting_a_changed_payment_amount_changes_nothing(client, carol, entity):
    payment = Payment.objects.create(
        entity=entity,
        source="stripe",
        external_id="pi_money_1",
        amount=Decimal("120.00"),
        currency="GBP",
        received_at="2026-11-02T10:00:00Z",
    )
    client.force_login(carol)
    url = reverse("admin:payments_payment_change", args=[payment.pk])
    page = client.get(url)
    assert page.status_code == 200 and b"120.00" in page.content  # shown, as a view
    response = client.post(
        url,
        {"amount": "1.00", "currency": "USD", "status": "failed", "match_state": "approved"},
    )
    assert response.status_code == 403
    payment.refresh_from_db()
    assert (payment.amount, payment.currency, payment.status, payment.match_state) == (
        Decimal("120.00"),
        "GBP",
        "succeeded",
        "unmatched",
    )
    assert client.get(reverse("admin:payments_payment_add")).status_code == 403
    assert client.get(reverse("admin:ledger_invoice_add")).status_code == 403
