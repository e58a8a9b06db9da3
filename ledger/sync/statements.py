"""Pull customer statements AIQ -> mirror: for the customers whose books moved since their last
statement (statements_due), a batch of customers per GetCustomersStatement call, each
customer's stored statement replaced whole."""

from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from ledger.aiq.errors import AiqConfigurationError, AiqPermanentError
from ledger.aiq.results import as_date, as_decimal, get, unwrap
from ledger.models import (
    CreditNote,
    Customer,
    CustomerStatement,
    CustomerStatementLine,
    Invoice,
    Receipt,
)
from ledger.sync.pull import Progress, _no_progress
from staff.services import audit_log

# GetCustomersStatement takes a list of codes: this many customers per call
STATEMENT_BATCH = 50
# ageing buckets move with the calendar even when nothing is posted, so a statement is pulled
# again at least this often (in effect the day's first pull is a full pass)
STATEMENT_MAX_AGE = timedelta(hours=24)


class StatementsIncomplete(Exception):
    """Some customers' statements could not be pulled; their stored ones stay as they were."""


def _read_since(model):
    return Exists(
        model.objects.filter(customer=OuterRef("customer"), last_synced_at__gt=OuterRef("up_to"))
    )


def statements_due(entity, now: datetime | None = None) -> list[str]:
    """Codes of the customers whose statement should be pulled: never pulled; pulled more than
    STATEMENT_MAX_AGE ago; one of their invoices, receipts or credit notes was read from AIQ
    since (new, or its outstanding moved by an allocation); or AIQ's balance from the balances
    step differs from the statement's (e.g. a journal, which the pull does not apply).

    The transactions step re-reads its overlap window, so a change usually brings its customer
    back here twice. Only customers AIQ knows are asked for: AIQ refuses a batch naming a code
    it does not have (one created here and still waiting in the outbox)."""
    cutoff = (now or timezone.now()) - STATEMENT_MAX_AGE
    outdated = (
        CustomerStatement.objects.filter(entity=entity)
        .filter(
            Q(up_to__lt=cutoff)
            | ~Q(balance=F("customer__balance"))
            | _read_since(Invoice)
            | _read_since(Receipt)
            | _read_since(CreditNote)
        )
        .values("customer_id")
    )
    return list(
        Customer.objects.filter(entity=entity)
        .filter(Q(aiq_account_id__isnull=False) | Q(last_synced_at__isnull=False))
        .filter(Q(statement__isnull=True) | Q(pk__in=outdated))
        .order_by("code")
        .values_list("code", flat=True)
    )


def sync_statements(
    client,
    entity,
    codes: list[str],
    progress: Progress = _no_progress,
    batch_size: int | None = None,
) -> int:
    """Pull the statements of `codes`, a batch per call, and replace each customer's stored one.

    AIQ refuses a whole batch for one bad code (e.g. a customer deleted there), so a refused
    batch is asked again one customer at a time; those still refused keep their stored
    statement and are named in the StatementsIncomplete raised at the end. When every one of
    them is refused the fault is not the codes: it is raised at once, as is any error that is
    not a refusal (AIQ down), leaving the customers not yet pulled as they were."""
    batch_size = batch_size or STATEMENT_BATCH
    stored, refused = 0, {}
    for start in range(0, len(codes), batch_size):
        batch = codes[start : start + batch_size]
        try:
            stored += pull_statements(client, entity, batch)
        except AiqConfigurationError:
            raise
        except AiqPermanentError as batch_error:
            failures = {}
            for code in batch:
                try:
                    stored += pull_statements(client, entity, [code])
                except AiqPermanentError as error:
                    failures[code] = error.message
            if len(batch) > 1 and len(failures) == len(batch):
                raise batch_error
            refused.update(failures)
        progress(stored)
    if refused:
        named = "; ".join(f"{code}: {message}" for code, message in sorted(refused.items()))
        raise StatementsIncomplete(f"{len(refused)} not pulled ({named})")
    return stored


def pull_statements(client, entity, codes: list[str], *, requested_by=None) -> int:
    """One GetCustomersStatement call for `codes`, stored in one transaction; AIQ's errors
    propagate (nothing is stored then). The batch costs the same few queries however many
    customers it names: its statements in one upsert, its old lines in one delete, its new
    lines in one insert. `requested_by`: the person who asked (a customer page); their refresh
    is audited in the storing transaction (the scheduled pull is recorded by its sync run)."""
    if not codes:
        return 0  # an empty list asks AIQ for every customer
    up_to = timezone.now()
    answer = client.get_customers_statement(up_to=up_to, customer_codes=codes, show_zeros=True)
    by_code = {str(get(get(s, "CustomerState"), "CustomerCode")).upper(): s for s in answer}
    with transaction.atomic():
        # in pk order, so two pulls that share customers lock their statements in the same order
        named = Customer.objects.filter(entity=entity, code__in=[c.upper() for c in codes])
        customers = list(named.order_by("pk"))
        # asked with showZeros, so a customer left out has nothing open: an empty statement
        statements = [by_code.get(customer.code) for customer in customers]
        headers = _store_headers(customers, up_to, statements)
        CustomerStatementLine.objects.filter(statement__in=headers).delete()
        CustomerStatementLine.objects.bulk_create(
            [
                line
                for header, statement in zip(headers, statements, strict=True)
                for line in _statement_lines(header, statement)
            ]
        )
        if requested_by is not None:
            audit_log(
                actor=requested_by,
                action="statement.refresh",
                object_type="ledger.customer",
                object_id=",".join(str(c.pk) for c in customers)[:64],
                summary=f"statement of {', '.join(c.code for c in customers)} pulled from AIQ",
                after={"up_to": up_to, "balances": [str(h.balance) for h in headers]},
            )
    return len(customers)


STATEMENT_FIGURES = {
    "balance": "CurrentBalance",
    "days_0_30": "From0To30DaysBalanceBucket",
    "days_30_60": "From30To60DaysBalanceBucket",
    "days_60_90": "From60To90DaysBalanceBucket",
    "days_90_120": "From90To120DaysBalanceBucket",
    "days_120_plus": "From120DaysPlusBalanceBucket",
    "future": "FutureBalanceBucket",
}


def _store_headers(customers, up_to: datetime, statements) -> list[CustomerStatement]:
    """Insert or replace each customer's statement row in one upsert on its unique customer;
    the rows come back with their ids (RETURNING), new and replaced alike."""
    headers = [
        _statement_header(customer, up_to, statement)
        for customer, statement in zip(customers, statements, strict=True)
    ]
    return CustomerStatement.objects.bulk_create(
        headers,
        update_conflicts=True,
        unique_fields=["customer"],
        update_fields=["entity", "up_to", "currency", *STATEMENT_FIGURES],
    )


def _statement_header(customer, up_to: datetime, statement) -> CustomerStatement:
    state = get(statement, "CustomerState") or {}
    figures = {name: as_decimal(get(state, aiq) or 0) for name, aiq in STATEMENT_FIGURES.items()}
    return CustomerStatement(
        entity_id=customer.entity_id,
        customer=customer,
        up_to=up_to,
        currency=customer.currency,
        **figures,
    )


def _statement_lines(header, statement) -> list[CustomerStatementLine]:
    running = Decimal(0)
    lines = []
    for position, row in enumerate(unwrap(get(statement, "TransactionList"), "TransactionState")):
        outstanding = as_decimal(get(row, "OutstandingAmount") or 0)
        running += outstanding
        lines.append(
            CustomerStatementLine(
                statement=header,
                position=position,
                aiq_transaction_id=int(get(row, "TransactionReference")),
                transaction_type=(get(row, "Type") or "")[:40],
                internal_number=(get(row, "InternalNumber") or "")[:50],
                external_reference=(get(row, "ExternalReference") or "")[:100],
                description=(get(row, "Description") or "")[:200],
                transaction_date=as_date(get(row, "TransactionDate")),
                amount=as_decimal(get(row, "Amount") or 0),
                outstanding_amount=outstanding,
                running_balance=running,
            )
        )
    return lines
