"""Data generator for bench_matching.py: customers, open invoices and payments in a SQLite file.

Defaults: 20,000 customers, 1,000,000 open invoices, 100,000 payments, written to their own
database file (never the dev database): the schema comes from `manage.py migrate` on that file,
the rows from sqlite3 executemany in big batches (about a minute for the full set).

Payment mix (what a Stripe + direct debit + bank transfer business sees):
  35% Stripe, metadata.invoice = the invoice number, exact amount (auto-approve path)
  10% Stripe, the Stripe invoice id (in_...) = the invoice's external reference
  15% bank transfer, narrative with the number written loosely ("inv 0001234", "Invoice 1234")
  15% direct debit, payer known by a confirmed mapping, exact amount, no reference
   7% lump sum: 2-4 of the payer's older invoices in one payment, no reference
   5% reference, a little short (within the settlement-discount tolerance)
   5% reference, more or less than the invoice (overpayment on account / part payment)
   3% payer known, amount matches nothing (part payment, oldest first)
   3% payer unknown, no reference (no match)
   2% another currency than the invoice it names (no match)

    .venv/bin/python bench/generate_matching.py --path var/bench_matching.sqlite3
"""

import argparse
import json
import os
import random
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # ledger.references, when run as a script
SUBSCRIPTIONS = [49000, 99000, 149000, 199000, 29990]  # thousandths
NOW = "2026-03-01 00:00:00"
BATCH = 50_000


def migrate(path: Path) -> None:
    env = dict(os.environ, SQLITE_PATH=str(path))
    env.pop("DATABASE_URL", None)
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "migrate", "--noinput", "-v", "0"],
        check=True,
        env=env,
        cwd=ROOT,
    )


def _insert(db, table: str, columns: list[str], rows) -> None:
    """executemany in big batches, with the table's indexes dropped meanwhile and rebuilt once
    at the end (maintaining eight B-trees row by row is most of the cost of a million rows)."""
    indexes = db.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
        "AND sql IS NOT NULL",
        (table,),
    ).fetchall()
    for name, _sql in indexes:
        db.execute(f'DROP INDEX "{name}"')
    _insert_rows(db, table, columns, rows)
    for _name, sql in indexes:
        db.execute(sql)


def _insert_rows(db, table: str, columns: list[str], rows) -> None:
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    batch = []
    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH:
            db.executemany(sql, batch)
            batch.clear()
    if batch:
        db.executemany(sql, batch)


_FIRST = (
    "Chiltern Royal Severn Pennine Atlantic Harbour Oakwood Granite Mersey Cotswold Thames "
    "Solent Brecon Mourne Shannon Liffey Wicklow Kerry Galway Cedar Beacon Meridian Summit "
    "Kestrel Falcon Heron Willow Ashford Bridgewater Redbrook Northgate Eastfield Westway"
).split()
_SECOND = (
    "Security Services Logistics Engineering Catering Plumbing Joinery Electrical Consulting "
    "Supplies Foods Motors Print Design Builders Cleaning Freight Dental Pharmacy Hotels"
).split()
_SUFFIX = ("Ltd", "Limited", "PLC", "& Co", "Holdings Ltd", "(UK) Ltd")


def customer_name(n: int) -> str:
    """A company name like the ones on real ledgers (many share words, some whole names)."""
    first = _FIRST[n % len(_FIRST)]
    second = _SECOND[(n // len(_FIRST)) % len(_SECOND)]
    other = _FIRST[(n // (len(_FIRST) * len(_SECOND))) % len(_FIRST)]
    return f"{first} {other} {second} {_SUFFIX[n % len(_SUFFIX)]}"


def generate(path: Path, *, customers=20_000, invoices=1_000_000, payments=100_000, seed=11):
    from ledger.references import digits_keys, reference_keys

    started = time.perf_counter()
    path = Path(path)
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    migrate(path)
    rng = random.Random(seed)
    db = sqlite3.connect(path)
    # the schema's CHECK constraints use REGEXP, which Django registers on its own connections
    db.create_function("REGEXP", 2, lambda pattern, value: re.search(pattern, value) is not None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    db.execute(
        "INSERT INTO ledger_entity (id, name, company_id, region, api_version, base_currency, "
        "credentials_key) VALUES (1, 'Bench Ltd', 'bench', 'sandbox', '1.1', 'GBP', 'BENCH')"
    )
    db.execute(
        "INSERT INTO ledger_bankaccount (id, entity_id, created_at, updated_at, bank_code, "
        "bank_account_code, name, currency) VALUES (1, 1, ?, ?, '1200', 'BANK1', 'Main', 'GBP')",
        (NOW, NOW),
    )
    db.execute("UPDATE ledger_entity SET default_bank_account_id = 1 WHERE id = 1")
    db.execute(
        "INSERT INTO auth_user (id, password, is_superuser, username, first_name, last_name, "
        "email, is_staff, is_active, date_joined) VALUES (1, '!', 0, 'bench', '', '', '', 0, 1, ?)",
        (NOW,),
    )
    currencies = ["EUR" if n % 20 == 0 else "GBP" for n in range(customers)]
    _insert(
        db,
        "ledger_customer",
        "id entity_id created_at updated_at code name email currency credit_limit balance "
        "row_version active credit_end_of_month".split(),
        (
            (
                n + 1,
                1,
                NOW,
                NOW,
                f"CUST{n:05d}",
                customer_name(n),
                f"ap{n}@customer{n}.example",
                currencies[n],
                0,
                0,
                "",
                1,
                0,
            )
            for n in range(customers)
        ),
    )
    # invoices: customer, number, external ref, amount, date (ordinal day), currency
    inv_customer = [rng.randrange(customers) for _ in range(invoices)]
    inv_amount = [
        rng.choice(SUBSCRIPTIONS) if rng.random() < 0.3 else rng.randint(2000, 500000) * 10
        for _ in range(invoices)
    ]
    inv_day = [rng.randint(0, 729) for _ in range(invoices)]
    inv_ext = [
        f"in_{rng.getrandbits(48):012x}" if rng.random() < 0.3 else "" for _ in range(invoices)
    ]

    # the reference keys Invoice.save() would store, normalised in bulk as the migration does
    inv_number = [f"INV-{i + 1:07d}" for i in range(invoices)]
    inv_number_key = reference_keys(inv_number)
    inv_ext_key = reference_keys(inv_ext)
    inv_digits_key = digits_keys(inv_number_key)

    def day(n):
        year, rest = divmod(n, 365)
        month, dom = divmod(rest, 28)
        return f"{2024 + year}-{min(month, 11) + 1:02d}-{dom + 1:02d}"

    _insert(
        db,
        "ledger_invoice",
        "id entity_id created_at updated_at customer_id kind invoice_number external_reference "
        "aiq_invoice_id aiq_transaction_id status currency invoice_date net_amount tax_amount "
        "gross_amount outstanding_amount notes row_version number_key external_reference_key "
        "number_digits_key".split(),
        (
            (
                i + 1,
                1,
                NOW,
                NOW,
                inv_customer[i] + 1,
                "item",
                inv_number[i],
                inv_ext[i],
                i + 1,
                1_000_000 + i,
                "posted",
                currencies[inv_customer[i]],
                day(inv_day[i]),
                inv_amount[i],
                0,
                inv_amount[i],
                inv_amount[i],
                "",
                "",
                inv_number_key[i],
                inv_ext_key[i],
                inv_digits_key[i],
            )
            for i in range(invoices)
        ),
    )
    by_customer: dict[int, list[int]] = {}
    for i, c in enumerate(inv_customer):
        by_customer.setdefault(c, []).append(i)
    for ids in by_customer.values():
        ids.sort(key=lambda i: (inv_day[i], i))
    mapped = list(range(0, customers, 4))  # a quarter of customers pay by direct debit
    _insert(
        db,
        "payments_payermapping",
        "source payer_key customer_id confirmed_by_id created_at".split(),
        (("gocardless", f"cu{c:06d}", c + 1, 1, NOW) for c in mapped),
    )
    used: set[int] = set()

    def fresh_invoice():
        while True:
            i = rng.randrange(invoices)
            if i not in used:
                used.add(i)
                return i

    rows = []
    mix = [
        (35, "ref"),
        (10, "ext"),
        (15, "bank"),
        (15, "dd"),
        (7, "lump"),
        (5, "tolerance"),
        (5, "overunder"),
        (3, "partial"),
        (3, "unknown"),
        (2, "currency"),
    ]
    kinds = [k for weight, k in mix for _ in range(weight)]
    for n in range(payments):
        kind = kinds[n % len(kinds)]
        source, email, payer_ref, text, refs, currency = "stripe", "", "", "", [], "GBP"
        if kind in ("ref", "ext", "bank", "tolerance", "overunder", "currency"):
            i = fresh_invoice()
            c, amount, currency = inv_customer[i], inv_amount[i], currencies[inv_customer[i]]
            number = f"INV-{i + 1:07d}"
            if kind == "ext" and inv_ext[i]:
                refs = [{"source": "metadata.invoice", "value": inv_ext[i]}]
            elif kind == "bank":
                source = "bank"
                text = rng.choice(
                    [
                        f"inv {i + 1:07d} thank you",
                        f"INV{i + 1}",
                        f"Invoice {i + 1} ACME LTD",
                        f"PAYMENT REF inv-{i + 1}",
                    ]
                )
            else:
                refs = [{"source": "metadata.invoice", "value": number}]
            if source == "stripe":
                email = f"ap{c}@customer{c}.example"
            if kind == "tolerance":
                amount -= min(rng.randint(1, 50) * 10, amount // 400 // 10 * 10) or 0
            elif kind == "overunder":
                amount = amount + rng.choice([1, -1]) * rng.randint(100, 2000) * 10
                amount = max(amount, 1000)
            elif kind == "currency":
                currency = "EUR" if currency == "GBP" else "GBP"
        elif kind in ("dd", "lump", "partial"):
            c = rng.choice(mapped)
            ids = [i for i in by_customer.get(c, []) if i not in used]
            if len(ids) < 4:
                kind, c = "unknown", rng.randrange(customers)
            source, payer_ref, currency = "gocardless", f"cu{c:06d}", currencies[c]
            if kind == "dd":
                i = rng.choice(ids)
                used.add(i)
                amount = inv_amount[i]
            elif kind == "lump":
                picked = rng.sample(ids[:10], rng.randint(2, 4))
                used.update(picked)
                amount = sum(inv_amount[i] for i in picked)
            elif kind == "partial":
                amount = rng.randint(100, 40000) * 10 + 7 * 10
        if kind == "unknown":
            source, payer_ref, email = "bank", "", ""
            amount, text = rng.randint(500, 500000) * 10, "TRANSFER"
        # bank transfers carry the payer's account name as its bank shows it (18 characters):
        # the run identifies the payer from it (payments/matching/payers.py)
        payer_name = ""
        if source == "bank":
            payer_name = (
                "J BLOGGS" if kind == "unknown" else customer_name(c).upper().replace(".", "")[:18]
            )
        rows.append(
            (
                1,
                source,
                f"bench{n:07d}",
                amount,
                currency,
                0,
                "",
                f"2026-02-{n % 28 + 1:02d} {n % 24:02d}:{n % 60:02d}:00",
                payer_name,
                email,
                payer_ref,
                text,
                json.dumps(refs),
                "succeeded",
                "unmatched",
                "{}",
                NOW,
                NOW,
                "",
                "",
                "",
            )
        )
    _insert(
        db,
        "payments_payment",
        "entity_id source external_id amount currency amount_refunded exchange_rate received_at "
        'payer_name payer_email payer_reference description "references" status match_state '
        "raw created_at updated_at payer_account bank_reference end_to_end_id".split(),
        rows,
    )
    db.commit()
    db.execute("ANALYZE")
    db.close()
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", default=str(ROOT / "var" / "bench_matching.sqlite3"))
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--invoices", type=int, default=1_000_000)
    parser.add_argument("--payments", type=int, default=100_000)
    args = parser.parse_args()
    took = generate(
        Path(args.path), customers=args.customers, invoices=args.invoices, payments=args.payments
    )
    print(
        f"generated {args.customers} customers, {args.invoices} invoices, {args.payments} "
        f"payments into {args.path} in {took:.1f}s"
    )


if __name__ == "__main__":
    main()
