"""The outbox kind of deferred revenue: deferred_revenue_release, one general journal per
monthly release (or per reversal of released revenue), CreateGeneralJournalGetBackTransactionID.

Sent and read back as ledger's general journals are (ledger/outbox/executors_journals.py: the
journal carries the command's external reference, DRR-<schedule>-<month> or
DRX-<schedule>-<credit note>, and is found by it with GetTransactionsByExternalReference before
any resend), mirrored as a ledger Journal; its origin moves the DeferredRelease row
(sales/services/deferred.py). A credit note confirmed in AIQ changes the schedules of the
deferred lines it credits (followed with on_confirmed, whatever caused the credit note).
"""

from dataclasses import dataclass

from ledger.models import OutboxCommand
from ledger.outbox.executors import MIRRORS, Executor
from ledger.outbox.executors_journals import (
    GeneralJournalPayload,
    general_journal_mirror,
    general_journal_read_back,
    general_journal_send,
)
from ledger.outbox.origins import Origin, on_confirmed, origin_register
from ledger.outbox.steps import command_kind_register
from sales.services import deferred


@dataclass(frozen=True)
class DeferredReleasePayload(GeneralJournalPayload):
    """A general journal (Dr one account, Cr the other, the line's BI code on both) and the
    DeferredRelease it posts."""

    release_id: int | None = None

    def __post_init__(self):
        super().__post_init__()
        if self.release_id is None:
            raise ValueError("missing release_id")


def _failed(command: OutboxCommand) -> None:
    deferred.release_failed(command)


def _parked(command: OutboxCommand) -> None:
    deferred.release_failed(command, parked=True)


def register() -> None:
    command_kind_register(
        deferred.KIND,
        executor=Executor(general_journal_send, general_journal_read_back),
        payload=DeferredReleasePayload,
        label="Release deferred revenue (general journal)",
    )
    MIRRORS[deferred.KIND] = general_journal_mirror
    origin_register(
        deferred.ORIGIN,
        Origin(confirmed=deferred.release_confirmed, failed=_failed, parked=_parked),
    )
    on_confirmed(OutboxCommand.Kind.CREATE_CREDIT_NOTE, deferred.credit_note_confirmed)
