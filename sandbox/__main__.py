"""Command line: `python -m sandbox serve ...` and `python -m sandbox seed ...`.

    python -m sandbox seed --db var/aiq-sandbox.sqlite3
    python -m sandbox demo-clearing --db var/aiq-sandbox.sqlite3
    python -m sandbox serve --port 8765 --db var/aiq-sandbox.sqlite3 \\
        [--host 127.0.0.1] [--token-ttl 1200] [--latency-ms 0] [--failure-rate 0] \\
        [--failure-mode http500|aiq] [--drop-after-commit-rate 0] [--token-expire-every 0] \\
        [--reset-rate 0] [--late-commit-rate 0] [--late-commit-ms 2000] \\
        [--fault-seed N] [--seed-if-empty]
"""

import argparse
import logging
import signal
import sys
from pathlib import Path


def _rate(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description="AIQ sandbox server")
    commands = parser.add_subparsers(dest="command", required=True)
    seed = commands.add_parser("seed", help="fill a new database with the demo company")
    seed.add_argument("--db", required=True, help="SQLite file")
    clearing = commands.add_parser(
        "demo-clearing", help="add the demo companies' Stripe clearing bank accounts (if missing)"
    )
    clearing.add_argument("--db", required=True, help="a seeded SQLite file")
    serve = commands.add_parser("serve", help="run the SOAP server")
    serve.add_argument("--db", required=True, help="SQLite file (created if missing)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8765)
    serve.add_argument("--token-ttl", type=float, default=1200, help="seconds (AIQ: 1200)")
    serve.add_argument("--latency-ms", type=_count, default=0)
    serve.add_argument("--failure-rate", type=_rate, default=0.0)
    serve.add_argument("--failure-mode", choices=("http500", "aiq"), default="http500")
    serve.add_argument("--drop-after-commit-rate", type=_rate, default=0.0)
    serve.add_argument("--token-expire-every", type=_count, default=0, help="calls per token")
    serve.add_argument("--reset-rate", type=_rate, default=0.0)
    serve.add_argument("--late-commit-rate", type=_rate, default=0.0)
    serve.add_argument("--late-commit-ms", type=_count, default=2000)
    serve.add_argument("--fault-seed", type=int, default=None)
    serve.add_argument("--seed-if-empty", action="store_true", help="seed a new database")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    # loaded per command: `seed` starts without the server's modules
    from sandbox.seed import add_demo_clearing_banks
    from sandbox.seed import seed as seed_books

    if args.command == "seed":
        Path(args.db).parent.mkdir(parents=True, exist_ok=True)
        summary = seed_books(args.db)
        print(f"Seeded {args.db}: {summary}")
        return 0
    if args.command == "demo-clearing":
        print(
            f"{args.db}: {add_demo_clearing_banks(args.db)} Stripe clearing bank account(s) added"
        )
        return 0

    # loaded per command (see above)
    from sandbox.server import SandboxServer

    Path(args.db).parent.mkdir(parents=True, exist_ok=True)
    if args.seed_if_empty and not Path(args.db).exists():
        seed_books(args.db)
    server = SandboxServer(
        args.db,
        host=args.host,
        port=args.port,
        token_ttl_seconds=args.token_ttl,
        faults={
            "latency_ms": args.latency_ms,
            "failure_rate": args.failure_rate,
            "failure_mode": args.failure_mode,
            "drop_after_commit_rate": args.drop_after_commit_rate,
            "token_expire_every": args.token_expire_every,
            "reset_rate": args.reset_rate,
            "late_commit_rate": args.late_commit_rate,
            "late_commit_ms": args.late_commit_ms,
            "seed": args.fault_seed,
        },
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"AIQ sandbox listening on {server.url} (db {args.db})", flush=True)
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.httpd.server_close()
        server.store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
