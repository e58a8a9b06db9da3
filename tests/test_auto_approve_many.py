"""Set-based auto-approval (payments/services/auto_approve.py) against the one-by-one path.

The equivalence tests build one scenario, run plan_auto_approve per proposal (as matching_run
does) inside a savepoint, snapshot every row it touched, roll back, run plans_auto_approve_many
over the same proposals and compare: plans, lines, payments, proposals, outbox rows, audit
entries and refusals. Plan ids differ between the two runs, so rows are named by payment.
"""

import re
import threading
from decimal import Decimal

import pytest
from django.db import connection, connections, transaction

from ledger.models import Entity, OutboxCommand
from ledger.outbox import services as outbox_services
from ledger.outbox.services import NewCommand, outbox_enqueue, outbox_enqueue_many
from payments.models import AllocationPlan, AllocationPlanLine, MatchProposal, Payment
from payments.services import auto_approve
from payments.services.auto_approve import plans_auto_approve_many
from payments.services.plans import PlanRefused, plan_auto_approve, plan_propose
from staff.models import AuditEntry
from tests.payloads import allocate_payload, receipt_payload
from tests.test_plans_factories import D, make_customer, make_invoice, make_payment, setup_books

State = AllocationPlan.State


def propose(payment, lines, *, rank=1, rule_kind="reference"):
    return MatchProposal.objects.create(
        payment=payment,
        rule_kind=rule_kind,
        rank=rank,
        confidence=Decimal("0.990"),
        explanation="test proposal",
        lines=[
            {"invoice_id": invoice.pk, "amount": amount, **extra}
            for invoice, amount, extra in lines
        ],
    )


def build_scenario(entity, alice) -> dict[str, int]:
    """Proposal ids by name, in run order: successes of every shape, refusals of every kind."""
    setup_books(entity)
    acme = make_customer(entity, code="ACME")
    beta = make_customer(entity, code="BETA")
    ids = {}

    def add(name, payment, lines, **kw):
        ids[name] = propose(payment, lines, **kw).pk

    # exact reference, customer unknown: approved, the payment gets the plan's customer
    shared = make_invoice(acme, "120.00")
    first = make_payment(entity, "120.00")
    add("exact", first, [(shared, "120.00", {})])
    propose(first, [(make_invoice(acme, "120.00"), "120.00", {})], rank=2)  # superseded
    # a second payment for the same invoice: nothing left open -> refused
    add("nothing_open", make_payment(entity, "120.00"), [(shared, "120.00", {})])
    # two invoices, customer known; overpayment with the rest on account
    a, b = make_invoice(beta, "40.00"), make_invoice(beta, "25.50")
    add(
        "two_invoices",
        make_payment(entity, "65.50", customer=beta),
        [(b, "25.50", {}), (a, "40.00", {})],
    )
    add("overpaid", make_payment(entity, "90.00"), [(make_invoice(acme, "70.00"), "70.00", {})])
    # above the threshold (1000.00), a discount, a write-off: all wait for a checker
    add(
        "above_threshold",
        make_payment(entity, "1500.00"),
        [(make_invoice(acme, "1500.00"), "1500.00", {})],
    )
    add(
        "discount",
        make_payment(entity, "99.40"),
        [(make_invoice(acme, "100.00"), "99.40", {"discount_amount": "0.60"})],
        rule_kind="tolerance",
    )
    woff = {"write_off_amount": "0.50", "write_off_gl_account_code": "7900"}
    add("write_off", make_payment(entity, "49.50"), [(make_invoice(acme, "50.00"), "49.50", woff)])
    # a payment that got a live plan from a clerk meanwhile
    planned = make_payment(entity, "10.00", customer=acme)
    other = make_invoice(acme, "10.00")
    plan_propose(payment=planned, lines=[{"invoice_id": other.pk, "amount": "10.00"}], actor=alice)
    add("planned_meanwhile", planned, [(other, "10.00", {})])
    # currency mismatch
    add(
        "currency",
        make_payment(entity, "30.00"),
        [(make_invoice(acme, "30.00", currency="EUR"), "30.00", {})],
    )
    # an invoice not posted in AIQ yet (refused when handing to the outbox)
    unposted = make_invoice(acme, "15.00")
    unposted.aiq_transaction_id = None
    unposted.save(update_fields=["aiq_transaction_id"])
    add("unposted", make_payment(entity, "15.00"), [(unposted, "15.00", {})])
    # a write-off to a GL account the books do not have
    unknown_gl = {"write_off_amount": "1.00", "write_off_gl_account_code": "9999"}
    add(
        "unknown_gl",
        make_payment(entity, "19.00"),
        [(make_invoice(acme, "20.00"), "19.00", unknown_gl)],
    )
    # a malformed proposal line
    bad = make_payment(entity, "5.00")
    ids["bad_line"] = MatchProposal.objects.create(
        payment=bad,
        rule_kind="reference",
        confidence=Decimal("0.5"),
        explanation="bad",
        lines=[{"invoice_id": "x"}],
    ).pk
    # the same payment twice in one run: the second finds the first's plan
    twice = make_payment(entity, "12.00")
    add("twice_first", twice, [(make_invoice(acme, "12.00"), "12.00", {})])
    add("twice_second", twice, [(make_invoice(acme, "12.00"), "12.00", {})], rank=2)
    # a receipt already queued for the payment (an earlier, voided plan): reused, not doubled
    again = make_payment(entity, "33.00")
    outbox_enqueue(
        entity=entity,
        kind="post_receipt",
        external_reference=f"RCPT-{again.pk}",
        payload=receipt_payload(description="old"),
    )
    add("receipt_queued", again, [(make_invoice(acme, "33.00"), "33.00", {})])
    # another company without a bank account to receive into
    bare = Entity.objects.create(
        name="Bare Ltd", company_id="bare", base_currency="GBP", credentials_key="BARE"
    )
    bare_customer = make_customer(bare, code="BARECO")
    add("no_bank", make_payment(bare, "8.00"), [(make_invoice(bare_customer, "8.00"), "8.00", {})])
    return ids


def one_by_one(proposal_ids) -> list[tuple]:
    """matching_run's loop before the set-based path."""
    refused = []
    proposals = MatchProposal.objects.in_bulk(proposal_ids)
    for proposal in (proposals[pk] for pk in proposal_ids):
        try:
            plan_auto_approve(payment=Payment(pk=proposal.payment_id), proposal=proposal)
        except PlanRefused as error:
            refused.append((proposal.payment_id, "; ".join(error.messages)))
    return refused


TIMES = {"created_at", "updated_at", "approved_at", "at", "next_attempt_at"}


def columns(row, *skip) -> dict:
    """Every stored column but the id; a timestamp only as set or not (the runs differ)."""
    values = {}
    for f in type(row)._meta.concrete_fields:
        if f.primary_key or f.attname in skip:
            continue
        value = getattr(row, f.attname)
        values[f.attname] = (value is not None) if f.attname in TIMES else value
    return values


def snapshot() -> dict:
    """Every row the auto-approval touches, with plan ids replaced by the payment's name."""
    plan_name = {
        plan.pk: f"plan-of-{plan.payment.external_id}"
        for plan in AllocationPlan.objects.select_related("payment")
    }
    command_name = dict(OutboxCommand.objects.values_list("pk", "external_reference"))

    def named(text):
        return re.sub(
            r"(ALLOC-WOFF-|ALLOC-|WOFF-)(\d+)-",
            lambda m: f"{m.group(1)}{plan_name[int(m.group(2))]}-",
            text,
        )

    def plan(p):
        lines = [columns(line, "plan_id") for line in p.lines.order_by("id")]
        return {**columns(p), "name": plan_name[p.pk], "lines": lines}

    def command(c):
        values = columns(c, "external_reference", "depends_on_id", "origin_id")
        values["ref"] = named(c.external_reference)
        values["depends_on"] = named(command_name.get(c.depends_on_id, ""))
        if c.origin_type == "allocation_plan":
            values["origin"] = plan_name[c.origin_id]
        return values

    def audit(e):
        values = columns(e, "object_id", "after")
        values["object"] = plan_name.get(int(e.object_id), e.object_id)
        values["after"] = named(repr(e.after))
        return values

    entries = AuditEntry.objects.filter(object_type="payments.allocationplan")
    return {
        "plans": sorted(map(plan, AllocationPlan.objects.all()), key=repr),
        "outbox": sorted(map(command, OutboxCommand.objects.all()), key=repr),
        "audit": sorted(map(audit, entries), key=repr),
        "payments": sorted(
            (columns(p) for p in Payment.objects.all()), key=lambda v: v["external_id"]
        ),
        "proposals": sorted(MatchProposal.objects.values_list("pk", "state")),
    }


class _Rollback(Exception):
    pass


def outcome_of(run) -> tuple[dict, object]:
    """Run, snapshot, undo: both paths start from the very same rows."""
    result = {}
    try:
        with transaction.atomic():
            result["returned"] = run()
            result["snapshot"] = snapshot()
            raise _Rollback
    except _Rollback:
        pass
    return result["snapshot"], result["returned"]


# --- equivalence --------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("chunk", [3, auto_approve.CHUNK])
def test_the_same_end_state_as_one_by_one(entity, alice, monkeypatch, chunk):
    monkeypatch.setattr(auto_approve, "CHUNK", chunk)  # 3: refusals and successes span chunks
    ids = list(build_scenario(entity, alice).values())

    expected, refused_one_by_one = outcome_of(lambda: one_by_one(ids))
    got, report = outcome_of(lambda: plans_auto_approve_many(proposal_ids=ids))

    for key in expected:
        assert got[key] == expected[key], key
    assert [(r.payment_id, r.reason) for r in report.refused] == refused_one_by_one
    # the scenario really takes every path (else the comparison proves little)
    assert (len(report.approved), len(report.awaiting_approval), len(report.refused)) == (5, 3, 8)
    assert len(expected["outbox"]) == 1 + 4 + 6  # queued receipt, 4 new receipts, 6 allocs


# --- what the set-based path does, stated on its own ----------------------------------------


@pytest.mark.django_db
def test_each_refusal_is_reported_and_the_rest_of_the_chunk_goes_ahead(entity, alice):
    ids = build_scenario(entity, alice)

    report = plans_auto_approve_many(proposal_ids=list(ids.values()))

    reasons = {name: None for name in ids}
    name_of = {pk: name for name, pk in ids.items()}
    for refusal in report.refused:
        reasons[name_of[refusal.proposal_id]] = refusal.reason
    assert re.search(
        r"has 0\.00 GBP open .*120\.00 GBP held by other plans", reasons["nothing_open"]
    )
    assert "already has a plan" in reasons["planned_meanwhile"]
    assert "currencies must match" in reasons["currency"]
    assert "not posted in AIQ yet" in reasons["unposted"]
    assert "GL account 9999 is not known" in reasons["unknown_gl"]
    assert "Not a valid plan line" in reasons["bad_line"]
    assert "already has a plan" in reasons["twice_second"]
    assert "no default bank account" in reasons["no_bank"]
    succeeded = {name for name, reason in reasons.items() if reason is None}
    assert succeeded == {
        "exact",
        "two_invoices",
        "overpaid",
        "above_threshold",
        "discount",
        "write_off",
        "twice_first",
        "receipt_queued",
    }
    states = {
        name_of[p.proposal_id]: p.state
        for p in AllocationPlan.objects.filter(proposal_id__in=ids.values())
    }
    assert states == {
        **{n: State.SENT for n in ("exact", "two_invoices", "overpaid", "twice_first")},
        "receipt_queued": State.SENT,
        **{n: State.AWAITING_APPROVAL for n in ("above_threshold", "discount", "write_off")},
    }
    # the refused left no trace: no plan, proposal still open, payment as it was
    for name in ("nothing_open", "currency", "unposted", "unknown_gl", "bad_line", "no_bank"):
        proposal = MatchProposal.objects.get(pk=ids[name])
        assert proposal.state == MatchProposal.State.OPEN, name
        assert proposal.payment.match_state == Payment.MatchState.UNMATCHED, name
    assert MatchProposal.objects.get(pk=ids["twice_second"]).state == "superseded"
    exact = MatchProposal.objects.get(pk=ids["exact"])
    assert exact.state == "accepted"
    assert set(exact.payment.proposals.values_list("state", flat=True)) == {
        "accepted",
        "superseded",
    }
    assert exact.payment.match_state == Payment.MatchState.APPROVED
    assert exact.payment.customer.code == "ACME"  # filled in from the plan
    plan = exact.plans.get()
    commands = OutboxCommand.objects.filter(origin_type="allocation_plan", origin_id=plan.pk)
    invoice_id = exact.lines[0]["invoice_id"]
    assert sorted(commands.values_list("kind", "external_reference")) == [
        ("allocate", f"ALLOC-{plan.pk}-{invoice_id}"),
        ("post_receipt", f"RCPT-{exact.payment_id}"),
    ]
    allocate = commands.get(kind="allocate")
    assert allocate.depends_on.kind == "post_receipt" and allocate.payload["amount"] == "120.00"
    # the queued receipt was reused: the allocation depends on it, no second receipt
    reused = MatchProposal.objects.get(pk=ids["receipt_queued"])
    receipts = OutboxCommand.objects.filter(external_reference=f"RCPT-{reused.payment_id}")
    assert receipts.count() == 1 and receipts.get().payload == receipt_payload(description="old")
    assert receipts.get().dependents.get().kind == "allocate"
    # audit: propose + approve (or submit) per plan, nothing for the refused
    actions = sorted(
        AuditEntry.objects.filter(action__startswith="plan.", actor=None).values_list(
            "action", flat=True
        )
    )
    assert actions == ["plan.approve"] * 5 + ["plan.propose"] * 8 + ["plan.submit"] * 3


@pytest.mark.django_db
def test_above_the_threshold_the_plan_waits_for_an_approver(entity, settings):
    settings.APPROVAL_THRESHOLD = D("100.00")
    setup_books(entity)
    acme = make_customer(entity)
    small, large = make_invoice(acme, "100.00"), make_invoice(acme, "100.01")
    small_payment, large_payment = make_payment(entity, "100.00"), make_payment(entity, "100.01")
    ids = [
        propose(small_payment, [(small, "100.00", {})]).pk,
        propose(large_payment, [(large, "100.01", {})]).pk,
    ]

    report = plans_auto_approve_many(proposal_ids=ids)

    waiting = AllocationPlan.objects.get(pk__in=report.awaiting_approval)
    assert waiting.payment_id == large_payment.pk and waiting.needs_approval
    assert waiting.approved_at is None and waiting.maker is None
    large_payment.refresh_from_db()
    assert large_payment.match_state == Payment.MatchState.AWAITING_APPROVAL
    assert large_payment.customer is None  # only an approval names the customer
    assert not OutboxCommand.objects.filter(origin_id=waiting.pk).exists()
    submit = AuditEntry.objects.get(action="plan.submit", object_id=str(waiting.pk))
    assert "above 100.00" in submit.summary
    approved = AllocationPlan.objects.get(pk__in=report.approved)
    assert approved.payment_id == small_payment.pk and approved.state == State.SENT


@pytest.mark.django_db
def test_a_plan_made_for_the_same_invoice_after_matching_is_not_over_allocated(entity, alice):
    setup_books(entity)
    acme = make_customer(entity)
    invoice = make_invoice(acme, "100.00")
    matched = make_payment(entity, "60.00")
    proposal = propose(matched, [(invoice, "60.00", {})])
    # between the matching run and the approval a clerk allocates 60.00 of the same invoice
    other = make_payment(entity, "60.00", customer=acme)
    plan_propose(payment=other, lines=[{"invoice_id": invoice.pk, "amount": "60.00"}], actor=alice)

    report = plans_auto_approve_many(proposal_ids=[proposal.pk])

    assert report.plans == 0 and "60.00 GBP held by other plans" in report.refused[0].reason
    held = sum(AllocationPlanLine.objects.filter(invoice=invoice).values_list("amount", flat=True))
    assert held == D("60.00")


# --- bulk enqueue -------------------------------------------------------------------------


@pytest.mark.django_db
def test_bulk_enqueue_keeps_outbox_enqueue_semantics(entity, django_capture_on_commit_callbacks):
    existing = OutboxCommand.objects.create(
        entity=entity, kind="post_receipt", external_reference="RCPT-1", payload=receipt_payload()
    )
    receipt = NewCommand(entity, "post_receipt", receipt_payload(description="2"), "RCPT-2")
    commands = [
        NewCommand(
            entity, "post_receipt", receipt_payload(description="1"), "RCPT-1"
        ),  # already queued
        NewCommand(
            entity,
            "allocate",
            allocate_payload(amount="3"),
            "ALLOC-2",
            depends_on=receipt,
            origin_id=7,
        ),
        receipt,  # after its dependent in the list: inserted first anyway
        NewCommand(
            entity, "allocate", allocate_payload(amount="4"), "ALLOC-1", depends_on=existing
        ),
        NewCommand(
            entity, "post_receipt", receipt_payload(description="5"), "RCPT-2"
        ),  # given twice: the first wins
    ]
    with django_capture_on_commit_callbacks(execute=False) as hooks:
        with transaction.atomic():
            ids = outbox_enqueue_many(commands)
    rows = OutboxCommand.objects.in_bulk(ids)
    assert (
        ids[0] == existing.pk
        and ids[2] == ids[4]
        and rows[ids[2]].payload == receipt_payload(description="2")
    )
    assert rows[ids[1]].depends_on_id == ids[2] and rows[ids[3]].depends_on_id == existing.pk
    assert OutboxCommand.objects.count() == 4
    assert len(hooks) == 1 and sorted(hooks[0].command_ids) == sorted(ids[1:4])  # one wake
    # the rows are what outbox_enqueue stores: defaults and timestamps filled in
    one_by_one = outbox_enqueue(
        entity=entity,
        kind="allocate",
        payload=allocate_payload(amount="3"),
        external_reference="ALLOC-3",
        depends_on=rows[ids[2]],
        origin_id=7,
    )
    expected = columns(one_by_one, "external_reference")
    assert columns(rows[ids[1]], "external_reference") == expected


@pytest.mark.django_db
def test_bulk_enqueue_survives_a_reference_queued_concurrently(entity, monkeypatch):
    """Another transaction commits one of the references between our look-up and insert: the
    unique constraint refuses the multi-row insert and that level goes through outbox_enqueue."""
    look_up = outbox_services._already_queued

    def racing(commands):
        found = look_up(commands)
        outbox_enqueue(
            entity=entity, kind="post_receipt", external_reference="R-1", payload=receipt_payload()
        )
        return found

    monkeypatch.setattr(outbox_services, "_already_queued", racing)
    receipt = NewCommand(entity, "post_receipt", receipt_payload(description="mine"), "R-1")
    with transaction.atomic():
        ids = outbox_enqueue_many(
            [receipt, NewCommand(entity, "allocate", allocate_payload(), "A-1", depends_on=receipt)]
        )
    rows = OutboxCommand.objects.in_bulk(ids)
    assert rows[ids[0]].payload == receipt_payload() and rows[ids[1]].depends_on_id == ids[0]
    assert OutboxCommand.objects.count() == 2


@pytest.mark.django_db
def test_bulk_enqueue_refuses_a_dependency_it_was_not_given(entity):
    elsewhere = NewCommand(entity, "post_receipt", receipt_payload(), "R-9")
    with pytest.raises(ValueError, match="A-9 depends on a command"), transaction.atomic():
        outbox_enqueue_many(
            [NewCommand(entity, "allocate", allocate_payload(), "A-9", depends_on=elsewhere)]
        )


# --- a real race: the set-based approval against clerks, committed transactions -------------

THREADS = 6


def check_race_for_one_invoice(entity, alice):
    """One bulk approval (the contested invoice plus five uncontested ones) and five clerks
    all want 60.00 of the same 100.00 invoice at the same moment: exactly one gets it."""
    setup_books(entity)
    acme = make_customer(entity)
    contested = make_invoice(acme, "100.00")
    bulk_ids = [propose(make_payment(entity, "60.00"), [(contested, "60.00", {})]).pk]
    for _ in range(5):
        invoice = make_invoice(acme, "25.00")
        bulk_ids.append(propose(make_payment(entity, "25.00"), [(invoice, "25.00", {})]).pk)
    clerk_payments = [make_payment(entity, "60.00", customer=acme) for _ in range(THREADS - 1)]
    barrier = threading.Barrier(THREADS)
    results, errors = {}, []

    def work(i):
        try:
            barrier.wait()
            if i == 0:
                results["bulk"] = plans_auto_approve_many(proposal_ids=bulk_ids)
            else:
                lines = [{"invoice_id": contested.pk, "amount": "60.00"}]
                try:
                    plan_propose(payment=clerk_payments[i - 1], lines=lines, actor=alice)
                    results[i] = "ok"
                except PlanRefused:
                    results[i] = "refused"
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(repr(error))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    bulk = results["bulk"]
    clerks_ok = sum(1 for i in range(1, THREADS) if results[i] == "ok")
    bulk_got_it = bulk_ids[0] not in {r.proposal_id for r in bulk.refused}
    assert clerks_ok + bulk_got_it == 1
    assert bulk.plans == 5 + bulk_got_it  # the uncontested ones never suffer
    lines = AllocationPlanLine.objects.filter(invoice=contested)
    assert lines.count() == 1 and lines.get().amount == D("60.00")


def test_sqlite_race_between_bulk_approval_and_clerks(audit_flushable, entity, alice):
    if connection.vendor != "sqlite":
        pytest.skip("this run is on PostgreSQL; see the postgres twin")
    check_race_for_one_invoice(entity, alice)


def test_postgres_race_between_bulk_approval_and_clerks(
    requires_postgres, audit_flushable, entity, alice
):
    check_race_for_one_invoice(entity, alice)
