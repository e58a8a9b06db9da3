"""Twenty people allocating at the same moment cannot over-allocate a payment or an invoice.

Real threads with their own database connections, released together by a barrier: on SQLite
(IMMEDIATE transactions serialise writers) and on PostgreSQL (row locks; needs DATABASE_URL).
"""

import importlib
import threading

import pytest
from django.db import connection, connections

from ledger.models import OutboxCommand
from payments.models import AllocationPlan
from payments.services.plans import PlanRefused, plan_propose, plan_submit
from tests.test_plans_factories import D, make_customer, make_invoice, make_payment, setup_books

THREADS = 20
# transaction=True so each thread commits for real. The flush afterwards re-emits post_migrate,
# which puts back the roles and default rules (staff/payments apps.py) for later tests.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _empty_audit_for_the_flush():
    """The audit table refuses DELETE (append-only triggers), and on SQLite the flush after a
    transactional test deletes row by row; empty it with the triggers briefly off."""
    yield
    if connection.vendor != "sqlite":
        return  # PostgreSQL flushes with TRUNCATE, which row triggers do not see
    audit_migration = importlib.import_module("staff.migrations.0002_roles_and_append_only_audit")

    with connection.cursor() as cursor:
        for statement in audit_migration.SQLITE_DROP:
            cursor.execute(statement)
        cursor.execute("DELETE FROM staff_auditentry")
        for statement in audit_migration.SQLITE_TRIGGERS:
            cursor.execute(statement)


def race(work) -> dict:
    barrier = threading.Barrier(THREADS)
    outcome = {"ok": 0, "refused": 0, "errors": []}
    lock = threading.Lock()

    def run(i):
        try:
            barrier.wait()
            work(i)
            key = "ok"
        except PlanRefused:
            key = "refused"
        except Exception as error:  # noqa: BLE001 - anything else is a failure to report
            key = None
            with lock:
                outcome["errors"].append(repr(error))
        finally:
            connections.close_all()
        if key:
            with lock:
                outcome[key] += 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return outcome


def check_one_payment_twenty_allocations(entity, alice):
    setup_books(entity)
    acme = make_customer(entity)
    invoices = [make_invoice(acme, "100.00") for _ in range(THREADS)]
    payment = make_payment(entity, "100.00", customer=acme)

    def allocate(i):
        plan = plan_propose(
            payment=payment, lines=[{"invoice_id": invoices[i].pk, "amount": "60.00"}], actor=alice
        )
        plan_submit(plan=plan, actor=alice)

    outcome = race(allocate)
    assert outcome == {"ok": 1, "refused": THREADS - 1, "errors": []}
    plan = AllocationPlan.objects.get()
    assert plan.state == AllocationPlan.State.SENT and plan.on_account_amount == D("40.00")
    assert OutboxCommand.objects.filter(kind="post_receipt").count() == 1


def check_one_invoice_twenty_payments(entity, alice):
    setup_books(entity)
    acme = make_customer(entity)
    invoice = make_invoice(acme, "100.00")
    payments = [make_payment(entity, "60.00", customer=acme) for _ in range(THREADS)]

    def allocate(i):
        plan = plan_propose(
            payment=payments[i], lines=[{"invoice_id": invoice.pk, "amount": "60.00"}], actor=alice
        )
        plan_submit(plan=plan, actor=alice)

    outcome = race(allocate)
    assert outcome == {"ok": 1, "refused": THREADS - 1, "errors": []}
    assert AllocationPlan.objects.count() == 1
    assert OutboxCommand.objects.filter(kind="allocate").count() == 1


def test_sqlite_one_payment_twenty_allocations(entity, alice):
    if connection.vendor != "sqlite":
        pytest.skip("this run is on PostgreSQL; see the postgres twin")
    check_one_payment_twenty_allocations(entity, alice)


def test_sqlite_one_invoice_twenty_payments(entity, alice):
    if connection.vendor != "sqlite":
        pytest.skip("this run is on PostgreSQL; see the postgres twin")
    check_one_invoice_twenty_payments(entity, alice)


def test_postgres_one_payment_twenty_allocations(requires_postgres, entity, alice):
    check_one_payment_twenty_allocations(entity, alice)


def test_postgres_one_invoice_twenty_payments(requires_postgres, entity, alice):
    check_one_invoice_twenty_payments(entity, alice)
