"""Matching runs by itself: new payments right after they are stored, and a scheduled pass
when payments or open invoices changed since the last run."""

from datetime import date
from decimal import Decimal

import pytest
from django.utils import timezone

from ledger.models import Customer, Invoice
from payments.models import Payment
from payments.services.auto_match import auto_match_changed, auto_match_soon
from staff.models import AuditEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def invoice(entity):
    customer = Customer.objects.create(entity=entity, code="ACME", name="Acme", currency="GBP")
    return Invoice.objects.create(
        entity=entity,
        customer=customer,
        invoice_number="INV-1043",
        currency="GBP",
        invoice_date=date(2026, 10, 1),
        net_amount=Decimal("100.00"),
        gross_amount=Decimal("100.00"),
        outstanding_amount=Decimal("100.00"),
        aiq_transaction_id=501,
    )


def _payment(entity, external_id, reference):
    return Payment.objects.create(
        entity=entity,
        source="bank",
        external_id=external_id,
        amount=Decimal("100.00"),
        currency="GBP",
        received_at=timezone.now(),
        references=[{"source": "bank.narrative", "value": reference}],
    )


def test_the_pass_matches_a_payment_stored_since_the_last_run(entity, invoice):
    payment = _payment(entity, "b1", "PAYMENT INV 1043 THANKS")
    report = auto_match_changed()
    payment.refresh_from_db()
    assert report.proposed == 1
    assert payment.match_state != Payment.MatchState.UNMATCHED
    assert payment.proposals.first().lines[0]["invoice_id"] == invoice.pk


def test_the_scheduled_pass_runs_only_when_something_changed(entity, invoice):
    _payment(entity, "b2", "no reference at all")
    first = auto_match_changed()
    assert first is not None and first.unmatched == 1
    runs = AuditEntry.objects.filter(action="matching.run").count()
    # nothing changed since: no run, no audit entry
    assert auto_match_changed() is None
    assert AuditEntry.objects.filter(action="matching.run").count() == runs
    # an invoice synced or changed afterwards makes the next pass run again
    invoice.notes = "changed in AIQ"
    invoice.save()
    assert auto_match_changed() is not None


def test_the_scheduled_pass_is_idle_without_unmatched_payments(entity, invoice):
    assert auto_match_changed() is None


@pytest.fixture
def orm_broker():
    """django-q2 reads its broker once at import: send this test's tasks to the ORM queue
    (checked before Redis) even when REDIS_URL is set, so they can be read back."""
    from django_q import conf

    old = conf.Conf.ORM
    conf.Conf.ORM = "default"
    yield
    conf.Conf.ORM = old


def test_stored_payments_wake_one_matching_pass_once_committed(
    entity, orm_broker, django_capture_on_commit_callbacks
):
    from django.db import transaction
    from django_q.models import OrmQ

    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            auto_match_soon(payment_ids=[101, 102, 103])
            assert OrmQ.objects.count() == 0  # nothing before the payments are committed
    tasks = [row.task for row in OrmQ.objects.all()]
    assert [task["func"] for task in tasks] == ["payments.tasks.auto_match_changed_task"]
    with django_capture_on_commit_callbacks(execute=True):
        auto_match_soon(payment_ids=[])  # nothing stored: nothing to wake
    assert OrmQ.objects.count() == 1


def test_a_payment_stored_while_a_run_was_loading_is_matched_by_the_next_pass(entity, invoice):
    """The run's audit entry is written at its end; a payment stored between the run's start
    and that entry was not seen by it and must not count as already handled."""
    _payment(entity, "b8", "no reference at all")
    assert auto_match_changed() is not None
    entry = AuditEntry.objects.filter(action="matching.run").latest("at")
    late = _payment(entity, "b9", "PAYMENT INV 1043 THANKS")
    # stored after the run began reading but before it wrote its audit entry
    Payment.objects.filter(pk=late.pk).update(
        updated_at=entry.at - timezone.timedelta(microseconds=1)
    )
    report = auto_match_changed()
    assert report is not None and report.proposed == 1
