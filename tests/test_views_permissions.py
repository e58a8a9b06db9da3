# ruff: noqa: F811  (the screen_data fixture is imported by name)
"""Who may open and post to each screen: a table of role x view x expected status.

anonymous -> redirected to log in; mallory (logged in, no role) -> 403; alice the clerk,
bob the approver and carol the admin per the table. Mutations answer 405 to GET.
"""

import pytest
from django.urls import reverse

from tests.test_views_data import screen_data  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # The personas' passwords are hashed per test; the default hasher is slow on purpose.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


ANON, NOROLE, CLERK, APPROVER, ADMIN = "anonymous", "mallory", "alice", "bob", "carol"
ROLES = (ANON, NOROLE, CLERK, APPROVER, ADMIN)


def _urls(d):
    pay, plan, inv, cust, cmd = (
        d["unmatched"],
        d["plan"],
        d["invoices"][0],
        d["customer"],
        d["command"],
    )
    from payments.models import ImportFormat, MatchRule

    company = cust.entity_id
    # a rule and a layout every company shares (the data migrations' own, when present)
    shared_rule = MatchRule.objects.filter(entity__isnull=True).order_by("id").first()
    shared_rule = shared_rule or MatchRule.objects.create(name="Reference", kind="reference")
    shared_layout = ImportFormat.objects.filter(entity__isnull=True).order_by("id").first()
    shared_layout = shared_layout or ImportFormat.objects.create(name="Bank CSV", column_map={})
    return {
        "dashboard": ("get", reverse("dashboard"), {}),
        # company settings (payments/views/company_settings.py)
        "settings": ("get", reverse("payments:settings"), {}),
        "settings_company": ("get", reverse("payments:settings_company", args=[company]), {}),
        # not an amount: past the role check, the form says so
        "settings_threshold": (
            "post",
            reverse("payments:settings_company", args=[company]),
            {"approval_threshold": "x"},
        ),
        "rule_new": ("get", reverse("payments:rule_new", args=[company]), {}),
        "rule_new_post": ("post", reverse("payments:rule_new", args=[company]), {}),
        "rule_edit": ("get", reverse("payments:rule_edit", args=[shared_rule.pk]), {}),
        "rule_edit_post": ("post", reverse("payments:rule_edit", args=[shared_rule.pk]), {}),
        "rule_copy": (
            "post",
            reverse("payments:rule_copy", args=[company, shared_rule.pk]),
            {},
        ),
        "layout_new": ("get", reverse("payments:layout_new", args=[company]), {}),
        "layout_edit": ("post", reverse("payments:layout_edit", args=[shared_layout.pk]), {}),
        "layout_copy": (
            "post",
            reverse("payments:layout_copy", args=[company, shared_layout.pk]),
            {},
        ),
        # screen_data has no bank or provider account: past the role check, a 404
        "bank_account_edit": ("get", reverse("payments:bank_account_edit", args=[999999]), {}),
        "provider_account_new": (
            "get",
            reverse("payments:provider_account_new", args=[company]),
            {},
        ),
        "provider_account_edit": (
            "post",
            reverse("payments:provider_account_edit", args=[999999]),
            {},
        ),
        "audit": ("get", reverse("audit"), {}),
        "inbox": ("get", reverse("payments:inbox"), {}),
        "export": ("get", reverse("payments:export"), {}),
        "detail": ("get", reverse("payments:detail", args=[pay.pk]), {}),
        "invoice_search": ("get", reverse("payments:invoice_search", args=[pay.pk]) + "?q=INV", {}),
        "approvals": ("get", reverse("payments:approvals"), {}),
        "statement_upload": ("get", reverse("payments:statement_upload"), {}),
        "statement_confirm": ("post", reverse("payments:statement_confirm"), {}),
        "bank_balances": ("get", reverse("payments:bank_balances"), {}),
        "payer_flags": ("get", reverse("payments:payer_flags"), {}),
        # screen_data has no matching run: past the role check, an unknown run is a 404
        "run_proposals": ("get", reverse("payments:run_proposals", args=["norun"]), {}),
        "invoices": ("get", reverse("ledger:invoices"), {}),
        "invoice": ("get", reverse("ledger:invoice", args=[inv.pk]), {}),
        "customers": ("get", reverse("ledger:customers"), {}),
        "customer": ("get", reverse("ledger:customer", args=[cust.pk]), {}),
        "sync": ("get", reverse("ledger:sync"), {}),
        "outbox": ("get", reverse("payments:outbox"), {}),
        # screen_data flags no duplicate: past the role check, an unknown flag is a 404
        "duplicate_reverse": ("post", reverse("ledger:duplicate_reverse", args=[999999]), {}),
        "duplicate_dismiss": ("post", reverse("ledger:duplicate_dismiss", args=[999999]), {}),
        "sync_progress": ("get", reverse("ledger:sync_progress"), {}),
        "departments": ("get", reverse("ledger:departments"), {}),
        # screen_data has no BI code: past the role check, an unknown one is a 404
        "department_update": (
            "post",
            reverse("ledger:department_update", args=[999999]),
            {"name": "x", "action": "rename"},
        ),
        "editor_row": ("get", reverse("payments:editor_row", args=[pay.pk]), {"invoice": inv.pk}),
        "invoice_pdf": ("get", reverse("ledger:invoice_pdf", args=[inv.pk]), {}),
        "invoice_attach": ("post", reverse("ledger:invoice_attach", args=[inv.pk]), {}),
        "approve": ("post", reverse("payments:approve", args=[plan.pk]), {}),
        "reject_plan": ("post", reverse("payments:reject_plan", args=[plan.pk]), {"reason": "x"}),
        # no undo request in screen_data: past the role check, an unknown one is a 404
        "approve_undo": ("post", reverse("payments:approve_undo", args=[999999]), {}),
        "reject_undo": ("post", reverse("payments:reject_undo", args=[999999]), {"reason": "x"}),
        "bulk_approve": ("post", reverse("payments:bulk_approve"), {"plan_ids": [plan.pk]}),
        "bulk_accept": ("post", reverse("payments:bulk_accept"), {"payment_ids": []}),
        "allocate": ("post", reverse("payments:allocate", args=[pay.pk]), {}),
        "reject_payment": ("post", reverse("payments:reject", args=[pay.pk]), {"reason": ""}),
        "retry": ("post", reverse("ledger:command_retry", args=[cmd.pk]), {}),
        "cancel": ("post", reverse("ledger:command_cancel", args=[cmd.pk]), {"reason": ""}),
        "sync_now": ("post", reverse("ledger:sync_now"), {"entity": "0"}),
        "change_customer": (
            "post",
            reverse("payments:change_customer", args=[pay.pk]),
            {"customer": "", "reason": ""},
        ),
        "group_policy": ("get", reverse("payments:group_policy"), {}),
        "group_policy_set": (
            "post",
            reverse("payments:group_policy"),
            {"cross_company_receipts": "on"},
        ),
        # no invoice named: past the role check, a 400 saying so
        "cross_company_propose": (
            "post",
            reverse("payments:cross_company_propose", args=[pay.pk]),
            {"invoice_id": ""},
        ),
        "unallocate": (
            "post",
            reverse("payments:unallocate", args=[d["allocation"].pk]),
            {"reason": ""},
        ),  # fmt: skip
        # sales records from the selling systems; screen_data has none: past the role check,
        # an unknown one is a 404
        "credit_notes": ("get", reverse("sales:credit_notes"), {}),
        "credit_note": ("get", reverse("sales:credit_note", args=[999999]), {}),
        "credit_note_retry": ("post", reverse("sales:credit_note_retry", args=[999999]), {}),
        "credit_note_cancel": ("post", reverse("sales:credit_note_cancel", args=[999999]), {}),
        "customer_updates": ("get", reverse("sales:customer_updates"), {}),
        "customer_update": ("get", reverse("sales:customer_update", args=[999999]), {}),
        "customer_update_retry": (
            "post",
            reverse("sales:customer_update_retry", args=[999999]),
            {},
        ),
        "customer_update_cancel": (
            "post",
            reverse("sales:customer_update_cancel", args=[999999]),
            {},
        ),
    }


LOGIN = 302
# view: expected status for (anonymous, mallory, alice, bob, carol).
# POSTs here send incomplete data on purpose: the point is who gets past the permission check
# (302 back to the screen with a message / 400 with the form), never a change by the wrong role.
TABLE = {
    "dashboard": (LOGIN, 403, 200, 200, 200),
    # a finance manager (approver) of the company, and group finance; never a clerk
    "settings": (LOGIN, 403, 403, 200, 200),
    "settings_company": (LOGIN, 403, 403, 200, 200),
    "settings_threshold": (LOGIN, 403, 403, 400, 400),
    "rule_new": (LOGIN, 403, 403, 200, 200),
    "rule_new_post": (LOGIN, 403, 403, 400, 400),
    "rule_edit": (LOGIN, 403, 403, 200, 200),
    "rule_edit_post": (LOGIN, 403, 403, 400, 400),
    "rule_copy": (LOGIN, 403, 403, 302, 302),
    "layout_new": (LOGIN, 403, 403, 200, 200),
    "layout_edit": (LOGIN, 403, 403, 400, 400),
    "layout_copy": (LOGIN, 403, 403, 302, 302),
    "bank_account_edit": (LOGIN, 403, 403, 404, 404),
    "provider_account_new": (LOGIN, 403, 403, 200, 200),
    "provider_account_edit": (LOGIN, 403, 403, 404, 404),
    "audit": (LOGIN, 403, 200, 200, 200),
    "inbox": (LOGIN, 403, 200, 200, 200),
    "export": (LOGIN, 403, 200, 200, 200),
    "detail": (LOGIN, 403, 200, 200, 200),
    "invoice_search": (LOGIN, 403, 200, 200, 200),
    "approvals": (LOGIN, 403, 200, 200, 200),
    "statement_upload": (LOGIN, 403, 200, 200, 200),
    "statement_confirm": (LOGIN, 403, 302, 302, 302),
    "bank_balances": (LOGIN, 403, 200, 200, 200),
    "payer_flags": (LOGIN, 403, 200, 200, 200),
    "run_proposals": (LOGIN, 403, 404, 404, 404),
    "invoices": (LOGIN, 403, 200, 200, 200),
    "invoice": (LOGIN, 403, 200, 200, 200),
    "customers": (LOGIN, 403, 200, 200, 200),
    "customer": (LOGIN, 403, 200, 200, 200),
    "sync": (LOGIN, 403, 200, 200, 200),
    "outbox": (LOGIN, 403, 200, 200, 200),
    "duplicate_reverse": (LOGIN, 403, 403, 404, 404),
    "duplicate_dismiss": (LOGIN, 403, 403, 404, 404),
    "sync_progress": (LOGIN, 403, 200, 200, 200),
    "departments": (LOGIN, 403, 200, 200, 200),
    "department_update": (LOGIN, 403, 403, 404, 404),
    "editor_row": (LOGIN, 403, 200, 200, 200),
    "invoice_pdf": (LOGIN, 403, 200, 200, 200),
    "invoice_attach": (LOGIN, 403, 302, 302, 302),
    "approve": (LOGIN, 403, 403, 302, 302),
    "reject_plan": (LOGIN, 403, 403, 302, 302),
    "approve_undo": (LOGIN, 403, 403, 404, 404),
    "reject_undo": (LOGIN, 403, 404, 404, 404),  # the clerk who asked may withdraw it
    "bulk_approve": (LOGIN, 403, 403, 302, 302),
    "bulk_accept": (LOGIN, 403, 403, 302, 302),
    "allocate": (LOGIN, 403, 400, 400, 400),
    "reject_payment": (LOGIN, 403, 400, 400, 400),
    "retry": (LOGIN, 403, 403, 302, 302),
    "cancel": (LOGIN, 403, 403, 302, 302),
    "sync_now": (LOGIN, 403, 404, 404, 404),
    "unallocate": (LOGIN, 403, 302, 302, 302),
    "change_customer": (LOGIN, 403, 302, 302, 302),
    "cross_company_propose": (LOGIN, 403, 400, 400, 400),
    "group_policy": (LOGIN, 403, 403, 200, 200),
    "group_policy_set": (LOGIN, 403, 403, 403, 302),  # group finance only
    "credit_notes": (LOGIN, 403, 200, 200, 200),
    "credit_note": (LOGIN, 403, 404, 404, 404),
    "credit_note_retry": (LOGIN, 403, 403, 404, 404),
    "credit_note_cancel": (LOGIN, 403, 403, 404, 404),
    "customer_updates": (LOGIN, 403, 200, 200, 200),
    "customer_update": (LOGIN, 403, 404, 404, 404),
    "customer_update_retry": (LOGIN, 403, 403, 404, 404),
    "customer_update_cancel": (LOGIN, 403, 403, 404, 404),
}

CASES = [(view, role, TABLE[view][i]) for view in TABLE for i, role in enumerate(ROLES)]


@pytest.mark.parametrize(("view", "role", "expected"), CASES)
def test_role_gets_expected_status(client, request, screen_data, view, role, expected):
    for name in (NOROLE, CLERK, APPROVER, ADMIN):
        request.getfixturevalue(name)
    if role != ANON:
        from django.contrib.auth.models import User

        client.force_login(User.objects.get(username=role))
    method, url, data = _urls(screen_data)[view]
    response = getattr(client, method)(url, data)
    assert response.status_code == expected, (view, role, response.status_code)
    if expected == LOGIN and role == ANON:
        assert response["Location"].startswith(reverse("login"))


def test_every_route_of_ours_is_in_the_table(screen_data):
    """Each route served by this area's view modules has a permission decision on record."""
    from django.urls import get_resolver

    ours = (
        "payments.views.inbox", "payments.views.detail", "payments.views.approvals",
        "payments.views.runs", "payments.views.statements", "payments.views.outbox",
        "ledger.views.", "staff.views", "sales.views_records", "payments.views.company_settings",
    )  # fmt: skip
    names = set()
    for ns in ("payments", "ledger", "sales"):
        resolver = get_resolver().namespace_dict[ns][1]
        for pattern in resolver.url_patterns:
            if pattern.callback.__module__.startswith(ours):
                names.add(pattern.name)
    # the table's names for routes it calls differently; receipt_pdf and customer_statement
    # are covered in test_views_ledger.py (they need a receipt / the AIQ sandbox)
    covered = set(TABLE) | {"reject", "command_retry", "command_cancel"} | {
        "receipt_pdf", "customer_statement", "settings_company", "rule_new", "rule_edit",
        "layout_new", "layout_edit",
    }  # fmt: skip
    assert names, "no routes found: the check itself is broken"
    assert names <= covered, names - covered


@pytest.mark.parametrize(
    "name",
    [
        "approve",
        "reject_plan",
        "bulk_approve",
        "allocate",
        "retry",
        "cancel",
        "sync_now",
        "statement_confirm",
        "change_customer",
        "cross_company_propose",
        "rule_copy",
        "layout_copy",
        "credit_note_retry",
        "credit_note_cancel",
        "customer_update_retry",
        "customer_update_cancel",
    ],
)
def test_mutations_refuse_get(client, bob, screen_data, name):
    client.force_login(bob)
    _, url, _ = _urls(screen_data)[name]
    assert client.get(url).status_code == 405


@pytest.mark.parametrize("name", ["approve", "allocate", "retry"])
def test_mutations_need_the_csrf_token(bob, screen_data, name):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(bob)
    _, url, data = _urls(screen_data)[name]
    response = client.post(url, data)
    assert response.status_code == 403
    assert b"Not allowed" in response.content or b"CSRF" in response.content
