"""Benchmark: ingest Stripe charges from paginated API responses into SQLite (network excluded).

Generates N Stripe-shaped charges (balance transaction expanded, with fees) as JSON pages of
100, then measures, in one run on a fresh database:
  1. our ingest path end to end (json.loads of each page -> normalise -> payments_upsert),
  2. our database write alone (payments_upsert of already-normalised items),
  3. Django's plain bulk_create of the same Payment and Fee rows,
  4. raw sqlite3 executemany of the same rows (the physical limit),
  5. a re-import of the same pages (every row an update).

    .venv/bin/python bench/bench_stripe_ingest.py [--charges 100000]

Runs with DEBUG off, as production does: with DEBUG on Django's debug cursor formats every
statement with all its parameters (10,000 of them per 500-row INSERT) for connection.queries.
Each figure is wall-clock time and, in brackets, this process's CPU time: on a shared machine
the wall clock also counts time other processes held the CPUs.
"""

import argparse
import json
import os
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def generate_pages(count: int, page_size: int = 100, seed: int = 7) -> list[bytes]:
    """Stripe list responses as bytes, newest first, like GET /v1/charges?expand[]=..."""
    rng = random.Random(seed)
    start = 1_700_000_000
    pages, data = [], []
    for n in range(count):
        amount = rng.randint(500, 500_000)
        fee = amount * 15 // 1000 + 20
        created = start + n
        charge_id = f"ch_bench{n:010d}"
        data.append(
            {
                "id": charge_id,
                "object": "charge",
                "amount": amount,
                "amount_captured": amount,
                "amount_refunded": 0,
                "captured": True,
                "created": created,
                "currency": "gbp",
                "customer": f"cus_bench{n % 5000:06d}",
                "description": f"Payment for INV-{100000 + n}",
                "billing_details": {"email": f"payer{n % 5000}@example.com", "name": None},
                "metadata": {"invoice": f"INV-{100000 + n}"} if n % 3 else {},
                "payment_intent": f"pi_bench{n:010d}",
                "paid": True,
                "refunded": False,
                "disputed": False,
                "status": "succeeded",
                "livemode": False,
                "statement_descriptor": None,
                "statement_descriptor_suffix": None,
                "calculated_statement_descriptor": "AIQRECON",
                "balance_transaction": {
                    "id": f"txn_bench{n:010d}",
                    "object": "balance_transaction",
                    "amount": amount,
                    "available_on": created + 172800,
                    "created": created,
                    "currency": "gbp",
                    "exchange_rate": None,
                    "fee": fee,
                    "net": amount - fee,
                    "fee_details": [
                        {
                            "amount": fee,
                            "application": None,
                            "currency": "gbp",
                            "description": "Stripe processing fees",
                            "type": "stripe_fee",
                        }
                    ],
                    "reporting_category": "charge",
                    "source": charge_id,
                    "status": "pending",
                    "type": "charge",
                },
            }
        )
        if len(data) == page_size:
            pages.append(data)
            data = []
    if data:
        pages.append(data)
    bodies = []
    for index, page in enumerate(reversed(pages)):  # Stripe answers newest first
        page.reverse()
        bodies.append(
            json.dumps(
                {
                    "object": "list",
                    "url": "/v1/charges",
                    "data": page,
                    "has_more": index < len(pages) - 1,
                }
            ).encode()
        )
    return bodies


def setup_django(directory: str) -> None:
    os.environ["AIQRECON_VAR_DIR"] = directory
    os.environ["SQLITE_PATH"] = str(Path(directory) / "bench.sqlite3")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aiqrecon.settings")
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ.setdefault("DJANGO_DEBUG", "false")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--charges", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        setup_django(directory)
        run(args.charges, Path(directory) / "bench.sqlite3")


class Clock:
    """Wall-clock and CPU seconds of a block."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu

    def rate(self, count: int, unit: str) -> str:
        return (
            f"{self.wall:6.2f}s {count / self.wall:8,.0f} {unit}/s "
            f"(cpu {self.cpu:6.2f}s {count / self.cpu:8,.0f}/s)"
        )


def _clear():
    from payments.models import Fee, Payment

    Fee.objects.all().delete()
    Payment.objects.all().delete()


def run(count: int, db_path: Path) -> None:
    from django.db import connection, transaction

    from ledger.models import Entity
    from payments.models import Fee, Payment
    from payments.services.payments import payments_upsert
    from payments.services.stripe_events import stripe_import
    from payments.sources.stripe_source import normalise_charge

    entity = Entity.objects.create(name="Bench Ltd", company_id="bench", credentials_key="BENCH")
    t = time.perf_counter()
    bodies = generate_pages(count)
    print(
        f"generated {count:,} charges in {len(bodies):,} pages "
        f"({sum(map(len, bodies)) / 1e6:.0f} MB JSON) in {time.perf_counter() - t:.1f}s"
    )

    # 1. end to end: parse pages, normalise, write (what `stripe_import` does after the fetch)
    with Clock() as ingest:
        result = stripe_import(pages=(json.loads(body)["data"] for body in bodies))
    assert result["created"] == count and Payment.objects.count() == count
    assert Fee.objects.count() == count
    print(f"1. ingest end to end:        {ingest.rate(count, 'payments')}  target >= 5,000/s")

    # 5. re-import: every row exists, so every row is an update
    with Clock() as reimport:
        again = stripe_import(pages=(json.loads(body)["data"] for body in bodies))
    assert again == {"created": 0, "updated": count} and Payment.objects.count() == count
    assert Fee.objects.count() == count
    print(f"5. re-import (all updates):  {reimport.rate(count, 'payments')}")

    items = [normalise_charge(c) for body in bodies for c in json.loads(body)["data"]]
    _clear()

    # 2. our DB write alone, in the same 1,000-row transactions the import uses
    with Clock() as ours:
        for start in range(0, count, 1000):
            payments_upsert(items=items[start : start + 1000], origin="bench", entity=entity)
    print(f"2. our DB write:             {ours.rate(count, 'rows')}")
    _clear()

    # 3. Django bulk_create of the same Payment and Fee rows, same transaction size
    def payment_row(i):
        return Payment(
            entity=entity,
            source=i.source,
            external_id=i.external_id,
            amount=i.amount,
            currency=i.currency,
            fee_amount=i.fee_amount,
            net_amount=i.net_amount,
            amount_refunded=i.amount_refunded,
            exchange_rate=i.exchange_rate,
            received_at=i.received_at,
            payer_name=i.payer_name,
            payer_email=i.payer_email,
            payer_reference=i.payer_reference,
            description=i.description,
            references=i.references,
            status=i.status,
            raw=i.raw,
        )

    with Clock() as django_bulk:
        for start in range(0, count, 1000):
            chunk = items[start : start + 1000]
            with transaction.atomic():
                rows = Payment.objects.bulk_create([payment_row(i) for i in chunk], batch_size=500)
                Fee.objects.bulk_create(
                    [
                        Fee(
                            payment_id=row.pk,
                            kind=f.kind,
                            description=f.description,
                            amount=f.amount,
                            currency=f.currency,
                        )
                        for row, i in zip(rows, chunk, strict=True)
                        for f in i.fees
                    ],
                    batch_size=500,
                )
    print(
        f"3. Django bulk_create:       {django_bulk.rate(count, 'rows')}  "
        f"ours/bulk_create = {ours.wall / django_bulk.wall:.2f}x wall, "
        f"{ours.cpu / django_bulk.cpu:.2f}x cpu (bar: <= 2x)"
    )
    _clear()

    # 4. raw sqlite3 executemany of the same payment rows (values prepared by Django)
    fields = [f for f in Payment._meta.concrete_fields if f.name != "id"]
    now = rows[0].created_at if rows else None
    prepared = []
    for i in items:
        row = payment_row(i)
        row.created_at = row.updated_at = now
        prepared.append(
            tuple(f.get_db_prep_save(getattr(row, f.attname), connection) for f in fields)
        )
    connection.close()
    raw = sqlite3.connect(db_path)
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute("PRAGMA synchronous=NORMAL")
    sql = (
        f"INSERT INTO payments_payment ({', '.join(chr(34) + f.column + chr(34) for f in fields)}) "
        f"VALUES ({', '.join('?' * len(fields))})"
    )
    with Clock() as executemany:
        for start in range(0, count, 1000):
            with raw:
                raw.executemany(sql, prepared[start : start + 1000])
    raw.close()
    print(
        f"4. raw sqlite3 executemany:  {executemany.rate(count, 'rows')}  "
        "payments only: the physical limit"
    )


if __name__ == "__main__":
    main()
