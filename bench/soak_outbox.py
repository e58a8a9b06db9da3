"""Soak the outbox: every kind of AIQ write through real `qcluster` processes, against the AIQ
sandbox over HTTP with faults, AIQ pulls and SIGKILLed workers; then count from the SANDBOX's
books.

    .venv/bin/python bench/soak_outbox.py [--commands 300] [--kills 5] [--workers 2]
    .venv/bin/python bench/soak_outbox.py --commands 2000 --kills 20      # the full soak

Generates its own data: the sandbox's demo company plus open invoices, a fresh database (SQLite
in a temp dir, or DATABASE_URL if set; the broker is Redis when REDIS_URL is set). The workload
(tests/outbox_support.py `chaos_workload`, the same core as the suite's chaos test): receipts,
their dependent allocations settling whole invoices, write-off journals (sales credit
journals), sales debit journals (what a refund posts) and credit notes. Faults (`CHAOS_FAULTS`):
20 ms per call, 6 % of writes committed and then the connection closed unanswered, 3 % of calls
reset before touching the books, 3 % refused with HTTP 500, 5 % of writes accepted unanswered
and committed 1.5 s later (within the 3 s settle period), tokens expiring every 40 calls. A
full pull (`sync_run`) runs every 3 s while the outbox works; K busy task workers are SIGKILLed.
Then --late-past-settle receipts and journals whose first send AIQ commits only after the settle
period: they are resent, so AIQ holds them twice; the pull must flag every one.

Prints: duplicates (a reference AIQ holds more than once; an invoice allocated beyond its
gross), losses (a confirmed command whose write AIQ does not hold), parked commands, duplicates
not flagged as DuplicateWrite, time.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aiqrecon.settings")
VAR = tempfile.mkdtemp(prefix="soak-outbox-")
os.environ["AIQRECON_VAR_DIR"] = VAR
os.environ.setdefault("SQLITE_PATH", str(Path(VAR) / "soak.sqlite3"))
os.environ["LOG_LEVEL"] = "WARNING"

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402

from ledger.models import Entity  # noqa: E402
from tests.outbox_support import (  # noqa: E402
    Cluster,
    World,
    chaos_invoices_needed,
    chaos_run,
    cluster_env,
    mirror_workload,
    seed_sandbox,
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--commands", type=int, default=300)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clusters", type=int, default=1, help="qcluster processes")
    parser.add_argument("--late-past-settle", type=int, default=6)
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()

    from sandbox import seed
    from sandbox.server import SandboxServer

    call_command("migrate", verbosity=0)
    invoices = chaos_invoices_needed(args.commands)
    path = Path(VAR) / "aiq.sqlite3"
    seed_sandbox(path, invoices)
    server = SandboxServer(str(path)).start()
    settings.AIQ_SANDBOX_URL = server.url
    os.environ.update(seed.credentials())
    entity = Entity.objects.create(
        name="Demo", company_id="demo", region="sandbox", credentials_key="DEMO"
    )
    from ledger.sync.services import sync_claim, sync_run

    sync_claim(entity=entity)
    sync_run(entity=entity)
    mirror_workload(server, entity, invoices)
    world = World(server, entity)
    clusters: list[Cluster] = []

    def start(index: int) -> Cluster:
        env = {**cluster_env(server.url), **seed.credentials()}
        if index == 0 and args.clusters > 1:
            env["Q_SCHEDULER"] = "true"  # one cluster schedules, the others only work
        cluster = Cluster(Path(VAR) / f"qcluster-{index}.log", workers=args.workers, env=env)
        clusters.append(cluster)
        return cluster

    load = os.getloadavg()
    db = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[1]
    broker = "Redis" if settings.REDIS_URL else "ORM"
    print(
        f"soak: {args.commands} commands, {args.kills} kills, {args.clusters} cluster(s) of "
        f"{args.workers} workers, "
        f"{db} + {broker} broker; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    try:
        f = chaos_run(
            world,
            start,
            commands=args.commands,
            kills=args.kills,
            seed=args.seed,
            timeout=args.timeout,
            clusters=args.clusters,
            late_past_settle=args.late_past_settle,
        )
    finally:
        for cluster in clusters:
            cluster.stop()
        server.stop()
    print(f"kinds: {', '.join(f['kinds'])}; {f['commands']} commands enqueued")
    print(
        f"faults fired: {f['drops']} answers dropped after commit, {f['resets']} connections "
        f"reset, {f['late_commits']} writes committed late ({f['late_landed']} landed; all "
        f"landed: {f['all_late_landed']}), {f['failures']} calls refused; {f['kills']} busy "
        f"workers SIGKILLed ({f['top_ups']} top-ups of 6 journals to keep them busy); "
        f"{f['pulls']} AIQ pulls"
    )
    print(f"all settled: {f['settled']} in {f['seconds']:.1f} s; still open: {f['open']}")
    print(f"duplicates in AIQ: {len(f['duplicates'])} {f['duplicates'][:10]}")
    print(f"losses (confirmed, not in AIQ): {len(f['losses'])} {f['losses'][:10]}")
    print(f"parked (failed / needs a person): {len(f['parked'])} {f['parked'][:10]}")
    print(
        f"DuplicateWrite flags: {f['flagged']}; duplicates not flagged: "
        f"{len(f['unflagged_duplicates'])}"
    )
    print(f"plans whose final state differs from AIQ's books: {len(f['plans_wrong'])}")
    print(f"refunds whose final state differs from AIQ's books: {len(f['refunds_wrong'])}")
    late = f["late_past_settle"]
    if late:
        print(
            f"committed after the settle period: {len(late['references'])} writes; duplicates "
            f"in AIQ {len(late['duplicates'])}, flagged by the pull "
            f"{len(late['duplicates']) - len(late['unflagged_duplicates'])}"
        )
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    ok = (
        f["settled"]
        and not f["duplicates"]
        and not f["losses"]
        and not f["parked"]
        and not f["plans_wrong"]
        and not f["refunds_wrong"]
        and f["kills"] == args.kills
        and not (late and late["unflagged_duplicates"])
    )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
