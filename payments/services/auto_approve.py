"""Set-based auto-approval: many auto-approve proposals become plans at once.

The end state is that of plan_auto_approve called for each proposal in the given order: the
same plans and lines, payments' match state (and customer, once approved), proposals' state,
outbox commands (built by plan_outbox.plan_commands, the code plan_hand_to_outbox uses) and
audit entries (plan.propose, then plan.approve or plan.submit, with the same wording), and
the same refusals with the same messages. plan_auto_approve costs a transaction and about
twenty statements per plan; here a chunk of CHUNK proposals costs a few dozen in all.

Per chunk, in one transaction: lock the chunk's payments, their entities, then their invoices
by id (the lock order of plans.py; on SQLite the IMMEDIATE transaction serialises writers),
read what the checks need with a few set-based queries, check each proposal in Python in the
given order (plan_lines.validate_lines, counting what the chunk's earlier plans hold on an
invoice), then write the accepted ones with multi-row INSERTs (core.bulk.insert_rows) and
one UPDATE per state. A refused proposal is reported and skipped without spoiling its chunk;
a chunk that fails never undoes the ones before it.
"""

from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import NamedTuple

from django.db import transaction
from django.db.models import F, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from core.bulk import insert_rows
from ledger.models import Customer, Entity, GLAccount, Invoice
from ledger.outbox.services import outbox_enqueue_many
from payments.models import AllocationPlan, AllocationPlanLine, MatchProposal, Payment
from payments.services.plan_lines import (
    ZERO,
    LineInput,
    PlanRefused,
    line_settles,
    lines_need_approval,
    reserved_elsewhere,
    snapshot_of,
    validate_lines,
)
from payments.services.plan_outbox import payment_bank, plan_commands, require_posted
from payments.services.plans import (
    ALREADY_PLANNED,
    NOT_OPEN,
    approve_summary,
    auto_approve_waits_summary,
    auto_approved_how,
    propose_summary,
)
from staff.services import audit_entry, audit_log_many

State = AllocationPlan.State
CHUNK = 500  # proposals per transaction: locks held briefly, one failure undoes little
_IN_BATCH = 900  # ids per IN (...) (SQLite builds limited to 999 variables)
_STORED = Decimal("0.001")  # MoneyField reads back with three places
PLAN_TYPE = AllocationPlan._meta.label_lower  # audit entries' object_type for a plan


class Refusal(NamedTuple):
    proposal_id: int
    payment_id: int | None
    reason: str  # what plan_auto_approve's PlanRefused said


@dataclass
class AutoApproveReport:
    approved: list[int] = field(default_factory=list)  # plan ids, handed to the outbox
    awaiting_approval: list[int] = field(default_factory=list)  # plan ids, for a checker
    refused: list[Refusal] = field(default_factory=list)

    @property
    def plans(self) -> int:
        return len(self.approved) + len(self.awaiting_approval)


@dataclass
class _Accepted:
    proposal: MatchProposal
    payment: Payment
    lines: list[LineInput]  # as proposed (plan_propose writes them in this order)
    customer_id: int
    on_account: Decimal
    bank: object  # the receiving bank account; None when the plan waits for a checker
    plan_id: int | None = None
    stored_lines: list[LineInput] = field(default_factory=list)  # as read back, by invoice id

    @property
    def approved(self) -> bool:
        return self.bank is not None

    @property
    def state(self) -> str:
        return State.SENT if self.approved else State.AWAITING_APPROVAL


@dataclass
class _Chunk:
    """What the checks of one chunk read, under its locks."""

    proposals: dict[int, MatchProposal]
    lines: dict[int, list[LineInput] | PlanRefused]  # by proposal id
    payments: dict[int, Payment]
    invoices: dict[int, Invoice]
    held: dict[int, Decimal]  # by invoice: what live plans hold, the chunk's own included
    has_plan: set[int]  # payments with a live plan, the chunk's own included
    gl_codes: dict[int, set[str]]  # by entity
    banks: dict = field(default_factory=dict)  # (entity, currency) -> bank or PlanRefused


def plans_auto_approve_many(*, proposal_ids: list[int]) -> AutoApproveReport:
    """plan_auto_approve for each proposal, in the given order, CHUNK per transaction."""
    report = AutoApproveReport()
    proposal_ids = list(proposal_ids)
    for start in range(0, len(proposal_ids), CHUNK):
        batch = proposal_ids[start : start + CHUNK]
        with transaction.atomic():
            chunk = _read_locked(batch)
            accepted, refused = _check(batch, chunk)
            if accepted:
                _write(accepted, chunk.invoices)
        for item in accepted:
            plans = report.approved if item.approved else report.awaiting_approval
            plans.append(item.plan_id)
        report.refused.extend(refused)
    return report


def _read_locked(proposal_ids: list[int]) -> _Chunk:
    """Lock the chunk's payments, their entities and invoices (in that order, by id) and read
    what the checks need, each with one query per batch of ids."""
    proposals = {
        p.pk: p
        for p in _rows(
            MatchProposal.objects.only("id", "payment_id", "rule_kind", "lines"), proposal_ids
        )
    }
    lines = {pk: _coerced(proposal) for pk, proposal in proposals.items()}
    valid_lines = [line for each in lines.values() if isinstance(each, list) for line in each]
    payments = _lock_payments({p.payment_id for p in proposals.values()})
    invoice_ids = {line.invoice_id for line in valid_lines}
    invoices = {
        inv.pk: inv
        for inv in _rows(
            Invoice.objects.select_for_update()
            .only(
                "id",
                "entity_id",
                "customer_id",
                "currency",
                "status",
                "outstanding_amount",
                "aiq_transaction_id",
                "invoice_number",
                "external_reference",
            )
            .order_by("pk"),
            invoice_ids,
        )
    }
    held = {}  # read after the invoice locks, so a plan committed meanwhile is counted
    for batch in _batches(sorted(invoice_ids)):
        held.update(reserved_elsewhere(batch))
    live = AllocationPlan.objects.filter(state__in=AllocationPlan.LIVE)
    has_plan = set(_rows(live.values_list("payment_id", flat=True), payments, "payment_id"))
    return _Chunk(
        proposals, lines, payments, invoices, held, has_plan, _gl_codes(payments, valid_lines)
    )


def _check(proposal_ids: list[int], chunk: _Chunk) -> tuple[list[_Accepted], list[Refusal]]:
    """plan_auto_approve's checks, proposal by proposal in the given order, in Python: what an
    accepted proposal holds counts for the ones after it, a refused one changes nothing."""
    accepted: list[_Accepted] = []
    refused: list[Refusal] = []
    for proposal_id in proposal_ids:
        proposal = chunk.proposals.get(proposal_id)
        if proposal is None:
            refused.append(Refusal(proposal_id, None, f"Proposal #{proposal_id} does not exist."))
            continue
        payment = chunk.payments[proposal.payment_id]
        try:
            lines = chunk.lines[proposal_id]
            if isinstance(lines, PlanRefused):
                raise lines
            if payment.pk in chunk.has_plan:
                raise PlanRefused(ALREADY_PLANNED)
            if proposal.state != MatchProposal.State.OPEN:
                raise PlanRefused(NOT_OPEN.format(state=proposal.get_state_display().lower()))
            customer_id, on_account = validate_lines(
                payment,
                lines,
                payment.customer_id,
                chunk.invoices,
                chunk.held,
                chunk.gl_codes.get(payment.entity_id, ()),
            )
            bank = None
            if not lines_need_approval(payment, lines):
                bank = _receiving_bank(chunk.banks, payment)
                for line in sorted(lines, key=_by_invoice):
                    require_posted(chunk.invoices[line.invoice_id])
        except PlanRefused as error:
            refused.append(Refusal(proposal_id, payment.pk, "; ".join(error.messages)))
            continue
        chunk.has_plan.add(payment.pk)
        for line in lines:  # held as reserved_elsewhere reads it back (three places)
            settles = line_settles(line).quantize(_STORED)
            chunk.held[line.invoice_id] = chunk.held.get(line.invoice_id, ZERO) + settles
        accepted.append(_Accepted(proposal, payment, lines, customer_id, on_account, bank))
    return accepted, refused


def _write(accepted: list[_Accepted], invoices: dict) -> None:
    now = timezone.now()
    plan_ids = dict(
        insert_rows(
            AllocationPlan,
            PLAN_COLUMNS,
            [
                (
                    item.payment.pk,
                    item.proposal.pk,
                    item.customer_id,
                    item.on_account,
                    not item.approved,  # needs_approval
                    item.state,
                    now if item.approved else None,
                )
                for item in accepted
            ],
            returning=("payment", "id"),
        )
    )
    line_rows = []
    for item in accepted:
        item.plan_id = plan_ids[item.payment.pk]
        line_rows.extend(
            (
                item.plan_id,
                line.invoice_id,
                line.amount,
                line.discount_amount,
                line.write_off_amount,
                line.write_off_gl_account_code,
            )
            for line in item.lines
        )
        item.stored_lines = sorted(
            (
                replace(
                    line,
                    amount=line.amount.quantize(_STORED),
                    discount_amount=line.discount_amount.quantize(_STORED),
                    write_off_amount=line.write_off_amount.quantize(_STORED),
                )
                for line in item.lines
            ),
            key=_by_invoice,
        )
    insert_rows(AllocationPlanLine, LINE_COLUMNS, line_rows)
    _update_proposals_and_payments(accepted, now)
    refs = _enqueue(accepted, invoices)
    audit_log_many([entry for item in accepted for entry in _audit(item, refs)])


# the columns the plans and lines get (the rest take their defaults: version 1, no maker)
PLAN_COLUMNS = (
    "payment",
    "proposal",
    "customer",
    "on_account_amount",
    "needs_approval",
    "state",
    "approved_at",
)
LINE_COLUMNS = (
    "plan",
    "invoice",
    "amount",
    "discount_amount",
    "write_off_amount",
    "write_off_gl_account_code",
)


def _update_proposals_and_payments(accepted: list[_Accepted], now) -> None:
    plan_customer = AllocationPlan.objects.filter(
        payment_id=OuterRef("pk"), state=State.SENT
    ).values("customer_id")[:1]  # the plan just made: one live plan per payment
    for start in range(0, len(accepted), _IN_BATCH // 2):
        batch = accepted[start : start + _IN_BATCH // 2]
        payment_ids = [item.payment.pk for item in batch]
        proposal_ids = [item.proposal.pk for item in batch]
        MatchProposal.objects.filter(
            payment_id__in=payment_ids, state=MatchProposal.State.OPEN
        ).exclude(pk__in=proposal_ids).update(state=MatchProposal.State.SUPERSEDED)
        MatchProposal.objects.filter(pk__in=proposal_ids).update(state=MatchProposal.State.ACCEPTED)
        approved = [item.payment.pk for item in batch if item.approved]
        waiting = [item.payment.pk for item in batch if not item.approved]
        if approved:
            Payment.objects.filter(pk__in=approved).update(
                match_state=Payment.MatchState.APPROVED,
                updated_at=now,
                customer_id=Coalesce(F("customer_id"), Subquery(plan_customer)),
            )
        if waiting:
            Payment.objects.filter(pk__in=waiting).update(
                match_state=Payment.MatchState.AWAITING_APPROVAL, updated_at=now
            )


def _enqueue(accepted: list[_Accepted], invoices: dict) -> dict[int, list[str]]:
    """The approved plans' outbox commands in one bulk enqueue; their references per plan."""
    approved = [item for item in accepted if item.approved]
    codes = dict(
        _rows(Customer.objects.values_list("id", "code"), {item.customer_id for item in approved})
    )
    commands, refs = [], {}
    for item in approved:
        built = plan_commands(
            plan_id=item.plan_id,
            payment=item.payment,
            customer_code=codes[item.customer_id],
            bank=item.bank,
            lines=[(line, invoices[line.invoice_id]) for line in item.stored_lines],
            actor=None,
        )
        commands.extend(built)
        refs[item.plan_id] = [command.external_reference for command in built]
    outbox_enqueue_many(commands)
    return refs


def _audit(item: _Accepted, refs: dict[int, list[str]]) -> list:
    """plan_auto_approve's entries: plan.propose, then plan.approve or plan.submit."""
    # the company as audit_entry finds it from a plan object (its payment's)
    plan = {
        "object_type": PLAN_TYPE,
        "object_id": item.plan_id,
        "entity_id": item.payment.entity_id,
    }
    read_back = snapshot_of(
        state=State.DRAFT,
        version=1,
        on_account=item.on_account.quantize(_STORED),
        lines=item.stored_lines,
    )
    propose = audit_entry(
        actor=None,
        action="plan.propose",
        **plan,
        summary=propose_summary(item.payment, len(item.lines), item.on_account, item.proposal),
        after={**read_back, "on_account": item.on_account},  # the plan object's own value
    )
    if not item.approved:
        waits = auto_approve_waits_summary()
        return [propose, audit_entry(actor=None, action="plan.submit", **plan, summary=waits)]
    commands = refs[item.plan_id]
    approve = audit_entry(
        actor=None,
        action="plan.approve",
        **plan,
        summary=approve_summary(auto_approved_how(item.proposal), len(commands)),
        before=read_back,
        after={**read_back, "state": State.SENT, "commands": commands},
    )
    return [propose, approve]


def _coerced(proposal: MatchProposal) -> list[LineInput] | PlanRefused:
    try:
        return [LineInput.coerce(line) for line in proposal.lines]
    except PlanRefused as error:
        return error


def _lock_payments(payment_ids) -> dict[int, Payment]:
    payments = {
        p.pk: p
        for p in _rows(
            Payment.objects.select_for_update()
            .only(
                "id",
                "entity_id",
                "amount",
                "amount_refunded",
                "currency",
                "customer_id",
                "received_at",
                "source",
                "external_id",
                "bank_account_id",
                # the receipt's text and bank account (plan_outbox.plan_commands)
                "bank_reference",
                "description",
                "payer_name",
                "statement_account_id",
            )
            .order_by("pk"),
            payment_ids,
        )
    }
    # The plan services lock a payment together with its entity (_lock_payment's join locks
    # both rows on PostgreSQL); so do we, payments first, or a clerk holding the entity would
    # wait for our invoices while our outbox rows' foreign key waits for the entity.
    entities = {
        e.pk: e
        for e in Entity.objects.select_for_update(of=("self",))
        .select_related("default_bank_account")
        .filter(pk__in={p.entity_id for p in payments.values()})
        .order_by("pk")
    }
    for payment in payments.values():
        payment.entity = entities[payment.entity_id]
    return payments


def _gl_codes(payments: dict[int, Payment], lines: list[LineInput]) -> dict[int, set[str]]:
    """Known GL codes per entity among the chunk's write-off lines (validate_lines checks)."""
    wanted = {
        line.write_off_gl_account_code
        for line in lines
        if line.write_off_amount and line.write_off_gl_account_code
    }
    if not wanted:
        return {}
    entity_ids = {p.entity_id for p in payments.values()}
    known: dict[int, set[str]] = {}
    for entity_id, code in GLAccount.objects.filter(
        entity_id__in=entity_ids, code__in=wanted
    ).values_list("entity_id", "code"):
        known.setdefault(entity_id, set()).add(code)
    return known


def _receiving_bank(banks: dict, payment: Payment):
    key = (
        payment.entity_id,
        payment.source,
        payment.currency,
        payment.statement_account_id,
        payment.bank_account_id,
    )
    if key not in banks:
        try:
            banks[key] = payment_bank(payment)
        except PlanRefused as error:
            banks[key] = error
    if isinstance(banks[key], PlanRefused):
        raise banks[key]
    return banks[key]


def _by_invoice(line) -> int:
    return line.invoice_id


def _batches(ids: list) -> list[list]:
    return [ids[start : start + _IN_BATCH] for start in range(0, len(ids), _IN_BATCH)]


def _rows(queryset, ids, field_name: str = "pk"):
    """The queryset's rows for these ids, sorted ids in batches (so row locks follow id order)."""
    for batch in _batches(sorted(ids)):
        yield from queryset.filter(**{f"{field_name}__in": batch})
