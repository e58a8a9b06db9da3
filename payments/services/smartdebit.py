"""SmartDebit through its API, where configured (SMARTDEBIT_API_* settings): each day's
collection report becomes SmartDebit payments (the same rows a portal CSV import makes, one per
collection, idempotent: the same day fetched again changes nothing), and the Bacs reports it
passes on (ARUDD, ADDACS, AUDDIS) are applied as direct_debit_returns applies a file: returned
collections reversed by compensating entries, payers flagged. Nightly with a look-back window,
since SmartDebit publishes ARUDD days after the collection."""

from dataclasses import dataclass, field
from datetime import date, timedelta

from django.utils import timezone

from payments.models import Source
from payments.services.auto_match import auto_match_soon
from payments.services.direct_debit_returns import direct_debit_notices_apply
from payments.services.payment_rows import existing_external_ids
from payments.services.payments import payments_upsert
from payments.sources.bacs_reports import bacs_report_read
from payments.sources.smartdebit_api import (
    REPORT_KINDS,
    SmartDebitClient,
    SmartDebitError,
    read_collection_report,
)
from payments.sources.statement_rows import StatementError, statement_items

LOOK_BACK_DAYS = 7


class SmartDebitNotConfigured(Exception):
    """SMARTDEBIT_API_URL, _USER, _PASSWORD and SMARTDEBIT_PSLID are not all set."""


@dataclass
class SmartDebitPull:
    days: int = 0
    collected: int = 0  # new payments
    refreshed: int = 0  # collections already here (left as they are)
    rejected: int = 0  # collections SmartDebit reports as rejected (no money)
    reports: int = 0  # Bacs reports read
    notices: int = 0  # new notices applied
    reversed: int = 0
    errors: list[str] = field(default_factory=list)


def _client(client) -> SmartDebitClient:
    client = client or SmartDebitClient.from_settings()
    if client is None:
        raise SmartDebitNotConfigured(
            "SmartDebit's API is not configured (SMARTDEBIT_API_URL, SMARTDEBIT_API_USER, "
            "SMARTDEBIT_API_PASSWORD, SMARTDEBIT_PSLID)."
        )
    return client


def smartdebit_collections_import(*, day: date, client=None, actor=None) -> SmartDebitPull:
    """One day's collection report into payments. A report with a bad row stores nothing of
    that day (as a file would be refused) and says why."""
    client = _client(client)
    pull = SmartDebitPull(days=1)
    parsed, entries = read_collection_report(client.collection_report(day))
    parsed = statement_items(parsed, entries, source=Source.SMARTDEBIT, filename=f"api:{day}")
    pull.rejected = parsed.skipped
    if parsed.errors:
        pull.errors.extend(f"{day:%d/%m/%Y}: {e}" for e in parsed.errors[:20])
        return pull
    # collections already here are left as they are: one an ARUDD since returned is Failed,
    # and the same report fetched again must not make it Succeeded
    known = existing_external_ids(
        source=Source.SMARTDEBIT, external_ids=[i.external_id for i in parsed.items]
    )
    new = [i for i in parsed.items if i.external_id not in known]
    result = payments_upsert(items=new, origin="smartdebit.api", actor=actor)
    auto_match_soon(payment_ids=list(result.ids.values()))
    pull.collected, pull.refreshed = result.created, len(known)
    return pull


def smartdebit_reports_apply(
    *, since: date, until: date, client=None, actor=None
) -> SmartDebitPull:
    """Every ARUDD, ADDACS and AUDDIS report SmartDebit lists in the window, applied once
    (notices already known change nothing)."""
    client = _client(client)
    pull = SmartDebitPull()
    for kind in REPORT_KINDS:
        for report_id in client.report_ids(kind, since, until):
            content = client.report_file(kind, report_id)
            try:
                _, notices = bacs_report_read(content, kind=kind)
            except StatementError as error:
                pull.errors.append(f"{kind} {report_id}: {error}")
                continue
            result = direct_debit_notices_apply(
                notices=notices, actor=actor, filename=f"smartdebit:{kind}:{report_id}"
            )
            pull.reports += 1
            pull.notices += result.notices
            pull.reversed += len(result.reversed)
    return pull


def smartdebit_pull(*, since: date | None = None, until: date | None = None, client=None):
    """Collection reports of each day in the window, then the Bacs reports of the window."""
    client = _client(client)
    until = until or timezone.localdate()
    since = since or until - timedelta(days=LOOK_BACK_DAYS)
    total = SmartDebitPull()
    day = since
    while day <= until:
        try:
            pull = smartdebit_collections_import(day=day, client=client)
        except (SmartDebitError, StatementError) as error:
            total.errors.append(str(error))
        else:
            total.collected += pull.collected
            total.refreshed += pull.refreshed
            total.rejected += pull.rejected
            total.errors.extend(pull.errors)
        total.days += 1
        day += timedelta(days=1)
    try:
        reports = smartdebit_reports_apply(since=since, until=until, client=client)
    except SmartDebitError as error:
        total.errors.append(str(error))
    else:
        total.reports, total.notices, total.reversed = (
            reports.reports,
            reports.notices,
            reports.reversed,
        )
        total.errors.extend(reports.errors)
    return total
