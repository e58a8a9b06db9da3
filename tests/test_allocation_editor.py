# ruff: noqa: F811  (the screen_data fixture is imported by name)
"""The allocation editor posts exactly what it showed, once.

Scenarios from the clerk's day (issue 16): one invoice typed into two rows, letters in a
repeated row, a footer that disagrees with the rows, and the same form posted twice (a
double click). Each either posts exactly the rows shown or is refused with the reason and
writes nothing.
"""

import uuid
from decimal import Decimal

import pytest
from django.urls import reverse

from payments.models import AllocationPlan
from payments.services.plan_lines import PlanRefused
from payments.services.plans import plan_submit_lines
from staff.models import AuditEntry, FormSubmission
from staff.services import FormTokenMissing
from tests.test_views_data import make_invoice, screen_data  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _post(client, payment, rows, *, token=None, shown_on_account=None):
    """rows: (invoice, amount typed) in screen order, repeats allowed, as the browser posts."""
    data = {"invoice": [], "submission": token or str(uuid.uuid4())}
    for invoice, amount in rows:
        data["invoice"].append(str(invoice.pk))
        data.setdefault(f"amount_{invoice.pk}", []).append(amount)
    if shown_on_account is not None:
        data["shown_on_account"] = shown_on_account
    return client.post(reverse("payments:allocate", args=[payment.pk]), data)


def test_one_invoice_in_two_rows_is_refused_with_the_reason_and_nothing_is_written(
    client, alice, screen_data
):
    inv1, _inv2, _ = screen_data["invoices"]
    inv4 = make_invoice(inv1.entity, screen_data["customer"], "INV-1050", "14.00", txn=5050)
    payment = screen_data["unmatched"]
    client.force_login(alice)
    # the case: INV-1001 twice (30.00 typed in the first row), INV-1050 14.00
    response = _post(client, payment, [(inv1, "30.00"), (inv1, ""), (inv4, "14.00")])
    assert response.status_code == 400
    html = response.content.decode()
    assert "INV-1001 is in the allocation 2 times; remove the extra rows" in html
    assert html.count(f'name="invoice" value="{inv1.pk}"') == 2  # both rows shown as sent
    assert f'id="amount_{inv1.pk}-1"' in html  # the repeat has its own input id
    assert not AllocationPlan.objects.filter(payment=payment).exists()


def test_letters_in_a_repeated_row_are_refused_not_skipped(client, alice, screen_data):
    inv1 = screen_data["invoices"][0]
    payment = screen_data["unmatched"]
    client.force_login(alice)
    response = _post(client, payment, [(inv1, "30.00"), (inv1, "abc")])
    assert response.status_code == 400
    html = response.content.decode()
    assert "is in the allocation 2 times" in html
    assert f'id="err_amount_{inv1.pk}"' in html  # the letters are named as the amount's error
    assert 'value="abc"' in html
    assert not AllocationPlan.objects.filter(payment=payment).exists()


def test_the_rows_are_posted_exactly_as_shown(client, alice, screen_data, settings):
    settings.APPROVAL_THRESHOLD = Decimal("100.00")
    inv1 = screen_data["invoices"][0]
    payment = screen_data["unmatched"]  # 1,000.00
    client.force_login(alice)
    response = _post(client, payment, [(inv1, "600.00")], shown_on_account="400.00")
    assert response.status_code == 302, response.content.decode()[:2000]
    plan = AllocationPlan.objects.get(payment=payment)
    assert [(line.invoice_id, line.amount) for line in plan.lines.all()] == [
        (inv1.pk, Decimal("600.00"))
    ]
    assert plan.on_account_amount == Decimal("400.00")
    assert plan.state == AllocationPlan.State.AWAITING_APPROVAL


def test_a_footer_that_showed_another_remainder_refuses_the_submit(client, alice, screen_data):
    inv1 = screen_data["invoices"][0]
    payment = screen_data["unmatched"]
    client.force_login(alice)
    response = _post(client, payment, [(inv1, "600.00")], shown_on_account="0.00")
    assert response.status_code == 400
    html = response.content.decode()
    assert "The screen showed 0.00 GBP left on account, but the rows leave 400.00 GBP" in html
    assert not AllocationPlan.objects.filter(payment=payment).exists()
    assert not FormSubmission.objects.exists()  # refused: the same form may be sent again


def test_the_same_form_posted_twice_is_one_action(client, alice, screen_data, settings):
    """A double click: under the threshold the first POST approves the plan; the second
    must neither make a new version nor void the first."""
    settings.APPROVAL_THRESHOLD = Decimal("5000.00")
    inv1 = screen_data["invoices"][0]
    payment = screen_data["unmatched"]
    client.force_login(alice)
    token = str(uuid.uuid4())
    first = _post(client, payment, [(inv1, "600.00")], token=token)
    second = _post(client, payment, [(inv1, "600.00")], token=token)
    assert first.status_code == second.status_code == 302
    [plan] = AllocationPlan.objects.filter(payment=payment)
    assert plan.state == AllocationPlan.State.SENT and plan.version == 1
    followed = client.get(second.url).content.decode()
    assert "This allocation was already submitted; nothing more was done." in followed
    actions = list(
        AuditEntry.objects.filter(object_id=str(plan.pk), object_type="payments.allocationplan")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == ["plan.propose", "plan.approve"]


def test_the_service_refuses_a_form_without_its_token(alice, screen_data):
    inv1 = screen_data["invoices"][0]
    with pytest.raises(FormTokenMissing, match="reload the page"):
        plan_submit_lines(
            payment=screen_data["unmatched"],
            lines=[{"invoice_id": inv1.pk, "amount": "600.00"}],
            actor=alice,
            submission="",
        )
    assert not AllocationPlan.objects.filter(payment=screen_data["unmatched"]).exists()


def test_the_service_refuses_repeated_invoice_lines(alice, screen_data):
    inv1 = screen_data["invoices"][0]
    with pytest.raises(PlanRefused, match="appears twice"):
        plan_submit_lines(
            payment=screen_data["unmatched"],
            lines=[
                {"invoice_id": inv1.pk, "amount": "30.00"},
                {"invoice_id": inv1.pk, "amount": "14.00"},
            ],
            actor=alice,
            submission=uuid.uuid4(),
        )
    assert not FormSubmission.objects.exists()


def test_editing_an_awaiting_plan_through_the_editor_keeps_one_plan(
    client, alice, screen_data, settings
):
    settings.APPROVAL_THRESHOLD = Decimal("100.00")
    inv1 = screen_data["invoices"][0]
    payment = screen_data["unmatched"]
    client.force_login(alice)
    assert _post(client, payment, [(inv1, "600.00")]).status_code == 302
    assert _post(client, payment, [(inv1, "500.00")], shown_on_account="500.00").status_code == 302
    [plan] = AllocationPlan.objects.filter(payment=payment)
    assert plan.version == 2 and plan.on_account_amount == Decimal("500.00")
    assert plan.state == AllocationPlan.State.AWAITING_APPROVAL
