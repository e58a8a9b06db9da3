"""Deferred revenue: an invoice line billed in full and earned over N months.

The invoice posts the line to the company's deferred revenue account (a liability), not to
revenue. A schedule of N monthly releases is made when AIQ confirms the invoice; each release is
one general journal (CreateGeneralJournalGetBackTransactionID: Dr deferred revenue, Cr the
line's revenue account, with the line's BI code), dated the last day of its month, sent by the
outbox under its own external reference (DRR-<schedule>-<month>) so it is in AIQ exactly once,
whatever happens to the answer. `deferred_releases_run` (django-q2 schedule
"deferred-revenue", hourly) queues every release whose date has come; it takes the day as an
argument, so tests run a year in a second.

A credit note against a deferred line (what an accountant expects): the credit note reverses the
invoice line as it was posted, i.e. on the deferred revenue account. The revenue not yet
released is simply never released: the credited amount comes off the remaining releases first
(all of them cancelled when the whole rest is credited, else the rest re-spread over them). If
more is credited than is left to release, revenue already released is taken back by one
reversing journal (Dr revenue, Cr deferred revenue) for the difference. Either way, once the
whole line is credited both accounts are back to zero for it, and the revenue reported for the
months already closed is not rewritten, only reversed in the month of the credit note.
"""

import calendar
import logging
from datetime import date
from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from core.money import quantize, split
from ledger.aiq.client import AiqClient
from ledger.aiq.errors import AiqError
from ledger.models import CreditNote, DocumentStatus, Entity, OutboxCommand
from ledger.outbox.services import outbox_enqueue
from ledger.sync.pull import PostedTransaction, posted_transaction
from sales.models import (
    DeferredRelease,
    DeferredRevenueSchedule,
    SalesInvoice,
    SalesInvoiceLine,
)
from staff.models import Role
from staff.services import audit_entry, audit_log, audit_log_many, user_has_role

log = logging.getLogger(__name__)
KIND = "deferred_revenue_release"
ORIGIN = "deferred_release"
ZERO = Decimal(0)
R = DeferredRelease.State
OPEN_RELEASE = (R.SCHEDULED, R.FAILED)  # not in AIQ and not on its way


def month_end(start: date, offset: int) -> date:
    """The last day of the month `offset` months after `start`'s."""
    year, month = divmod(start.month - 1 + offset, 12)
    year, month = start.year + year, month + 1
    return date(year, month, calendar.monthrange(year, month)[1])


def deferred_problems(entity: Entity, invoice, deferred_account: str, default_gl: str) -> list:
    """Why the deferred lines of a NormalisedInvoice cannot be accepted."""
    problems = []
    for number, line in enumerate(invoice.lines, start=1):
        if line.deferred_months is None:
            continue
        where = f"line {number}"
        if not deferred_account:
            problems.append(
                f"{where} is deferred but {entity.name} has no deferred revenue account: set "
                "it in the company's sales settings"
            )
        if not (line.gl_account_code or default_gl):
            problems.append(f"{where} is deferred but has no revenue GL account to release to")
    return problems


def _release_rows(schedule: DeferredRevenueSchedule) -> list[DeferredRelease]:
    parts = split(schedule.base_amount, schedule.release_currency, [1] * schedule.months)
    return [
        DeferredRelease(
            schedule=schedule,
            number=n,
            release_date=month_end(schedule.start_date, n - 1),
            amount=part,
            external_reference=f"DRR-{schedule.pk}-{n}",
        )
        for n, part in enumerate(parts, start=1)
        if part
    ]


def deferrals_create(rows: list[SalesInvoice]) -> list[DeferredRevenueSchedule]:
    """The schedules of the deferred lines of these invoices, now AIQ has posted them (ours,
    not linked: a linked invoice was not posted by us to the deferred account). Idempotent."""
    posted = [r for r in rows if r.state == SalesInvoice.State.POSTED]
    lines = SalesInvoiceLine.objects.filter(
        invoice__in=posted, deferred_months__isnull=False, deferral__isnull=True
    ).select_related("invoice")
    made = []
    for line in lines.select_related("invoice__entity"):
        base = line.invoice.entity.base_currency
        foreign = line.invoice.currency != base
        schedule = DeferredRevenueSchedule.objects.create(
            entity_id=line.invoice.entity_id,
            invoice=line.invoice,
            line=line,
            currency=line.invoice.currency,
            amount=line.net_amount,
            base_currency=base,
            # another currency: AIQ's rate of the invoice is read by the next release run
            exchange_rate=None if foreign else Decimal(1),
            base_amount=None if foreign else line.net_amount,
            months=line.deferred_months,
            start_date=line.invoice.invoice_date,
            revenue_gl_account_code=line.gl_account_code,
            deferred_gl_account_code=line.deferred_gl_account_code,
            department=line.department,
        )
        if not foreign:
            DeferredRelease.objects.bulk_create(_release_rows(schedule))
        made.append(schedule)
    if made:
        audit_log_many(
            [
                audit_entry(
                    actor=None,
                    action="deferred_revenue.schedule",
                    obj=s,
                    summary=f"{s.invoice.external_reference} line {s.line.line_number}: "
                    f"{s.amount} {s.currency} deferred over {s.months} months",
                    after={"amount": str(s.amount), "months": s.months},
                )
                for s in made
            ]
        )
    return made


def deferred_rates_fetch() -> int:
    """Schedules of lines in another currency than their company's, waiting for AIQ's rate of
    their invoice: each invoice read from AIQ once (GetTransactionsByExternalReference), the
    schedule's base amount set to what AIQ put on the deferred account and its releases made.
    One AIQ cannot tell yet (not answering, invoice not listed) waits for the next run."""
    waiting = list(
        DeferredRevenueSchedule.objects.filter(
            state=DeferredRevenueSchedule.State.ACTIVE, base_amount__isnull=True
        ).select_related("entity", "invoice")
    )
    posted: dict[int, PostedTransaction | None] = {}
    done = 0
    for schedule in waiting:
        invoice = schedule.invoice
        if invoice.pk not in posted:
            try:
                posted[invoice.pk] = posted_transaction(
                    AiqClient.for_entity(schedule.entity),
                    invoice.external_reference,
                    invoice.invoice_date,
                    invoice.aiq_transaction_id,
                )
            except AiqError as error:
                log.warning("deferred revenue: AIQ's rate of %s not read: %s", invoice, error)
                posted[invoice.pk] = None
        found = posted[invoice.pk]
        if found is not None and found.exchange_rate:
            done += deferred_rate_set(schedule, found)
    return done


def _base_amount(schedule: DeferredRevenueSchedule, found: PostedTransaction) -> Decimal:
    """What AIQ put on the deferred account for this line, in the base currency: AIQ's own
    BCAmount of the invoice's line on that account for this net and BI code, else the net at
    AIQ's rate (rounded to the base currency's minor unit)."""
    for line in found.lines:
        if (
            line.gl_account_code == schedule.deferred_gl_account_code
            and abs(line.amount) == schedule.amount
            and line.department_id == (schedule.department or "")
            and line.base_amount
        ):
            return abs(line.base_amount)
    return quantize(schedule.amount / found.exchange_rate, schedule.release_currency)


def deferred_rate_set(schedule: DeferredRevenueSchedule, found: PostedTransaction) -> int:
    """Set AIQ's rate and base amount of one schedule and make its releases; audited."""
    with transaction.atomic():
        row = (
            DeferredRevenueSchedule.objects.select_for_update()
            .select_related("invoice", "line")
            .filter(pk=schedule.pk, base_amount__isnull=True)
            .first()
        )
        if row is None:
            return 0
        row.exchange_rate = found.exchange_rate
        row.base_amount = _base_amount(row, found)
        row.save(update_fields=["exchange_rate", "base_amount"])
        DeferredRelease.objects.bulk_create(_release_rows(row))
        audit_log(
            actor=None,
            action="deferred_revenue.rate",
            obj=row,
            summary=f"{row.invoice.external_reference} line {row.line.line_number}: "
            f"{row.amount} {row.currency} at AIQ's rate {row.exchange_rate} is "
            f"{row.base_amount} {row.release_currency}, released over {row.months} months",
            after={"exchange_rate": str(row.exchange_rate), "base_amount": str(row.base_amount)},
        )
    return 1


def _journal(release: DeferredRelease) -> dict:
    schedule = release.schedule
    # 100.00, not MoneyField's 100.000; in the base currency, as AIQ keeps general journals
    amount = str(quantize(release.amount, schedule.release_currency))
    debit, credit = schedule.deferred_gl_account_code, schedule.revenue_gl_account_code
    text = f"Deferred revenue {schedule.invoice.external_reference} month {release.number}"
    if release.kind == DeferredRelease.Kind.REVERSAL:
        debit, credit = credit, debit
        text = f"Released revenue taken back: credit note on {schedule.invoice.external_reference}"
    return {
        "journal_date": release.release_date.isoformat(),
        "description": text[:250],
        "currency": schedule.release_currency,
        "release_id": release.pk,
        "lines": [
            {"gl_account_code": debit, "debit": amount, "credit": "0",
             "department_id": schedule.department, "description": text[:250]},
            {"gl_account_code": credit, "debit": "0", "credit": amount,
             "department_id": schedule.department, "description": text[:250]},
        ],
    }  # fmt: skip


def _queue(release: DeferredRelease) -> None:
    """Inside the caller's transaction, the release row locked."""
    command = outbox_enqueue(
        entity=release.schedule.entity,
        kind=KIND,
        payload=_journal(release),
        external_reference=release.external_reference,
        origin_type=ORIGIN,
        origin_id=release.pk,
    )
    release.state = R.QUEUED
    release.command = command
    release.error = ""
    release.save(update_fields=["state", "command", "error", "updated_at"])
    audit_log(
        actor=None,
        action=f"deferred_revenue.{release.kind}",
        obj=release,
        summary=f"{release.external_reference}: {release.amount} "
        f"{release.schedule.release_currency} "
        f"dated {release.release_date:%d/%m/%Y} sent to AIQ",
        before={"state": R.SCHEDULED},
        after={"state": R.QUEUED, "command": command.pk},
    )


def deferred_releases_run(*, today: date | None = None) -> int:
    """Queue every release whose date has come (credit notes applied first); returns how many.
    Each release row is locked and moved from scheduled to queued once, and the outbox is
    idempotent on its external reference: two runs side by side queue each release once."""
    today = today or timezone.localdate()
    deferred_rates_fetch()
    deferred_credits_catch_up()
    due = DeferredRelease.objects.filter(
        kind=DeferredRelease.Kind.RELEASE,
        state=R.SCHEDULED,
        release_date__lte=today,
        schedule__state=DeferredRevenueSchedule.State.ACTIVE,
    ).values_list("pk", flat=True)
    queued = 0
    for pk in list(due):
        with transaction.atomic():
            release = (
                DeferredRelease.objects.select_for_update(skip_locked=True)
                .select_related("schedule__entity", "schedule__invoice")
                .filter(pk=pk, state=R.SCHEDULED)
                .first()
            )
            if release is None:
                continue
            _queue(release)
            queued += 1
    return queued


# --- verdicts from the outbox (origin "deferred_release") -------------------------------------


def _locked(command: OutboxCommand) -> DeferredRelease | None:
    return (
        DeferredRelease.objects.select_for_update()
        .select_related("schedule")
        .filter(pk=command.origin_id)
        .first()
    )


def release_confirmed(command: OutboxCommand, payload: dict, notes: list[str]) -> None:
    release = _locked(command)
    if release is None or release.state == R.RELEASED:
        return
    before = release.state
    release.state = R.RELEASED
    release.aiq_transaction_id = (command.result or {}).get("transaction_id")
    release.error = ""
    release.save(update_fields=["state", "aiq_transaction_id", "error", "updated_at"])
    audit_log(
        actor=None,
        action="deferred_revenue.released",
        obj=release,
        summary=f"{release.external_reference}: posted in AIQ, transaction "
        f"{release.aiq_transaction_id}",
        before={"state": before},
        after={"state": release.state, "transaction_id": release.aiq_transaction_id},
    )
    schedule = release.schedule
    if (
        schedule.state == DeferredRevenueSchedule.State.ACTIVE
        and not schedule.releases.exclude(state__in=[R.RELEASED, R.CANCELLED]).exists()
    ):
        schedule.state = DeferredRevenueSchedule.State.DONE
        schedule.save(update_fields=["state"])


def release_failed(command: OutboxCommand, *, parked: bool = False) -> None:
    release = _locked(command)
    if release is None or release.state in (R.RELEASED, R.CANCELLED):
        return
    release.state = R.FAILED
    message = command.last_error_message or "AIQ refused it"
    release.error = ("Waits for a person: " if parked else "") + message
    release.save(update_fields=["state", "error", "updated_at"])
    audit_log(
        actor=None,
        action="deferred_revenue.failed",
        obj=release,
        summary=f"{release.external_reference}: {release.error}"[:500],
        before={"state": R.QUEUED},
        after={"state": release.state},
    )


def deferred_release_retry(*, release: DeferredRelease, actor) -> DeferredRelease:
    """An approver sends a release AIQ refused again (e.g. after activating its BI code), under
    a new external reference: the refused command keeps the old one, and AIQ has nothing under
    it (a refusal writes nothing). The read-back before any resend then works as for the first."""
    if not user_has_role(actor, Role.APPROVER):
        raise PermissionDenied("Only an approver can send a refused release again.")
    with transaction.atomic():
        row = (
            DeferredRelease.objects.select_for_update()
            .select_related("schedule__entity", "schedule__invoice")
            .get(pk=release.pk)
        )
        if row.state != R.FAILED:
            raise ValidationError(f"{row.external_reference} was not refused by AIQ.")
        if row.schedule.state == DeferredRevenueSchedule.State.CREDITED:
            raise ValidationError("A credit note ended this schedule: nothing is left to release.")
        old = row.external_reference
        attempt = 1 + sum(1 for _ in DeferredRelease.objects.filter(
            external_reference__startswith=f"{old.split('-R')[0]}-R"))  # fmt: skip
        row.external_reference = f"{old.split('-R')[0]}-R{attempt}"[:100]
        row.state = R.SCHEDULED
        row.save(update_fields=["external_reference", "state", "updated_at"])
        audit_log(
            actor=actor,
            action="deferred_revenue.retry",
            obj=row,
            summary=f"{old} sent again as {row.external_reference} after: {row.error}"[:500],
            before={"state": R.FAILED, "reference": old},
            after={"state": R.SCHEDULED, "reference": row.external_reference},
        )
        _queue(row)
    return row


# --- credit notes ------------------------------------------------------------------------------


def _credited_by_line(note: CreditNote) -> dict[int, Decimal]:
    """{sales invoice line id: net credited} for the deferred lines this credit note credits."""
    invoice = note.invoice
    if invoice is None or invoice.aiq_transaction_id is None:
        return {}
    sale = SalesInvoice.objects.filter(
        entity=note.entity_id, aiq_transaction_id=invoice.aiq_transaction_id
    ).first()
    if sale is None:
        return {}
    by_number = {line.line_number: line.pk for line in sale.lines.filter(deferral__isnull=False)}
    credited: dict[int, Decimal] = {}
    for line in note.lines.select_related("invoice_line"):
        if line.invoice_line is None:
            continue
        pk = by_number.get(line.invoice_line.line_number)
        if pk is not None:
            credited[pk] = credited.get(pk, ZERO) + line.net_amount
    return credited


def deferred_credit_apply(note: CreditNote) -> None:
    """What a posted credit note does to the schedules of the deferred lines it credits
    (module docstring). Idempotent: each schedule remembers the credit notes it has applied."""
    if note.status == DocumentStatus.DRAFT:
        return
    deferred_credits_apply(
        _credited_by_line(note), key=note.pk, credit_date=note.credit_date, label=str(note)
    )


def deferred_credits_apply(
    credited_by_line: dict[int, Decimal], *, key, credit_date: date, label: str
) -> None:
    """Apply one credit note (`key`: a ledger.CreditNote id, or "S<id>" for a sales credit
    note) to the schedules of the sales invoice lines it credits ({line id: net credited})."""
    for line_id, credited in credited_by_line.items():
        with transaction.atomic():
            schedule = (
                DeferredRevenueSchedule.objects.select_for_update().filter(line_id=line_id).first()
            )
            if schedule is None or key in schedule.credit_notes:
                continue
            if schedule.waiting_for_rate:
                continue  # applied by the release run's catch-up once the rate is known
            _apply(schedule, key, credited, credit_date, label)


def _apply(
    schedule: DeferredRevenueSchedule, key, credited: Decimal, credit_date: date, label: str
) -> None:
    open_rows = list(
        schedule.releases.select_for_update()
        .filter(kind=DeferredRelease.Kind.RELEASE, state__in=OPEN_RELEASE)
        .order_by("number")
    )
    unreleased = sum((r.amount for r in open_rows), ZERO)
    before = {"unreleased": str(unreleased), "releases": len(open_rows)}
    credited_base = _in_base(schedule, credited)
    left = unreleased - credited_base
    cancelled, reversal = [], None
    if left <= 0:
        cancelled = open_rows
        for row in open_rows:
            row.state = R.CANCELLED
        DeferredRelease.objects.bulk_update(open_rows, ["state", "updated_at"])
        if left < 0:
            reversal = DeferredRelease.objects.create(
                schedule=schedule,
                kind=DeferredRelease.Kind.REVERSAL,
                number=0,
                credit_note_id=key if isinstance(key, int) else None,
                release_date=credit_date,
                amount=-left,
                external_reference=f"DRX-{schedule.pk}-{key}",
            )
            reversal.schedule = schedule
            _queue(reversal)
        schedule.state = DeferredRevenueSchedule.State.CREDITED
    else:
        parts = split(left, schedule.release_currency, [1] * len(open_rows))
        for row, part in zip(open_rows, parts, strict=True):
            if part:
                row.amount = part
            else:
                row.state = R.CANCELLED
                cancelled.append(row)
        DeferredRelease.objects.bulk_update(open_rows, ["amount", "state", "updated_at"])
    schedule.credit_notes = [*schedule.credit_notes, key]
    schedule.save(update_fields=["credit_notes", "state"])
    audit_log(
        actor=None,
        action="deferred_revenue.credit_note",
        obj=schedule,
        summary=f"Credit note {label} credits {credited} {schedule.currency}"
        + (
            f" ({credited_base} {schedule.release_currency})"
            if schedule.release_currency != schedule.currency
            else ""
        )
        + " of "
        f"{schedule.invoice.external_reference} line {schedule.line.line_number}: "
        f"{len(cancelled)} releases cancelled"
        + (f", {reversal.amount} of released revenue reversed" if reversal else "")
        + (f", {left} re-spread over {len(open_rows) - len(cancelled)}" if left > 0 else ""),
        before=before,
        after={
            "left": str(max(left, ZERO)),
            "cancelled": len(cancelled),
            "reversed": str(reversal.amount) if reversal else "0",
        },
    )


def _in_base(schedule: DeferredRevenueSchedule, credited: Decimal) -> Decimal:
    """A credited net (the invoice's currency) in the release currency at the invoice's rate:
    the whole line is exactly its base amount."""
    if schedule.release_currency == schedule.currency:
        return credited
    if credited >= schedule.amount:
        return schedule.base_amount
    return quantize(credited / schedule.exchange_rate, schedule.release_currency)


def credit_note_confirmed(command: OutboxCommand, payload: dict, notes: list[str]) -> None:
    """Follows every confirmed create_credit_note (ledger.outbox.origins.on_confirmed)."""
    note = CreditNote.objects.filter(pk=payload.get("credit_note_id")).first()
    if note is not None:
        deferred_credit_apply(note)


def deferred_credits_catch_up() -> int:
    """Credit notes of ours (copied from invoice lines) posted against invoices with live
    schedules that no handler applied yet (a handler that failed and waits for the sweeper):
    applied before anything is released. One query for the candidates."""
    live = dict(
        DeferredRevenueSchedule.objects.filter(
            state=DeferredRevenueSchedule.State.ACTIVE
        ).values_list("invoice__aiq_transaction_id", "entity_id")
    )
    if not live:
        return 0
    notes = (
        CreditNote.objects.exclude(status=DocumentStatus.DRAFT)
        .filter(
            lines__invoice_line__isnull=False,
            invoice__aiq_transaction_id__in=[t for t in live if t is not None],
        )
        .distinct()
    )
    applied = set(
        key
        for keys in DeferredRevenueSchedule.objects.filter(
            state=DeferredRevenueSchedule.State.ACTIVE
        ).values_list("credit_notes", flat=True)
        for key in keys
    )
    done = 0
    for note in notes:
        if note.pk not in applied:
            deferred_credit_apply(note)
            done += 1
    return done


def schedule_figures(schedule: DeferredRevenueSchedule, today: date) -> dict:
    """Released / due / remaining of one schedule as the screen shows them (from its
    releases, prefetched or not): due = dated today or earlier and not in AIQ yet (queued,
    refused or about to be queued); remaining = dated later; reversed = released revenue taken
    back by a credit note; cancelled = releases a credit note made unnecessary."""
    figures = dict.fromkeys(("released", "due", "remaining", "reversed", "cancelled"), ZERO)
    for release in schedule.releases.all():
        if release.kind == DeferredRelease.Kind.REVERSAL:
            if release.state != R.CANCELLED:
                figures["reversed"] += release.amount
        elif release.state == R.RELEASED:
            figures["released"] += release.amount
        elif release.state == R.CANCELLED:
            figures["cancelled"] += release.amount
        elif release.release_date <= today or release.state != R.SCHEDULED:
            figures["due"] += release.amount
        else:
            figures["remaining"] += release.amount
    figures["months_released"] = sum(
        1
        for r in schedule.releases.all()
        if r.kind == DeferredRelease.Kind.RELEASE and r.state == R.RELEASED
    )
    return figures
