"""Sales invoices in: checked, deduplicated, held or queued for AIQ exactly once.

API entry point (the REST API, uploads and Stripe Billing all call it):

    sales_invoices_submit(entity=..., source=..., invoices=[NormalisedInvoice, ...], actor=...)
    sales_invoice_submit(entity=..., source=..., invoice=NormalisedInvoice, actor=...)

Idempotent on (entity, external reference): the same invoice again returns the row it made;
a changed invoice is accepted only while nothing of it has gone to AIQ, and refused once AIQ
has (or may have) it, with a message saying to raise a credit note.

Order of work per invoice: its customer first (created from AIQ's defaults when unknown, an
approver first if the entity asks), then the credit check (warn / hold / refuse per entity),
then the batch's approval (above the entity's total), then the outbox. Batch invoices of known
customers go in bulk commands of up to BULK_SIZE; the others one command each, after their
customer's command.
"""

import hashlib
import json
from dataclasses import asdict

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, models, transaction
from django.utils import timezone

from core.bulk import insert_rows
from ledger.aiq.results import as_decimal, get
from ledger.customers import customer_ensure_payload, customer_ensure_reference
from ledger.departments import department_problems
from ledger.models import Customer, Entity, OutboxCommand
from ledger.outbox.services import NewCommand, outbox_enqueue_many
from ledger.outbox.wake import wake_for
from sales import outbox as kinds
from sales.models import (
    BackToBackPair,
    InvoiceSource,
    InvoiceType,
    SalesBatch,
    SalesInvoice,
    SalesInvoiceLine,
    SalesSettings,
)
from sales.normalised import NormalisedInvoice
from sales.services.after_posting import sales_invoices_after_posting
from sales.services.credit import aiq_balances, credit_check
from sales.services.credit_notes import sales_credit_notes_release
from sales.services.deferred import deferrals_create, deferred_problems
from sales.services.paid_orders import paid_order_problems, paid_orders_follow
from sales.signals import sales_invoices_settled
from staff.models import Role
from staff.services import audit_entry, audit_log, audit_log_many, user_has_role

State = SalesInvoice.State
# below this many batch invoices of known customers, one command each (a bulk of 2 saves
# nothing worth the coarser retry)
BULK_MIN = 5
CREDIT_NOTE_MESSAGE = (
    "AIQ already has invoice {ref}{txn}: it cannot be changed. Raise a credit note for it "
    "and send the corrected invoice with a new reference."
)


def settings_for(entity: Entity) -> SalesSettings:
    found = SalesSettings.objects.filter(entity=entity).first()
    return found or SalesSettings(entity=entity)


def content_hash(invoice: NormalisedInvoice) -> str:
    """sha256 of the invoice's content (not its source rows). The same text as
    json.dumps(asdict(invoice)) without "rows", built without asdict's deep copy (a third of a
    10,000-invoice submission's time went there): stored hashes stay valid."""
    data = dict(vars(invoice))
    data.pop("rows", None)
    data["lines"] = [dict(vars(line)) for line in invoice.lines]
    data["paid"] = dict(vars(invoice.paid)) if invoice.paid is not None else None
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def invoice_type_for(source: InvoiceSource, invoice: NormalisedInvoice) -> tuple[str, str]:
    """(type, the reason shown with it)."""
    needs = invoice.needs_item_invoice()
    if source.invoice_type == InvoiceType.ITEM:
        return InvoiceType.ITEM, source.type_reason or "The source uses item invoices."
    if needs:
        return (
            InvoiceType.ITEM,
            f"{source.name} uses batch invoices, but this invoice needs an item invoice: {needs}.",
        )
    return InvoiceType.BATCH, source.type_reason or "The source computes VAT."


def _require_clerk(actor) -> None:
    if actor is not None and not user_has_role(actor, Role.CLERK):
        raise PermissionDenied("Only staff can send invoices to AIQ.")


def sales_invoice_submit(
    *, entity: Entity, source: InvoiceSource, invoice: NormalisedInvoice, actor=None
) -> SalesInvoice:
    return sales_invoices_submit(entity=entity, source=source, invoices=[invoice], actor=actor)[0]


def sales_invoices_submit(
    *,
    entity: Entity,
    source: InvoiceSource,
    invoices: list[NormalisedInvoice],
    actor=None,
    batch: SalesBatch | None = None,
    after: OutboxCommand | None = None,
) -> list[SalesInvoice]:
    """Store the invoices and queue them (or hold them); their rows in the given order.
    ValidationError naming every problem when one of them cannot be accepted: then nothing
    of the call is stored. `after`: a command they wait for in the outbox (the purchase half
    of a back-to-back pair): refused there, they are held for a person."""
    _require_clerk(actor)
    if source.entity_id != entity.pk:
        raise ValidationError(f"Source {source.code} belongs to another company.")
    problems = []
    for invoice in invoices:
        problems += [f"{invoice.external_reference or '?'}: {e}" for e in invoice.check()]
    config = settings_for(entity)
    for invoice in invoices:
        problems += [
            f"{invoice.external_reference or '?'}: {e}"
            for e in deferred_problems(
                entity,
                invoice,
                config.deferred_revenue_gl_account_code,
                source.default_gl_account_code,
            )
        ]
    refused = department_problems(
        entity, {line.department for invoice in invoices for line in invoice.lines}
    )
    for invoice in invoices:
        for number, line in enumerate(invoice.lines, start=1):
            if line.department in refused:
                problems.append(
                    f"{invoice.external_reference or '?'}: line {number}: {refused[line.department]}"
                )
    problems += paid_order_problems(entity.pk, invoices)
    seen: dict[str, str] = {}
    digests: dict[int, str] = {}  # id(invoice) -> its content hash, computed once
    for invoice in invoices:
        digest = digests[id(invoice)] = content_hash(invoice)
        if seen.get(invoice.external_reference, digest) != digest:
            problems.append(f"{invoice.external_reference}: given twice with different content")
        seen[invoice.external_reference] = digest
    if problems:
        raise ValidationError(problems)
    with transaction.atomic():
        existing = {
            row.external_reference: row
            for row in SalesInvoice.objects.select_for_update().filter(
                entity=entity, external_reference__in=list(seen)
            )
        }
        rows, to_store, replaced, taken = [], [], [], set()
        for invoice in invoices:
            row = existing.get(invoice.external_reference)
            if row is not None:
                if row.content_hash == seen[invoice.external_reference]:
                    rows.append(row)  # the same invoice again: nothing to do
                    continue
                _refuse_edit(row)
                replaced.append(row)
            if invoice.external_reference not in taken:  # given twice: stored once
                taken.add(invoice.external_reference)
                to_store.append((invoice, row))
            rows.append(invoice.external_reference)
        # each row's state is decided in memory (customer, credit check, batch approval) and
        # stored once, in multi-row INSERTs: no UPDATE of thousands of rows afterwards
        new = _rows(entity, source, to_store, batch, actor, digests, config)
        if new:
            customers = _route(entity, new, batch)
            _store(new, source)
            sales_invoices_queue(
                [r for r in new if r.state == State.QUEUED], customers, actor, after
            )
            audit_log_many(
                [
                    audit_entry(
                        actor=actor,
                        action="sales_invoice.replace"
                        if row in replaced
                        else "sales_invoice.submit",
                        obj=row,
                        summary=f"{row.external_reference} from {source.code}: "
                        f"{row.gross_amount} {row.currency}, {row.get_state_display()}",
                        after={"state": row.state, "gross": str(row.gross_amount)},
                    )
                    for row in new
                ]
            )
            # money of a paid order that came before it: linked to it now, off matching
            paid_orders_follow([row for row in new if row.paid])
        stored = {row.external_reference: row for row in new}
        rows = [stored[r] if isinstance(r, str) else r for r in rows]
    return rows


def _refuse_edit(row: SalesInvoice) -> None:
    if row.state in SalesInvoice.IN_AIQ or row.command_id is not None:
        txn = f" (transaction {row.aiq_transaction_id})" if row.aiq_transaction_id else ""
        raise ValidationError(CREDIT_NOTE_MESSAGE.format(ref=row.external_reference, txn=txn))


def _fields(entity, source, invoice: NormalisedInvoice, batch, actor, digest=None) -> dict:
    kind, reason = invoice_type_for(source, invoice)
    return dict(
        entity=entity,
        source=source,
        batch=batch,
        external_reference=invoice.external_reference,
        customer_code=invoice.customer_code,
        customer_name=invoice.customer_name,
        customer_email=invoice.customer_email,
        invoice_date=invoice.invoice_date,
        due_date=invoice.due_date,
        currency=invoice.currency.upper(),
        description=invoice.description[:500],
        invoice_type=kind,
        type_reason=reason,
        net_amount=invoice.net_amount,
        tax_amount=invoice.tax_amount,
        gross_amount=invoice.gross_amount,
        paid=({k: str(v) for k, v in asdict(invoice.paid).items()} if invoice.paid else None),
        content_hash=digest or content_hash(invoice),
        state=State.QUEUED,
        held_reason="",
        credit_figures={},
        error="",
        created_by=actor,
    )


def _rows(entity, source, todo: list[tuple], batch, actor, digests, config) -> list[SalesInvoice]:
    """The rows to store, unsaved (a replaced one: its row with the new content), each with
    its normalised invoice (`_normalised`) and its lines (`_lines`, unsaved)."""
    out = []
    for invoice, replace in todo:
        fields = _fields(entity, source, invoice, batch, actor, digests.get(id(invoice)))
        if replace is not None:
            for name, value in fields.items():
                setattr(replace, name, value)
            row = replace
        else:
            row = SalesInvoice(**fields)
        row._normalised = invoice
        row._lines = [
            SalesInvoiceLine(
                invoice=row,
                line_number=number,
                description=line.description[:500],
                net_amount=line.net_amount,
                tax_code=line.tax_code,
                tax_amount=line.tax_amount,
                item_code=line.item_code,
                department=line.department,
                gl_account_code=line.gl_account_code or source.default_gl_account_code,
                order_number=line.order_number,
                delivery_date=line.delivery_date,
                quantity=line.quantity,
                deferred_months=line.deferred_months,
                # the account it posts to is fixed when the invoice is accepted
                deferred_gl_account_code=config.deferred_revenue_gl_account_code
                if line.deferred_months
                else "",
            )
            for number, line in enumerate(invoice.lines, start=1)
        ]
        out.append(row)
    return out


_LINE_COLUMNS = (
    "invoice",
    "line_number",
    "description",
    "net_amount",
    "tax_code",
    "tax_amount",
    "item_code",
    "department",
    "gl_account_code",
    "order_number",
    "delivery_date",
    "quantity",
    "deferred_months",
    "deferred_gl_account_code",
)


def _column_value(value):
    return value.pk if isinstance(value, models.Model) else value


def _store(rows: list[SalesInvoice], source: InvoiceSource) -> None:
    """Write the rows as decided (new ones in multi-row INSERTs, core.bulk.insert_rows; a
    replaced one over its row, its old lines deleted) and their lines."""
    fresh = [row for row in rows if row.pk is None]
    for row in rows:
        if row.pk is not None:
            row.lines.all().delete()
            row.save()
    if fresh:
        names = list(_fields(source.entity, source, fresh[0]._normalised, None, None, "-"))
        ids = dict(
            insert_rows(
                SalesInvoice,
                names,
                [[_column_value(getattr(row, name)) for name in names] for row in fresh],
                returning=("external_reference", "id"),
            )
        )
        for row in fresh:
            row.pk = ids[row.external_reference]
            row._state.adding = False
            row._state.db = "default"
    insert_rows(
        SalesInvoiceLine,
        _LINE_COLUMNS,
        [
            [row.pk, *(getattr(line, name) for name in _LINE_COLUMNS[1:])]
            for row in rows
            for line in row._lines
        ],
    )


def _customers(entity: Entity, rows: list[SalesInvoice]) -> tuple[dict, dict]:
    """(the mirror's customers of these invoices by code, AIQ's balances by code). A customer
    the mirror lacks is added to it; one AIQ has is given its account id (no ensure_customer
    needed); one AIQ lacks is new (`_new_customer` on its invoices)."""
    codes = {row.customer_code for row in rows}
    known = {c.code: c for c in Customer.objects.filter(entity=entity, code__in=codes)}
    for row in rows:
        if row.customer_code not in known:
            known[row.customer_code] = Customer.objects.create(
                entity=entity,
                code=row.customer_code,
                name=row.customer_name,
                email=row.customer_email,
                currency=row.currency,
            )
    balances = aiq_balances(entity, list(known.values()))
    for code, customer in known.items():
        info = balances.get(code)
        if info is not None and not customer.aiq_account_id:
            customer.aiq_account_id = int(get(info, "AccountID"))
            customer.save(update_fields=["aiq_account_id", "updated_at"])
    for row in rows:
        row._new_customer = row.customer_code not in balances
    return known, balances


def _route(entity: Entity, rows: list[SalesInvoice], batch: SalesBatch | None) -> dict:
    """Customer approval, credit check, batch approval: each row's state, decided on the
    unsaved rows. The mirror's customers of the rows, by code."""
    config = settings_for(entity)
    customers, balances = _customers(entity, rows)
    for row in rows:
        if row._new_customer and config.approve_new_customers:
            row.state = State.HELD_CUSTOMER
            row.held_reason = (
                f"{row.customer_code} ({row.customer_name}) is a new customer: an approver "
                "must agree before AIQ creates it."
            )
    queued = [r for r in rows if r.state == State.QUEUED]
    credit_check(entity, config, queued, customers, balances)
    if batch is not None and batch.state == SalesBatch.State.AWAITING_APPROVAL:
        for row in rows:
            if row.state == State.QUEUED:
                row.state = State.AWAITING_BATCH
    return customers


def _lines_of(row: SalesInvoice) -> list[SalesInvoiceLine]:
    lines = getattr(row, "_lines", None)
    return lines if lines is not None else list(row.lines.order_by("line_number"))


def _payload_invoice(row: SalesInvoice) -> dict:
    paid = {"paid": row.paid} if row.paid else {}
    return {
        **paid,
        "sales_invoice_id": row.pk,
        "external_reference": row.external_reference,
        "customer_code": row.customer_code,
        "invoice_date": row.invoice_date.isoformat(),
        "due_date": row.due_date.isoformat() if row.due_date else None,
        "currency": row.currency,
        "description": row.description,
        "lines": [
            {
                "net_amount": str(line.net_amount),
                "tax_amount": str(line.tax_amount),
                "tax_code": line.tax_code,
                "description": line.description,
                "item_code": line.item_code,
                "department": line.department,
                # a deferred line posts to the deferred revenue account; its own GL account
                # gets the revenue month by month (sales/services/deferred.py)
                "gl_account_code": line.deferred_gl_account_code
                if line.deferred_months
                else line.gl_account_code,
                "order_number": line.order_number,
                "delivery_date": line.delivery_date.isoformat() if line.delivery_date else None,
                "quantity": str(line.quantity),
            }
            for line in _lines_of(row)
        ],
    }


def _waits_for(rows: list[SalesInvoice], after) -> dict[int, OutboxCommand | int]:
    """Invoice id -> the command it waits for: `after`, else the purchase half of the
    back-to-back pair it belongs to (an invoice released from a hold still waits for it)."""
    if after is not None:
        return {r.pk: after for r in rows}
    pairs = BackToBackPair.objects.filter(entity_id=rows[0].entity_id)
    if not pairs.exists():  # the usual case: no look-up per chunk of a large upload
        return {}
    found = {}
    for start in range(0, len(rows), 500):
        found.update(
            pairs.filter(
                sales_invoice__in=[r.pk for r in rows[start : start + 500]],
                purchase__command__isnull=False,
            ).values_list("sales_invoice_id", "purchase__command_id")
        )
    return found


def sales_invoices_queue(
    rows: list[SalesInvoice], customers: dict | None, actor, after: OutboxCommand | None = None
) -> None:
    """Queue these (state queued) invoices: customers first, then the invoices, in bulk where
    they can be. Inside the caller's transaction. An invoice that waits for another command
    (`_waits_for`) goes alone, its customer's command waiting for that command too."""
    if not rows:
        return
    waits = {
        pk: (c if isinstance(c, OutboxCommand) else OutboxCommand.objects.get(pk=c))
        for pk, c in _waits_for(rows, after).items()
    }
    entity = rows[0].entity
    if customers is None:
        customers = {
            c.code: c
            for c in Customer.objects.filter(
                entity=entity, code__in={r.customer_code for r in rows}
            )
        }
    commands: list[NewCommand] = []
    customer_commands: dict[str, NewCommand] = {}
    for code in sorted({r.customer_code for r in rows}):
        customer = customers[code]
        if customer.aiq_account_id:
            continue
        waiting = [waits[r.pk] for r in rows if r.customer_code == code and r.pk in waits]
        customer_commands[code] = NewCommand(
            entity=entity,
            kind=OutboxCommand.Kind.ENSURE_CUSTOMER,
            external_reference=customer_ensure_reference(customer),
            payload=customer_ensure_payload(customer),
            depends_on=waiting[0] if waiting else None,
            origin_type="customer",
            origin_id=customer.pk,
            created_by=actor,
        )
    commands += customer_commands.values()
    bulk = [
        r
        for r in rows
        if r.invoice_type == InvoiceType.BATCH
        and r.customer_code not in customer_commands
        and not r.paid
        and r.pk not in waits
    ]
    if len(bulk) < BULK_MIN:
        bulk = []
    bulk_ids = {r.pk for r in bulk}
    owner: dict[int, NewCommand] = {}
    for start in range(0, len(bulk), kinds.BULK_SIZE):
        chunk = bulk[start : start + kinds.BULK_SIZE]
        command = NewCommand(
            entity=entity,
            kind=kinds.KIND_BULK,
            external_reference=f"SIB-{chunk[0].pk}-{chunk[-1].pk}-{len(chunk)}",
            payload={"invoices": [_payload_invoice(r) for r in chunk]},
            origin_type=kinds.ORIGIN,
            origin_id=chunk[0].pk,
            created_by=actor,
        )
        commands.append(command)
        for r in chunk:
            owner[r.pk] = command
    for r in rows:
        if r.pk in bulk_ids:
            continue
        kind = kinds.KIND_ITEM if r.invoice_type == InvoiceType.ITEM else kinds.KIND_BATCH
        if r.paid:
            kind = kinds.KIND_PAID
        command = NewCommand(
            entity=entity,
            kind=kind,
            external_reference=f"SI-{r.pk}",
            payload={"invoice": _payload_invoice(r)},
            depends_on=customer_commands.get(r.customer_code) or waits.get(r.pk),
            origin_type=kinds.ORIGIN,
            origin_id=r.pk,
            created_by=actor,
        )
        commands.append(command)
        owner[r.pk] = command
    ids = outbox_enqueue_many(commands)
    id_of = {id(c): pk for c, pk in zip(commands, ids, strict=True)}
    bulk_pks = sorted({id_of[id(owner[r.pk])] for r in bulk})
    if len(bulk_pks) > 1:
        # a bulk command is 100 invoices' worth of AIQ calls: wake a drain per bulk (at most
        # one per worker) rather than one per OUTBOX_BATCH_SIZE commands
        workers = settings.Q_CLUSTER.get("workers", 1)
        transaction.on_commit(lambda: [wake_for([pk]) for pk in bulk_pks[:workers]])
    by_command: dict[int, list[int]] = {}
    for r in rows:
        r.command_id = id_of[id(owner[r.pk])]
        r.state = State.QUEUED
        by_command.setdefault(r.command_id, []).append(r.pk)
    for command_id, pks in by_command.items():  # one UPDATE per command (a bulk: 100 rows)
        SalesInvoice.objects.filter(pk__in=pks).update(command_id=command_id, state=State.QUEUED)


# --- verdicts from the outbox (origin "sales_invoice") ----------------------------------------


def _update_rows(rows: list[SalesInvoice], names: tuple[str, ...]) -> None:
    """One UPDATE per row, sent as one executemany: a bulk's 100 rows each get their own AIQ
    id, which bulk_update writes as one CASE per column (a second per bulk, most of it
    compiling the SQL)."""
    meta = SalesInvoice._meta
    quote = connection.ops.quote_name
    fields = [meta.get_field(name) for name in (*names, "updated_at")]
    now = timezone.now()
    sets = ", ".join(f"{quote(field.column)} = %s" for field in fields)
    params = [
        [
            *(
                field.get_db_prep_save(getattr(row, field.attname), connection)
                for field in fields[:-1]
            ),
            fields[-1].get_db_prep_save(now, connection),
            row.pk,
        ]
        for row in rows
    ]
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {quote(meta.db_table)} SET {sets} WHERE {quote(meta.pk.column)} = %s", params
        )


def sales_invoices_settle(*, command: OutboxCommand, result: dict) -> None:
    """The command is confirmed: each invoice is posted (ours), linked (was there before) or
    failed (AIQ refused that one of a bulk). Idempotent."""
    invoices = result.get("invoices", {})
    refused = result.get("refused", {})
    changed = []
    rows = (
        SalesInvoice.objects.select_for_update(of=("self",))
        .select_related("entity", "source")
        .filter(command=command)
    )
    for row in rows:
        if row.state in SalesInvoice.IN_AIQ:
            continue
        hit = invoices.get(row.external_reference)
        if hit:
            row.state = State.LINKED if hit.get("linked") else State.POSTED
            row.aiq_transaction_id = int(hit["transaction_id"])
            row.receipt_transaction_id = hit.get("receipt_transaction_id")
            row.aiq_invoice_id = hit.get("invoice_id") or row.aiq_invoice_id
            row.error = ""
            aiq_amount = hit.get("amount")
            if hit.get("linked") and aiq_amount and as_decimal(aiq_amount) != row.gross_amount:
                row.error = (
                    f"AIQ's invoice under this reference is {as_decimal(aiq_amount)} "
                    f"{row.currency}, the source's is {row.gross_amount}: check it in AIQ."
                )
            if hit.get("extra_ids"):
                row.error = (
                    f"AIQ holds more than one invoice with this reference: {hit['extra_ids']}"
                )
        elif row.external_reference in refused:
            row.state = State.FAILED
            row.error = refused[row.external_reference]
        else:
            continue
        changed.append(row)
    if changed:
        _update_rows(
            changed,
            ("state", "aiq_transaction_id", "aiq_invoice_id", "receipt_transaction_id", "error"),
        )
        audit_log_many(
            [
                audit_entry(
                    actor=None,
                    action=f"sales_invoice.{row.state}",
                    obj=row,
                    summary=f"{row.external_reference}: {row.get_state_display()}"
                    + (f", transaction {row.aiq_transaction_id}" if row.aiq_transaction_id else "")
                    + (f" ({row.error})" if row.error else ""),
                    after={"state": row.state, "transaction_id": row.aiq_transaction_id},
                )
                for row in changed
            ]
        )
    in_aiq = [r for r in changed if r.state in SalesInvoice.IN_AIQ]
    sales_invoices_after_posting(in_aiq)
    sales_credit_notes_release(in_aiq)
    deferrals_create(changed)
    if changed:
        sales_invoices_settled.send(sender=SalesInvoice, rows=changed)


def sales_invoices_fail(*, command: OutboxCommand, message: str, parked: bool = False) -> None:
    rows = list(
        SalesInvoice.objects.select_for_update()
        .filter(command=command)
        .exclude(state__in=SalesInvoice.IN_AIQ)
    )
    for row in rows:
        row.state = State.FAILED
        row.error = ("Waits for a person: " if parked else "") + message
    SalesInvoice.objects.bulk_update(rows, ["state", "error"])
    if rows:
        audit_log_many(
            [
                audit_entry(
                    actor=None,
                    action="sales_invoice.failed",
                    obj=row,
                    summary=f"{row.external_reference}: {row.error}"[:500],
                    after={"state": row.state},
                )
                for row in rows
            ]
        )
        sales_invoices_settled.send(sender=SalesInvoice, rows=rows)


# --- people's decisions ----------------------------------------------------------------------


def _require_approver(actor, row_maker) -> None:
    if not user_has_role(actor, Role.APPROVER):
        raise PermissionDenied("Only an approver can do this.")
    if row_maker is not None and row_maker == actor.pk:
        raise PermissionDenied("An approver never approves what they made.")


def sales_invoice_release(*, invoice: SalesInvoice, actor) -> SalesInvoice:
    """An approver agrees to a held invoice (credit check or new customer): it is queued."""
    with transaction.atomic():
        row = SalesInvoice.objects.select_for_update().get(pk=invoice.pk)
        _require_approver(actor, row.created_by_id)
        if row.state not in (State.HELD_CREDIT, State.HELD_CUSTOMER):
            raise ValidationError(
                f"{row.external_reference} is not held ({row.get_state_display()})."
            )
        before = row.state
        batch_waits = row.batch and row.batch.state == SalesBatch.State.AWAITING_APPROVAL
        row.state = State.AWAITING_BATCH if batch_waits else State.QUEUED
        row.released_by = actor
        row.save(update_fields=["state", "released_by", "updated_at"])
        audit_log(
            actor=actor,
            action="sales_invoice.release",
            obj=row,
            summary=f"{row.external_reference} released ({row.held_reason})"[:500],
            before={"state": before},
            after={"state": row.state},
        )
        if row.state == State.QUEUED:
            sales_invoices_queue([row], None, actor)
    return row


def sales_invoice_cancel(*, invoice: SalesInvoice, actor, reason: str = "") -> SalesInvoice:
    """An approver drops an invoice that AIQ does not have (held, waiting or failed)."""
    with transaction.atomic():
        row = SalesInvoice.objects.select_for_update().get(pk=invoice.pk)
        _require_approver(actor, None)
        if row.state in SalesInvoice.IN_AIQ:
            raise ValidationError(CREDIT_NOTE_MESSAGE.format(ref=row.external_reference, txn=""))
        if row.state == State.QUEUED:
            raise ValidationError("The invoice is on its way to AIQ: cancel its outbox command.")
        before = row.state
        row.state = State.CANCELLED
        row.save(update_fields=["state", "updated_at"])
        audit_log(
            actor=actor,
            action="sales_invoice.cancel",
            obj=row,
            summary=f"{row.external_reference} cancelled {reason}".strip()[:500],
            before={"state": before},
            after={"state": row.state},
        )
        paid_orders_follow([row])  # its payment, if it came, goes back to matching
    return row


def sales_invoice_retry(*, invoice: SalesInvoice, actor) -> SalesInvoice:
    """An approver sends a failed invoice again, in a command of its own (a bulk's other
    invoices are posted already). The duplicate check runs again first."""
    with transaction.atomic():
        row = SalesInvoice.objects.select_for_update().get(pk=invoice.pk)
        _require_approver(actor, None)
        if row.state != State.FAILED:
            raise ValidationError(f"{row.external_reference} has not failed.")
        sales_invoices_retry([row], actor)
    return row


def sales_invoices_retry(rows: list[SalesInvoice], actor) -> None:
    """Send these failed invoices (locked by the caller) again, each in a command of its own,
    audited one by one. Inside the caller's transaction."""
    attempt = timezone.now()
    errors = {row.pk: row.error for row in rows}
    for row in rows:
        row.state = State.QUEUED
        row.command = None
        row.updated_at = attempt
    SalesInvoice.objects.bulk_update(rows, ["state", "command", "updated_at"])
    audit_log_many(
        [
            audit_entry(
                actor=actor,
                action="sales_invoice.retry",
                obj=row,
                summary=f"{row.external_reference} sent again after: {errors[row.pk]}"[:500],
                before={"state": State.FAILED},
                after={"state": State.QUEUED},
            )
            for row in rows
        ]
    )
    _queue_retry(rows, actor, attempt)
    paid_orders_follow(rows)


def _queue_retry(rows: list[SalesInvoice], actor, attempt) -> None:
    commands = []
    for row in rows:
        kind = kinds.KIND_ITEM if row.invoice_type == InvoiceType.ITEM else kinds.KIND_BATCH
        if row.paid:  # an already-paid order stays one: invoice, receipt and allocation at once
            kind = kinds.KIND_PAID
        commands.append(
            NewCommand(
                entity=row.entity,
                kind=kind,
                external_reference=f"SI-{row.pk}-R{attempt:%Y%m%d%H%M%S}",
                payload={"invoice": _payload_invoice(row)},
                origin_type=kinds.ORIGIN,
                origin_id=row.pk,
                created_by=actor,
            )
        )
    ids = outbox_enqueue_many(commands)
    for row, pk in zip(rows, ids, strict=True):
        row.command_id = pk
    SalesInvoice.objects.bulk_update(rows, ["command"])
