"""Quality benchmark of cash application: does the matcher know what each payment is for?

A seeded generator makes a month of a UK/Irish company's receipts as they really arrive, each
payment labelled with the truth (which customer paid, which invoices it settles, with what
cash, discount or bank charge), and loads them through the product's own import paths:
three bank statement layouts (statement_preview + statement_import, as the upload screen),
Stripe charges (normalise_charge + payments_upsert, as the import and webhook paths store
them) and GoCardless payments (normalise_payment + payments_upsert). Every simulated day the
day's files are imported and a matching run writes and auto-approves as production does; a
simulated clerk then settles what the run left (accepting a right first proposal, making the
right plan otherwise), as a finance team works through its inbox, so what people confirm
can teach the next day's run.

Each payment is scored on the proposals of the run of its day, against the truth, per kind:
  stp      auto-approved (plan made and handed to the outbox by the system) and right
  auto     auto-approved at all; auto ok = right ones (auto-approval precision)
  rank1    first proposal right (same customer, same invoices, same cash, same settlement)
  top3     a right proposal among the first three
  none     no proposal at all (kinds with nothing to allocate must say why instead)
  wrong90  first proposal wrong at confidence >= 0.90
  wrongcus first proposal puts cash on a customer the truth does not involve

    .venv/bin/python bench/bench_match_quality.py [--seed 7] [--customers 2000]
        [--invoices 20000] [--payments 3000] [--days 15] [--no-clerk]
"""

import argparse
import csv
import io
import os
import random
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GBP_BANK_CHARGES_GL = "7901"
DISCOUNT_DAYS = 30


def setup_django(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    env = {**os.environ, "SQLITE_PATH": str(path), "DJANGO_DEBUG": "0"}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "migrate", "--noinput", "-v", "0"],
        check=True,
        env=env,
        cwd=ROOT,
    )
    os.environ.update({"SQLITE_PATH": str(path), "DJANGO_DEBUG": "0", "LOG_LEVEL": "ERROR"})
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("REDIS_URL", None)
    # a team that trusts the matcher lets it approve receipts of any ordinary size
    os.environ.setdefault("APPROVAL_THRESHOLD", "25000")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aiqrecon.settings")
    import django

    django.setup()


# --- the world ----------------------------------------------------------------------------

FIRST = (
    "Chiltern Royal Severn Pennine Atlantic Harbour Oakwood Granite Mersey Cotswold Thames "
    "Solent Brecon Mourne Shannon Liffey Wicklow Kerry Galway Cedar Beacon Meridian Summit "
    "Kestrel Falcon Heron Willow Ashford Bridgewater Redbrook Northgate Eastfield Westway "
    "Southbank Highland Lakeside Riverside Parkside Hillcrest Stonebridge Greenfield Bluebell "
    "Castle Abbey Priory Anchor Compass Pioneer Vanguard Sterling Regent Imperial Victoria "
    "Albion Celtic Emerald Saxon Norman Tudor Windsor Clifton Marlow"
).split()
SECOND = (
    "Security Services Logistics Engineering Catering Plumbing Joinery Electrical Consulting "
    "Supplies Foods Motors Print Design Builders Cleaning Freight Dental Pharmacy Hotels "
    "Roofing Scaffolding Haulage Interiors Labs Systems Trading Fabrications Plant Hire"
).split()
SUFFIX_GB = ["Ltd", "Limited", "Ltd", "PLC", "& Co", "Ltd", "Limited", "Holdings Ltd", "(UK) Ltd"]
SUFFIX_IE = ["Ltd", "Limited", "DAC", "Unlimited Company", "Teoranta", "Ltd"]
PEOPLE = "J Smith,A Murphy,P Kelly,S Patel,D Jones,M Walsh,R Byrne,K Ahmed,L Evans,T O'Brien"
PEOPLE = PEOPLE.split(",")
NOT_CUSTOMERS = [
    "HMRC VAT REPAYMENT",
    "DIRECTORS LOAN",
    "TRANSFER FROM SAVINGS",
    "INSURANCE CLAIM SETTLEMENT",
    "INTEREST",
    "REFUND FROM SUPPLIER",
]


@dataclass
class World:
    customers: list = field(default_factory=list)  # dicts
    invoices: list = field(default_factory=list)  # dicts


def make_world(rng: random.Random, n_customers: int, n_invoices: int, today: date) -> World:
    world = World()
    names = set()
    codes = Counter()
    for n in range(n_customers):
        ie = rng.random() < 0.15
        while True:
            if rng.random() < 0.08:
                trading = f"{rng.choice(FIRST)} {rng.choice(SECOND)}"
                name = f"{rng.choice(PEOPLE)} T/A {trading}"
            else:
                words = [rng.choice(FIRST)]
                if rng.random() < 0.35:
                    words.append(rng.choice(FIRST))
                words.append(rng.choice(SECOND))
                name = " ".join(words) + " " + rng.choice(SUFFIX_IE if ie else SUFFIX_GB)
            if name not in names:
                break
        names.add(name)
        letters = "".join(c for c in name.upper() if c.isalpha())[:4]
        codes[letters] += 1
        code = f"{letters}{codes[letters]:03d}"
        slug = "".join(c for c in name.lower() if c.isalnum())[:20]
        world.customers.append(
            {
                "n": n,
                "name": name,
                "code": code,
                "currency": "EUR" if ie else "GBP",
                "email": f"accounts@{slug}.{'ie' if ie else 'co.uk'}" if rng.random() < 0.6 else "",
                "bank_name": bank_name(rng, name),
                "stripe": f"cus_{n:06d}{rng.randrange(10**6):06d}" if rng.random() < 0.3 else "",
                "stripe_mapped": rng.random() < 0.5,
                "mandate": f"MD{n:06d}{rng.randrange(10**4):04d}" if rng.random() < 0.25 else "",
                "mandate_mapped": rng.random() < 0.5,
                "po": str(rng.randrange(10000, 10000 + n_invoices + 4000)),
                "discount": rng.random() < 0.2,  # 2% within 30 days terms
            }
        )
    # invoices: numbered in date order; a customer billed in a batch gets consecutive numbers
    number = 10000
    order = 80000
    per_customer = [
        1 + int(rng.expovariate(1 / (n_invoices / n_customers - 1))) for _ in range(n_customers)
    ]
    scale = n_invoices / sum(per_customer)
    runs = []
    for c, count in enumerate(per_customer):
        count = max(1, round(count * scale))
        left = count
        while left:
            size = min(left, rng.choice((1, 1, 1, 2, 3, 4)))
            runs.append((rng.randrange(0, 150), c, size))
            left -= size
    runs.sort()
    for age, c, size in runs:
        customer = world.customers[c]
        for _ in range(size):
            paid = rng.random() < 0.12
            amount = Decimal(rng.randrange(4000, 250000)) / 100
            if rng.random() < 0.15:
                amount = Decimal(rng.choice((50, 75, 100, 120, 150, 250, 300, 500, 600, 1200)))
            world.invoices.append(
                {
                    "customer": c,
                    "number": f"INV-{number:06d}",
                    "digits": str(number),
                    "external": f"SO-{order:05d}" if rng.random() < 0.3 else "",
                    "date": today - timedelta(days=age + 5),
                    "amount": amount,
                    "paid": paid,
                    "currency": customer["currency"],
                }
            )
            number += 1
            if world.invoices[-1]["external"]:
                order += rng.randrange(1, 4)
    return world


def bank_name(rng, name: str) -> str:
    """The account name a customer's own bank puts on a transfer (18 characters in UK FPS)."""
    upper = name.upper().replace(".", "")
    shape = rng.random()
    if " T/A " in upper:
        person, trading = upper.split(" T/A ")
        text = rng.choice((person, trading, f"MR {person}", upper))
    elif shape < 0.45:
        text = upper
    elif shape < 0.65:
        text = (
            upper.replace(" LIMITED", " LTD")
            if "LIMITED" in upper
            else upper.replace(" LTD", " LIMITED")
        )
    elif shape < 0.80:
        words = [w for w in upper.split() if w not in ("LTD", "LIMITED", "PLC", "&", "CO", "DAC")]
        text = "".join(w[0] for w in words) + " LTD"  # initials: only learning finds these
    else:
        text = upper.replace("&", "AND").replace("(UK) ", "")
    return text[:18].strip()


# --- payments ------------------------------------------------------------------------------

KINDS = {
    # kind: (weight, channel)
    "exact_ref": (12, "bank"),
    "payer_only": (8, "bank"),
    "account_code": (3, "bank"),
    "po_number": (3, "bank"),
    "typo": (3, "bank"),
    "o_for_zero": (2, "bank"),
    "truncated": (3, "bank"),
    "multi_invoice": (4, "bank"),
    "range": (1.5, "bank"),
    "crm_ref": (2, "bank"),
    "lump_sum": (4, "bank"),
    "discount": (3, "bank"),
    "bank_charges": (3, "bank"),
    "duplicate_paid": (1.5, "bank"),
    "part_payment": (2, "bank"),
    "overpayment": (1, "bank"),
    "not_a_customer": (1, "bank"),
    "stripe_ref": (10, "stripe"),
    "stripe_saved_no_ref": (5, "stripe"),
    "stripe_part_refunded": (2, "stripe"),
    "stripe_refunded": (1, "stripe"),
    "gc_ref": (8, "gocardless"),
    "gc_mandate_no_ref": (6, "gocardless"),
}
NOTHING_TO_ALLOCATE = {"not_a_customer", "stripe_refunded"}


@dataclass
class Truth:
    key: str  # source:external id
    kind: str
    channel: str
    customer: int | None  # world index
    lines: dict = field(default_factory=dict)  # invoice index -> (cash, settled extra)
    on_account: Decimal = Decimal(0)
    day: int = 0


def typo(rng, digits: str) -> str:
    position = rng.randrange(len(digits))
    choices = [d for d in "0123456789" if d != digits[position]]
    return digits[:position] + rng.choice(choices) + digits[position + 1 :]


def make_payments(rng, world: World, n_payments: int, days: int, today: date):
    """(truths, per-day rows by channel). Invoices a payment settles leave the pool."""
    by_customer = defaultdict(list)
    for i, invoice in enumerate(world.invoices):
        if not invoice["paid"]:
            by_customer[invoice["customer"]].append(i)
    for ids in by_customer.values():
        ids.sort(key=lambda i: (world.invoices[i]["date"], i))
    paid_of = defaultdict(list)
    for i, invoice in enumerate(world.invoices):
        if invoice["paid"]:
            paid_of[invoice["customer"]].append(i)
    kinds = list(KINDS)
    weights = [KINDS[k][0] for k in kinds]
    truths = []
    rows = defaultdict(lambda: defaultdict(list))  # day -> channel -> rows
    counter = 0
    attempts = 0
    while len(truths) < n_payments and attempts < n_payments * 20:
        attempts += 1
        kind = rng.choices(kinds, weights)[0]
        channel = KINDS[kind][1]
        day = len(truths) * days // n_payments
        c = rng.randrange(len(world.customers))
        customer = world.customers[c]
        if channel == "stripe" and not customer["stripe"]:
            continue
        if channel == "gocardless" and (not customer["mandate"] or customer["currency"] != "GBP"):
            continue
        pool = by_customer[c]
        invoices = world.invoices
        truth = Truth(key="", kind=kind, channel=channel, customer=c, day=day)
        ref = ""
        amount = None
        refunded = Decimal(0)

        def take(i, cash=None, extra=Decimal(0), truth=truth, pool=pool, invoices=invoices):
            cash = invoices[i]["amount"] if cash is None else cash
            truth.lines[i] = (cash, extra)
            pool.remove(i)
            return cash

        if kind == "not_a_customer":
            truth.customer = None
            amount = Decimal(rng.randrange(1000, 900000)) / 100
            ref = rng.choice(NOT_CUSTOMERS)
        elif kind == "duplicate_paid":
            if not paid_of[c]:
                continue
            i = rng.choice(paid_of[c])
            amount = invoices[i]["amount"]
            ref = invoices[i]["number"]
            truth.on_account = amount
        elif kind in ("multi_invoice", "range", "lump_sum"):
            if kind == "range":
                runs = [
                    pool[s : s + 3]
                    for s in range(len(pool) - 2)
                    if int(invoices[pool[s + 2]]["digits"]) - int(invoices[pool[s]]["digits"]) == 2
                ]
                if not runs:
                    continue
                chosen = rng.choice(runs)
            elif kind == "lump_sum":
                if len(pool) < 2:
                    continue
                chosen = pool[: rng.randint(2, min(6, len(pool)))]
            else:
                if len(pool) < 2:
                    continue
                chosen = sorted(rng.sample(pool, rng.randint(2, min(3, len(pool)))))
            amount = sum(take(i) for i in list(chosen))
            digits = [invoices[i]["digits"] for i in chosen]
            if kind == "range":
                ref = rng.choice(
                    (f"INV {digits[0]}-{digits[-1]}", f"INV{digits[0]}-{digits[-1][-2:]}")
                )
            elif kind == "multi_invoice":
                ref = rng.choice(
                    (
                        "INV" + "/".join([digits[0], *[d[-4:] for d in digits[1:]]]),
                        "INV " + " ".join(digits),
                        ", ".join(invoices[i]["number"] for i in chosen),
                        "+".join(digits),
                    )
                )
            else:
                ref = rng.choice(("", "REMITTANCE TO FOLLOW", "PAYMENT", customer["bank_name"]))
        else:
            if not pool:
                continue
            i = rng.choice(pool[:8])
            if kind == "discount":  # paid early, within the terms: one of the newest invoices
                paid_on = today + timedelta(days=day)
                recent = [j for j in pool if (paid_on - invoices[j]["date"]).days <= DISCOUNT_DAYS]
                if not customer["discount"] or not recent:
                    continue
                i = rng.choice(recent)
            invoice = invoices[i]
            number, digits = invoice["number"], invoice["digits"]
            if kind == "discount":
                cash = (invoice["amount"] * Decimal("0.98")).quantize(Decimal("0.01"))
                amount = take(i, cash, invoice["amount"] - cash)
                ref = number
            elif kind == "bank_charges":
                fee = Decimal(rng.choice((500, 600, 750, 1000, 1250, 1500))) / 100
                if invoice["amount"] <= fee * 4:
                    continue
                amount = take(i, invoice["amount"] - fee, fee)
                ref = rng.choice((number, f"{customer['bank_name'][:8]} {number}"))
            elif kind == "part_payment":
                cash = (invoice["amount"] * Decimal(rng.choice(("0.5", "0.25", "0.4")))).quantize(
                    Decimal("0.01")
                )
                amount = take(i, cash)
                ref = number
            elif kind == "overpayment":
                extra = Decimal(rng.randrange(1000, 20000)) / 100
                take(i)
                amount = invoice["amount"] + extra
                truth.on_account = extra
                ref = number
            elif kind == "stripe_part_refunded":
                extra = Decimal(rng.randrange(1000, 20000)) / 100
                take(i)
                amount = invoice["amount"] + extra
                refunded = extra
                ref = number
            elif kind == "stripe_refunded":
                amount = invoice["amount"]
                refunded = amount
                ref = number
                truth.customer = c
            else:
                amount = take(i)
                if kind in ("exact_ref", "stripe_ref", "gc_ref"):
                    ref = rng.choice(
                        (
                            number,
                            number.replace("-", ""),
                            f"INV {digits}",
                            f"{number} {customer['code']}",
                        )
                    )
                    if kind == "exact_ref" and rng.random() < 0.3:
                        ref = f"{customer['bank_name'][:10]} {number}"
                elif kind == "payer_only":
                    ref = rng.choice(
                        (customer["bank_name"] + " PAYMENT", customer["bank_name"], "PAYMENT")
                    )
                elif kind == "account_code":
                    ref = rng.choice((customer["code"], f"ACC {customer['code']}"))
                elif kind == "po_number":
                    ref = rng.choice(
                        (f"PO {customer['po']}", customer["po"], f"PO{customer['po']}")
                    )
                elif kind == "typo":
                    ref = "INV-" + typo(rng, digits).zfill(6)
                elif kind == "o_for_zero":
                    ref = (
                        number.replace("0", "O") if rng.random() < 0.6 else number.replace("1", "I")
                    )
                    if ref == number:
                        ref = number.replace("-", "-O")
                elif kind == "truncated":
                    ref = rng.choice(
                        ("PAYMENT OF ", "PAYMENT FOR ", "REMITTANCE ", "INVOICE PAYMT ")
                    )
                    ref = (ref + number)[:18]
                elif kind == "crm_ref":
                    if not invoice["external"]:
                        pool.append(i)
                        pool.sort(key=lambda j: (invoices[j]["date"], j))
                        del truth.lines[i]
                        continue
                    order_digits = invoice["external"][3:]
                    ref = rng.choice((f"ORDER {order_digits}", order_digits, f"ORD {order_digits}"))
                # stripe_saved_no_ref / gc_mandate_no_ref: no reference
        counter += 1
        truth.key = f"{channel}:{counter}"
        truths.append(truth)
        rows[day][channel].append((truth, amount, refunded, ref, counter))
    return truths, rows


# --- loading through the product's paths ---------------------------------------------------

LAYOUTS = {
    "Barclays CSV": {
        "column_map": {
            "date": "Date",
            "credit": "Paid in",
            "debit": "Paid out",
            "reference": "Description",
            "payer_name": "Name",
        },
        "date_format": "%d/%m/%Y",
        "currency": "GBP",
    },
    "HSBC CSV": {  # payer and reference in one narrative column, a signed amount
        "column_map": {"date": "Date", "amount": "Amount", "reference": "Details"},
        "date_format": "%d %b %Y",
        "currency": "GBP",
    },
    "AIB CSV": {
        "column_map": {
            "date": "Posted Date",
            "credit": "Credit",
            "debit": "Debit",
            "reference": "Remittance Information",
            "payer_name": "Counterparty",
            "external_id": "Transaction Id",
        },
        "date_format": "%Y-%m-%d",
        "currency": "EUR",
    },
}


def statement_file(layout: str, items, day_date: date, rng) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    if layout == "Barclays CSV":
        writer.writerow(["Date", "Description", "Paid in", "Paid out", "Name"])
        for truth, amount, _r, ref, n in items:
            writer.writerow(
                [day_date.strftime("%d/%m/%Y"), ref, f"{amount:.2f}", "", truth_name(truth, n)]
            )
        writer.writerow(
            [day_date.strftime("%d/%m/%Y"), "DD BRITISH GAS", "", "212.40", "BRITISH GAS"]
        )
    elif layout == "HSBC CSV":
        writer.writerow(["Date", "Type", "Details", "Amount", "Balance"])
        for truth, amount, _r, ref, n in items:
            details = f"{truth_name(truth, n)} {ref}".strip()
            writer.writerow([day_date.strftime("%d %b %Y"), "CR", details, f"{amount:.2f}", ""])
        writer.writerow([day_date.strftime("%d %b %Y"), "DD", "SALARIES", "-9120.00", ""])
    else:
        writer.writerow(
            [
                "Posted Date",
                "Transaction Id",
                "Counterparty",
                "Remittance Information",
                "Credit",
                "Debit",
            ]
        )
        for truth, amount, _r, ref, n in items:
            writer.writerow(
                [
                    day_date.isoformat(),
                    f"AIB{n:08d}",
                    truth_name(truth, n),
                    ref,
                    f"{amount:.2f}",
                    "",
                ]
            )
    return out.getvalue().encode()


_WORLD: World | None = None


def truth_name(truth: Truth, n: int) -> str:
    if truth.customer is None:
        return "UNKNOWN PAYER"
    return _WORLD.customers[truth.customer]["bank_name"]


def load_world(world: World, today: date):
    from django.contrib.auth.models import Group, User

    from ledger.models import BankAccount, Customer, Entity, GLAccount, Invoice
    from ledger.references import invoice_keys
    from payments.models import PayerMapping

    entity = Entity.objects.create(
        name="Quality Ltd",
        company_id="quality",
        region="sandbox",
        base_currency="GBP",
        credentials_key="Q",
    )
    bank = BankAccount.objects.create(entity=entity, **_bank_fields(BankAccount, "GBP"))
    BankAccount.objects.create(entity=entity, **_bank_fields(BankAccount, "EUR"))
    entity.default_bank_account = bank
    entity.save()
    for code, name in ((GBP_BANK_CHARGES_GL, "Bank charges"), ("4009", "Discount allowed")):
        GLAccount.objects.create(entity=entity, code=code, name=name)
    clerk = User.objects.create_user("clerk")
    clerk.groups.add(Group.objects.get(name="clerk"))
    approver = User.objects.create_user("approver")
    approver.groups.add(Group.objects.get(name="approver"))
    customers = Customer.objects.bulk_create(
        [
            Customer(
                entity=entity,
                code=c["code"],
                name=c["name"],
                email=c["email"],
                currency=c["currency"],
            )
            for c in world.customers
        ]
    )
    ids = [c.pk for c in customers]
    rows = []
    for n, inv in enumerate(world.invoices):
        keys = invoice_keys(inv["number"], inv["external"])
        rows.append(
            Invoice(
                entity=entity,
                customer_id=ids[inv["customer"]],
                invoice_number=inv["number"],
                aiq_invoice_id=500000 + n,
                aiq_transaction_id=900000 + n,
                external_reference=inv["external"],
                status="paid" if inv["paid"] else "posted",
                currency=inv["currency"],
                invoice_date=inv["date"],
                due_date=inv["date"] + timedelta(days=30),
                net_amount=inv["amount"],
                gross_amount=inv["amount"],
                outstanding_amount=Decimal(0) if inv["paid"] else inv["amount"],
                number_key=keys[0],
                external_reference_key=keys[1],
                number_digits_key=keys[2],
            )
        )
    invoices = Invoice.objects.bulk_create(rows, batch_size=2000)
    mappings = []
    for c, customer in zip(world.customers, customers, strict=True):
        if c["stripe"] and c["stripe_mapped"]:
            mappings.append(
                PayerMapping(
                    source="stripe", payer_key=c["stripe"], customer=customer, confirmed_by=clerk
                )
            )
        if c["mandate"] and c["mandate_mapped"]:
            mappings.append(
                PayerMapping(
                    source="gocardless",
                    payer_key=c["mandate"],
                    customer=customer,
                    confirmed_by=clerk,
                )
            )
    PayerMapping.objects.bulk_create(mappings)
    _configure_terms(world, customers)
    return entity, clerk, approver, ids, [i.pk for i in invoices]


def _bank_fields(model, currency):
    return {
        "currency": currency,
        "name": f"Current account {currency}",
        "bank_code": f"120{len(currency)}" if currency == "GBP" else "1210",
        "bank_account_code": f"BANK{currency}",
    }


def _configure_terms(world, customers) -> None:
    """What a finance team sets up: the customers' 2% / 30 days settlement terms and the
    bank-charges write-off rule with its GL account (where this version has them)."""
    from payments import models

    terms_model = getattr(models, "SettlementTerms", None)
    if terms_model is not None:
        terms_model.objects.bulk_create(
            [
                terms_model(customer=c, percent=Decimal(2), days=DISCOUNT_DAYS)
                for c, w in zip(customers, world.customers, strict=True)
                if w["discount"]
            ]
        )
    models.MatchRule.objects.filter(kind="tolerance", tolerance_action="write_off").update(
        enabled=True, write_off_gl_account_code=GBP_BANK_CHARGES_GL
    )


def import_day(day, channel_rows, day_date, clerk, customer_ids, rng):
    from payments.models import ImportFormat, Payment
    from payments.services.payments import payments_upsert
    from payments.services.statements import statement_import, statement_preview
    from payments.sources.gocardless_source import Payer, normalise_payment
    from payments.sources.stripe_source import normalise_charge

    keys = {}
    bank = channel_rows.get("bank", [])
    by_layout = defaultdict(list)
    for item in bank:
        truth = item[0]
        eur = truth.customer is not None and _WORLD.customers[truth.customer]["currency"] == "EUR"
        by_layout["AIB CSV" if eur else rng.choice(("Barclays CSV", "HSBC CSV"))].append(item)
    for layout, items in by_layout.items():
        content = statement_file(layout, items, day_date, rng)
        fmt = ImportFormat.objects.get(name=layout)
        preview = statement_preview(
            user=clerk, import_format=fmt, filename=f"{layout}-{day}.csv", content=content
        )
        if not preview.ok:
            raise SystemExit(
                f"statement rejected: {preview.file_error or preview.parsed.errors[:3]}"
            )
        statement_import(user=clerk, batch=preview.batch, content=content)
        # rows come back in file order (the money-out rows are skipped)
        items_by_ref = list(preview.parsed.items)
        for (truth, *_rest), parsed in zip(items, items_by_ref, strict=False):
            keys[("bank", parsed.external_id)] = truth
    when = datetime.combine(day_date, datetime.min.time(), tzinfo=UTC) + timedelta(hours=10)
    stripe_items = []
    for truth, amount, refunded, ref, n in channel_rows.get("stripe", []):
        c = _WORLD.customers[truth.customer]
        minor = int(amount * 100)
        charge = {
            "id": f"ch_q{n:08d}",
            "object": "charge",
            "amount": minor,
            "amount_refunded": int(refunded * 100),
            "currency": c["currency"].lower(),
            "created": int(when.timestamp()) + n,
            "status": "succeeded",
            "customer": {"id": c["stripe"], "name": c["name"], "email": c["email"]},
            "billing_details": {"name": c["name"], "email": c["email"]},
            "metadata": {"invoice": ref} if ref else {},
            "description": f"Payment {ref}" if ref else "Payment",
        }
        item = normalise_charge(charge, intent={})
        stripe_items.append(item)
        keys[("stripe", item.external_id)] = truth
    if stripe_items:
        payments_upsert(items=stripe_items, origin="stripe.import")
    gc_items = []
    for truth, amount, _refunded, ref, n in channel_rows.get("gocardless", []):
        c = _WORLD.customers[truth.customer]
        payment = {
            "id": f"PMQ{n:08d}",
            "amount": int(amount * 100),
            "currency": "GBP",
            "status": "paid_out",
            "charge_date": day_date.isoformat(),
            "reference": ref,
            "description": "",
            "links": {"mandate": c["mandate"]},
            "metadata": {},
        }
        item = normalise_payment(payment, Payer(name=c["name"], email=c["email"]))
        gc_items.append(item)
        keys[("gocardless", item.external_id)] = truth
    if gc_items:
        payments_upsert(items=gc_items, origin="gocardless.import")
    out = {}
    for source, external_id, pk in Payment.objects.filter(
        external_id__in=[k[1] for k in keys]
    ).values_list("source", "external_id", "id"):
        truth = keys.get((source, external_id))
        if truth is not None:
            out[pk] = truth
    return out


# --- scoring -------------------------------------------------------------------------------


def expected_lines(truth: Truth, invoice_ids) -> dict:
    return {invoice_ids[i]: (cash, extra) for i, (cash, extra) in truth.lines.items()}


def proposal_lines(lines) -> dict:
    out = {}
    for line in lines:
        extra = Decimal(line.get("discount_amount") or 0) + Decimal(
            line.get("write_off_amount") or 0
        )
        out[int(line["invoice_id"])] = (Decimal(line["amount"]), extra)
    return out


def proposal_customer(proposal, invoice_customer) -> int | None:
    for line in proposal.lines:
        return invoice_customer.get(int(line["invoice_id"]))
    return ((proposal.evidence or {}).get("customer") or {}).get("customer_id")


def is_right(proposal, truth: Truth, invoice_ids, customer_ids, invoice_customer) -> bool:
    want_customer = None if truth.customer is None else customer_ids[truth.customer]
    if truth.kind in NOTHING_TO_ALLOCATE:
        return False
    if proposal_customer(proposal, invoice_customer) != want_customer:
        return False
    return proposal_lines(proposal.lines) == expected_lines(truth, invoice_ids)


def checker_decides(plan, right, approver) -> str:
    from payments.services.plans import plan_approve, plan_reject

    if right is not None:
        plan_approve(plan=plan, actor=approver)
        return "system plan approved by a checker"
    plan_reject(plan=plan, actor=approver, reason="not what the customer paid")
    return "system plan rejected by a checker"


def clerk_settles(
    payment_id, truth, proposals, right_rank1, clerk, approver, invoice_ids, customer_ids
):
    """What a clerk does with a payment the run did not approve: accept a right first
    proposal, else make the right plan (approved by a second person where it needs one)."""
    from ledger.models import Customer
    from payments.models import Payment
    from payments.services.plan_lines import PlanRefused
    from payments.services.plans import plan_approve, plan_propose, plan_submit

    if truth.kind in NOTHING_TO_ALLOCATE or truth.customer is None:
        return "skipped"
    payment = Payment.objects.get(pk=payment_id)
    lines = [
        {
            "invoice_id": invoice_ids[i],
            "amount": str(cash),
            **(
                {"write_off_amount": str(extra), "write_off_gl_account_code": GBP_BANK_CHARGES_GL}
                if truth.kind == "bank_charges"
                else {"discount_amount": str(extra)}
                if extra
                else {}
            ),
        }
        for i, (cash, extra) in truth.lines.items()
    ]
    try:
        if right_rank1 is not None:
            plan = plan_propose(
                payment=payment, lines=right_rank1.lines, actor=clerk, proposal=right_rank1
            )
        else:
            plan = plan_propose(
                payment=payment,
                lines=lines,
                actor=clerk,
                customer=Customer.objects.get(pk=customer_ids[truth.customer]),
            )
        plan = plan_submit(plan=plan, actor=clerk)
        if plan.state == "awaiting_approval":
            plan_approve(plan=plan, actor=approver)
        return "settled"
    except PlanRefused as error:
        return "refused: " + "".join("#" if c.isdigit() else c for c in error.messages[0][:50])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--invoices", type=int, default=20000)
    parser.add_argument("--payments", type=int, default=3000)
    parser.add_argument("--days", type=int, default=15)
    parser.add_argument("--no-clerk", action="store_true", help="no simulated clerk between runs")
    parser.add_argument("--path", default=str(ROOT / "var" / "bench_match_quality.sqlite3"))
    parser.add_argument("--show-wrong", type=int, default=0, help="print this many misses per kind")
    parser.add_argument(
        "--auto-rules",
        default="",
        help="rule kinds to switch auto-approval on for, comma-separated (a team that has "
        "watched them in monitor mode), e.g. payer_exact",
    )
    args = parser.parse_args()
    started = time.perf_counter()
    Path(args.path).parent.mkdir(exist_ok=True)
    setup_django(Path(args.path))

    from ledger.models import Invoice
    from payments.models import AllocationPlan, ImportFormat, MatchProposal, Payment
    from payments.services.matching_runs import matching_run

    global _WORLD
    rng = random.Random(args.seed)
    today = date(2026, 11, 1)
    world = _WORLD = make_world(rng, args.customers, args.invoices, today)
    truths, rows = make_payments(rng, world, args.payments, args.days, today)
    entity, clerk, approver, customer_ids, invoice_ids = load_world(world, today)
    for name, spec in LAYOUTS.items():
        ImportFormat.objects.create(name=name, **spec)
    if args.auto_rules:
        from payments.models import MatchRule

        MatchRule.objects.filter(kind__in=args.auto_rules.split(",")).update(auto_approve=True)
    print(
        "rules: "
        + "; ".join(
            f"{r.kind}{' auto' if r.auto_approve else ''}{' monitor' if getattr(r, 'monitor', False) else ''}"
            for r in __import__("payments.models", fromlist=["MatchRule"]).MatchRule.objects.filter(
                enabled=True
            )
        )
    )
    invoice_customer = dict(Invoice.objects.values_list("id", "customer_id"))
    scored = []  # (truth, proposals, auto plan or None, notes)
    clerk_outcomes = Counter()
    run_seconds = []
    for day in range(args.days):
        day_date = today + timedelta(days=day)
        by_payment = import_day(day, rows.get(day, {}), day_date, clerk, customer_ids, rng)
        t0 = time.perf_counter()
        report = matching_run(dry_run=False)
        run_seconds.append(time.perf_counter() - t0)
        proposals = defaultdict(list)
        for proposal in MatchProposal.objects.filter(run_id=report.run_id).order_by(
            "payment_id", "rank"
        ):
            proposals[proposal.payment_id].append(proposal)
        auto = {
            plan.payment_id: plan
            for plan in AllocationPlan.objects.filter(
                proposal__run_id=report.run_id, maker__isnull=True
            )
        }
        notes = dict(
            Payment.objects.filter(pk__in=list(by_payment)).values_list("id", "match_notes")
        )
        for payment_id, truth in by_payment.items():
            mine = proposals.get(payment_id, [])
            plan = auto.get(payment_id)
            scored.append((payment_id, truth, mine, plan, notes.get(payment_id) or {}))
            if args.no_clerk or (plan is not None and plan.state in ("sent", "approved")):
                continue
            right = next(
                (
                    p
                    for p in mine[:1]
                    if is_right(p, truth, invoice_ids, customer_ids, invoice_customer)
                ),
                None,
            )
            if plan is not None and plan.state == "awaiting_approval":
                # the system made the plan and a checker must approve it (a discount or a
                # write-off): the approver approves a right one, rejects a wrong one
                clerk_outcomes[checker_decides(plan, right, approver)] += 1
                if right is not None:
                    continue
            clerk_outcomes[
                clerk_settles(
                    payment_id, truth, mine, right, clerk, approver, invoice_ids, customer_ids
                )
            ] += 1
    print_table(scored, invoice_ids, customer_ids, invoice_customer, args.show_wrong)
    print(
        f"runs: {len(run_seconds)}, median {sorted(run_seconds)[len(run_seconds) // 2]:.2f} s; "
        f"clerk: {dict(clerk_outcomes)}; total {time.perf_counter() - started:.0f} s"
    )


def print_table(scored, invoice_ids, customer_ids, invoice_customer, show_wrong):
    stats = defaultdict(Counter)
    misses = defaultdict(list)
    for _payment_id, truth, proposals, plan, notes in scored:
        s = stats[truth.kind]
        s["n"] += 1
        right = [is_right(p, truth, invoice_ids, customer_ids, invoice_customer) for p in proposals]
        if truth.kind in NOTHING_TO_ALLOCATE:
            s["nothing"] += 1
            if not proposals and notes:
                s["said_why"] += 1
        if not proposals:
            s["none"] += 1
        if right[:1] == [True]:
            s["rank1"] += 1
        elif show_wrong and len(misses[truth.kind]) < show_wrong:
            misses[truth.kind].append((truth, proposals[:1], notes))
        if any(right[:3]):
            s["top3"] += 1
        if plan is not None:
            s["auto"] += 1
            if right[:1] == [True]:
                s["auto_ok"] += 1
                if plan.state in ("sent", "approved"):
                    s["stp"] += 1
        if proposals:
            first = proposals[0]
            want = None if truth.customer is None else customer_ids[truth.customer]
            got = {invoice_customer.get(int(line["invoice_id"])) for line in first.lines}
            if not first.lines:
                got = {((first.evidence or {}).get("customer") or {}).get("customer_id")}
            wrong_customer = bool(first.lines) and got != {want}
            if wrong_customer:
                s["wrongcus"] += 1
                if first.confidence >= Decimal("0.9"):
                    s["wrongcus90"] += 1
            if right[:1] != [True] and first.confidence >= Decimal("0.9"):
                s["wrong90"] += 1
    print_calibration(scored, invoice_ids, customer_ids, invoice_customer)
    header = f"{'kind':<22}{'n':>5}{'stp':>7}{'auto':>6}{'a.ok':>6}{'rank1':>7}{'top3':>7}{'none':>7}{'w90':>5}{'wcus':>6}"
    print(header)
    total = Counter()
    bank = Counter()
    for kind in KINDS:
        s = stats.get(kind)
        if not s:
            continue
        total.update(s)
        if KINDS[kind][1] == "bank":
            bank.update(s)
        print(_row(kind, s))
    print("-" * len(header))
    print(_row("bank transfers", bank))
    print(_row("all", total))
    allocatable = total["n"] - total["nothing"]
    none_allocatable = total["none"] - sum(stats[k]["none"] for k in NOTHING_TO_ALLOCATE)
    precision = total["auto_ok"] / total["auto"] if total["auto"] else 1.0
    print(
        f"SUMMARY payments={total['n']} straight_through={_pct(total['stp'], total['n'])} "
        f"auto_precision={precision:.2%} wrong_auto={total['auto'] - total['auto_ok']} "
        f"rank1={_pct(total['rank1'], total['n'])} rank1_bank={_pct(bank['rank1'], bank['n'])} "
        f"top3={_pct(total['top3'], total['n'])} "
        f"no_proposal={_pct(none_allocatable, allocatable)} "
        f"wrong_customer={_pct(total['wrongcus'], total['n'])} wrong_customer_0.9={total['wrongcus90']} "
        f"wrong_0.9={total['wrong90']} "
        f"nothing_to_allocate_said_why={total['said_why']}/{total['nothing']}"
    )
    for kind, items in misses.items():
        for truth, first, notes in items:
            print(
                f"  miss {kind}: truth cust={truth.customer} lines={truth.lines} | "
                f"{[(p.rule_kind, str(p.confidence), p.explanation[:90], p.lines, (p.evidence or {}).get('customer')) for p in first]} {notes}"
            )


def print_calibration(scored, invoice_ids, customer_ids, invoice_customer):
    """First proposals by rule and confidence band: how many, how many right; and what the
    monitored rules would have auto-approved (evidence would_auto_approve), how many right."""
    bands = defaultdict(Counter)
    for _payment_id, truth, proposals, _plan, _notes in scored:
        if not proposals:
            continue
        first = proposals[0]
        right = is_right(first, truth, invoice_ids, customer_ids, invoice_customer)
        band = f"{first.rule_kind} {min(int(first.confidence * 10), 9) / 10:.1f}"
        bands[band]["n"] += 1
        bands[band]["right"] += right
        via = ((first.evidence or {}).get("customer") or {}).get("via") or "-"
        score = ((first.evidence or {}).get("customer") or {}).get("score")
        if score is not None:
            via += ">=97" if score >= 97 else ">=90" if score >= 90 else "<90"
        by_via = f"{first.rule_kind} via {via}"
        bands[by_via]["n"] += 1
        bands[by_via]["right"] += right
        if (first.evidence or {}).get("would_auto_approve"):
            bands[f"{first.rule_kind} would auto-approve"]["n"] += 1
            bands[f"{first.rule_kind} would auto-approve"]["right"] += right
    print(
        "calibration (first proposals): "
        + "; ".join(f"{band}: {c['right']}/{c['n']}" for band, c in sorted(bands.items()))
    )


def _pct(a, b) -> str:
    return f"{a / b:.1%}" if b else "-"


def _row(kind, s) -> str:
    n = s["n"]
    return (
        f"{kind:<22}{n:>5}{_pct(s['stp'], n):>7}{s['auto']:>6}{s['auto_ok']:>6}"
        f"{_pct(s['rank1'], n):>7}{_pct(s['top3'], n):>7}{_pct(s['none'], n):>7}"
        f"{s['wrong90']:>5}{s['wrongcus']:>6}"
    )


if __name__ == "__main__":
    main()
