"""A realistic, deterministic demo company for the sandbox.

Entity "demo" (Demo Trading Ltd, GBP; Integration 1.1 keys and 2.0 client) and entity
"demo-ie" (Demo Trading Ireland DAC, EUR; 2.0 only), connected intercompany (demo's customer
DEMOIE is demo-ie's supplier DEMOUK). Each has a labour agency supplier AGENCY. "demo" has 20
customers with e-mail addresses, GBP and EUR bank accounts, a chart of accounts with discount
and write-off accounts, tax codes, two analysis dimensions with departments, and 60 posted
invoices INV-1001.. in GBP and EUR, 15 of them part-paid by allocated receipts, plus two
receipts left on account.

Everything is built through the same functions the SOAP operations use, with a fixed clock
and a fixed random seed: the same command gives the same books (ids, numbers, amounts, dates).
Credentials come from AIQ_DEMO_PARTNER_KEY, AIQ_DEMO_USER_KEY, AIQ_DEMO_CLIENT_ID and
AIQ_DEMO_CLIENT_SECRET when set, else from the sandbox-only defaults below.
"""

import os
import random
from datetime import datetime, timedelta
from decimal import Decimal

from sandbox import books, invoicing
from sandbox.ops.customers import save_customer
from sandbox.ops.receipts import save_receipt
from sandbox.store import Store, dumps

AS_OF = datetime(2026, 11, 1, 9, 0, 0)
# Sandbox-only credentials (never valid anywhere else); the run script exports the ones used.
SANDBOX_CREDENTIALS = {
    "AIQ_DEMO_PARTNER_KEY": "sandbox-partner-demo",
    "AIQ_DEMO_USER_KEY": "sandbox-user-demo",
    "AIQ_DEMO_CLIENT_ID": "sandbox-client-demo",
    "AIQ_DEMO_CLIENT_SECRET": "sandbox-client-demo-credential",
}


def credentials() -> dict[str, str]:
    return {name: os.environ.get(name) or default for name, default in SANDBOX_CREDENTIALS.items()}


GL_ACCOUNTS = [
    ("1100", "Debtors control", "debtors"),
    ("1150", "Stripe clearing", "bank"),
    ("1200", "Bank current account GBP", "bank"),
    ("1210", "Bank current account EUR", "bank"),
    ("1400", "Intercompany current accounts", "intercompany"),
    ("2100", "Creditors control", "creditors"),
    ("2200", "VAT", "tax"),
    ("2300", "Deferred income", "liability"),
    ("3000", "Retained earnings", "equity"),
    ("4000", "Sales - subscriptions", "sales"),
    ("4010", "Sales - services", "sales"),
    ("4020", "Sales - hardware", "sales"),
    ("4900", "Discounts allowed", "discount"),
    ("5000", "Purchases", "purchases"),
    ("7500", "Bank charges", "expense"),
    ("7510", "Card processing fees", "expense"),
    ("8100", "Bad debt write-off", "writeoff"),
    ("4200", "Other income", "income"),
    ("9990", "Suspense", "suspense"),
]
TAX_CODES = [("T1", "Standard rate", "20", 1), ("T0", "Zero rated", "0", 0),
             ("T2", "Exempt", "0", 0), ("T5", "Reduced rate", "5", 0)]  # fmt: skip
DIMENSIONS = [
    (1, "REGION", "Region", [("NORTH", "North"), ("SOUTH", "South"), ("EU", "Europe")]),
    (2, "LINE", "Product line", [("SUBS", "Subscriptions"), ("SERV", "Services"), ("HW", "Hardware")]),
]  # fmt: skip
DEPARTMENTS = [
    ("NS", "North subscriptions", "NORTH", "SUBS"), ("NV", "North services", "NORTH", "SERV"),
    ("SS", "South subscriptions", "SOUTH", "SUBS"), ("SV", "South services", "SOUTH", "SERV"),
    ("SH", "South hardware", "SOUTH", "HW"), ("ES", "Europe subscriptions", "EU", "SUBS"),
]  # fmt: skip
CUSTOMERS = [
    ("ACME", "Acme Widgets Ltd", "GBP", "Manchester", "M1 2AB"),
    ("BRIGHT", "Bright Futures Nursery", "GBP", "Leeds", "LS1 4DJ"),
    ("CASTLE", "Castle Joinery Ltd", "GBP", "York", "YO1 7HH"),
    ("DELTA", "Delta Logistics plc", "GBP", "Birmingham", "B2 4QA"),
    ("EVERGR", "Evergreen Gardens", "GBP", "Bristol", "BS1 5TR"),
    ("FOXTON", "Foxton & Daughters", "GBP", "Cambridge", "CB2 1TN"),
    ("GRANIT", "Granite Build Co", "GBP", "Aberdeen", "AB10 1AB"),
    ("HARBOR", "Harbour View Hotel", "GBP", "Plymouth", "PL1 2PD"),
    ("IVYLN", "Ivy Lane Dental", "GBP", "Oxford", "OX1 3QD"),
    ("JUNIPR", "Juniper Accountants LLP", "GBP", "London", "EC2A 4NE"),
    ("KESTRL", "Kestrel Aviation Services", "GBP", "Norwich", "NR6 6JA"),
    ("LUMEN", "Lumen Lighting Ltd", "GBP", "Sheffield", "S1 2BJ"),
    ("MERIDN", "Meridian Travel", "GBP", "Brighton", "BN1 1AE"),
    ("NORTHS", "Northstar Fitness", "GBP", "Newcastle", "NE1 7RU"),
    ("OAKTRE", "Oak Tree Veterinary", "GBP", "Exeter", "EX1 1HS"),
    ("PENNY", "Penny Lane Records", "GBP", "Liverpool", "L1 8JQ"),
    ("QUAYSD", "Quayside Marine GmbH", "EUR", "Hamburg", "20457"),
    ("RIVIER", "Riviera Boutique SARL", "EUR", "Nice", "06000"),
    ("SOLAR", "Solaris Energia SL", "EUR", "Valencia", "46002"),
    ("TULIP", "Tulip Trading BV", "EUR", "Rotterdam", "3011 AA"),
]
IE_CUSTOMERS = [
    ("DUBLNB", "Dublin Bay Bakery", "EUR", "Dublin", "D02 X285"),
    ("GALWAY", "Galway Surf School", "EUR", "Galway", "H91 E2K7"),
    ("CORKTC", "Cork Tech Hub", "EUR", "Cork", "T12 R5CP"),
    ("DEMOUK", "Demo Trading Ltd (intercompany)", "GBP", "London", "EC1A 1BB"),
]
PRODUCTS = [
    ("Monthly subscription - Standard", "4000", Decimal("49.00")),
    ("Monthly subscription - Pro", "4000", Decimal("129.00")),
    ("Onboarding workshop (day)", "4010", Decimal("650.00")),
    ("Support hours", "4010", Decimal("85.00")),
    ("Card reader", "4020", Decimal("39.99")),
    ("Receipt printer", "4020", Decimal("119.50")),
]


def seed(path: str, as_of: datetime = AS_OF) -> dict:
    """Fill an empty sandbox database; refuses a database that already has entity "demo"."""
    store = Store(path)
    try:
        with store.transaction() as db:
            if db.execute("SELECT 1 FROM entity WHERE id = 'demo'").fetchone():
                raise SystemExit(f"{path} is already seeded (entity 'demo' exists).")
            keys = credentials()
            rng = random.Random(20261101)
            db.execute(
                "INSERT INTO entity (id, name, base_currency, partner_key, user_key, gl_defaults) "
                "VALUES ('demo', 'Demo Trading Ltd', 'GBP', ?, ?, ?)",
                (keys["AIQ_DEMO_PARTNER_KEY"], keys["AIQ_DEMO_USER_KEY"],
                 dumps({"GLCategoryID": "SALES", "TaxID": "T1", "DepartmentID": "NS"})),
            )  # fmt: skip
            db.execute(
                "INSERT INTO entity (id, name, base_currency, gl_defaults) "
                "VALUES ('demo-ie', 'Demo Trading Ireland DAC', 'EUR', '{}')"
            )
            db.execute(
                "INSERT INTO api_client (client_id, client_secret, entities) VALUES (?, ?, ?)",
                (keys["AIQ_DEMO_CLIENT_ID"], keys["AIQ_DEMO_CLIENT_SECRET"],
                 dumps(["demo", "demo-ie"])),
            )  # fmt: skip
            demo = _company(db, "demo", as_of, rng, CUSTOMERS, invoices=60, paid=15,
                            banks=[("BANK-GBP", "1200", "GBP"), ("BANK-EUR", "1210", "EUR")],
                            rates={"EUR": "1.15"})  # fmt: skip
            ireland = _company(db, "demo-ie", as_of, rng, IE_CUSTOMERS, invoices=12, paid=3,
                               banks=[("BANK-EUR-IE", "1200", "EUR"), ("BANK-GBP-IE", "1210", "GBP")],
                               rates={"GBP": "0.87"})  # fmt: skip
            # demo sells to demo-ie: its customer DEMOIE (EUR) is demo-ie's supplier DEMOUK (EUR)
            db.execute(
                "INSERT INTO intercompany (entity_id, local_account_code, local_ledger, "
                "remote_entity_id, remote_account_code, remote_ledger) "
                "VALUES ('demo', 'DEMOIE', 'Sales', 'demo-ie', 'DEMOUK', 'Purchases')"
            )
            return {"demo": demo, "demo-ie": ireland}
    finally:
        store.close()


# The demo's card money (scripts/run.sh): each company's Stripe account has a clearing bank
# account of its own in AIQ, on the Stripe clearing GL account (1150). Added to a seeded
# database by `python -m sandbox demo-clearing` (the tests' books stay as seeded).
DEMO_CLEARING_BANKS = (("demo", "STRIPE-GBP", "GBP"), ("demo-ie", "STRIPE-EUR-IE", "EUR"))


def add_demo_clearing_banks(path: str) -> int:
    """The demo companies' Stripe clearing bank accounts, where missing; how many were added."""
    store = Store(path)
    added = 0
    try:
        with store.transaction() as db:
            for entity_id, code, currency in DEMO_CLEARING_BANKS:
                if not db.execute("SELECT 1 FROM entity WHERE id = ?", (entity_id,)).fetchone():
                    continue
                if db.execute(
                    "SELECT 1 FROM bank WHERE entity_id = ? AND bank_account_code = ?",
                    (entity_id, code),
                ).fetchone():
                    continue
                db.execute(
                    "INSERT INTO bank (entity_id, gl_code, bank_account_code, name, currency, "
                    "sort_code, iban) VALUES (?, '1150', ?, ?, ?, '', '')",
                    (entity_id, code, f"Stripe clearing {currency}", currency),
                )
                added += 1
    finally:
        store.close()
    return added


def _company(db, entity_id, as_of, rng, customers, *, invoices, paid, banks, rates) -> dict:
    for code, name, category in GL_ACCOUNTS:
        db.execute("INSERT INTO gl_account VALUES (?, ?, ?, ?)", (entity_id, code, name, category))
    for code, description, rate, default in TAX_CODES:
        db.execute("INSERT INTO tax_code VALUES (?, ?, ?, ?, ?)",
                   (entity_id, code, description, rate, default))  # fmt: skip
    for account_code, gl, currency in banks:
        db.execute(
            "INSERT INTO bank (entity_id, gl_code, bank_account_code, name, currency, sort_code, "
            "iban) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (entity_id, gl, account_code, f"Current account {currency}", currency, "40-11-62",
             f"GB29NWBK6016133192{len(account_code):04d}"),
        )  # fmt: skip
    for currency, rate in rates.items():
        db.execute("INSERT INTO currency_rate VALUES (?, ?, ?)", (entity_id, currency, rate))
    for position, code, description, codes in DIMENSIONS:
        db.execute("INSERT INTO analysis_dimension VALUES (?, ?, ?, ?)",
                   (entity_id, position, code, description))  # fmt: skip
        for value, label in codes:
            db.execute("INSERT INTO analysis_code VALUES (?, ?, ?, ?)",
                       (entity_id, position, value, label))  # fmt: skip
    for department, description, region, line in DEPARTMENTS:
        db.execute(
            "INSERT INTO department (entity_id, id, description, a1, a2) VALUES (?, ?, ?, ?, ?)",
            (entity_id, department, description, region, line),
        )
    entity = db.execute("SELECT * FROM entity WHERE id = ?", (entity_id,)).fetchone()
    ctx = books.Ctx(db=db, entity=entity, now=as_of - timedelta(days=120), user="seed")
    all_customers = list(customers)
    if entity_id == "demo":
        all_customers.append(("DEMOIE", "Demo Trading Ireland DAC (intercompany)", "EUR",
                              "Dublin", "D02 X285"))  # fmt: skip
    codes = []
    for number, (code, name, currency, city, postcode) in enumerate(all_customers, start=1):
        domain = name.lower().split()[0].strip("&(") + ".example"
        save_customer(ctx, {
            "Code": code, "Name": name, "CurrencyCode": currency,
            "Address1": f"{number} High Street", "City": city, "PostCode": postcode,
            "Contact": "Accounts Payable", "Email": f"accounts@{domain}",
            "Phone": f"0161 496 {number:04d}", "DefaultTaxCode": "T1" if currency == "GBP" else "T0",
            "DefaultGLAccountCode": "4000", "ControlGLAccountCode": "1100",
            "CreditTermID": "30", "CreditLimit": Decimal(5000 + 1000 * (number % 5)),
        }, create=True)  # fmt: skip
        codes.append(code)
    for supplier in ("OFFICEPRO", "CLOUDHOST"):
        save_customer(ctx, {"Code": supplier, "Name": supplier.title() + " Ltd",
                            "DefaultGLAccountCode": "5000"}, create=True, ledger="Purchases")  # fmt: skip
    # a labour agency (back-to-back invoicing); demo-ie buys from demo as supplier DEMOUK
    # (intercompany: demo's customer DEMOIE is connected to it)
    suppliers = [("AGENCY", "Staffline Agency Ltd", entity["base_currency"])]
    if entity_id == "demo-ie":
        suppliers.append(("DEMOUK", "Demo Trading Ltd (intercompany)", "EUR"))
    for code, name, currency in suppliers:
        save_customer(ctx, {"Code": code, "Name": name, "CurrencyCode": currency,
                            "DefaultGLAccountCode": "5000", "DefaultTaxCode": "T0"},
                      create=True, ledger="Purchases")  # fmt: skip
    invoice_ids = []
    for n in range(invoices):
        code = codes[n % len(codes)]
        ctx.now = as_of - timedelta(days=90 - (n * 89) // max(invoices - 1, 1), hours=n % 7)
        record = invoicing.template(ctx, code, "invoice")
        lines = []
        for _ in range(rng.randint(1, 3)):
            description, gl, price = rng.choice(PRODUCTS)
            department = rng.choice(DEPARTMENTS)[0]
            lines.append({"StockItemDescription": description, "GLAccountCode": gl,
                          "InvoicedQuantity": Decimal(rng.randint(1, 4)), "StockItemPrice": price,
                          "DepartmentID": department})  # fmt: skip
        record.update(Lines={"InvoiceLine": lines}, ExternalReference=f"SO-{2001 + n}",
                      InvoiceDate=ctx.now)  # fmt: skip
        invoice_id = invoicing.save(ctx, record, True, "invoice")
        invoice_ids.append(invoicing.post(ctx, invoice_id, "invoice"))
    receipts = 0
    for n, transaction_id in enumerate(invoice_ids[: paid * 4 : 4]):
        row = books.txn(ctx, transaction_id)
        account = books.account_by_id(ctx, row["account_id"])
        ctx.now = datetime.fromisoformat(row["transaction_date"]) + timedelta(days=10)
        part = (Decimal(row["amount_milli"]) * rng.randint(25, 75) / 100000).quantize(
            Decimal("0.01")
        )
        bank = next(code for code, _gl, currency in banks if currency == row["currency"])
        receipt_id = save_receipt(ctx, {
            "CustomerCode": account["code"], "CheckReference": f"SEED-{entity_id}-RCPT-{n + 1:03d}",
            "PaymentAmount": part, "BankAccountCode": bank, "PaymentDate": ctx.now,
            "Description": f"Part payment {row['internal_number']}",
        })  # fmt: skip
        books.allocate(ctx, transaction_id, receipt_id, part, reference=row["internal_number"],
                       allocation_date=ctx.now)  # fmt: skip
        receipts += 1
    for n, code in enumerate(codes[1:3]):  # two payments on account, not yet allocated
        account = books.account_by_code(ctx, code)
        bank = next(c for c, _gl, currency in banks if currency == account["currency"])
        ctx.now = as_of - timedelta(days=3 - n)
        save_receipt(ctx, {
            "CustomerCode": code, "CheckReference": f"SEED-{entity_id}-ONACC-{n + 1:03d}",
            "PaymentAmount": Decimal("250.00") + n, "BankAccountCode": bank, "PaymentDate": ctx.now,
        })  # fmt: skip
        receipts += 1
    return {"customers": len(codes), "invoices": len(invoice_ids), "receipts": receipts}
