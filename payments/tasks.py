"""django-q2 tasks for money in: thin, they take ids and call services (STYLE.md 3).

The queue only wakes work: a lost task is picked up by stripe_events_sweep_task (schedule it
every few minutes) and events missed while the endpoint was down by the nightly catch-up.
"""

from payments.services import stripe_events
from payments.services.auto_match import auto_match_changed
from payments.services.provider_report import clearing_checks_all
from payments.services.smartdebit import SmartDebitNotConfigured, smartdebit_pull
from payments.sources.gocardless_source import (
    gocardless_catch_up_all,
    gocardless_event_process,
    gocardless_events_retry_due,
)


def stripe_event_process_task(event_pk: int) -> str:
    return stripe_events.stripe_event_process(event_pk=event_pk)


def stripe_events_sweep_task() -> int:
    return stripe_events.stripe_events_retry_due()


def stripe_catch_up_task() -> dict:
    return stripe_events.stripe_catch_up_all()


def stripe_import_task() -> dict:
    return stripe_events.stripe_import_all()


def gocardless_event_process_task(event_pk: int) -> str:
    return gocardless_event_process(event_pk=event_pk)


def auto_match_changed_task() -> str:
    report = auto_match_changed()
    return "nothing changed" if report is None else f"{report.proposed} proposed"


def gocardless_events_sweep_task() -> int:
    return gocardless_events_retry_due()


def gocardless_catch_up_task() -> dict:
    return gocardless_catch_up_all()


def smartdebit_pull_task() -> str:
    """Nightly where SmartDebit's API is configured; a no-op otherwise."""
    try:
        pull = smartdebit_pull()
    except SmartDebitNotConfigured:
        return "SmartDebit API not configured"
    return f"{pull.collected} collected, {pull.notices} notices, {len(pull.errors)} problem(s)"


def clearing_checks_task() -> dict:
    """Daily: each provider account's clearing balance in AIQ beside the provider's."""
    return clearing_checks_all()
