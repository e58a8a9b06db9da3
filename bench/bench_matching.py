"""Benchmark: an auto-match run over 100,000 payments against 1,000,000 open invoices (SQLite).

Measured in one process on the generated database (bench/generate_matching.py; its own file),
in several rounds (--rounds, default 3), reporting medians because the machine is shared:
  1. the auto-match run: load + index, match, write proposals (matching_run, auto-approve off);
  2. right after it in the same round, the bare cost of its I/O: the same input queries read
     to the end (no indexing) and the very proposal rows the run wrote inserted again with one
     executemany in one transaction; the ratio is per round, then the median;
  3. the matching core alone: as the run uses it (its shares match at once, one process
     each: payments / the time from the first share's match step starting to the last one's
     ending), and one process over a whole index,
     wall and CPU time (CPU time says what the code costs when neighbours steal the cores);
  4. peak memory (ru_maxrss) of the run's process and of its largest share process;
  5. a run split over processes again, its stored proposals compared with the one-process
     engine's over the same payments and open items (printed every run: identical or not);
  6. separately: auto-approving a sample of the run's auto-approve proposals (the run's own
     list, filled on split runs too) into plans and outbox commands, set-based
     (plans_auto_approve_many; per-plan cost; not in the 60 s).
Targets: run <= 60 s and <= 2x the bare cost; core >= 50,000 payments/s; peak <= 2 GiB.

    .venv/bin/python bench/bench_matching.py [--path var/bench_matching.sqlite3] [--regenerate]
        [--customers 20000 --invoices 1000000 --payments 100000] [--rounds 3] [--approve-sample 500]
"""

import argparse
import os
import resource
import sys
import time
from pathlib import Path
from statistics import median

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def setup_django(path: Path) -> None:
    os.environ["SQLITE_PATH"] = str(path)
    os.environ.pop("DATABASE_URL", None)
    os.environ["DJANGO_DEBUG"] = "0"  # as in production: no query log wrapped round each call
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aiqrecon.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")  # no line per queued outbox wake-up
    import django

    django.setup()


def reset() -> None:
    """Back to "nothing matched yet", so the benchmark can be run again on the same file.

    Auto-approval fills in a payment's customer; the generator never sets one, so clearing it
    puts every payment back as generated (otherwise each run would match different input).
    """
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM payments_allocationplanline")
        cursor.execute("DELETE FROM payments_allocationplan")
        cursor.execute("DELETE FROM ledger_outboxcommand")
        cursor.execute("DELETE FROM payments_matchproposal")
        cursor.execute("UPDATE payments_payment SET match_state = 'unmatched', customer_id = NULL")
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")


WRITTEN_COLUMNS = (
    "payment_id, rule_id, rule_kind, rank, confidence, explanation, evidence, lines, "
    "on_account_amount, state, run_id, created_at"
)


def written_rows(run_id: str) -> list[tuple]:
    """The proposal rows a run wrote, as stored (read back untimed for the bare write)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {WRITTEN_COLUMNS} FROM payments_matchproposal WHERE run_id = %s", [run_id]
        )
        return [(*row[:10], "bare", row[11]) for row in cursor.fetchall()]


def bare_cost(rows: list[tuple], wanted: set[str]) -> dict:
    """The floor for the run's I/O: the same queries read to the end (no indexing), then the
    very rows the run wrote inserted again with one executemany in one transaction.

    wanted: the reference keys of the run's payments (computed untimed: it is the run's work).
    The run reads the open invoices in one range query per share; reading them all in one
    query reads the same rows."""
    from django.db import connection, transaction

    from ledger.models import Customer
    from payments.matching import index as ix
    from payments.models import MatchProposal, PayerMapping

    started = time.perf_counter()
    list(ix.load_rules())
    for _row in Customer.objects.values_list(
        "id", "entity_id", "currency", "email", "name", "code"
    ).iterator(chunk_size=20000):
        pass
    list(PayerMapping.objects.values_list("source", "payer_key", "customer_id"))
    for _row in ix.payment_rows():
        pass
    ix.rejected_allocations()
    hits = ix.hit_rows(wanted)
    ix.paid_rows(wanted - {row[3] for row in hits})
    ix.reserved_by_invoice()
    ix.held_by_open_proposals(set())
    ix.invoice_dates(ix.settlement_terms())
    for _row in ix.invoice_rows():
        pass
    read = time.perf_counter() - started
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        placeholders = ", ".join(["%s"] * len(WRITTEN_COLUMNS.split(",")))
        cursor.executemany(
            f"INSERT INTO payments_matchproposal ({WRITTEN_COLUMNS}) VALUES ({placeholders})",
            rows,
        )
    write = time.perf_counter() - started
    MatchProposal.objects.filter(run_id="bare").delete()
    return {"read": read, "write": write, "total": read + write}


def same_as_one_process(run_id: str, results) -> tuple[bool, int, int]:
    """Do the run's stored proposals equal what the engine makes in one process? (rank, rule,
    confidence, lines with their amounts, on account), payment by payment."""
    from payments.matching.index import to_milli
    from payments.models import MatchProposal

    expected = {
        (r.payment.id, rank, c.rule.kind, c.confidence, tuple(map(tuple, c.lines)), c.on_account)
        for r in results
        for rank, c in enumerate(r.candidates, 1)
    }
    stored = set()
    rows = MatchProposal.objects.filter(run_id=run_id).values_list(
        "payment_id", "rank", "rule_kind", "confidence", "lines", "on_account_amount"
    )
    for payment_id, rank, kind, confidence, lines, on_account in rows.iterator(chunk_size=20000):
        stored.add(
            (
                payment_id,
                rank,
                kind,
                int(confidence * 1000),
                tuple(
                    (
                        int(line["invoice_id"]),
                        to_milli(line["amount"]),
                        to_milli(line.get("discount_amount") or 0),
                        to_milli(line.get("write_off_amount") or 0),
                        line.get("write_off_gl_account_code") or "",
                    )
                    for line in lines
                ),
                to_milli(on_account),
            )
        )
    differing = len(expected ^ stored)
    return differing == 0, differing, len(expected)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", default=str(ROOT / "var" / "bench_matching.sqlite3"))
    parser.add_argument("--regenerate", action="store_true")
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--invoices", type=int, default=1_000_000)
    parser.add_argument("--payments", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--approve-sample", type=int, default=500)
    args = parser.parse_args()
    path = Path(args.path)
    sys.path.insert(0, str(ROOT / "bench"))
    from generate_matching import generate, migrate

    if path.exists() and not args.regenerate:
        migrate(path)  # a file generated before the code's latest migrations: bring it up
    else:
        took = generate(
            path, customers=args.customers, invoices=args.invoices, payments=args.payments
        )
        print(
            f"generated {args.customers:,} customers, {args.invoices:,} invoices, "
            f"{args.payments:,} payments in {took:.1f}s -> {path}"
        )
    setup_django(path)
    from payments.matching.engine import match_payments
    from payments.matching.index import (
        invoice_rows,
        load_open_items,
        load_payments,
        load_rules,
        payment_rows,
        wanted_keys,
    )
    from payments.models import MatchProposal
    from payments.services.auto_approve import plans_auto_approve_many
    from payments.services.matching_runs import matching_run

    reset()
    # warm the page cache once, untimed, so neither measurement pays for cold reads
    for _row in invoice_rows():
        pass
    for _row in payment_rows():
        pass
    wanted = wanted_keys(load_payments())

    # Each round: the run, then the bare cost of its I/O right after (same machine load), so
    # a busy neighbour slows both; the figures are the medians of the rounds.
    rounds = []
    for n in range(args.rounds):
        reset()
        started = time.perf_counter()
        report = matching_run(dry_run=False, auto_approve=False)
        run_seconds = time.perf_counter() - started
        if n == 0:
            # the run's own peak, before the bench reads its rows back: this process (it
            # reads the payments and payers, plans the shares and writes) and the largest
            # share process (each reads and matches its customers' invoices)
            run_peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            share_peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        summary = {k: v for k, v in vars(report).items() if k != "results"}
        report = None  # free the results before anything else is measured
        rows = written_rows(summary["run_id"])
        reset()
        bare = bare_cost(rows, wanted)
        rows = None
        rounds.append((run_seconds, bare, summary["timings"], summary["share_timings"]))
        print(
            f"  round {n + 1}: run {run_seconds:.2f}s ("
            + ", ".join(f"{k} {v:.2f}s" for k, v in summary["timings"].items())
            + f"); bare {bare['total']:.2f}s (read {bare['read']:.2f}s + write "
            f"{bare['write']:.2f}s); ratio {run_seconds / bare['total']:.2f}x",
            flush=True,
        )
        for number, share in enumerate(summary["share_timings"]):
            print(
                f"    share {number}: {share['payments']:,} payments; "
                + ", ".join(f"{k} {share[k]:.2f}s" for k in ("load", "match", "render", "cpu"))
                + f"; match step from {share['match_span'][0] - started:.2f}s to "
                f"{share['match_span'][1] - started:.2f}s into the run",
                flush=True,
            )

    # the matching core alone, on freshly loaded indexes (the engine leaves its index as
    # loaded, so each pass does the same work); wall and CPU time per pass
    reset()
    rules, payments = load_rules(), load_payments()
    index = load_open_items(payments=payments)
    core = []
    for _ in range(max(args.rounds, 3)):
        started, cpu = time.perf_counter(), time.process_time()
        results = match_payments(index, rules, payments)
        core.append((time.perf_counter() - started, time.process_time() - cpu))
    del index

    # the run split over processes again, its stored proposals compared with the one-process
    # engine's (the last core pass, same payments, same open items): every run checks it
    report = matching_run(dry_run=False, auto_approve=False)
    split_run = bool(report.share_timings)
    identical, differing, compared = same_as_one_process(report.run_id, results)
    del results
    # auto-approval of a sample of rank-1 auto-approve proposals, set-based (a transaction
    # per chunk of plans), into plans, outbox commands and audit entries; the sample is the
    # run's own list (filled on split runs as on one-process runs)
    sample = report.auto_payment_ids[: args.approve_sample]
    auto_total = len(report.auto_payment_ids)
    rank_1 = dict(
        MatchProposal.objects.filter(run_id=report.run_id, rank=1).values_list("payment_id", "pk")
    )
    report = None
    started = time.perf_counter()
    approved = plans_auto_approve_many(proposal_ids=[rank_1[p] for p in sample])
    approve_seconds = time.perf_counter() - started
    reset()

    run_median = median(r[0] for r in rounds)
    bare_median = median(r[1]["total"] for r in rounds)
    ratio_median = median(r[0] / r[1]["total"] for r in rounds)
    core_wall, core_cpu = median(c[0] for c in core), median(c[1] for c in core)
    count = len(payments)
    # the engine as a run uses it: every share matches its payments at once, so the run's
    # payments are matched in the time of its slowest share (medians over the rounds)
    shared = [r[3] for r in rounds if r[3]]
    if shared:
        # from the first share starting its match step to the last one ending it (the shares
        # load their invoices first, so the steps need not start together)
        share_wall = median(
            max(s["match_span"][1] for s in shares) - min(s["match_span"][0] for s in shares)
            for shares in shared
        )
    print(
        f"payments {summary['payments']:,}: proposed {summary['proposed']:,} "
        f"({summary['needs_review']:,} need review), unmatched {summary['unmatched']:,}, "
        f"proposal rows {summary['proposal_rows']:,}; by rule {summary['by_rule']}"
    )
    print(f"medians of {len(rounds)} rounds (core: {len(core)} passes):")
    print(f"1. auto-match run (load, match, write): {run_median:.2f}s  (target <= 60 s)")
    print(
        f"2. run / bare cost: {ratio_median:.2f}x (bare: read the same rows + insert the run's "
        f"own rows again = {bare_median:.2f}s)  (target <= 2x)"
    )
    if shared:
        print(
            f"3. matching core, as the run matches ({len(shared[0])} shares at once): "
            f"{count / share_wall:,.0f} payments/s ({share_wall:.2f}s from the first share's "
            "match step starting to the last one's ending)  (target >= 50,000/s)"
        )
    print(
        f"   matching core in one process: {count / core_wall:,.0f} payments/s wall "
        f"({core_wall:.2f}s), {count / core_cpu:,.0f}/s CPU ({core_cpu:.2f}s)"
    )
    print(
        f"4. peak memory (ru_maxrss) of the run: {run_peak_kib / 1024:,.0f} MiB in the run's "
        f"process + {share_peak_kib / 1024:,.0f} MiB in its largest share process = "
        f"{(run_peak_kib + share_peak_kib) / 1024:,.0f} MiB at most (pages the share shares "
        "with its parent counted twice)  (target <= 2,048 MiB)"
    )
    print(
        f"5. split run ({'split over processes' if split_run else 'one process'}) vs the "
        f"one-process engine: {compared:,} proposals compared, "
        + ("identical" if identical else f"{differing:,} DIFFER")
    )
    print(f"   auto-approve eligible first proposals in the run: {auto_total:,}")
    if sample:
        print(
            f"   auto-approve into plans + outbox (set-based): {len(sample)} proposals in "
            f"{approve_seconds:.2f}s ({approve_seconds / len(sample) * 1000:.2f} ms/plan; "
            f"{len(approved.approved)} approved, {len(approved.awaiting_approval)} awaiting "
            f"approval, {len(approved.refused)} refused)"
        )


if __name__ == "__main__":
    main()
