"""A matching run split into shares (payments/services/matching_shares.py) gives exactly the
one-process run's proposals; how the payments are split; how the share processes report back.

Children open their own database connections and see committed rows only, so the tests of the
split path are transactional. They run on SQLite and, in the pass with DATABASE_URL set, on
PostgreSQL (nothing here is specific to either).
"""

import os
import re
import time

import hypothesis
import pytest
from django.db import transaction
from hypothesis import given
from hypothesis import strategies as st

from payments.matching.engine import resolve_customer
from payments.matching.index import (
    PaymentInput,
    RunInputs,
    load_payments,
    load_run_inputs,
    payer_keys,
    payment_keys,
    reference_texts,
)
from payments.models import MatchProposal, MatchRule, Payment, SettlementTerms
from payments.services import matching_runs
from payments.services.matching_runs import matching_run
from payments.services.matching_shares import Share, ShareFailed, plan_shares, run_shares
from payments.services.plans import plan_propose
from tests.test_plans_factories import D, make_customer, make_invoice, make_payment, setup_books

Kind = MatchRule.Kind
PROPOSAL_COLUMNS = (
    "payment_id",
    "rule_id",
    "rule_kind",
    "rank",
    "confidence",
    "explanation",
    "evidence",
    "lines",
    "on_account_amount",
    "state",
)


def invoice(customer, amount, number, **fields):
    """An invoice with a number of its own: the scenario's references must name one invoice."""
    return make_invoice(customer, amount, number=number, **fields)


def build_scenario(entity, alice) -> dict:
    """Nine customers (ALPHA lowest id, JULIET highest), 38 open invoices, 31 payments in run
    order, each payment a case the split must keep as one process matches it. Returns the
    customers and the payments the test looks at by name."""
    setup_books(entity)
    names = ["ALPHA", "BRAVO", "CHARLIE", "DELTA", "ECHO", "FOXTROT", "GOLF", "HOTEL", "JULIET"]
    customers = {}
    for name in names:
        currency = "EUR" if name == "ECHO" else "GBP"  # ECHO's account is in euros
        email = "" if name in ("BRAVO", "GOLF") else f"ap@{name.lower()}.test"
        customers[name] = make_customer(entity, code=name, email=email, currency=currency)
    alpha, bravo, charlie, delta = (customers[n] for n in names[:4])
    echo, foxtrot, golf, hotel, juliet = (customers[n] for n in names[4:])

    a1 = invoice(alpha, "60.00", "SH-1101")
    invoice(alpha, "35.00", "SH-1102")
    invoice(alpha, "500.00", "SH-1103", external="PO-55123")
    invoice(alpha, "22.00", "SH-1104")
    b1 = invoice(bravo, "250.00", "INV-004321")
    b2 = invoice(bravo, "120.00", "SH-2001")
    b3 = invoice(bravo, "80.00", "SH-2002")
    c1 = invoice(charlie, "200.00", "SH-3001")
    invoice(charlie, "95.50", "SH-3002")
    invoice(charlie, "80.00", "SH-3003")
    for number, amount in enumerate(["110.00", "245.50", "99.99", "310.00", "87.25"], 4001):
        invoice(delta, amount, f"SH-{number}")
    invoice(echo, "300.00", "SH-5001")
    invoice(echo, "40.00", "SH-5002")
    f1 = invoice(foxtrot, "100.00", "SH-6001")
    f2 = invoice(foxtrot, "200.00", "SH-6002")
    invoice(foxtrot, "75.00", "SH-6003", currency="EUR")  # FOXTROT owes in two currencies
    g1 = invoice(golf, "100.00", "SH-7001")
    invoice(golf, "60.00", "PO-9043")
    invoice(golf, "15.00", "SH-7003")
    g4 = invoice(golf, "50.00", "SH-7004")
    SettlementTerms.objects.create(customer=golf, percent=D("2"), days=20000)
    invoice(hotel, "45.00", "SH-8001")
    invoice(hotel, "45.00", "SH-8002")
    invoice(hotel, "12.34", "SO-9043")
    invoice(hotel, "99.00", "SH-8004")
    j1 = invoice(juliet, "70.00", "SH-7070")
    invoice(juliet, "70.00", "SH-9002")
    invoice(juliet, "33.00", "SH-9003")
    invoice(juliet, "400.00", "SH-9004")
    for number in range(9101, 9104):  # open invoices nobody pays in this run
        invoice(golf, "10.00", f"SH-{number}")
        invoice(delta, "10.00", f"SH-{number + 10}")

    # a clerk's draft plan holds 50.00 of CHARLIE's 200.00 (its payment is not in the run)
    planned = make_payment(entity, "50.00", customer=charlie)
    plan_propose(payment=planned, lines=[{"invoice_id": c1.pk, "amount": "50.00"}], actor=alice)

    pay = {}
    pay["exact_reference"] = make_payment(entity, "120.00", refs=[b2.invoice_number])
    # names the invoice the payment before claimed: the payer's other invoices are looked at
    pay["names_claimed"] = make_payment(entity, "120.00", customer=bravo, refs=["SH 2001"])
    pay["email_exact"] = make_payment(entity, "95.50", email="AP@charlie.test")
    pay["held_invoice"] = make_payment(entity, "150.00", email="ap@charlie.test")
    pay["lump_sum"] = make_payment(entity, "455.49", email="ap@delta.test", text="statement")
    pay["under_tolerance"] = make_payment(entity, "199.40", refs=[f2.invoice_number])
    pay["overpaid"] = make_payment(entity, "150.00", refs=[g1.invoice_number])
    # ALPHA pays JULIET's invoice: one component from the lowest customer to the highest
    pay["cross_customer"] = make_payment(
        entity, "70.00", email="ap@alpha.test", refs=[j1.invoice_number]
    )
    pay["cross_claimed"] = make_payment(
        entity, "70.00", email="ap@juliet.test", refs=[j1.invoice_number]
    )
    pay["number_only"] = make_payment(entity, "250.00", text="Invoice 4321 thanks")
    pay["currency_mismatch"] = make_payment(
        entity, "100.00", currency="EUR", refs=[f1.invoice_number]
    )
    pay["payer_other_currency"] = make_payment(entity, "40.00", email="ap@echo.test")
    pay["second_currency"] = make_payment(entity, "75.00", currency="EUR", refs=["sh 6003"])
    pay["nobody"] = make_payment(entity, "42.00", text="thank you")
    pay["nothing_at_all"] = make_payment(entity, "13.00")
    pay["same_amount_first"] = make_payment(entity, "45.00", email="ap@hotel.test")
    pay["same_amount_second"] = make_payment(entity, "45.00", email="ap@hotel.test")
    pay["ambiguous_number"] = make_payment(entity, "60.00", text="paid 9043")
    pay["euro_payer"] = make_payment(entity, "300.00", currency="EUR", email="ap@echo.test")
    pay["alpha_lump_sum"] = make_payment(entity, "57.00", email="ap@alpha.test")
    pay["delta_exact"] = make_payment(entity, "310.00", email="ap@delta.test")
    pay["juliet_lump_sum"] = make_payment(entity, "433.00", email="ap@juliet.test")
    pay["by_customer"] = make_payment(entity, "15.00", customer=golf)
    pay["external_reference"] = make_payment(entity, "500.00", refs=["po 55123"])
    pay["part_paid"] = make_payment(entity, "30.00", refs=[b3.invoice_number])
    refunded = make_payment(entity, "50.00", customer=hotel)
    Payment.objects.filter(pk=refunded.pk).update(amount_refunded=D("50.00"))
    pay["refunded"] = refunded
    # JULIET pays ALPHA's invoice, which ALPHA's own payment after it then finds claimed
    pay["cross_back"] = make_payment(entity, "60.00", email="ap@juliet.test", refs=["SH-1101"])
    pay["alpha_after_claim"] = make_payment(entity, "60.00", email="ap@alpha.test")
    pay["foxtrot_exact"] = make_payment(entity, "100.00", customer=foxtrot)
    pay["number_only_other"] = make_payment(entity, "10.00", text="ref 9103 and 9113")
    pay["early_settlement"] = make_payment(entity, "49.00", refs=[g4.invoice_number])
    return {"customers": customers, "payments": pay, "invoices": {"a1": a1, "c1": c1, "b1": b1}}


def stored_outcome() -> tuple[list, dict]:
    """Every proposal as stored (run id and time left out) and every payment's match state
    and notes (why nothing was proposed; the run id left out)."""
    proposals = list(
        MatchProposal.objects.order_by("payment_id", "rank").values_list(*PROPOSAL_COLUMNS)
    )
    states = {
        pk: (state, notes.get("notes"))
        for pk, state, notes in Payment.objects.values_list("pk", "match_state", "match_notes")
    }
    return proposals, states


def counts(report) -> tuple:
    return (
        report.payments,
        report.proposed,
        report.needs_review,
        report.unmatched,
        report.proposal_rows,
        report.by_rule,
    )


def reset_run(payments) -> None:
    """Back to before the run (as bench/bench_matching.py reset() does): no proposals, and the
    run's payments unmatched again (the planned payment outside the run keeps its state)."""
    MatchProposal.objects.all().delete()
    Payment.objects.filter(pk__in=[payment.pk for payment in payments]).update(
        match_state=Payment.MatchState.UNMATCHED, match_notes={}
    )


def best(proposals, payment) -> dict:
    """The payment's rank-1 proposal, column by name."""
    row = next(row for row in proposals if row[0] == payment.pk and row[3] == 1)
    return dict(zip(PROPOSAL_COLUMNS, row, strict=True))


def kind(proposals, payment) -> str:
    return best(proposals, payment)["rule_kind"]


def line_amounts(proposal: dict) -> list[tuple]:
    return [(line["invoice_id"], line["amount"]) for line in proposal["lines"]]


def assert_scenario_does_what_it_says(proposals, states, scenario) -> None:
    """The one-process run: the cases are what their names say (else the comparison with the
    split runs would prove little)."""
    pay, customers, invoices = scenario["payments"], scenario["customers"], scenario["invoices"]
    proposed = [payment for payment in pay.values() if states[payment.pk][0] == "proposed"]
    assert {kind(proposals, payment) for payment in proposed} == set(Kind.values)
    assert kind(proposals, pay["exact_reference"]) == Kind.REFERENCE
    assert "nothing left open" in str(best(proposals, pay["names_claimed"])["evidence"]["notes"])
    assert kind(proposals, pay["lump_sum"]) == Kind.PAYER_COMBINATION
    assert kind(proposals, pay["under_tolerance"]) == Kind.TOLERANCE
    assert kind(proposals, pay["overpaid"]) == Kind.OVERPAYMENT
    # CHARLIE's 200.00 less the plan's 50.00
    assert line_amounts(best(proposals, pay["held_invoice"])) == [(invoices["c1"].pk, "150.00")]
    cross = best(proposals, pay["cross_customer"])
    assert cross["rule_kind"] == Kind.REFERENCE and cross["evidence"]["warning"]
    assert cross["evidence"]["customer"]["customer_id"] == customers["ALPHA"].pk
    claimed = best(proposals, pay["cross_claimed"])
    assert claimed["rule_kind"] == Kind.PAYER_EXACT
    assert "nothing left open" in str(claimed["evidence"]["notes"])
    digits = best(proposals, pay["number_only"])
    assert digits["evidence"]["tokens"][0]["field"] == "invoice_number_digits"
    # BRAVO's payment before part-paid INV-004321 (oldest first): 130.00 of it is left
    assert line_amounts(digits) == [(invoices["b1"].pk, "130.00")]
    assert kind(proposals, pay["second_currency"]) == Kind.REFERENCE
    assert best(proposals, pay["ambiguous_number"])["evidence"]["needs_review"] is True
    first, second = (best(proposals, pay[n]) for n in ("same_amount_first", "same_amount_second"))
    assert line_amounts(first) != line_amounts(second)
    after = best(proposals, pay["alpha_after_claim"])
    assert invoices["a1"].pk not in [invoice_id for invoice_id, _amount in line_amounts(after)]
    unmatched = (
        "currency_mismatch",
        "payer_other_currency",
        "nobody",
        "nothing_at_all",
        "refunded",
    )
    for name in unmatched:
        state, notes = states[pay[name].pk]
        assert state == Payment.MatchState.UNMATCHED and notes, name  # and it says why


def assert_cross_customer_spans_shares(scenario, workers: int) -> None:
    """ALPHA and JULIET sit in the first and the last share's ranges; their payments link them,
    so share 0 must load JULIET too (else this run would not test that at all)."""
    payments = load_payments()
    shares = plan_shares(payments, load_run_inputs(payments), workers)
    juliet = scenario["customers"]["JULIET"].pk
    low, high = shares[-1].customer_range
    assert low <= juliet and high is None
    assert juliet in shares[0].extra_customers


@pytest.mark.django_db(transaction=True)
def test_a_run_split_over_processes_stores_exactly_what_one_process_stores(
    entity, alice, audit_flushable, settings
):
    scenario = build_scenario(entity, alice)
    settings.MATCHING_SHARES_MIN_PAYMENTS = 0
    settings.MATCHING_WORKERS = 1
    report = matching_run(dry_run=False, auto_approve=False)
    assert report.share_timings == [] and "match" in report.timings
    one_process = stored_outcome()
    assert_scenario_does_what_it_says(*one_process, scenario)
    assert report.payments == 31

    for workers in (2, 3):
        reset_run(scenario["payments"].values())
        assert_cross_customer_spans_shares(scenario, workers)
        settings.MATCHING_WORKERS = workers
        to_match = load_payments()
        planned = plan_shares(to_match, load_run_inputs(to_match), workers)
        split = matching_run(dry_run=False, auto_approve=False)

        # every share with payments ran (a share left without any is skipped)
        assert len(split.share_timings) == len([s for s in planned if s.positions]) >= 2
        assert "shares" in split.timings and "match" not in split.timings
        assert sum(timing["payments"] for timing in split.share_timings) == 31
        proposals, states = stored_outcome()
        assert states == one_process[1]
        assert proposals == one_process[0]
        assert counts(split) == counts(report)


@hypothesis.settings(max_examples=200, deadline=None)
@given(st.data())
def test_every_customer_a_payment_touches_is_loaded_by_the_one_share_matching_it(data):
    """Random payers, references and key owners: a customer is touched by one share's payments
    only, and that share loads it; every payment is matched once, shares in run order."""
    keys = ["INV1001", "INV1002", "SO77", "PO12", "1043", "77", "X9", "#1001", "#77", "#12"]
    texts = ["INV-1001", "inv 1002", "SO/77", "PO 12", "1043", "77", "x9", "paid 1001"]
    texts += ["Invoice 12", "so 77 and po 12", "0077"]
    # at least one customer: a book without any is the last test
    customer_ids = data.draw(st.lists(st.integers(1, 80), min_size=1, max_size=14, unique=True))
    customer = st.sampled_from(customer_ids)
    emails = ["a@x.test", "b@x.test"]
    hits = [
        (invoice_id, data.draw(customer), field, key)
        for invoice_id, (key, field) in enumerate(
            data.draw(st.lists(st.sampled_from([(k, 2 if k[0] == "#" else 0) for k in keys]))),
            start=1,
        )
    ]
    inputs = RunInputs(
        customers={customer_id: (1, "GBP") for customer_id in customer_ids},
        by_email={(1, email): data.draw(customer | st.just(0)) for email in emails},
        payer_map={("stripe", "cus_1"): data.draw(customer)},
        hits=hits,
        held={},
    )
    payments = []
    for number in range(data.draw(st.integers(0, 25))):
        payment = PaymentInput(
            id=number,
            entity_id=1,
            source="stripe",
            currency="GBP",
            amount_milli=1000,
            customer_id=data.draw(st.none() | customer),
            payer_email=data.draw(st.sampled_from(["", *emails])),
            payer_reference=data.draw(st.sampled_from(["", "cus_1", "cus_2"])),
            description=data.draw(st.sampled_from(["", *texts])),
            references=data.draw(st.lists(st.sampled_from(texts), max_size=2)),
        )
        payment.texts = reference_texts(payment)
        payment.payer_keys = payer_keys(payment)
        payments.append(payment)
    workers = data.draw(st.integers(2, 4))

    shares = plan_shares(payments, inputs, workers)

    assert len(shares) == min(workers, len(customer_ids))  # a share per customer at most
    places = sorted(position for share in shares for position in share.positions)
    assert places == list(range(len(payments)))
    assert all(share.positions == sorted(share.positions) for share in shares)
    owners = {}
    for _invoice_id, owner, _field, key in hits:
        owners.setdefault(key, set()).add(owner)
    payers = inputs.payer_index()
    matched_by = {}  # customer id -> the share whose payments touch it
    for number, share in enumerate(shares):
        for position in share.positions:
            payment = payments[position]
            touched = set().union(*(owners.get(key, ()) for key in payment_keys(payment)))
            payer, _via = resolve_customer(payers, payment)
            if payer:
                touched.add(payer)
            for customer_id in touched:
                assert matched_by.setdefault(customer_id, number) == number, customer_id
                assert loads(share, customer_id), (customer_id, share)


def loads(share: Share, customer_id: int) -> bool:
    low, high = share.customer_range
    in_range = (low is None or low <= customer_id) and (high is None or customer_id < high)
    return in_range or customer_id in share.extra_customers


def test_shares_come_back_in_share_order_from_their_own_processes():
    ranges = [(None, 10), (10, 20), (20, None)]
    delays = {None: 0, 10: 0.3, 20: 0}  # share 1 finishes last

    def read(number):
        return ranges[number], os.getpid()

    def work(part, loaded):
        time.sleep(delays[part[0]])
        return part, loaded

    outputs = run_shares(3, read, lambda: ranges, work)

    assert [part for part, _loaded in outputs] == ranges
    assert [loaded[0] for _part, loaded in outputs] == ranges  # each read its own range
    pids = [loaded[1] for _part, loaded in outputs]
    assert os.getpid() not in pids and len(set(pids)) == 3  # each in a child of its own


def test_the_shares_read_while_the_run_is_still_planning_them():
    """The children's bulk reading does not wait for the plan: each read began before plan()
    returned here (the monotonic clock is the machine's, shared by the processes)."""
    plan_done = []

    def read(number):
        return time.monotonic()

    def plan():
        time.sleep(0.5)  # a plan that takes a while: the reads go on meanwhile
        plan_done.append(time.monotonic())
        return ["a", "b"]

    outputs = run_shares(2, read, plan, lambda part, read_at: (part, read_at))

    assert [part for part, _read_at in outputs] == ["a", "b"]
    assert all(read_at < plan_done[0] for _part, read_at in outputs)


def test_a_plan_that_fails_stops_the_children_and_is_raised_here():
    def plan():
        raise LookupError("the plan could not be made")

    with pytest.raises(LookupError, match="could not be made"):
        run_shares(2, lambda number: number, plan, lambda part, loaded: part)


def test_a_share_that_raises_fails_the_run_with_the_child_traceback():
    def work(part, loaded):
        if part == 10:
            raise LookupError("invoice 4711 vanished in share 1")
        return "fine"

    with pytest.raises(ShareFailed) as failed:
        run_shares(2, lambda number: None, lambda: [None, 10], work)

    message = str(failed.value)
    assert "Traceback (most recent call last)" in message
    assert "LookupError: invoice 4711 vanished in share 1" in message
    assert "in work" in message  # the frame that raised, in the child


def test_a_share_whose_read_fails_fails_the_run_with_the_child_traceback():
    def read(number):
        if number == 1:
            raise OSError("share 1's database went away")
        return number

    with pytest.raises(ShareFailed) as failed:
        run_shares(2, read, lambda: ["a", "b"], lambda part, loaded: part)

    assert "OSError: share 1's database went away" in str(failed.value)


def test_a_share_whose_process_dies_fails_the_run_naming_its_exit_status():
    def work(part, loaded):
        if part == 20:
            os._exit(3)
        return "fine"

    with pytest.raises(ShareFailed) as failed:
        run_shares(3, lambda number: None, lambda: [None, 10, 20], work)

    found = re.search(r"share 2 ended with status (\d+)", str(failed.value))
    assert found, str(failed.value)
    status = int(found.group(1))
    assert status == 3 or os.waitstatus_to_exitcode(status) == 3
    assert "share 1" not in str(failed.value)


@pytest.mark.django_db(transaction=True)
def test_a_run_whose_share_fails_is_matched_again_in_one_process(
    entity, alice, audit_flushable, settings, monkeypatch
):
    """A child that fails (here: its invoice read raises) leaves nothing written; the run
    matches everything again in its own process and stores what one process stores."""
    build_scenario(entity, alice)
    settings.MATCHING_SHARES_MIN_PAYMENTS = 0
    settings.MATCHING_WORKERS = 1
    matching_run(dry_run=False, auto_approve=False)
    one_process = stored_outcome()
    reset_run(Payment.objects.filter(pk__in=[row[0] for row in one_process[0]]))

    parent = os.getpid()
    read_open_items = matching_runs.read_open_items

    def fails_in_a_child(*args, **kwargs):
        if os.getpid() != parent:
            raise RuntimeError("the share's database went away")
        return read_open_items(*args, **kwargs)

    monkeypatch.setattr(matching_runs, "read_open_items", fails_in_a_child)
    settings.MATCHING_WORKERS = 2
    report = matching_run(dry_run=False, auto_approve=False)

    assert report.share_timings == [] and "match" in report.timings
    assert stored_outcome() == one_process


@pytest.mark.django_db(transaction=True)
def test_a_run_inside_a_transaction_matches_in_one_process(entity, audit_flushable, settings):
    """Children could not see rows this transaction has not committed: the run stays here."""
    settings.MATCHING_WORKERS = 2
    settings.MATCHING_SHARES_MIN_PAYMENTS = 0
    with transaction.atomic():
        setup_books(entity)
        low = make_customer(entity, code="LOW", email="ap@low.test")
        high = make_customer(entity, code="HIGH")
        low_invoice = make_invoice(low, "80.00", number="SH-1")
        high_invoice = make_invoice(high, "120.00", number="SH-2")
        by_email = make_payment(entity, "80.00", email="ap@low.test")
        by_reference = make_payment(entity, "120.00", refs=["SH-2"])

        report = matching_run(dry_run=False, auto_approve=False)

        assert report.share_timings == [] and "shares" not in report.timings
        written = {
            proposal.payment_id: (proposal.rule_kind, proposal.lines[0]["invoice_id"])
            for proposal in MatchProposal.objects.filter(rank=1)
        }
        assert written == {
            by_email.pk: (Kind.PAYER_EXACT, low_invoice.pk),
            by_reference.pk: (Kind.REFERENCE, high_invoice.pk),
        }


@pytest.mark.django_db(transaction=True)
def test_a_split_run_over_a_book_without_customers_leaves_its_payments_unmatched(
    entity, audit_flushable, settings
):
    """Payments imported before the first customer sync: nothing to match, but the run works."""
    settings.MATCHING_WORKERS = 2
    settings.MATCHING_SHARES_MIN_PAYMENTS = 0
    payments = [make_payment(entity, "10.00", refs=["INV-1"]), make_payment(entity, "20.00")]

    report = matching_run(dry_run=False, auto_approve=False)

    assert report.unmatched == 2 and not MatchProposal.objects.exists()
    assert {payment.pk for payment in payments} == set(
        Payment.objects.filter(match_state=Payment.MatchState.UNMATCHED).values_list(
            "pk", flat=True
        )
    )
