"""django-q2 entry points for the pull from AIQ (thin: ids in, services do the work)."""

import logging

from ledger.models import Entity
from ledger.sync.services import SyncAlreadyRunning, sync_claim, sync_run

log = logging.getLogger(__name__)


def run(entity_id: int) -> dict:
    return sync_run(entity=Entity.objects.get(pk=entity_id))


def scheduled() -> dict:
    """Every AIQ_SYNC_MINUTES: pull every entity not already being pulled."""
    ran = {}
    for entity in Entity.objects.all():
        try:
            sync_claim(entity=entity)
        except SyncAlreadyRunning:
            continue
        ran[entity.pk] = sync_run(entity=entity)
    return ran
