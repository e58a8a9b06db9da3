"""A matching run's proposal rows are the audit record of each proposal.

The run writes one audit entry (who ran it); each proposal row records the rule, confidence,
explanation, evidence and amounts, and the database refuses any change to them but the state
(migration payments 0009). These tests run against whichever database the pass uses: the
SQLite pass and the PostgreSQL pass (DATABASE_URL) each prove their own triggers.
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import DatabaseError, transaction
from django.urls import reverse

from payments.models import MatchProposal, MatchRule
from payments.services.matching_runs import matching_run
from payments.views import runs
from staff.models import AuditEntry
from tests.test_plans_factories import make_customer, make_invoice, make_payment, setup_books

pytestmark = pytest.mark.django_db

REFUSED = "only their state may change"


@pytest.fixture
def run(entity, alice):
    """A real run by alice over three payments that each name one invoice (auto-approve off)."""
    setup_books(entity)
    acme = make_customer(entity)
    invoices = [
        make_invoice(acme, amount, number=f"INV-00{1041 + i}")
        for i, amount in enumerate(("120.00", "75.50", "310.25"))
    ]
    payments = [
        make_payment(entity, str(inv.outstanding_amount), text=f"Payment {inv.invoice_number}")
        for inv in invoices
    ]
    report = matching_run(dry_run=False, actor=alice, auto_approve=False)
    assert report.proposed == 3
    return {"report": report, "invoices": invoices, "payments": payments}


def _first(run) -> MatchProposal:
    return MatchProposal.objects.filter(run_id=run["report"].run_id).order_by("id").first()


# A new value for every column but `state`: a column added later without a trigger update
# fails test_every_column_but_state_is_guarded until it is listed (and guarded) here.
NEW_VALUES = {
    "id": lambda p, run: p.pk + 10_000,
    "payment": lambda p, run: next(x for x in run["payments"] if x.pk != p.payment_id),
    "rule": lambda p, run: MatchRule.objects.exclude(pk=p.rule_id).first(),
    "rule_kind": lambda p, run: MatchRule.Kind.TOLERANCE,
    "rank": lambda p, run: p.rank + 1,
    "confidence": lambda p, run: Decimal("0.100"),
    "explanation": lambda p, run: "edited after the run",
    "evidence": lambda p, run: {"tokens": []},
    "lines": lambda p, run: [{"invoice_id": run["invoices"][2].pk, "amount": "1.00"}],
    "on_account_amount": lambda p, run: Decimal("5.00"),
    "run_id": lambda p, run: "forged",
    "created_at": lambda p, run: p.created_at - timedelta(days=1),
}


def test_every_column_but_state_is_guarded():
    columns = {f.name for f in MatchProposal._meta.concrete_fields} - {"state"}
    assert columns == set(NEW_VALUES)


@pytest.mark.parametrize("field", sorted(NEW_VALUES))
def test_a_queryset_update_of_any_content_column_is_refused(run, field):
    proposal = _first(run)
    value = NEW_VALUES[field](proposal, run)
    with pytest.raises(DatabaseError, match=REFUSED), transaction.atomic():
        MatchProposal.objects.filter(pk=proposal.pk).update(**{field: value})
    assert MatchProposal.objects.filter(pk=proposal.pk).values(field).get()[field] == getattr(
        proposal, field if field not in ("payment", "rule") else f"{field}_id"
    )


@pytest.mark.parametrize("field", ["lines", "explanation", "confidence"])
def test_saving_an_edited_proposal_is_refused(run, field):
    proposal = _first(run)
    setattr(proposal, field, NEW_VALUES[field](proposal, run))
    with pytest.raises(DatabaseError, match=REFUSED), transaction.atomic():
        proposal.save()
    with pytest.raises(DatabaseError, match=REFUSED), transaction.atomic():
        proposal.save(update_fields=[field])


def test_the_state_may_change(run):
    first, second = MatchProposal.objects.filter(run_id=run["report"].run_id).order_by("id")[:2]
    lines_before = first.lines

    MatchProposal.objects.filter(pk=first.pk).update(state=MatchProposal.State.REJECTED)
    # a full save() rewrites every column with its unchanged value: allowed, although the
    # run stored its JSON as compact text and Django writes it spaced
    second.state = MatchProposal.State.SUPERSEDED
    second.save()

    first.refresh_from_db()
    second.refresh_from_db()
    assert first.state == MatchProposal.State.REJECTED and first.lines == lines_before
    assert second.state == MatchProposal.State.SUPERSEDED


def test_proposals_can_still_be_deleted(run):
    # test flushes and the benchmark's reset delete rows: the triggers guard updates only
    deleted, _ = MatchProposal.objects.filter(run_id=run["report"].run_id).delete()
    assert deleted == 3


def test_the_run_audit_entry_links_to_its_proposals(client, alice, run):
    run_id = run["report"].run_id
    entry = AuditEntry.objects.get(action="matching.run", object_id=run_id)
    assert entry.actor == alice
    client.force_login(alice)
    url = reverse("payments:run_proposals", args=[run_id])

    audit = client.get(reverse("audit"))
    assert url in audit.content.decode()

    page = client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Run by <strong>alice</strong>" in html
    assert html.count('data-testid="run-proposal"') == 3
    for invoice in run["invoices"]:
        assert f"{invoice.invoice_number}: {invoice.outstanding_amount:,} GBP" in html
    assert MatchRule.Kind.REFERENCE.label in html


def test_the_run_page_pages_with_a_keyset(client, alice, run, monkeypatch):
    monkeypatch.setattr(runs, "PAGE_SIZE", 2)
    client.force_login(alice)
    url = reverse("payments:run_proposals", args=[run["report"].run_id])

    first = client.get(url)
    cursor = first.context["page"].next_cursor
    assert cursor is not None
    second = client.get(url, {"after": cursor}, headers={"HX-Request": "true"})

    seen = [p.pk for p in first.context["page"].items + second.context["page"].items]
    expected = MatchProposal.objects.filter(run_id=run["report"].run_id).order_by("-id")
    assert seen == list(expected.values_list("pk", flat=True))
    assert second.context["page"].next_cursor is None
    assert "<h1>" not in second.content.decode()  # htmx gets the rows only


def test_a_forged_cursor_is_a_clear_400(client, alice, run):
    client.force_login(alice)
    url = reverse("payments:run_proposals", args=[run["report"].run_id])
    assert client.get(url, {"after": "not-a-cursor"}).status_code == 400


def test_an_unknown_run_is_a_404(client, alice):
    client.force_login(alice)
    assert client.get(reverse("payments:run_proposals", args=["nosuchrun"])).status_code == 404


def test_who_may_see_a_run(client, mallory, run):
    url = reverse("payments:run_proposals", args=[run["report"].run_id])
    anonymous = client.get(url)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith(reverse("login"))
    client.force_login(mallory)
    assert client.get(url).status_code == 403


def test_the_payment_history_shows_its_proposals_and_who_ran_them(client, alice, run):
    client.force_login(alice)
    payment = run["payments"][0]
    html = client.get(reverse("payments:detail", args=[payment.pk])).content.decode()
    history = html[html.index('id="h-history"') :]
    assert "alice · matching.proposal" in history
    assert reverse("payments:run_proposals", args=[run["report"].run_id]) in history


def test_the_admin_shows_proposals_read_only(client, carol, run):
    client.force_login(carol)
    proposal = _first(run)
    url = reverse("admin:payments_matchproposal_change", args=[proposal.pk])
    assert client.get(url).status_code == 200
    response = client.post(url, {"explanation": "edited in the admin", "state": "rejected"})
    assert response.status_code == 403
    assert client.get(reverse("admin:payments_matchproposal_add")).status_code == 403
    proposal.refresh_from_db()
    assert proposal.explanation != "edited in the admin" and proposal.state == "open"


def test_a_run_without_a_person_shows_the_system(client, alice, entity):
    setup_books(entity)
    acme = make_customer(entity)
    invoice = make_invoice(acme, "42.00", number="INV-004242")
    make_payment(entity, "42.00", text="Payment INV-004242")
    report = matching_run(dry_run=False, auto_approve=False)
    client.force_login(alice)
    html = client.get(reverse("payments:run_proposals", args=[report.run_id])).content.decode()
    assert "Run by <strong>the system</strong>" in html
    assert f"{invoice.invoice_number}: 42.00 GBP" in html
