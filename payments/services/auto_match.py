"""Keep matching running without a person starting it.

New payments are matched as soon as they are stored (a task queued after commit), and a
scheduled pass re-matches what is still unmatched when payments or open invoices changed since
the last run (a newly synced invoice can settle an older payment). Quiet periods cost nothing:
no run and no audit entry when nothing changed.
"""

from django.db import transaction
from django_q.tasks import async_task

from ledger.models import Invoice
from payments.models import Payment
from payments.services.matching_runs import RunReport, matching_run
from staff.models import AuditEntry


def _last_run_at():
    return (
        AuditEntry.objects.filter(action="matching.run")
        .order_by("-at")
        .values_list("at", flat=True)
        .first()
    )


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


def auto_match_payments(*, payment_ids: list[int]) -> RunReport:
    """Match the given payments now (the ones a webhook or import just stored)."""
    return matching_run(dry_run=False, payment_ids=payment_ids)


def auto_match_soon(*, payment_ids: list[int]) -> None:
    """Queue matching of these payments once the transaction that stored them commits."""
    ids = list(payment_ids)
    if ids:
        transaction.on_commit(
            lambda: async_task("payments.tasks.auto_match_payments_task", ids, group="matching")
        )
