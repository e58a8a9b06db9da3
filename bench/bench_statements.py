"""Benchmark: statement files into payments on SQLite, end to end and against the bare work.

Generates a camt.053 statement of N entries (90 % credits, each with its payer, payer IBAN,
remittance text, end-to-end id and bank reference; 10 % debits; balances that add up) and a
bank CSV of N rows (Date, Id, Description, Paid in, Paid out, Name), then for each measures in
one run on a fresh database:

  ours  statement_preview (read, check, balance check, duplicate look-up, batch stored with
        the file) + statement_import (read again, accounts, payments written, statement kept)
  bare  the same file read once by the same reader into payments (read_entries +
        statement_items) and Django's bulk_create of those Payment rows, nothing else

and prints both, their ratio (target: ours <= 2x bare) and ours against the 20 s target.

    .venv/bin/python bench/bench_statements.py [--entries 100000] [--only camt|csv]

Each figure is wall-clock time and, in brackets, this process's CPU time (the machine is
shared; the wall clock also counts time other processes held the CPUs).
"""

import argparse
import os
import random
import sys
import tempfile
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

IBAN = "GB29NWBK60161331926819"


def generate_camt(count: int, seed: int = 11) -> bytes:
    rng = random.Random(seed)
    start = date(2025, 1, 1)
    opening = Decimal("100000.00")
    total = Decimal(0)
    entries = []
    for n in range(count):
        amount = Decimal(rng.randint(100, 5_000_000)) / 100
        day = (start + timedelta(days=n * 60 // count)).isoformat()
        if n % 10 == 9:
            total -= amount
            entries.append(
                f'<Ntry><Amt Ccy="GBP">{amount}</Amt><CdtDbtInd>DBIT</CdtDbtInd>'
                f"<Sts><Cd>BOOK</Cd></Sts><BookgDt><Dt>{day}</Dt></BookgDt>"
                f"<AcctSvcrRef>D{n:09d}</AcctSvcrRef><AddtlNtryInf>SUPPLIER {n}</AddtlNtryInf></Ntry>"
            )
            continue
        total += amount
        entries.append(
            f'<Ntry><Amt Ccy="GBP">{amount}</Amt><CdtDbtInd>CRDT</CdtDbtInd>'
            f"<Sts><Cd>BOOK</Cd></Sts><BookgDt><Dt>{day}</Dt></BookgDt>"
            f"<AcctSvcrRef>C{n:09d}</AcctSvcrRef><NtryDtls><TxDtls>"
            f"<Refs><EndToEndId>E2E{n:09d}</EndToEndId></Refs>"
            f"<RltdPties><Dbtr><Nm>CUSTOMER {n % 20000} LTD</Nm></Dbtr>"
            f"<DbtrAcct><Id><IBAN>GB33BUKB2020{n:010d}</IBAN></Id></DbtrAcct></RltdPties>"
            f"<RmtInf><Ustrd>INV-{100000 + n} THANK YOU</Ustrd></RmtInf>"
            f"</TxDtls></NtryDtls></Ntry>"
        )
    closing = opening + total
    end = (start + timedelta(days=60)).isoformat()
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt>'
        "<GrpHdr><MsgId>BENCH</MsgId><CreDtTm>2025-03-02T06:00:00</CreDtTm></GrpHdr>"
        f"<Stmt><Id>BENCH-1</Id><FrToDt><FrDtTm>{start}T00:00:00</FrDtTm>"
        f"<ToDtTm>{end}T23:59:59</ToDtTm></FrToDt>"
        f"<Acct><Id><IBAN>{IBAN}</IBAN></Id><Ccy>GBP</Ccy></Acct>"
        f'<Bal><Tp><CdOrPrtry><Cd>OPBD</Cd></CdOrPrtry></Tp><Amt Ccy="GBP">{opening}</Amt>'
        f"<CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>{start}</Dt></Dt></Bal>"
        f'<Bal><Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp><Amt Ccy="GBP">{closing}</Amt>'
        f"<CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>{end}</Dt></Dt></Bal>"
        + "".join(entries)
        + "</Stmt></BkToCstmrStmt></Document>"
    ).encode()


def generate_csv(count: int, seed: int = 13) -> bytes:
    rng = random.Random(seed)
    start = date(2025, 1, 1)
    lines = ["Date,Id,Description,Paid in,Paid out,Name"]
    for n in range(count):
        amount = f"{rng.randint(100, 5_000_000) / 100:.2f}"
        day = (start + timedelta(days=n * 60 // count)).strftime("%d/%m/%Y")
        if n % 10 == 9:
            lines.append(f"{day},T{n:09d},SUPPLIER {n},,{amount},Supplier")
        else:
            lines.append(
                f'{day},T{n:09d},"INV-{100000 + n}, thanks",{amount},,Customer {n % 20000}'
            )
    return ("\n".join(lines) + "\n").encode()


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


class Clock:
    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu

    def __str__(self):
        return f"{self.wall:6.2f}s (cpu {self.cpu:6.2f}s)"


def _clear():
    from payments.models import ImportBatch, Payment, Statement, StatementAccount

    Statement.objects.all().delete()
    Payment.objects.all().delete()
    ImportBatch.objects.all().delete()
    StatementAccount.objects.all().delete()


def _bare(content: bytes, filename: str, layout, entity) -> int:
    """One read by the same reader, then Django's bulk_create of the payments: nothing else."""
    from payments.models import Payment
    from payments.sources.bank_files import read_entries
    from payments.sources.statement_rows import statement_items

    parsed, entries = read_entries(content, filename, layout=layout)
    parsed = statement_items(parsed, entries, source="bank", filename=filename)
    assert not parsed.errors, parsed.errors[:3]
    rows = [
        Payment(
            entity=entity,
            source=i.source,
            external_id=i.external_id,
            amount=i.amount,
            currency=i.currency,
            received_at=i.received_at,
            payer_name=i.payer_name,
            payer_account=i.payer_account,
            bank_reference=i.bank_reference,
            end_to_end_id=i.end_to_end_id,
            description=i.description,
            references=i.references,
            raw=i.raw,
        )
        for i in parsed.items
    ]
    Payment.objects.bulk_create(rows, batch_size=500)
    return len(rows)


def _ours(user, content: bytes, filename: str, layout) -> tuple[int, Clock, Clock]:
    from payments.services.statements import statement_import, statement_preview

    with Clock() as preview_clock:
        preview = statement_preview(
            user=user, import_format=layout, filename=filename, content=content
        )
    assert preview.ok, preview.file_error or preview.parsed.errors[:3]
    with Clock() as import_clock:
        batch = statement_import(user=user, batch=preview.batch, content=content)
    return batch.imported_count, preview_clock, import_clock


def run(count: int, only: str = "") -> None:
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from ledger.models import Entity
    from payments.models import ImportFormat, Payment

    entity = Entity.objects.create(name="Bench Ltd", company_id="bench", credentials_key="BENCH")
    user = get_user_model().objects.create_superuser("bench", "bench@example.com", "x")
    layout = ImportFormat.objects.create(
        name="Bench CSV",
        column_map={
            "date": "Date",
            "credit": "Paid in",
            "debit": "Paid out",
            "reference": "Description",
            "payer_name": "Name",
            "external_id": "Id",
        },
        currency="GBP",
    )
    credits = count - count // 10
    for name, filename, make, fmt in (
        ("camt.053", "bench.xml", generate_camt, None),
        ("CSV", "bench.csv", generate_csv, layout),
    ):
        if only and only not in name.lower():
            continue
        content = make(count)
        print(f"\n{name}: {count:,} entries ({credits:,} credits), {len(content) / 1e6:.1f} MB")
        with Clock() as bare:
            with transaction.atomic():
                made = _bare(content, filename, fmt, entity)
        assert made == credits, made
        print(f"  bare read + bulk_create:        {bare}")
        _clear()
        with Clock() as ours:
            imported, preview_clock, import_clock = _ours(user, content, filename, fmt)
        assert imported == credits and Payment.objects.count() == credits
        print(f"  ours: preview                   {preview_clock}")
        print(f"        import                    {import_clock}")
        print(f"        preview + import          {ours}  target <= 20 s")
        print(f"  ours / bare:                    {ours.wall / bare.wall:5.2f}x  target <= 2x")
        _clear()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--only", choices=["camt", "csv"], default="")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        setup_django(directory)
        run(args.entries, args.only)


if __name__ == "__main__":
    main()
