# ruff: noqa: F811  (the screen_data fixture is imported by name)
"""Payment screens: inbox tabs, filters, keyset pages, CSV; the allocation editor calling the
real plan services; approvals with maker-checker; rejection with a reason."""

import uuid
from decimal import Decimal

import pytest
from django.urls import reverse

from payments.models import AllocationPlan, Payment
from staff.models import AuditEntry
from tests.test_views_data import make_payment, screen_data  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _inbox(client, **params):
    return client.get(reverse("payments:inbox"), params)


def test_unmatched_tab_lists_only_unmatched_payments(client, alice, screen_data):
    client.force_login(alice)
    html = _inbox(client, tab="unmatched").content.decode()
    assert "pi_unmatched" in html and "pi_yen" in html
    assert "pi_proposed" not in html and "pi_awaiting" not in html


def test_each_tab_shows_its_state(client, alice, screen_data):
    client.force_login(alice)
    assert "pi_proposed" in _inbox(client, tab="proposed").content.decode()
    assert "pi_awaiting" in _inbox(client, tab="awaiting").content.decode()
    everything = _inbox(client, tab="all").content.decode()
    for ref in ("pi_unmatched", "pi_proposed", "pi_awaiting", "pi_yen"):
        assert ref in everything


def test_amounts_are_formatted_per_currency(client, alice, screen_data):
    client.force_login(alice)
    html = _inbox(client, tab="all").content.decode()
    assert "125,000 JPY" in html
    assert "1,000.00 GBP" in html


def test_filters_by_currency_and_amount_range(client, alice, screen_data):
    client.force_login(alice)
    html = _inbox(client, tab="all", currency="jpy").content.decode()
    assert "pi_yen" in html and "pi_unmatched" not in html
    html = _inbox(client, tab="all", amount_min="300", amount_max="500").content.decode()
    assert "pi_awaiting" in html and "pi_unmatched" not in html and "pi_proposed" not in html


def test_search_by_amount_reference_and_payer(client, alice, screen_data, entity):
    make_payment(entity, "pi_other", "12.34", payer_name="Zed Zebra")
    client.force_login(alice)
    html = _inbox(client, tab="all", q="1,000.00").content.decode()
    assert "pi_unmatched" in html and "pi_other" not in html
    assert "pi_other" in _inbox(client, tab="all", q="pi_other").content.decode()
    html = _inbox(client, tab="all", q="zebra").content.decode()
    assert "pi_other" in html and "pi_unmatched" not in html
    html = _inbox(client, tab="all", q="AP@ACME.example").content.decode()
    assert "pi_unmatched" in html and "pi_other" in html  # both paid from that address
    html = _inbox(client, tab="all", q="nobody@acme.example").content.decode()
    assert "pi_unmatched" not in html


def test_invalid_filter_shows_the_error_next_to_the_field(client, alice, screen_data):
    client.force_login(alice)
    response = _inbox(client, tab="all", amount_min="lots")
    assert response.status_code == 200
    assert "Enter a number." in response.content.decode()
    assert "pi_unmatched" not in response.content.decode()


def test_keyset_pages_cover_every_payment_once(client, alice, entity):
    for i in range(73):
        make_payment(entity, f"pi_{i:03d}", "1.00", hours_ago=i % 5)  # ties on received_at
    client.force_login(alice)
    seen, params = [], {"tab": "unmatched"}
    for _ in range(5):
        response = _inbox(client, **params)
        page = response.context["page"]
        seen += [p.external_id for p in page.items]
        if not page.has_next:
            break
        params["after"] = page.next_cursor
    assert len(seen) == 73 and len(set(seen)) == 73


def test_htmx_next_page_returns_only_rows(client, alice, entity):
    for i in range(55):
        make_payment(entity, f"pi_{i:03d}", "1.00", hours_ago=i)
    client.force_login(alice)
    first = _inbox(client, tab="unmatched").context["page"]
    response = client.get(
        reverse("payments:inbox"),
        {"tab": "unmatched", "after": first.next_cursor},
        HTTP_HX_REQUEST="true",
    )
    html = response.content.decode()
    assert "<h1>" not in html and html.count("<tr>") == 5


def test_a_tampered_cursor_is_a_400_page_not_a_crash(client, alice, screen_data):
    client.force_login(alice)
    response = _inbox(client, tab="all", after="not-a-cursor")
    assert response.status_code == 400
    assert b"Bad request" in response.content and b"Traceback" not in response.content


def test_csv_export_follows_the_filter_and_defuses_formulas(client, alice, entity):
    make_payment(entity, "pi_gbp", "10.00", payer_name="=HYPERLINK(evil)")
    make_payment(entity, "pi_eur", "20.00", currency="EUR")
    client.force_login(alice)
    response = client.get(reverse("payments:export"), {"tab": "all", "currency": "GBP"})
    body = b"".join(response.streaming_content).decode()
    assert response["Content-Type"].startswith("text/csv")
    assert "pi_gbp" in body and "pi_eur" not in body
    assert "'=HYPERLINK(evil)" in body


# --- allocation editor -----------------------------------------------------------------------


def _allocate(client, payment, rows):
    data = {"invoice": [str(inv.pk) for inv, _ in rows]}
    for inv, amount in rows:
        data[f"amount_{inv.pk}"] = amount
    data["submission"] = str(uuid.uuid4())  # the form's token, as the page renders it
    return client.post(reverse("payments:allocate", args=[payment.pk]), data)


def test_detail_shows_source_data_proposals_and_evidence(client, alice, screen_data):
    client.force_login(alice)
    html = client.get(
        reverse("payments:detail", args=[screen_data["proposed"].pk])
    ).content.decode()
    assert "INV-1003 found in metadata.invoice" in html
    assert "payment_intent" in html  # the raw payload as received
    assert 'value="250.00"' in html  # the best proposal pre-fills the editor


def test_proposal_evidence_reads_as_sentences(client, alice, entity, screen_data):
    from payments.models import MatchProposal
    from tests.test_views_data import make_payment

    inv1 = screen_data["invoices"][0]
    payment = make_payment(
        entity, "pi_evidence", "250.00", state="proposed", customer=inv1.customer
    )
    # what the reference rule records (payments/matching/rules.py), read as a clerk would
    MatchProposal.objects.create(
        payment=payment,
        rule_kind="reference",
        confidence=Decimal("0.950"),
        explanation="INV-1003 found in metadata.invoice",
        evidence={
            "customer": {"customer_id": inv1.customer_id, "via": "invoice_reference"},
            "tokens": [
                {"token": "INV-1003", "source": "metadata", "key": "INV1003",
                 "invoice_id": inv1.pk, "invoice": "INV-1003", "field": "invoice number"}
            ],
            "amounts": {"payment": "GBP 250.00", "open": "GBP 250.00"},
            "would_auto_approve": False,
        },
        lines=[{"invoice_id": inv1.pk, "amount": "250.00"}],
    )  # fmt: skip
    client.force_login(alice)
    html = client.get(reverse("payments:detail", args=[payment.pk])).content.decode()
    assert "Customer identified by the reference of one of their invoices in the payment." in html
    assert "“INV-1003” in the payment&#x27;s metadata matches the invoice number of invoice" in html
    assert "The payment is GBP 250.00; open on the invoice GBP 250.00." in html
    assert "Needs a person&#x27;s approval." in html
    assert "customer_id" not in html and "would auto approve" not in html


def test_invoice_search_finds_open_invoices_in_the_payment_currency(client, alice, screen_data):
    client.force_login(alice)
    url = reverse("payments:invoice_search", args=[screen_data["unmatched"].pk])
    html = client.get(url, {"q": "INV-100"}, HTTP_HX_REQUEST="true").content.decode()
    assert "INV-1001" in html and "INV-1002" in html
    assert "<html" not in html
    yen_url = reverse("payments:invoice_search", args=[screen_data["yen"].pk])
    assert "INV-1001" not in client.get(yen_url, {"q": "INV"}).content.decode()


def test_clerk_allocates_across_two_invoices_with_a_partial_amount(
    client, alice, screen_data, settings
):
    settings.APPROVAL_THRESHOLD = Decimal("100.00")
    inv1, inv2, _ = screen_data["invoices"]
    payment = screen_data["unmatched"]
    client.force_login(alice)
    # INV-1002 is held by the awaiting plan; use INV-1001 in full... and part of a new one
    from tests.test_views_data import make_invoice

    inv4 = make_invoice(payment.entity, screen_data["customer"], "INV-1004", "900.00", txn=5004)
    response = _allocate(client, payment, [(inv1, "600.00"), (inv4, "300.00")])
    assert response.status_code == 302, response.content.decode()[:2000]
    plan = AllocationPlan.objects.get(payment=payment)
    assert plan.state == AllocationPlan.State.AWAITING_APPROVAL
    assert plan.maker == alice
    assert plan.on_account_amount == Decimal("100.000")
    assert sorted(line.amount for line in plan.lines.all()) == [Decimal("300"), Decimal("600")]
    assert AuditEntry.objects.filter(action="plan.submit", object_id=str(plan.pk)).exists()


def test_too_many_decimals_is_a_field_error_and_nothing_is_written(client, alice, screen_data):
    inv1 = screen_data["invoices"][0]
    client.force_login(alice)
    response = _allocate(client, screen_data["unmatched"], [(inv1, "10.005")])
    assert response.status_code == 400
    html = response.content.decode()
    assert f'id="err_amount_{inv1.pk}"' in html and "more decimal places than GBP" in html
    assert 'value="10.005"' in html  # what was typed is shown back
    assert not AllocationPlan.objects.filter(payment=screen_data["unmatched"]).exists()


def test_over_allocating_an_invoice_is_refused_by_the_service(client, alice, screen_data):
    inv1 = screen_data["invoices"][0]
    client.force_login(alice)
    response = _allocate(client, screen_data["unmatched"], [(inv1, "700.00")])
    assert response.status_code == 400
    html = response.content.decode()
    assert "Invoice INV-1001 has 600.00 GBP open; the plan settles 700.00 GBP." in html
    assert not AllocationPlan.objects.filter(payment=screen_data["unmatched"]).exists()


# --- approvals -------------------------------------------------------------------------------


def test_approver_sees_the_plan_and_approves_it(client, bob, screen_data):
    client.force_login(bob)
    html = client.get(reverse("payments:approvals")).content.decode()
    assert "pi_awaiting" in html and "alice" in html and "Approve" in html
    response = client.post(reverse("payments:approve", args=[screen_data["plan"].pk]), follow=True)
    assert "Approved the plan" in response.content.decode()
    plan = AllocationPlan.objects.get(pk=screen_data["plan"].pk)
    assert plan.approver == bob and plan.state == AllocationPlan.State.SENT


def test_maker_sees_no_approve_button_and_a_forged_post_is_refused(
    client, bob, screen_data, entity
):
    plan = screen_data["plan"]
    AllocationPlan.objects.filter(pk=plan.pk).update(maker=bob)
    client.force_login(bob)
    html = client.get(reverse("payments:approvals")).content.decode()
    assert "Another approver must decide" in html
    assert reverse("payments:approve", args=[plan.pk]) not in html
    response = client.post(reverse("payments:approve", args=[plan.pk]), follow=True)
    assert "Not approved" in response.content.decode()
    assert AllocationPlan.objects.get(pk=plan.pk).state == AllocationPlan.State.AWAITING_APPROVAL


def test_bulk_approve_reports_each_plan(client, bob, screen_data):
    client.force_login(bob)
    html = _inbox(client, tab="awaiting").content.decode()
    plan = screen_data["plan"]
    assert f'name="plan_ids" value="{plan.pk}"' in html
    assert f'name="version_{plan.pk}" value="1"' in html  # the version shown rides along
    assert "Plan v1: INV-1002 400.00 GBP" in html  # what approving it posts
    response = client.post(
        reverse("payments:bulk_approve"),
        {"plan_ids": [plan.pk], f"version_{plan.pk}": "1"},
        follow=True,
    )
    assert "Approved 1 plan." in response.content.decode()
    assert Payment.objects.get(pk=screen_data["awaiting"].pk).match_state == "approved"


def test_bulk_approve_refuses_a_plan_changed_since_the_page_showed_it(
    client, alice, bob, screen_data, settings
):
    """Bob's inbox showed plan v1 (INV-1002 400.00); Alice then moved it to INV-1001 and
    resubmitted (v2). Bob's "Approve selected" approves nothing: not v2, which he never saw.
    A post that does not say which version was shown approves nothing either."""
    from payments.services.plans import plan_edit, plan_submit

    settings.APPROVAL_THRESHOLD = Decimal("1.00")
    plan = screen_data["plan"]
    client.force_login(bob)
    html = _inbox(client, tab="awaiting").content.decode()
    assert f'name="version_{plan.pk}" value="1"' in html
    inv1 = screen_data["invoices"][0]
    plan = plan_edit(plan=plan, lines=[{"invoice_id": inv1.pk, "amount": "400.00"}], actor=alice)
    plan_submit(plan=plan, actor=alice)
    plan.refresh_from_db()
    assert plan.version == 2 and plan.state == AllocationPlan.State.AWAITING_APPROVAL
    response = client.post(
        reverse("payments:bulk_approve"),
        {"plan_ids": [plan.pk], f"version_{plan.pk}": "1"},
        follow=True,
    )
    page = response.content.decode()
    assert "changed since you opened it" in page and "Approved 1 plan" not in page
    response = client.post(reverse("payments:bulk_approve"), {"plan_ids": [plan.pk]}, follow=True)
    assert "did not say which version" in response.content.decode()
    plan.refresh_from_db()
    assert plan.state == AllocationPlan.State.AWAITING_APPROVAL and plan.approver is None
    assert Payment.objects.get(pk=screen_data["awaiting"].pk).match_state == "awaiting_approval"


def test_reject_needs_a_reason_shown_next_to_the_field(client, bob, screen_data):
    client.force_login(bob)
    url = reverse("payments:reject", args=[screen_data["awaiting"].pk])
    response = client.post(url, {"reason": ""})
    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    response = client.post(url, {"reason": "wrong customer"}, follow=True)
    plan = AllocationPlan.objects.get(pk=screen_data["plan"].pk)
    assert plan.state == AllocationPlan.State.REJECTED and plan.rejection_reason == "wrong customer"
    assert "plan.reject" in response.content.decode()  # in the payment's history


def test_approver_bulk_accepts_proposals_under_the_threshold(client, bob, screen_data):
    proposed = screen_data["proposed"]
    client.force_login(bob)
    html = _inbox(client, tab="proposed").content.decode()
    assert f'name="payment_ids" value="{proposed.pk}"' in html
    response = client.post(
        reverse("payments:bulk_accept"),
        {"payment_ids": [proposed.pk, screen_data["unmatched"].pk]},
        follow=True,
    )
    html = response.content.decode()
    assert "Accepted 1 proposal." in html
    assert "pi_unmatched: no open proposal" in html
    plan = AllocationPlan.objects.get(payment=proposed)
    assert plan.maker == bob and plan.state == AllocationPlan.State.SENT  # 250 <= threshold
    assert plan.proposal.state == "accepted"


def test_clerk_cannot_bulk_accept(client, alice, screen_data):
    client.force_login(alice)
    assert "Accept selected proposals" not in _inbox(client, tab="proposed").content.decode()
    response = client.post(reverse("payments:bulk_accept"), {"payment_ids": [1]})
    assert response.status_code == 403
