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
from payments.models import Payment
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


def auto_match_changed() -> RunReport | None:
    """Match every unmatched payment, if anything relevant changed since the last run."""
    last = _last_run_at()
    unmatched = Payment.objects.filter(
        match_state=Payment.MatchState.UNMATCHED, status=Payment.Status.SUCCEEDED
    )
    if not unmatched.exists():
        return None
    if last is not None:
        changed = (
            unmatched.filter(updated_at__gt=last).exists()
            or Invoice.objects.filter(updated_at__gt=last, outstanding_amount__gt=0).exists()
        )
        if not changed:
            return None
    return matching_run(dry_run=False)


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
