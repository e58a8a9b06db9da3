"""Matching runs that write take turns (payments/services/matching_lease.py): two at once would
each propose for the same unmatched payments, beside the plans the first one auto-approved."""

import threading
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from payments.models import MatchingLease, MatchProposal, Payment
from payments.services.auto_match import MAX_PASSES, auto_match_changed
from payments.services.matching_lease import (
    LEASE_ROW,
    MatchingRunBusy,
    matching_lease_give_back,
    matching_lease_take,
)
from payments.services.matching_runs import matching_run
from staff.models import AuditEntry
from tests.test_plans_factories import make_customer, make_invoice, make_payment


@pytest.fixture
def unmatched_payment(entity):
    invoice = make_invoice(make_customer(entity), "100.00", number="INV-1043")
    return make_payment(entity, "100.00", refs=[invoice.invoice_number])


def _held_by_another_run(until):
    MatchingLease.objects.update_or_create(
        pk=LEASE_ROW, defaults={"holder": "otherrun", "until": until}
    )


@pytest.mark.django_db
def test_a_run_is_refused_while_another_holds_the_lease_and_writes_nothing(unmatched_payment):
    _held_by_another_run(timezone.now() + timedelta(minutes=5))
    with pytest.raises(MatchingRunBusy, match="otherrun"):
        matching_run(dry_run=False)
    assert not MatchProposal.objects.exists()
    assert not AuditEntry.objects.filter(action="matching.run").exists()
    unmatched_payment.refresh_from_db()
    assert unmatched_payment.match_state == Payment.MatchState.UNMATCHED
    # the holder's lease is left alone
    assert MatchingLease.objects.get(pk=LEASE_ROW).holder == "otherrun"


@pytest.mark.django_db
def test_a_dry_run_needs_no_lease(unmatched_payment):
    _held_by_another_run(timezone.now() + timedelta(minutes=5))
    report = matching_run(dry_run=True)
    assert report.proposed == 1 and not MatchProposal.objects.exists()


@pytest.mark.django_db
def test_a_lease_whose_run_died_is_taken_over_once_it_expires(unmatched_payment):
    _held_by_another_run(timezone.now() - timedelta(seconds=1))
    report = matching_run(dry_run=False)
    assert report.proposed == 1
    assert MatchingLease.objects.get(pk=LEASE_ROW).holder == ""  # given back


@pytest.mark.django_db
def test_only_the_holder_gives_the_lease_back():
    matching_lease_take("run-a")
    matching_lease_give_back("run-b")
    assert MatchingLease.objects.get(pk=LEASE_ROW).holder == "run-a"
    with pytest.raises(MatchingRunBusy):
        matching_lease_take("run-b")
    matching_lease_give_back("run-a")
    matching_lease_take("run-b")
    assert MatchingLease.objects.get(pk=LEASE_ROW).holder == "run-b"


@pytest.mark.django_db
def test_the_woken_pass_leaves_the_work_to_the_run_in_progress(unmatched_payment):
    _held_by_another_run(timezone.now() + timedelta(minutes=5))
    assert auto_match_changed() is None
    assert not MatchProposal.objects.exists()


@pytest.mark.django_db
def test_the_command_says_a_run_is_in_progress(unmatched_payment):
    _held_by_another_run(timezone.now() + timedelta(minutes=5))
    with pytest.raises(CommandError, match="in progress"):
        call_command("auto_match")


@pytest.mark.django_db
def test_a_pass_looks_again_for_what_changed_while_it_ran(unmatched_payment, entity):
    """A payment stored after the run began reading was not seen by it: the run goes again,
    at most MAX_PASSES times (a payment dated ahead stays 'changed' for every pass)."""
    unmatchable = make_payment(entity, "5.00", text="nothing to match")
    Payment.objects.filter(pk=unmatchable.pk).update(
        updated_at=timezone.now() + timedelta(minutes=1)
    )
    auto_match_changed()
    assert AuditEntry.objects.filter(action="matching.run").count() == MAX_PASSES
    assert MatchingLease.objects.get(pk=LEASE_ROW).holder == ""


@pytest.mark.django_db(transaction=True)
def test_two_workers_asking_at_once_cannot_both_take_the_lease():
    MatchingLease.objects.get_or_create(pk=LEASE_ROW)
    start = threading.Barrier(8)
    taken, refused = [], []

    def ask(number):
        try:
            start.wait()
            matching_lease_take(f"run-{number}")
            taken.append(number)
        except MatchingRunBusy:
            refused.append(number)
        finally:
            connection.close()

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(taken) == 1 and len(refused) == 7
    assert MatchingLease.objects.get(pk=LEASE_ROW).holder == f"run-{taken[0]}"
