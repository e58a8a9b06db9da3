"""Audit completeness: every change a person (or a command) makes, through the admin, the
screens, the services and the commands, and every authentication event, has its audit row in
the same database transaction.

How it is checked, without trusting the code under test: every SQL statement the app runs is
watched (connection.execute_wrapper) and grouped by the transaction it ran in (the outermost
atomic block; a statement in autocommit mode is a transaction of its own). A transaction that
writes to a table holding money, people, permissions or schedules must also insert into the
audit table. The tests run with real transactions (transaction=True) so the grouping is true.
"""

import re
import uuid
from contextlib import contextmanager
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.core.management import call_command
from django.db import connection, transaction
from django.urls import reverse

from payments.models import MatchRule, Payment
from staff.models import AuditEntry
from staff.signals import login_locked_out

pytestmark = pytest.mark.django_db(transaction=True)

WRITE = re.compile(r'^\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+"?(\w+)"?', re.I)
AUDIT = "staff_auditentry"
# Tables whose rows are not a person's change: the session store and the task queue's own rows
# (a queued task is the consequence of a change audited with it).
NOT_TRACKED = {"django_session", "django_q_ormq", "django_q_task"}


def _tracked(table: str) -> bool:
    return (
        table != AUDIT
        and table not in NOT_TRACKED
        and table.startswith(("ledger_", "payments_", "staff_", "auth_", "django_q_"))
    )


class Transactions:
    """The write statements the app ran, per transaction."""

    def __init__(self):
        self.groups: list[dict] = []
        self._current = None

    def __call__(self, execute, sql, params, many, context):
        match = WRITE.match(sql)
        if match:
            table = match.group(1).lower()
            blocks = connection.atomic_blocks
            key = id(blocks[0]) if connection.in_atomic_block and blocks else None
            if key is None or self._current is None or self._current["key"] != key:
                self._current = {"key": key, "tables": set()}
                self.groups.append(self._current)
            self._current["tables"].add(table)
        return execute(sql, params, many, context)

    def unaudited(self) -> list[set]:
        return [
            g["tables"]
            for g in self.groups
            if any(_tracked(t) for t in g["tables"]) and AUDIT not in g["tables"]
        ]


@contextmanager
def watched():
    recorder = Transactions()
    with connection.execute_wrapper(recorder):
        yield recorder
    assert recorder.groups, "nothing was written: the scenario did not run"
    assert recorder.unaudited() == [], "changes without an audit row in their transaction"


def _actions(since: int) -> list[str]:
    return list(
        AuditEntry.objects.filter(pk__gt=since).order_by("pk").values_list("action", flat=True)
    )


def _last() -> int:
    return AuditEntry.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


# --- authentication ---------------------------------------------------------------------------


def test_sign_in_failure_lock_out_and_sign_out_are_audited(client, alice, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    start = _last()
    with watched():
        for _attempt in range(3):
            client.post(reverse("login"), {"username": "alice", "password": "wrong"})
        assert client.post(reverse("login"), {"username": "alice", "password": "wrong"})
    # the 4th attempt is refused unchecked, and still a failed sign-in on record
    assert _actions(start) == ["auth.login_failed"] * 3 + ["auth.lockout", "auth.login_failed"]
    entry = AuditEntry.objects.filter(action="auth.login_failed").last()
    assert "alice" in entry.summary and "wrong" not in entry.summary  # never the password

    from staff.models import LoginThrottle

    LoginThrottle.objects.all().delete()  # the lock-out is over
    start = _last()
    with watched():
        response = client.post(
            reverse("login"), {"username": "alice", "password": "alice-pass-123"}
        )
        assert response.status_code == 302
        client.post(reverse("logout"))
    assert _actions(start) == ["auth.login", "auth.logout"]
    assert set(
        AuditEntry.objects.filter(pk__gt=start).values_list("actor__username", flat=True)
    ) == {"alice"}


def test_a_lock_out_reported_by_the_throttle_is_audited():
    start = _last()
    with transaction.atomic():
        login_locked_out.send(sender=None, username="mallory", ip="203.0.113.9")
    assert _actions(start) == ["auth.lockout"]


# --- who may do what: admin, commands, code ---------------------------------------------------


def test_people_and_permission_changes_in_the_admin_are_audited(client, carol, alice):
    client.force_login(carol)
    start = _last()
    with watched():
        response = client.post(
            reverse("admin:auth_user_add"),
            {"username": "dave", "password1": "Quiet-River-2917", "password2": "Quiet-River-2917",
             "usable_password": "true"},
        )  # fmt: skip
        assert response.status_code == 302, response.content[:500]
        dave = User.objects.get(username="dave")
        approver = Group.objects.get(name="approver")
        response = client.post(
            reverse("admin:auth_user_change", args=[dave.pk]),
            {"username": "dave", "is_active": "on", "is_staff": "on", "is_superuser": "on",
             "groups": [approver.pk], "last_login_0": "", "last_login_1": "",
             "date_joined_0": "01/12/2026", "date_joined_1": "09:00:00"},
        )  # fmt: skip
        assert response.status_code == 302, response.content[:2000]
        clerk = Group.objects.get(name="clerk")
        permission = Permission.objects.get(codename="view_payment")
        response = client.post(
            reverse("admin:auth_group_change", args=[clerk.pk]),
            {"name": "clerk", "permissions": [permission.pk]},
        )
        assert response.status_code == 302
    actions = _actions(start)
    assert actions[0] == "user.create"
    assert {"user.change", "user.groups", "group.permissions"} <= set(actions)
    change = AuditEntry.objects.get(pk__gt=start, action="user.change")
    assert change.actor == carol
    assert change.after == {"is_staff": True, "is_superuser": True}
    groups = AuditEntry.objects.get(pk__gt=start, action="user.groups")
    assert groups.after == {"groups": ["approver"]}


def test_people_changed_by_commands_and_code_are_audited(settings):
    start = _last()
    settings.PRODUCTION = False
    with watched():
        call_command("create_demo_users", stdout=open("/dev/null", "w"))  # noqa: SIM115
        with transaction.atomic():
            clerk = User.objects.get(username="clerk")
            clerk.groups.clear()
            Group.objects.get(name="approver").user_set.add(clerk)
            clerk.is_active = False
            clerk.save()
    actions = _actions(start)
    assert actions.count("user.create") == 5  # one per demo login
    assert actions[-3:] == ["user.groups", "user.groups", "user.change"]


def test_schedules_are_audited_and_the_admin_cannot_add_one(client, carol):
    start = _last()
    with watched():
        call_command("setup_schedules", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert set(_actions(start)) == {"schedule.create"}
    # the scheduler saving a schedule after a run is not a change
    from django_q.models import Schedule

    start = _last()
    with transaction.atomic():
        schedule = Schedule.objects.get(name="outbox-sweep")
        schedule.repeats = 5
        schedule.save()
    assert _actions(start) == []
    client.force_login(carol)
    assert client.get(reverse("admin:django_q_schedule_add")).status_code == 403
    response = client.post(
        reverse("admin:django_q_schedule_change", args=[schedule.pk]),
        {"name": "outbox-sweep", "func": "os.system", "args": "'touch /tmp/x'"},
    )
    assert response.status_code == 403
    assert Schedule.objects.get(pk=schedule.pk).func == "ledger.outbox.tasks.sweep"


# --- money and settings: admin, screens, services ---------------------------------------------


def test_every_admin_page_that_writes_is_audited(carol):
    """Each model in the admin either audits its changes (AuditedAdmin), is people and groups
    (audited by the hooks, proven above), writes only through an audited service, or writes
    nothing (view only), even for a superuser."""
    from django.contrib import admin
    from django.test import RequestFactory

    from staff.admin_base import AuditedAdmin

    request = RequestFactory().get("/admin/")
    request.user = carol
    writers = {
        model._meta.label
        for model, model_admin in admin.site._registry.items()
        if not isinstance(model_admin, AuditedAdmin)
        and (
            model_admin.has_add_permission(request)
            or model_admin.has_change_permission(request)
            or model_admin.has_delete_permission(request)
        )
    }
    # people and groups: the hooks; API clients and webhook subscriptions: made and revoked
    # only by the audited api_client_create / api_client_revoke and
    # webhook_subscription_create / webhook_subscription_disable services (api/admin.py)
    assert writers == {"auth.User", "auth.Group", "api.ApiClient", "api.WebhookSubscription"}


def test_an_admin_action_on_a_view_only_page_goes_through_the_audited_service(
    client, carol, entity
):
    from ledger.models import OutboxCommand
    from ledger.outbox.services import outbox_enqueue
    from tests.payloads import receipt_payload

    command = outbox_enqueue(
        entity=entity, kind="post_receipt", payload=receipt_payload(), external_reference="R-9"
    )
    client.force_login(carol)
    start = _last()
    with watched():
        response = client.post(
            reverse("admin:ledger_outboxcommand_changelist"),
            {"action": "cancel_commands", "_selected_action": [command.pk]},
        )
        assert response.status_code == 302
    assert OutboxCommand.objects.get(pk=command.pk).state == "cancelled"
    assert _actions(start) == ["outbox.cancel"]


def test_admin_changes_of_settings_are_audited(client, carol):
    rule = MatchRule.objects.order_by("pk").first()
    client.force_login(carol)
    start = _last()
    with watched():
        response = client.post(
            reverse("admin:payments_matchrule_changelist"),
            {"form-TOTAL_FORMS": "1", "form-INITIAL_FORMS": "1", "form-0-id": rule.pk,
             "form-0-enabled": "" if rule.enabled else "on", "form-0-auto_approve": "",
             "_save": "Save"},
        )  # fmt: skip
        assert response.status_code == 302
    assert _actions(start) == ["admin.change"]


def test_screens_and_services_that_change_money_are_audited(client, entity, alice, bob, settings):
    from tests.test_plans_factories import make_customer, make_invoice, setup_books

    settings.APPROVAL_THRESHOLD = Decimal("1.00")
    setup_books(entity)
    customer = make_customer(entity)
    invoice = make_invoice(customer, "120.00")
    payment = Payment.objects.create(
        entity=entity, source="bank", external_id="row-9", amount=Decimal("120.00"),
        currency="GBP", received_at="2026-11-02T10:00:00Z", customer=customer,
    )  # fmt: skip
    client.force_login(alice)
    start = _last()
    with watched():
        response = client.post(
            reverse("payments:allocate", args=[payment.pk]),
            {"invoice": [invoice.pk], f"amount_{invoice.pk}": "120.00",
             "submission": str(uuid.uuid4())},
        )  # fmt: skip
        client.get(reverse("payments:export"))
    client.force_login(bob)  # the test client's sign-in, not the login page's
    with watched():
        plan = payment.plans.get()
        client.post(reverse("payments:approve", args=[plan.pk]))
    actions = _actions(start)
    assert {"plan.propose", "plan.submit", "plan.approve", "payments.export"} <= set(actions), (
        actions,
        response.status_code,
    )


def test_a_statement_refresh_from_aiq_is_audited(client, aiq_sandbox, entity, alice):
    from ledger.models import Customer
    from tests.refunds_support import setup_books

    setup_books(entity)
    customer = Customer.objects.get(entity=entity, code="ACME")
    client.force_login(alice)
    start = _last()
    with watched():
        # the customer page's first look fetches the statement from AIQ
        url = reverse("ledger:customer_statement", args=[customer.pk])
        assert client.get(url).status_code == 200
        assert client.post(url).status_code in (200, 302)  # without htmx: back to the page
    entries = list(AuditEntry.objects.filter(pk__gt=start).order_by("pk"))
    assert [e.action for e in entries] == ["statement.refresh", "statement.refresh"]
    assert {e.actor for e in entries} == {alice} and "ACME" in entries[0].summary
