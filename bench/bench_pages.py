#!/usr/bin/env python
"""Server time of the hot staff pages at 1,000,000 invoices and 1,000,000 payments on
PostgreSQL, side by side with the Django admin changelists of the same models, same data.

    .venv/bin/python bench/bench_pages.py [--invoices N] [--payments N] [--runs N] [--fresh]

The data lives in its own database (aiqrecon_bench_pages on the local PostgreSQL; never the
dev one), generated once with COPY and reused by later runs (--fresh regenerates). Pages are
rendered in-process with Django's test client (no network, no browser): what is measured is
the server's time for the full response, templates included. Prints p50/p95/max per page.
"""

import argparse
import io
import os
import random
import re
import secrets
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote

BASE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE))
DB_NAME = "aiqrecon_bench_pages"
PG = "postgres://postgres@127.0.0.1:5432"
TARGET_P95_MS = 150.0


def prepare_environment(fresh: bool) -> None:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone()
        if exists and fresh:
            conn.execute(f'DROP DATABASE "{DB_NAME}" WITH (FORCE)')
            exists = None
        if not exists:
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    os.environ["DATABASE_URL"] = f"{PG}/{DB_NAME}"
    os.environ["DJANGO_DEBUG"] = "false"  # no query log: measure what production runs
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aiqrecon.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _copy(cursor, table: str, columns: list[str], rows) -> None:
    """COPY rows (tuples of already-formatted text) into the table in 50,000-row chunks."""
    chunk = io.StringIO()
    count = 0
    quoted = ", ".join(f'"{c}"' for c in columns)  # "references" is an SQL keyword
    sql = f"COPY {table} ({quoted}) FROM STDIN"

    def flush():
        chunk.seek(0)
        with cursor.copy(sql) as copy:
            while data := chunk.read(1 << 20):
                copy.write(data)
        chunk.seek(0)
        chunk.truncate()

    for row in rows:
        chunk.write("\t".join(row) + "\n")
        count += 1
        if count % 50_000 == 0:
            flush()
    flush()


def generate(n_invoices: int, n_payments: int) -> None:
    from django.contrib.auth.models import Group, User
    from django.db import connection

    from ledger.models import Customer, Entity, Invoice
    from ledger.references import invoice_keys
    from payments.models import Payment

    if Invoice.objects.exists() or Payment.objects.exists():
        print(f"reusing data in {DB_NAME}: {Invoice.objects.count():,} invoices, "
              f"{Payment.objects.count():,} payments")  # fmt: skip
        return
    started = time.perf_counter()
    rng = random.Random(7)
    entity = Entity.objects.create(
        name="Bench Ltd", company_id="bench", credentials_key="BENCH", base_currency="GBP"
    )
    now = datetime.now(UTC)
    stamp = now.isoformat()
    customers = [
        Customer(
            entity=entity,
            code=f"C{n:05d}",
            name=f"Customer {n:05d} Ltd",
            currency="GBP",
            credit_limit=0,
            balance=0,
        )  # fmt: skip
        for n in range(20_000)
    ]
    Customer.objects.bulk_create(customers, batch_size=5000)
    customer_ids = list(Customer.objects.values_list("id", flat=True))
    today = date.today()
    statuses = ["posted"] * 5 + ["part_paid"] * 2 + ["paid"] * 3
    with connection.cursor() as cursor:
        raw = cursor.cursor

        def invoices():
            for i in range(1, n_invoices + 1):
                gross = rng.randint(1_000, 5_000_000)  # thousandths: 1.00 .. 5,000.00
                tax = gross // 6
                status = rng.choice(statuses)
                outstanding = (
                    gross if status == "posted" else (gross // 2 if status == "part_paid" else 0)
                )
                day = today - timedelta(days=rng.randint(0, 730))
                number = f"INV-{i:07d}"
                yield (
                    str(entity.pk), stamp, stamp, stamp, str(rng.choice(customer_ids)), "item",
                    number, "", str(i), str(i), status, "GBP", day.isoformat(),
                    (day + timedelta(days=30)).isoformat(), str(gross - tax), str(tax), str(gross),
                    str(outstanding), "", "", *invoice_keys(number, ""),
                )  # fmt: skip

        _copy(raw, "ledger_invoice", [
            "entity_id", "last_synced_at", "created_at", "updated_at", "customer_id", "kind",
            "invoice_number", "external_reference", "aiq_invoice_id", "aiq_transaction_id",
            "status", "currency", "invoice_date", "due_date", "net_amount", "tax_amount",
            "gross_amount", "outstanding_amount", "notes", "row_version", "number_key",
            "external_reference_key", "number_digits_key",
        ], invoices())  # fmt: skip
        print(f"  {n_invoices:,} invoices in {time.perf_counter() - started:.0f} s")
        states = (["sent"] * 55 + ["unmatched"] * 15 + ["proposed"] * 10 + ["awaiting_approval"] * 5
                  + ["approved"] * 5 + ["failed"] * 2 + ["rejected"] * 3 + ["ignored"] * 5)  # fmt: skip
        sources = ["stripe"] * 60 + ["bank"] * 25 + ["gocardless"] * 10 + ["smartdebit"] * 5
        currencies = ["GBP"] * 80 + ["EUR"] * 15 + ["JPY"] * 5

        def payments():
            for i in range(1, n_payments + 1):
                currency = rng.choice(currencies)
                amount = (
                    rng.randint(1, 5_000) * 1000
                    if currency == "JPY"
                    else rng.randint(100, 2_000_000) * 10
                )
                received = now - timedelta(seconds=rng.randint(0, 730 * 86400))
                customer = rng.choice(customer_ids) if rng.random() < 0.7 else None
                yield (
                    str(entity.pk), rng.choice(sources), f"pi_{i:08d}", str(amount), currency,
                    "\\N", "\\N", "0", "", received.isoformat(), f"Customer {rng.randint(0, 19_999):05d} Ltd",
                    f"ap{i % 20_000}@example.com", "", f"Payment for INV-{rng.randint(1, n_invoices):07d}",
                    "[]", "succeeded", rng.choice(states), str(customer) if customer else "\\N",
                    '{"object": "payment_intent"}', stamp, stamp,
                )  # fmt: skip

        _copy(raw, "payments_payment", [
            "entity_id", "source", "external_id", "amount", "currency", "fee_amount", "net_amount",
            "amount_refunded", "exchange_rate", "received_at", "payer_name", "payer_email",
            "payer_reference", "description", "references", "status", "match_state",
            "customer_id", "raw", "created_at", "updated_at",
        ], payments())  # fmt: skip
        cursor.execute("ANALYZE")
    print(f"  {n_payments:,} payments, analysed, in {time.perf_counter() - started:.0f} s total")
    # logged in with force_login; the passwords are random and never used
    User.objects.create_superuser("bench-admin", password=secrets.token_urlsafe())
    clerk = User.objects.create_user("bench-clerk", password=secrets.token_urlsafe())
    clerk.groups.add(Group.objects.get(name="clerk"))


def measure(runs: int, only: str = "") -> list[tuple[str, str, list[float]]]:
    from django.contrib.auth.models import User
    from django.test import Client

    from payments.models import MatchProposal, Payment

    clerk = Client()
    clerk.force_login(User.objects.get(username="bench-clerk"))
    admin = Client()
    admin.force_login(User.objects.get(username="bench-admin"))
    rng = random.Random(11)
    top = Payment.objects.order_by("-id").values_list("id", flat=True).first()
    detail_ids = [rng.randint(1, top) for _ in range(runs)]
    if not MatchProposal.objects.filter(payment_id__in=detail_ids).exists():
        MatchProposal.objects.bulk_create(
            MatchProposal(
                payment_id=pid,
                rule_kind="reference",
                rank=1,
                confidence="0.900",
                explanation="INV-0000042 found in description",
                evidence={"tokens": ["INV-0000042 in description"]},
                lines=[{"invoice_id": 42, "amount": "10.00"}],
            )  # fmt: skip
            for pid in detail_ids
        )
    some = Payment.objects.get(pk=detail_ids[0])
    deep = str(min(1000, top // 100 - 1))  # the admin pages by 100 rows
    first_page = clerk.get("/payments/", {"tab": "all"}).content.decode()
    next_cursor = unquote(re.search(r"after=([^&\"]+)", first_page).group(1))
    pages = [
        ("ours", "inbox unmatched (default)", clerk, "/payments/", {}),
        ("ours", "inbox proposed", clerk, "/payments/", {"tab": "proposed"}),
        ("ours", "inbox awaiting approval", clerk, "/payments/", {"tab": "awaiting"}),
        ("ours", "inbox sent to AIQ", clerk, "/payments/", {"tab": "sent"}),
        ("ours", "inbox failed", clerk, "/payments/", {"tab": "failed"}),
        ("ours", "inbox all", clerk, "/payments/", {"tab": "all"}),
        ("ours", "inbox all, next page", clerk, "/payments/", {"tab": "all", "after": next_cursor}),
        ("ours", "inbox filtered: stripe GBP 100-500, 90 days", clerk, "/payments/", {
            "tab": "unmatched", "source": "stripe", "currency": "GBP", "amount_min": "100",
            "amount_max": "500", "received_from": (date.today() - timedelta(days=90)).isoformat()}),
        ("ours", "inbox search: exact amount", clerk, "/payments/", {"tab": "all", "q": str(some.amount)}),
        ("ours", "inbox search: reference", clerk, "/payments/", {"tab": "all", "q": some.external_id}),
        ("ours", "inbox search: payer name (contains)", clerk, "/payments/", {"tab": "all", "q": "Customer 01234"}),
        ("ours", "invoice list (default)", clerk, "/invoices/", {}),
        ("ours", "invoice list: open only, one customer", clerk, "/invoices/", {"outstanding": "on", "customer": "C00042"}),
        ("ours", "payment detail", clerk, "detail", {}),
        ("admin", "admin payment changelist", admin, "/admin/payments/payment/", {}),
        ("admin", "admin payment changelist, page 1000", admin, "/admin/payments/payment/", {"p": deep}),
        ("admin", "admin payment search: reference", admin, "/admin/payments/payment/", {"q": some.external_id}),
        ("admin", "admin invoice changelist", admin, "/admin/ledger/invoice/", {}),
        ("admin", "admin invoice changelist, page 1000", admin, "/admin/ledger/invoice/", {"p": deep}),
    ]  # fmt: skip
    results = []
    for kind, label, client, url, params in pages:
        if only and only not in label:
            continue
        timings = []
        for n in range(runs + 2):
            path = f"/payments/{detail_ids[n % runs]}/" if url == "detail" else url
            started = time.perf_counter()
            response = client.get(path, params)
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code != 200:
                raise SystemExit(f"{label}: HTTP {response.status_code}")
            if n >= 2:  # the first two warm caches (templates, connection, plans)
                timings.append(elapsed)
        results.append((kind, label, timings))
        print(f"  measured {label}", file=sys.stderr)
    return results


def report(results, runs: int) -> None:
    print(f"\nServer time per page ({runs} requests each, Django test client, PostgreSQL):")
    print(f"{'page':<48} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}  target")
    for kind, label, timings in results:
        ordered = sorted(timings)
        p95 = ordered[max(0, int(round(0.95 * len(ordered))) - 1)]
        verdict = ("ok" if p95 <= TARGET_P95_MS else "OVER") if kind == "ours" else "(reference)"
        print(
            f"{label:<48} {statistics.median(ordered):>8.1f} {p95:>8.1f} {ordered[-1]:>8.1f}  {verdict}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=1_000_000)
    parser.add_argument("--payments", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--fresh", action="store_true", help="drop and regenerate the data")
    parser.add_argument("--only", default="", help="measure only pages whose name contains this")
    args = parser.parse_args()
    prepare_environment(args.fresh)
    print(f"data: {args.invoices:,} invoices, {args.payments:,} payments in database {DB_NAME}")
    generate(args.invoices, args.payments)
    report(measure(args.runs, args.only), args.runs)


if __name__ == "__main__":
    main()
