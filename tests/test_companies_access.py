"""Roles per company: a clerk of the Irish company does not see or act on the UK company's
payments, invoices, customers, refunds or audit (404, never 500); a person granted several
companies switches between them or sees all; an Admin (group finance) sees every company."""

from decimal import Decimal

import pytest
from django.db import transaction

from payments.models import Payment, Refund
from staff.services import audit_log
from tests.companies_support import grant, group_books
from tests.test_plans_factories import make_payment

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def group(entity, alice, bob):
    books = group_books(entity)
    books["uk_payment"] = make_payment(books["uk"], "120.00", refs=["INV-1001"])
    books["ie_payment"] = make_payment(books["ie"], "120.00", currency="EUR", refs=["INV-1001"])
    books["uk_refund"] = Refund.objects.create(
        kind="refund_invoice", customer=books["uk_customer"], invoice=books["uk_invoice"],
        amount=Decimal("10.00"), currency="GBP", reason="overpaid UK", maker=bob,
    )  # fmt: skip
    books["ie_refund"] = Refund.objects.create(
        kind="refund_invoice", customer=books["ie_customer"], invoice=books["ie_invoice"],
        amount=Decimal("10.00"), currency="EUR", reason="overpaid IE", maker=bob,
    )  # fmt: skip
    with transaction.atomic():
        audit_log(actor=None, action="test.uk", obj=books["uk_payment"], summary="UK thing")
        audit_log(actor=None, action="test.ie", obj=books["ie_payment"], summary="IE thing")
    grant(alice, books["ie"])  # alice: a clerk of the Irish company
    grant(bob, books["ie"])  # bob: an approver of the Irish company
    return books


def _ref(payment: Payment) -> str:
    return payment.shown_reference


def test_a_clerk_of_one_company_gets_404_for_the_other_companys_pages(client, alice, group):
    client.force_login(alice)
    uk, ie = group["uk_payment"], group["ie_payment"]
    pages = {
        "payment": (f"/payments/{uk.pk}/", f"/payments/{ie.pk}/"),
        "invoice": (
            f"/invoices/{group['uk_invoice'].pk}/",
            f"/invoices/{group['ie_invoice'].pk}/",
        ),
        "customer": (
            f"/customers/{group['uk_customer'].pk}/",
            f"/customers/{group['ie_customer'].pk}/",
        ),
        "refund": (f"/refunds/{group['uk_refund'].pk}/", f"/refunds/{group['ie_refund'].pk}/"),
        "invoice search": (
            f"/payments/{uk.pk}/invoices?q=INV",
            f"/payments/{ie.pk}/invoices?q=INV",
        ),
    }
    for what, (theirs, ours) in pages.items():
        assert client.get(theirs).status_code == 404, what
        assert client.get(ours).status_code == 200, what
    # the payment page says whose it is
    page = client.get(f"/payments/{ie.pk}/").content.decode()
    assert "Demo Trading Ireland" in page


def test_a_clerk_cannot_act_on_the_other_companys_payment_or_refund(client, alice, bob, group):
    client.force_login(alice)
    uk = group["uk_payment"]
    answer = client.post(f"/payments/{uk.pk}/reject", {"reason": "not ours"})
    assert answer.status_code == 404
    answer = client.post(f"/payments/{uk.pk}/not-for-aiq", {"reason": "not ours"})
    assert answer.status_code == 404
    uk.refresh_from_db()
    assert uk.match_state == Payment.MatchState.UNMATCHED
    new_refund = client.get(f"/refunds/new?kind=cancel_invoice&invoice={group['uk_invoice'].pk}")
    assert new_refund.status_code == 404
    client.force_login(bob)
    answer = client.post(f"/refunds/{group['uk_refund'].pk}/approve", {})
    assert answer.status_code == 404
    group["uk_refund"].refresh_from_db()
    assert group["uk_refund"].state == Refund.State.REQUESTED
    # a bulk action naming the UK payment's id leaves it alone
    client.post("/payments/bulk-accept", {"payment_ids": [str(uk.pk)]})
    assert not uk.plans.exists()


def test_lists_show_only_the_clerks_company(client, alice, group):
    client.force_login(alice)
    uk, ie = group["uk_payment"], group["ie_payment"]
    inbox = client.get("/payments/?tab=all").content.decode()
    assert _ref(ie) in inbox and _ref(uk) not in inbox
    invoices = client.get("/invoices/").content.decode()
    assert "Acme Ireland" in invoices and "Acme Ltd" not in invoices
    customers = client.get("/customers/").content.decode()
    assert "Acme Ireland" in customers and "Acme Ltd" not in customers
    refunds = client.get("/refunds/").content.decode()
    assert f"#{group['ie_refund'].pk}<" in refunds and f"#{group['uk_refund'].pk}<" not in refunds
    audit = client.get("/audit/").content.decode()
    assert "IE thing" in audit and "UK thing" not in audit
    # asking for the other company by the filter shows nothing of it
    audit = client.get(f"/audit/?company={group['uk'].pk}").content.decode()
    assert "UK thing" not in audit
    inbox = client.get(f"/payments/?tab=all&company={group['uk'].pk}").content.decode()
    assert _ref(uk) not in inbox


def test_the_admin_sees_every_company_and_switches_between_them(client, carol, group):
    client.force_login(carol)
    uk, ie = group["uk_payment"], group["ie_payment"]
    inbox = client.get("/payments/?tab=all").content.decode()
    assert _ref(uk) in inbox and _ref(ie) in inbox
    assert "All companies" in inbox and "<th>Company</th>" in inbox
    answer = client.post(
        "/company/", {"company": str(group["ie"].pk), "next": "/payments/?tab=all"}
    )
    assert answer.status_code == 302 and answer["Location"] == "/payments/?tab=all"
    inbox = client.get("/payments/?tab=all").content.decode()
    assert _ref(ie) in inbox and _ref(uk) not in inbox
    dashboard = client.get("/").content.decode()
    assert "GBP" not in dashboard.split("Unmatched totals")[1].split("</table>")[0]
    # a company's page is still reachable from a link while another is chosen
    assert client.get(f"/payments/{uk.pk}/").status_code == 200
    client.post("/company/", {"company": "all", "next": "https://evil.example/"})
    inbox = client.get("/payments/?tab=all").content.decode()
    assert _ref(uk) in inbox and _ref(ie) in inbox


def test_a_person_without_grants_still_sees_everything_in_a_single_company_install(
    client, alice, entity
):
    payment = make_payment(entity, "50.00")
    client.force_login(alice)
    assert client.get(f"/payments/{payment.pk}/").status_code == 200
    inbox = client.get("/payments/?tab=all").content.decode()
    assert _ref(payment) in inbox and "<th>Company</th>" not in inbox


def test_the_demo_seeds_two_companies_and_a_clerk_of_the_irish_one_only(settings):
    from django.core.management import call_command

    from ledger.companies import entities_visible_ids
    from ledger.models import Entity

    settings.PRODUCTION = False
    quiet = {"stdout": open("/dev/null", "w")}  # noqa: SIM115
    call_command("create_demo_users", **quiet)
    call_command("seed_demo", **quiet)
    call_command("seed_demo", **quiet)  # twice: nothing doubles
    companies = dict(Entity.objects.values_list("company_id", "base_currency"))
    assert companies == {"demo": "GBP", "demo-ie": "EUR"}
    from django.contrib.auth.models import User

    ireland = Entity.objects.get(company_id="demo-ie")
    assert entities_visible_ids(User.objects.get(username="clerk-ie")) == {ireland.pk}
    assert entities_visible_ids(User.objects.get(username="clerk")) is None


def test_the_statement_upload_offers_only_the_clerks_companys_accounts_and_layouts(
    client, alice, group, barclays
):
    from payments.models import ImportFormat, StatementAccount

    StatementAccount.objects.create(entity=group["uk"], name="UK current", account_key="UK1")
    StatementAccount.objects.create(entity=group["ie"], name="IE current", account_key="IE1")
    ImportFormat.objects.create(name="Bank of Ireland CSV", entity=group["ie"], column_map={})
    ImportFormat.objects.create(name="Lloyds CSV", entity=group["uk"], column_map={})
    client.force_login(alice)
    page = client.get("/payments/import/").content.decode()
    assert "IE current" in page and "UK current" not in page
    assert "Bank of Ireland CSV" in page and "Barclays CSV" in page  # its own and shared ones
    assert "Lloyds CSV" not in page


def test_an_approver_of_one_company_sees_and_approves_only_its_plans(
    client, alice, bob, carol, group, settings
):
    """Bob approves for the Irish company: the UK plan waiting beside the Irish one is not on
    his approvals list, and approving it by its address is "not found" and changes nothing."""
    from payments.models import AllocationPlan
    from payments.services.plans import plan_propose, plan_submit
    from tests.companies_support import stripe_account

    settings.APPROVAL_THRESHOLD = Decimal("1.00")
    for company, currency in ((group["uk"], "GBP"), (group["ie"], "EUR")):
        stripe_account(company, currency)
    plans = {}
    for key in ("uk", "ie"):
        plan = plan_propose(
            payment=group[f"{key}_payment"],
            lines=[{"invoice_id": group[f"{key}_invoice"].pk, "amount": "120.00"}],
            actor=carol, customer=group[f"{key}_customer"],
        )  # fmt: skip
        plans[key] = plan_submit(plan=plan, actor=carol)
    client.force_login(bob)
    listed = client.get("/approvals/").content.decode()
    assert f"/approvals/{plans['ie'].pk}/approve" in listed
    assert f"/approvals/{plans['uk'].pk}/approve" not in listed
    answer = client.post(f"/approvals/{plans['uk'].pk}/approve", {"version": "1"})
    assert answer.status_code == 404
    plans["uk"].refresh_from_db()
    assert plans["uk"].state == AllocationPlan.State.AWAITING_APPROVAL
    client.post(f"/approvals/{plans['ie'].pk}/approve", {"version": "1"})
    plans["ie"].refresh_from_db()
    assert (plans["ie"].state, plans["ie"].approver) == (AllocationPlan.State.SENT, bob)


def test_a_clerk_of_one_company_sees_only_its_sales_invoices_and_credit_notes(
    client, alice, bob, group
):
    from datetime import date

    from sales.models import InvoiceSource, SalesCreditNote, SalesInvoice

    def sale(entity, ref):
        source = InvoiceSource.objects.create(entity=entity, code=f"CRM-{ref}", name="CRM")
        invoice = SalesInvoice.objects.create(
            entity=entity, source=source, external_reference=ref, customer_code="ACME",
            customer_name="Acme", invoice_date=date(2026, 11, 2), currency=entity.base_currency,
            invoice_type="batch", net_amount=100, tax_amount=20, gross_amount=120,
            content_hash="-", state=SalesInvoice.State.FAILED,
        )  # fmt: skip
        note = SalesCreditNote.objects.create(
            entity=entity, source=source, invoice=invoice, external_reference=f"{ref}-CN",
            credit_date=date(2026, 11, 3), currency=entity.base_currency, net_amount=10,
            tax_amount=2, gross_amount=12, state=SalesCreditNote.State.WAITING,
        )  # fmt: skip
        return invoice, note

    # the Irish one first: the UK sales invoice's id is then not the Irish ledger invoice's
    ie_sale, ie_note = sale(group["ie"], "IE-S1")
    uk_sale, uk_note = sale(group["uk"], "UK-S1")
    client.force_login(alice)  # a clerk of the Irish company
    assert client.get(f"/sales/invoices/{uk_sale.pk}/").status_code == 404
    assert client.get(f"/sales/invoices/{ie_sale.pk}/").status_code == 200
    assert client.get(f"/sales/credit-notes/{uk_note.pk}/").status_code == 404
    assert client.get(f"/sales/credit-notes/{ie_note.pk}/").status_code == 200
    listed = client.get("/sales/credit-notes/").content.decode()
    assert "IE-S1-CN" in listed and "UK-S1-CN" not in listed
    client.force_login(bob)  # an approver of the Irish company
    assert client.post(f"/sales/invoices/{uk_sale.pk}/cancel").status_code == 404
    assert SalesInvoice.objects.get(pk=uk_sale.pk).state == SalesInvoice.State.FAILED
