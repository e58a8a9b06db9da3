"""An auto-match run: load the indexes, run the engine, write the proposals (or only show them).

Loading is a handful of set-based queries (payments/matching/index.py), matching is the pure
engine, writing is bulk: the run's proposals in big batches, payments' match_state with one
UPDATE per batch and state, and one audit entry for the run. Proposals are suggestions with
their rule, evidence and run id on the row; the decisions taken on them (plans) are audited
one by one. Rank-1 proposals of an auto-approve rule then become plans through the plan
services, each in its own transaction, so one refusal never undoes the run.
"""

import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import transaction

from payments.matching.engine import PaymentResult, gc_paused, match_payments, money
from payments.matching.index import load_open_items, load_payments, load_rules
from payments.models import MatchProposal, Payment
from payments.services.plans import PlanRefused, plan_auto_approve
from staff.services import audit_log

BATCH = 5000


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
    auto_refused: list = field(default_factory=list)
    timings: dict = field(default_factory=dict)
    results: list = field(default_factory=list)  # PaymentResult, kept for dry runs and tests
    by_rule: dict = field(default_factory=dict)


def proposal_rows(result: PaymentResult, run_id: str) -> list[MatchProposal]:
    """The engine's ranked candidates for one payment as MatchProposal rows (not saved)."""
    payment = result.payment
    currency = payment.currency
    rows = []
    for rank, candidate in enumerate(result.candidates, start=1):
        evidence = dict(candidate.evidence)
        if result.notes:
            evidence["notes"] = result.notes
        if rank == 1 and result.needs_review:
            evidence["needs_review"] = True
        rows.append(
            MatchProposal(
                payment_id=payment.id,
                rule_id=candidate.rule.id,
                rule_kind=candidate.rule.kind,
                rank=rank,
                confidence=Decimal(candidate.confidence).scaleb(-3),
                explanation=candidate.explanation[:500],
                evidence=evidence,
                lines=[
                    {
                        "invoice_id": invoice_id,
                        "amount": money(amount, currency),
                        "discount_amount": money(discount, currency),
                        "write_off_amount": money(write_off, currency),
                        "write_off_gl_account_code": gl,
                    }
                    for invoice_id, amount, discount, write_off, gl in candidate.lines
                ],
                on_account_amount=Decimal(money(candidate.on_account, currency)),
                run_id=run_id,
            )
        )
    return rows


def _write(report: RunReport, results: list[PaymentResult], actor) -> list:
    """Bulk-write proposals and match states in one transaction; returns auto-approve work."""
    to_auto = []
    with transaction.atomic():
        ids = [r.payment.id for r in results]
        for start in range(0, len(ids), BATCH):
            MatchProposal.objects.filter(
                payment_id__in=ids[start : start + BATCH], state=MatchProposal.State.OPEN
            ).update(state=MatchProposal.State.SUPERSEDED)
        pending: list[MatchProposal] = []
        proposed_ids = []
        for result in results:
            rows = proposal_rows(result, report.run_id)
            if not rows:
                continue
            proposed_ids.append(result.payment.id)
            pending.extend(rows)
            if result.candidates[0].auto_approve:
                to_auto.append((result.payment.id, rows[0]))
            if len(pending) >= BATCH:
                MatchProposal.objects.bulk_create(pending, batch_size=BATCH)
                report.proposal_rows += len(pending)
                pending = []
        if pending:
            MatchProposal.objects.bulk_create(pending, batch_size=BATCH)
            report.proposal_rows += len(pending)
        for start in range(0, len(proposed_ids), BATCH):
            Payment.objects.filter(
                pk__in=proposed_ids[start : start + BATCH],
                match_state__in=[Payment.MatchState.UNMATCHED, Payment.MatchState.PROPOSED],
            ).update(match_state=Payment.MatchState.PROPOSED)
        audit_log(
            actor=actor,
            action="matching.run",
            object_type="matching_run",
            object_id=report.run_id,
            summary=f"{report.payments} payment(s): {report.proposed} proposed "
            f"({report.needs_review} need review), {report.unmatched} unmatched; "
            f"{report.proposal_rows} proposal row(s)",
            after={"by_rule": report.by_rule, "proposal_rows": report.proposal_rows},
        )
    return to_auto


def matching_run(
    *, dry_run: bool, payment_ids=None, actor=None, auto_approve: bool = True
) -> RunReport:
    """Match payments (the given ones, else all unmatched). A dry run changes nothing."""
    report = RunReport(run_id=uuid.uuid4().hex[:16], dry_run=dry_run)
    started = time.perf_counter()
    rules = load_rules()
    index = load_open_items()
    payments = load_payments(payment_ids=payment_ids)
    loaded = time.perf_counter()
    results = match_payments(index, rules, payments)
    del index  # a million tuples no longer needed: free them before the write allocates
    matched = time.perf_counter()
    report.payments = len(results)
    for result in results:
        if result.candidates:
            report.proposed += 1
            report.needs_review += result.needs_review
            kind = result.candidates[0].rule.kind
            report.by_rule[kind] = report.by_rule.get(kind, 0) + 1
        else:
            report.unmatched += 1
    report.results = results
    report.timings = {"load": loaded - started, "match": matched - loaded}
    if dry_run:
        report.proposal_rows = sum(len(r.candidates) for r in results)
        return report
    with gc_paused():  # the run's results are alive until the end anyway
        to_auto = _write(report, results, actor)
    written = time.perf_counter()
    report.timings["write"] = written - matched
    if auto_approve:
        for payment_id, proposal in to_auto:
            try:
                plan_auto_approve(payment=Payment(pk=payment_id), proposal=proposal)
                report.auto_approved += 1
            except PlanRefused as error:
                report.auto_refused.append((payment_id, "; ".join(error.messages)))
        report.timings["auto_approve"] = time.perf_counter() - written
    return report
