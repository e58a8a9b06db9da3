"""Waking workers after commit: one wake per transaction, one drain per batch of its commands,
at most one per worker; nothing for a rolled-back transaction. Counted on the ORM broker's
own queue table (the real django-q2 enqueue path)."""

import pytest
from django.db import transaction
from django_q.models import OrmQ

from ledger.outbox.services import outbox_enqueue
from ledger.outbox.tasks import DRAIN
from tests.payloads import receipt_payload


@pytest.fixture
def orm_broker(settings):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "workers": 4}
    settings.OUTBOX_BATCH_SIZE = 10
    from django_q import conf

    # django-q2 reads its settings once at import: send this test's tasks to the ORM broker
    # (checked before Redis) even when REDIS_URL is set
    old = conf.Conf.ORM
    conf.Conf.ORM = "default"
    yield
    conf.Conf.ORM = old


def _enqueue(entity, refs):
    return [
        outbox_enqueue(
            entity=entity, kind="post_receipt", payload=receipt_payload(), external_reference=ref
        )
        for ref in refs
    ]


def _drains():
    tasks = [row.task for row in OrmQ.objects.all()]
    assert all(task["func"] == DRAIN for task in tasks), tasks
    return [task["kwargs"]["prefer"] for task in tasks]


def test_one_transaction_wakes_one_drain_per_batch(
    entity, orm_broker, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as hooks:
        with transaction.atomic():
            commands = _enqueue(entity, [f"R-{n}" for n in range(25)])
    assert len(hooks) == 1
    prefer = _drains()
    assert len(prefer) == 3
    assert sorted(pk for chunk in prefer for pk in chunk) == sorted(c.pk for c in commands)


def test_drains_are_capped_at_the_number_of_workers(
    entity, orm_broker, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            _enqueue(entity, [f"R-{n}" for n in range(200)])
    assert len(_drains()) == 4


def test_a_command_in_a_rolled_back_savepoint_does_not_lose_the_wake_of_the_others(
    entity, orm_broker, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as hooks:
        with transaction.atomic():
            try:
                with transaction.atomic():
                    _enqueue(entity, ["GONE"])
                    raise RuntimeError("the approval failed")
            except RuntimeError:
                pass
            [kept] = _enqueue(entity, ["KEPT"])
    assert len(hooks) == 1
    assert _drains() == [[kept.pk]]


def test_a_rolled_back_transaction_wakes_nothing(
    entity, orm_broker, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as hooks:
        try:
            with transaction.atomic():
                _enqueue(entity, ["R-1", "R-2"])
                raise RuntimeError("the approval failed")
        except RuntimeError:
            pass
    assert hooks == []
    assert OrmQ.objects.count() == 0
