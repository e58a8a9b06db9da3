"""Keep matching running without a person starting it.

New payments wake a matching pass as soon as they are stored (a task queued after commit), and a
scheduled pass re-matches what is still unmatched when payments or open invoices changed since
the last run (a newly synced invoice can settle an older payment). Quiet periods cost nothing:
no run and no audit entry when nothing changed.
"""

from datetime import datetime

from django.db import transaction
from django_q.tasks import async_task

from ledger.models import Invoice
from payments.matching.index import MATCHED_STATUSES
from payments.models import Payment
from payments.services.matching_lease import MatchingRunBusy
from payments.services.matching_runs import RunReport, matching_run
from staff.models import AuditEntry


def _last_run_at():
    """When the last run began reading: a payment or invoice changed while it loaded (after
    that moment, before its audit entry was written) was not seen by it, so it counts as
    changed. Entries from before runs recorded their start fall back to the entry's time."""
    last = (
        AuditEntry.objects.filter(action="matching.run")
        .order_by("-at")
        .values_list("at", "after")
        .first()
    )
    if last is None:
        return None
    at, after = last
    started_at = (after or {}).get("started_at")
    return datetime.fromisoformat(started_at) if started_at else at


# A run looks again for what changed while it ran (payments stored, invoices synced); a book
# that never stops changing is left to the next scheduled pass after this many runs.
MAX_PASSES = 3


def auto_match_changed() -> RunReport | None:
    """Match every unmatched payment, if anything relevant changed since the last run.

    While another run is writing this returns None at once: that run looks for changes again
    once it has given back the lease, so what woke this pass is matched by it (or, after
    MAX_PASSES, by the next scheduled pass)."""
    report = None
    for _pass in range(MAX_PASSES):
        if not _changed_since_last_run():
            return report
        try:
            report = matching_run(dry_run=False)
        except MatchingRunBusy:
            return report
    return report


def _changed_since_last_run() -> bool:
    last = _last_run_at()
    unmatched = Payment.objects.filter(
        match_state=Payment.MatchState.UNMATCHED, status__in=MATCHED_STATUSES
    )
    if not unmatched.exists():
        return False
    if last is None:
        return True
    return (
        unmatched.filter(updated_at__gt=last).exists()
        or Invoice.objects.filter(updated_at__gt=last, outstanding_amount__gt=0).exists()
    )


def auto_match_soon(*, payment_ids: list[int]) -> None:
    """Wake matching once the transaction that stored these payments commits.

    The woken task runs one pass over everything that changed, not a run per payment: a run
    loads every open item (about 10 s at a million invoices), so a burst of webhooks must not
    each pay for that. Tasks woken while a pass already covered their payments find nothing
    changed and return at once.
    """
    if payment_ids:
        transaction.on_commit(
            lambda: async_task("payments.tasks.auto_match_changed_task", group="matching")
        )
