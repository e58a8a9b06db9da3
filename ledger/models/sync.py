"""Where each pull from AIQ got to."""

from django.db import models

from ledger.models.entities import Entity


class SyncState(models.Model):
    """Where the last pull from AIQ got to, per entity and object type, and its progress."""

    entity = models.ForeignKey(Entity, on_delete=models.PROTECT)
    object_type = models.CharField(max_length=40)
    last_modified_cursor = models.DateTimeField(null=True, blank=True)
    last_started_at = models.DateTimeField(null=True, blank=True)
    last_finished_at = models.DateTimeField(null=True, blank=True)
    running = models.BooleanField(default=False)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    # rows read so far by the step now running, so a long step shows it is moving
    progress_step = models.CharField(max_length=40, blank=True)
    progress_rows = models.PositiveIntegerField(default=0)
    # written with every progress update: a running pull whose heartbeat is older than the
    # task timeout was killed, and its claim no longer blocks the next pull
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["entity", "object_type"], name="syncstate_unique")
        ]

    def __str__(self):
        return f"{self.entity} {self.object_type}"
