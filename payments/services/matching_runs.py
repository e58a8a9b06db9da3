"""An auto-match run: load the indexes, run the engine, write the proposals (or only show them).

Loading is a handful of set-based queries (payments/matching/index.py), matching is the pure
engine, writing is bulk: the run's proposals in big batches, payments' match_state with one
UPDATE per batch and state, and one audit entry for the run. Proposals are suggestions with
their rule, evidence and run id on the row; the decisions taken on them (plans) are audited
one by one. Rank-1 proposals of an auto-approve rule then become plans, set-based in chunks
(services/auto_approve.py), so one refusal never undoes the run or the rest of a chunk.
"""

import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import NamedTuple

import orjson
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from payments.matching.engine import PaymentResult, gc_paused, match_payments, money
from payments.matching.index import (
    add_open_items,
    load_open_items,
    load_payments,
    load_rules,
    load_run_inputs,
    read_open_items,
    with_run_inputs,
)
from payments.models import CROSS_COMPANY, MatchProposal, Payment
from payments.services.aiq_invoice_lookup import invoices_from_aiq
from payments.services.auto_approve import plans_auto_approve_many
from payments.services.cross_company import cross_company_receipts_auto_approve
from payments.services.matching_lease import matching_lease_give_back, matching_lease_take
from payments.services.matching_shares import (
    ShareFailed,
    plan_shares,
    run_shares,
    share_ranges,
)
from staff.services import audit_log

logger = logging.getLogger(__name__)
BATCH = 5000
OPEN = MatchProposal.State.OPEN.value


@dataclass
class RunReport:
    run_id: str
    dry_run: bool
    payments: int = 0
    proposed: int = 0
    needs_review: int = 0
    unmatched: int = 0
    proposal_rows: int = 0
    auto_approved: int = 0
    aiq_mirrored: int = 0  # invoices looked up in AIQ and mirrored by this run
    auto_refused: list = field(default_factory=list)
    timings: dict = field(default_factory=dict)
    # PaymentResult of a run matched in this process (dry runs, small runs, tests); a run
    # matched in shares keeps only what it wrote
    results: list = field(default_factory=list)
    share_timings: list = field(default_factory=list)  # per share: load, match, render, cpu
    by_rule: dict = field(default_factory=dict)
    # payments whose rank-1 proposal its rule auto-approves, in run order (split runs too)
    auto_payment_ids: list = field(default_factory=list)
    started_at: object = None  # when the run began reading (auto_match compares with it)


_CONFIDENCE: dict[int, object] = {}


def _confidence(adapt, per_mille: int):
    """The stored form of a confidence; a thousand values at most, so made once each."""
    value = _CONFIDENCE.get(per_mille)
    if value is None:
        value = _CONFIDENCE[per_mille] = adapt.adapt_decimalfield_value(
            Decimal(per_mille).scaleb(-3), 4, 3
        )
    return value


def proposal_rows(result: PaymentResult, run_id: str, created_at, adapt=None) -> list[tuple]:
    """The engine's ranked candidates for one payment as MatchProposal column values.

    Column order is INSERT_COLUMNS; values are what the model fields would store (thousandths
    for money, JSON text, the backend's datetime/decimal adaptation), see _insert().
    adapt: connection.ops, passed in by a caller writing many (the proxy costs per access).
    """
    payment = result.payment
    payment_id = payment.id
    currency = payment.currency
    adapt = adapt or connection.ops
    zero = money(0, currency)
    notes = result.notes
    rows = []
    for rank, candidate in enumerate(result.candidates, start=1):
        evidence = candidate.evidence
        if notes or (rank == 1 and result.needs_review):
            evidence = dict(evidence)
            if notes:
                evidence["notes"] = notes
            if rank == 1 and result.needs_review:
                evidence["needs_review"] = True
        lines = [
            {
                "invoice_id": invoice_id,
                "amount": money(amount, currency),
                "discount_amount": money(discount, currency) if discount else zero,
                "write_off_amount": money(write_off, currency) if write_off else zero,
                "write_off_gl_account_code": gl,
            }
            for invoice_id, amount, discount, write_off, gl in candidate.lines
        ]
        rule = candidate.rule
        rows.append(
            (
                payment_id,
                rule.id,
                rule.kind,
                rank,
                _confidence(adapt, candidate.confidence),
                candidate.explanation[:500],
                # orjson: a proposal's JSON in a fifth of json.dumps' time (the run writes
                # two per proposal); the text is what JSONField stores and reads back
                orjson.dumps(evidence).decode(),
                orjson.dumps(lines).decode(),
                candidate.on_account,  # MoneyField stores thousandths
                OPEN,
                run_id,
                created_at,
            )
        )
    return rows


INSERT_COLUMNS = (
    "payment",
    "rule",
    "rule_kind",
    "rank",
    "confidence",
    "explanation",
    "evidence",
    "lines",
    "on_account_amount",
    "state",
    "run_id",
    "created_at",
)


def _insert(rows: list[tuple]) -> None:
    """executemany straight to the table: at 100,000+ rows Django's per-field preparation in
    bulk_create costs more than the database does (bench/bench_matching.py measures both)."""
    meta = MatchProposal._meta
    columns = ", ".join(
        connection.ops.quote_name(meta.get_field(name).column) for name in INSERT_COLUMNS
    )
    values = ", ".join(
        _json_parameter() if name in ("evidence", "lines") else "%s" for name in INSERT_COLUMNS
    )
    sql = f"INSERT INTO {connection.ops.quote_name(meta.db_table)} ({columns}) VALUES ({values})"
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def _execute_per_row(sql: str, rows: list[tuple]) -> None:
    """One parameterised statement per row, sent with executemany: for 100,000 ids this is
    far cheaper than IN-lists, whose values Django prepares one by one."""
    with connection.cursor() as cursor:
        for start in range(0, len(rows), BATCH):
            cursor.executemany(sql, rows[start : start + BATCH])


def _supersede_open_proposals(payment_ids: list[int]) -> None:
    """Earlier runs' open proposals for these payments give way to this run's."""
    open_state = MatchProposal.State.OPEN
    if len(payment_ids) <= BATCH:  # a few payments (a webhook's): one UPDATE does it
        MatchProposal.objects.filter(payment_id__in=payment_ids, state=open_state).update(
            state=MatchProposal.State.SUPERSEDED
        )
        return
    table = connection.ops.quote_name(MatchProposal._meta.db_table)
    with connection.cursor() as cursor:
        # a full run takes unmatched payments, which usually have none: find them first
        cursor.execute(f"SELECT DISTINCT payment_id FROM {table} WHERE state = %s", [open_state])
        having_open = {row[0] for row in cursor.fetchall()}
    rows = [
        (MatchProposal.State.SUPERSEDED, payment_id, open_state)
        for payment_id in payment_ids
        if payment_id in having_open
    ]
    _execute_per_row(f"UPDATE {table} SET state = %s WHERE payment_id = %s AND state = %s", rows)


def _json_parameter() -> str:
    return "CAST(%s AS jsonb)" if connection.vendor == "postgresql" else "%s"


def _mark_proposed(run_id: str) -> None:
    """Payments with proposals of this run show as proposed (unless a person moved them on
    meanwhile): one set-based UPDATE over the run's rank-1 rows (index proposal_run)."""
    payments = connection.ops.quote_name(Payment._meta.db_table)
    proposals = connection.ops.quote_name(MatchProposal._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {payments} SET match_state = %s, match_notes = {_json_parameter()} "
            "WHERE match_state IN (%s, %s) AND id IN "
            f"(SELECT payment_id FROM {proposals} WHERE run_id = %s AND rank = 1)",
            [
                Payment.MatchState.PROPOSED,
                "{}",
                Payment.MatchState.UNMATCHED,
                Payment.MatchState.PROPOSED,
                run_id,
            ],
        )


def _note_unmatched(run_id: str, unmatched: list[tuple]) -> None:
    """Why the run proposed nothing, on each unmatched payment (for its page)."""
    table = connection.ops.quote_name(Payment._meta.db_table)
    _execute_per_row(
        f"UPDATE {table} SET match_notes = {_json_parameter()} WHERE id = %s",
        [
            (orjson.dumps({"run_id": run_id, "notes": list(notes)}).decode(), payment_id)
            for payment_id, notes in unmatched
        ],
    )


class Outcome(NamedTuple):
    """One payment's result as the run writes it (a share's process sends these back)."""

    payment_id: int
    rows: tuple | list  # its proposal rows (INSERT_COLUMNS), rank order; none when unmatched
    needs_review: bool
    rule_kind: str | None  # of its rank-1 proposal
    auto_approve: bool  # its rank-1 proposal's
    notes: tuple | list  # why nothing was proposed (unmatched only)


def render_outcomes(results: list[PaymentResult], run_id: str, created_at) -> list[Outcome]:
    """Each payment's result as the run writes it."""
    adapt = connection.ops
    outcomes = []
    with gc_paused():  # the run's results are alive until the end anyway
        for result in results:
            candidates = result.candidates
            if candidates:
                best = candidates[0]
                outcomes.append(
                    Outcome(
                        result.payment.id,
                        proposal_rows(result, run_id, created_at, adapt),
                        result.needs_review,
                        best.rule.kind,
                        best.auto_approve,
                        (),
                    )
                )
            else:
                outcomes.append(Outcome(result.payment.id, (), False, None, False, result.notes))
    return outcomes


def _count(report: RunReport, summaries) -> None:
    """The run's figures from (proposal rows, needs review, rank-1 rule kind) per payment."""
    for rows, needs_review, kind in summaries:
        report.payments += 1
        if rows:
            report.proposed += 1
            report.needs_review += needs_review
            report.by_rule[kind] = report.by_rule.get(kind, 0) + 1
            report.proposal_rows += rows
        else:
            report.unmatched += 1


def _write(report: RunReport, outcomes: list[Outcome], actor) -> list:
    """Bulk-write proposals and match states in one transaction; returns auto-approve work."""
    auto_ids = []
    with transaction.atomic():
        _supersede_open_proposals([outcome.payment_id for outcome in outcomes])
        pending: list[tuple] = []
        unmatched = []
        for outcome in outcomes:
            if not outcome.rows:
                unmatched.append((outcome.payment_id, outcome.notes))
                continue
            pending.extend(outcome.rows)
            if outcome.auto_approve:
                auto_ids.append(outcome.payment_id)
            if len(pending) >= BATCH:
                _insert(pending)
                pending = []
        if pending:
            _insert(pending)
        _mark_proposed(report.run_id)
        _note_unmatched(report.run_id, unmatched)
        audit_log(
            actor=actor,
            action="matching.run",
            object_type="matching_run",
            object_id=report.run_id,
            summary=f"{report.payments} payment(s): {report.proposed} proposed "
            f"({report.needs_review} need review), {report.unmatched} unmatched; "
            f"{report.proposal_rows} proposal row(s)",
            after={
                "by_rule": report.by_rule,
                "proposal_rows": report.proposal_rows,
                "aiq_invoices_mirrored": report.aiq_mirrored,
                "started_at": report.started_at.isoformat(),
            },
        )
    return auto_ids


def _use_shares(payments: list, dry_run: bool) -> int:
    """How many processes match this run: one for dry runs (they show the results themselves),
    small runs, runs inside a transaction (a child could not see its uncommitted rows) and
    in-memory databases; else MATCHING_WORKERS."""
    workers = settings.MATCHING_WORKERS
    if (
        dry_run
        or workers < 2
        or len(payments) < settings.MATCHING_SHARES_MIN_PAYMENTS
        or connection.in_atomic_block
        or not hasattr(os, "fork")
        or (connection.vendor == "sqlite" and connection.is_in_memory_db())
    ):
        return 1
    return workers


def _match_in_shares(report, rules, payments, inputs, workers, created_at) -> list[Outcome]:
    """Match and render in `workers` forked processes (matching_shares); outcomes in run order.

    Each share reads its range of customers' open invoices while the run plans the shares."""
    ranges = share_ranges(inputs, workers)

    def read(number):
        started = time.perf_counter()
        return read_open_items(ranges[number]), started, time.process_time()

    def plan():
        shares = plan_shares(payments, inputs, len(ranges))
        # each share's payers as the plan identified them (its process reads, never repeats it)
        return [
            (
                share.positions,
                share.extra_customers,
                [payments[p].resolved for p in share.positions],
            )
            for share in shares
        ]

    def work(part, loaded):
        positions, extra_customers, resolved = part
        index, started, cpu = loaded
        if not positions:  # all of its range's customers are in other shares' components
            return positions, [], None
        own = [payments[position] for position in positions]
        for payment, payer in zip(own, resolved, strict=True):
            payment.resolved = payer
        add_open_items(index, extra_customers)
        with_run_inputs(index, inputs)
        loaded = time.perf_counter()
        results = match_payments(index, rules, own)
        del index
        matched = time.perf_counter()
        outcomes = render_outcomes(results, report.run_id, created_at)
        timing = {
            "payments": len(own),
            "load": loaded - started,
            "match": matched - loaded,
            "render": time.perf_counter() - matched,
            "cpu": time.process_time() - cpu,
            # the monotonic clock is the machine's: when the shares' match steps overlapped
            "match_span": (loaded, matched),
        }
        return positions, outcomes, timing

    merged: list = [None] * len(payments)
    with gc_paused():  # unpickling a share's rows makes a million objects: no GC passes
        outputs = run_shares(len(ranges), read, plan, work)
    for positions, outcomes, timing in outputs:
        if timing is not None:
            report.share_timings.append(timing)
        for position, outcome in zip(positions, outcomes, strict=True):
            merged[position] = outcome
    return merged


def matching_run(
    *, dry_run: bool, payment_ids=None, actor=None, auto_approve: bool = True
) -> RunReport:
    """Match payments (the given ones, else all unmatched). A dry run changes nothing.

    A run that writes holds the matching lease from before it reads until it has written and
    auto-approved; while another run holds it this raises MatchingRunBusy (matching_lease.py).
    """
    report = RunReport(run_id=uuid.uuid4().hex[:16], dry_run=dry_run)
    if dry_run:
        return _run(report, payment_ids, actor, auto_approve)
    matching_lease_take(report.run_id)
    try:
        return _run(report, payment_ids, actor, auto_approve)
    finally:
        matching_lease_give_back(report.run_id)


def _run(report: RunReport, payment_ids, actor, auto_approve: bool) -> RunReport:
    dry_run = report.dry_run
    report.started_at = timezone.now()  # what the run saw: rows changed after it are new
    started = time.perf_counter()
    rules = load_rules()
    # a big run reads its payments' texts on both cores (the shares' decision, made by size)
    fork_minimum = settings.MATCHING_SHARES_MIN_PAYMENTS if settings.MATCHING_WORKERS > 1 else None
    payments = load_payments(payment_ids=payment_ids, fork_minimum=fork_minimum)
    inputs = load_run_inputs(payments)
    if not dry_run:
        # references naming no mirrored invoice: looked up in AIQ first (bounded), so an
        # invoice AIQ has but the mirror does not yet is matched in this run
        report.aiq_mirrored = len(invoices_from_aiq(payments, inputs))
    created_at = connection.ops.adapt_datetimefield_value(timezone.now())
    workers = _use_shares(payments, dry_run)
    outcomes = None
    if workers > 1:
        loaded = time.perf_counter()
        try:
            outcomes = _match_in_shares(report, rules, payments, inputs, workers, created_at)
        except ShareFailed:
            logger.exception(
                "matching run %s: a share failed; matching in one process", report.run_id
            )
            report.share_timings = []
        matched = time.perf_counter()
        report.timings = {"load": loaded - started, "shares": matched - loaded}
    if outcomes is None:
        index = load_open_items(payments=payments, inputs=inputs)
        loaded = time.perf_counter()
        results = match_payments(index, rules, payments)
        del index  # a million tuples no longer needed: free them before the write allocates
        matched = time.perf_counter()
        report.timings = {"load": loaded - started, "match": matched - loaded}
        report.results = results
        if dry_run:
            _count(
                report,
                (
                    (len(r.candidates), r.needs_review, r.candidates and r.candidates[0].rule.kind)
                    for r in results
                ),
            )
            return report
        outcomes = render_outcomes(results, report.run_id, created_at)
    _count(report, ((len(o.rows), o.needs_review, o.rule_kind) for o in outcomes))
    to_auto = _write(report, outcomes, actor)
    report.auto_payment_ids = to_auto
    written = time.perf_counter()
    report.timings["write"] = written - matched
    if auto_approve and to_auto:
        # set-based, in the run's order (an earlier payment wins an invoice two of them name)
        rank_1 = {
            payment_id: (pk, kind)
            for payment_id, pk, kind in MatchProposal.objects.filter(
                run_id=report.run_id, rank=1
            ).values_list("payment_id", "pk", "rule_kind")
        }
        # another group company's invoice: a cross-company receipt, not a plan
        cross = [rank_1[p][0] for p in to_auto if rank_1[p][1] == CROSS_COMPANY]
        outcome = plans_auto_approve_many(
            proposal_ids=[rank_1[p][0] for p in to_auto if rank_1[p][1] != CROSS_COMPANY]
        )
        report.auto_approved = len(outcome.approved) + len(outcome.awaiting_approval)
        report.auto_refused = [(r.payment_id, r.reason) for r in outcome.refused]
        if cross:
            made, refused = cross_company_receipts_auto_approve(proposal_ids=cross)
            report.auto_approved += len(made)
            report.auto_refused += refused
        report.timings["auto_approve"] = time.perf_counter() - written
    return report
