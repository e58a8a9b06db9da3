"""A Stripe payout of 10,000 payments decomposed and booked in AIQ (issue 17), at 50 ms AIQ latency.

    .venv/bin/python bench/bench_payout.py [--payments 10000] [--latency-ms 50]

Set-up (untimed): a fresh database (SQLite in a temp dir, or DATABASE_URL if set), the AIQ
sandbox (seeded demo company) with a Stripe GBP clearing account (STRIPE-GBP on GL 1150), a
ProviderAccount, and --payments Stripe charges (balance transactions with fee details and
VAT) stored through the ingest path (payments_upsert).

Timed, from the payout's balance transactions in hand to its books confirmed in AIQ:
1. decompose: stripe_payout_reconcile links every payment to the payout and checks that their
   net adds up to it (what stripe_payout_sync does after listing the balance transactions);
2. book: payout_book sums the fees and VAT of the linked payments and enqueues one fee journal
   and one transfer (one entry per payout, not per payment);
3. push: the outbox drains both journals into AIQ (send, read-back rules, mirror, audit).
Target: <= 10 s. Wall and CPU time of this process are printed per step (the sandbox runs in
this process too, so CPU includes its request handling). AIQ's books are then checked: the
clearing account moved by exactly fees + payout, the fees and VAT accounts hold the fees.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aiqrecon.settings")
VAR = tempfile.mkdtemp(prefix="bench-payout-")
os.environ["AIQRECON_VAR_DIR"] = VAR
os.environ.setdefault("SQLITE_PATH", str(Path(VAR) / "bench.sqlite3"))
os.environ["LOG_LEVEL"] = "WARNING"

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402

from ledger.models import BankAccount, Entity, OutboxCommand  # noqa: E402


def charge(n: int, amount_minor: int, currency: str = "gbp") -> dict:
    fee = round(amount_minor * 0.015) + 20
    tax = round(fee * 0.2)
    created = int(datetime(2026, 12, 1, tzinfo=UTC).timestamp()) + n
    return {
        "id": f"ch_bench{n:06d}",
        "object": "charge",
        "amount": amount_minor,
        "amount_captured": amount_minor,
        "amount_refunded": 0,
        "currency": currency,
        "created": created,
        "captured": True,
        "paid": True,
        "status": "succeeded",
        "metadata": {"aiq_customer_code": "ACME"},
        "billing_details": {"name": "Acme", "email": "ap@acme.example"},
        "balance_transaction": {
            "id": f"txn_bench{n:06d}",
            "object": "balance_transaction",
            "amount": amount_minor,
            "currency": currency,
            "fee": fee + tax,
            "net": amount_minor - fee - tax,
            "type": "charge",
            "fee_details": [
                {"amount": fee, "currency": currency, "type": "stripe_fee", "description": "fees"},
                {"amount": tax, "currency": currency, "type": "tax", "description": "VAT"},
            ],
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--payments", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument(
        "--currency",
        default="GBP",
        help="EUR: a EUR Stripe account of the GBP company (clearing STRIPE-EUR on GL 1160 paying "
        "out into BANK-EUR): fees and payout go as EUR bank payments/receipts at AIQ's rate",
    )
    args = parser.parse_args()
    currency = args.currency.upper()
    clearing_gl = "1150" if currency == "GBP" else "1160"

    from ledger.outbox.runner import default_client_factory, drain
    from ledger.sync import pull
    from payments.models import Payment, ProviderAccount
    from payments.services.payments import payments_upsert, payout_upsert
    from payments.services.provider_books import payout_book
    from payments.services.stripe_events import stripe_payout_reconcile
    from payments.sources import stripe_source
    from sandbox import seed
    from sandbox.ops.banks import bank_gl_balance
    from sandbox.server import SandboxServer
    from tests.outbox_support import seed_sandbox

    call_command("migrate", verbosity=0)
    path = Path(VAR) / "aiq.sqlite3"
    seed_sandbox(path, 0)
    server = SandboxServer(str(path)).start()
    with server.store.transaction() as db:
        db.execute(
            "INSERT INTO bank (entity_id, gl_code, bank_account_code, name, currency) "
            "VALUES ('demo', ?, ?, ?, ?)",
            (clearing_gl, f"STRIPE-{currency}", f"Stripe {currency} clearing", currency),
        )
        db.execute(
            "INSERT OR IGNORE INTO gl_account VALUES ('demo', '1190', 'Transfers in transit', "
            "'asset')"
        )
    settings.AIQ_SANDBOX_URL = server.url
    os.environ.update(seed.credentials())
    os.environ["AIQ_SANDBOX_URL"] = server.url
    entity = Entity.objects.create(
        name="Demo", company_id="demo", region="sandbox", credentials_key="DEMO"
    )
    client = default_client_factory(entity)
    pull.sync_banks(client, entity)
    pull.sync_gl_accounts(client, entity)
    pull.sync_customers(client, entity)
    ProviderAccount.objects.create(
        entity=entity,
        source="stripe",
        currency=currency,
        name=f"Stripe {currency}",
        clearing_bank_account=BankAccount.objects.get(
            entity=entity, bank_account_code=f"STRIPE-{currency}"
        ),
        payout_bank_account=BankAccount.objects.get(
            entity=entity, bank_account_code=f"BANK-{currency}"
        ),
        fees_gl_account_code="7510",
        fee_tax_gl_account_code="2200",
        transfer_gl_account_code="1190",
        statement_narrative="STRIPE PAYMENTS UK",
    )

    started = time.perf_counter()
    charges = [charge(n, 1000 + (n * 37) % 90_000, currency.lower()) for n in range(args.payments)]
    for start in range(0, len(charges), 1000):
        payments_upsert(
            items=[stripe_source.normalise_charge(c) for c in charges[start : start + 1000]],
            origin="bench.stripe",
            entity=entity,
        )
    print(f"{Payment.objects.count()} payments stored in {time.perf_counter() - started:.1f} s "
          "(set-up, not timed)")  # fmt: skip

    net = sum(c["balance_transaction"]["net"] for c in charges)
    page = [{**c["balance_transaction"], "source": c} for c in charges]
    page.append({"type": "payout", "net": -net, "source": "po_bench"})
    server.faults.update(latency_ms=args.latency_ms)
    with server.store.transaction() as db:
        clearing_before = bank_gl_balance(db, "demo", clearing_gl)
        fees_before = bank_gl_balance(db, "demo", "7510")

    steps = {}
    wall0, cpu0 = time.perf_counter(), time.process_time()
    payout = payout_upsert(
        source="stripe",
        payout=stripe_source.normalise_payout(
            {"id": "po_bench", "amount": net, "currency": currency.lower(), "status": "paid",
             "arrival_date": int(datetime(2026, 12, 3, tzinfo=UTC).timestamp())}
        ),
    )  # fmt: skip
    linked = stripe_payout_reconcile(payout=payout, pages=[page])
    steps["decompose"] = (time.perf_counter() - wall0, time.process_time() - cpu0)
    wall1, cpu1 = time.perf_counter(), time.process_time()
    payout = payout_book(payout=payout)
    steps["book"] = (time.perf_counter() - wall1, time.process_time() - cpu1)
    wall2, cpu2 = time.perf_counter(), time.process_time()
    while OutboxCommand.objects.exclude(state="confirmed").exists():
        drain(budget_seconds=30, batch_size=10)
    steps["push"] = (time.perf_counter() - wall2, time.process_time() - cpu2)
    total = time.perf_counter() - wall0, time.process_time() - cpu0

    with server.store.transaction() as db:
        clearing_moved = bank_gl_balance(db, "demo", clearing_gl) - clearing_before
        fees_moved = bank_gl_balance(db, "demo", "7510") - fees_before  # as written (EUR)
    fees = sum(c["balance_transaction"]["fee_details"][0]["amount"] for c in charges)
    tax = sum(c["balance_transaction"]["fee_details"][1]["amount"] for c in charges)
    expected = -(Decimal(net + fees + tax) / 100)
    print(f"payout of {linked} payments, {args.latency_ms} ms AIQ latency, "
          f"{settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}")  # fmt: skip
    for name, (wall, cpu) in steps.items():
        print(f"  {name:10s} {wall:6.2f} s wall, {cpu:6.2f} s CPU")
    print(f"  {'total':10s} {total[0]:6.2f} s wall, {total[1]:6.2f} s CPU (target <= 10 s)")
    kinds = sorted(set(OutboxCommand.objects.values_list("kind", flat=True)))
    print(f"  AIQ writes: {OutboxCommand.objects.count()} ({', '.join(kinds)}); clearing moved "
          f"{clearing_moved} (expected {expected}); fees account {fees_moved} "
          f"(expected {Decimal(fees) / 100})")  # fmt: skip
    assert clearing_moved == expected and fees_moved == Decimal(fees) / 100
    server.stop()


if __name__ == "__main__":
    main()
