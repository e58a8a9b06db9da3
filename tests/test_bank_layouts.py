"""The ready layouts of UK and Irish banks' CSV exports: each reads a file with the columns
its origin describes (money in booked, money out skipped), and the upload screen says what
each expects."""

from decimal import Decimal

import pytest
from django.urls import reverse

from payments.models import ImportFormat, Payment
from payments.services.statements import statement_import, statement_preview
from payments.sources.bank_layouts import LAYOUTS

# one credit of 250.00 (reference INV-7) and one debit, as each bank's export lays them out
FILES = {
    "Barclays (CSV export)": "Number,Date,Account,Amount,Subcategory,Memo\n"
    ",03/03/2025,20-00-00 1234567,250.00,Counter Credit,INV-7 ACME\n"
    ",03/03/2025,20-00-00 1234567,-12.00,Debit,CARD\n",
    "HSBC UK (CSV download)": "03/03/2025,INV-7 ACME,250.00\n03/03/2025,CARD,-12.00\n",
    "Lloyds / Halifax / Bank of Scotland (CSV)": "Transaction Date,Transaction Type,Sort Code,"
    "Account Number,Transaction Description,Debit Amount,Credit Amount,Balance\n"
    "03/03/2025,FPI,'30-99-50,12345678,INV-7 ACME,,250.00,1250.00\n"
    "03/03/2025,DEB,'30-99-50,12345678,CARD,12.00,,1238.00\n",
    "NatWest / RBS / Ulster (CSV)": "Date, Type, Description, Value, Balance, Account Name, "
    "Account Number\n"
    "03 Mar 2025,BAC,'INV-7 ACME,250.00,1250.00,'DEMO LTD,'601613-31926819\n"
    "03/03/2025,POS,'CARD,-12.00,1238.00,'DEMO LTD,'601613-31926819\n",
    "NatWest Bankline (CSV)": "Sort Code,Account Number,Account Alias,Account Short Name,"
    "Currency,Account Type,BIC,Bank Name,Branch Name,Date,Narrative #1,Narrative #2,"
    "Narrative #3,Narrative #4,Narrative #5,Type,Debit,Credit\n"
    "60-16-13,31926819,MAIN,DEMO LTD,GBP,CURRENT,NWBKGB2L,NATWEST,CITY,03/03/25,INV-7 ACME,"
    "ACME LTD,,,,BAC,,250.00\n"
    "60-16-13,31926819,MAIN,DEMO LTD,GBP,CURRENT,NWBKGB2L,NATWEST,CITY,03/03/25,CARD,,,,,POS,"
    "-12.00,\n",
    "Nationwide (CSV)": '"Account Name:","Business ****12345"\n"Account Balance:","£1,238.00"\n'
    '"Available Balance: ","£1,238.00"\n\n'
    '"Date","Transaction type","Description","Paid out","Paid in","Balance"\n'
    '"03 Mar 2025","Bank credit","INV-7 ACME","","£250.00","£1,250.00"\n'
    '"03 Mar 2025","Visa","CARD","£12.00","","£1,238.00"\n',
    "AIB (CSV)": "Posted Account,Posted Transactions Date,Description1,Description2,"
    "Description3,Debit Amount,Credit Amount,Balance,Posted Currency,Transaction Type\n"
    "93-11-52 12345678,03/03/2025,INV-7 ACME,,,,250.00,1250.00,EUR,Credit\n"
    "93-11-52 12345678,03/03/2025,CARD,,,12.00,,1238.00,EUR,Debit\n",
    "Bank of Ireland (CSV)": "Date,Details,Debit,Credit,Balance\n"
    "03/03/2025,INV-7 ACME,,250.00,1250.00\n03/03/2025,CARD,12.00,,1238.00\n",
    "Revolut Business (CSV)": "Date started (UTC),Date completed (UTC),ID,Type,State,"
    "Description,Reference,Payer,Card number,Orig currency,Orig amount,Payment currency,"
    "Amount,Fee,Balance\n"
    "2025-03-03,2025-03-03,r-1,TRANSFER,COMPLETED,From ACME,INV-7 ACME,ACME LTD,,GBP,250.00,"
    "GBP,250.00,0.00,1250.00\n"
    "2025-03-03,,r-2,CARD_PAYMENT,PENDING,CARD,,,1234,GBP,-12.00,GBP,-12.00,0.00,\n",
    "Wise Business (CSV)": "TransferWise ID,Date,Amount,Currency,Description,Payment Reference,"
    "Running Balance,Exchange From,Exchange To,Exchange Rate,Payer Name,Payee Name\n"
    "TRANSFER-1,03-03-2025,250.00,GBP,Received money from ACME LTD with reference INV-7,,"
    "1250.00,,,,ACME LTD,\n"
    "CARD-2,03-03-2025,-12.00,GBP,Card transaction,,1238.00,,,,,Shop\n",
    "Starling (CSV)": "Date,Counter Party,Reference,Type,Amount (GBP),Balance (GBP),"
    "Spending Category,Notes\n"
    "03/03/2025,ACME LTD,INV-7 ACME,FASTER PAYMENT,250.00,1250.00,INCOME,\n"
    "03/03/2025,Shop,CARD,CARD,-12.00,1238.00,SHOPPING,\n",
    "Monzo Business (CSV)": "Transaction ID,Date,Time,Type,Name,Emoji,Category,Amount,Currency,"
    "Local amount,Local currency,Notes and #tags,Address,Receipt,Description,Category split,"
    "Money Out,Money In\n"
    "tx_1,03/03/2025,10:00:00,Faster payment,ACME LTD,,Income,250.00,GBP,250.00,GBP,INV-7 ACME,"
    ",,INV-7,,,250.00\n"
    "tx_2,03/03/2025,11:00:00,Card payment,Shop,,Shopping,-12.00,GBP,-12.00,GBP,,,,CARD,,-12.00,\n",
}


# read in tests/test_smartdebit_api.py (a collection report has no money out to skip)
ELSEWHERE = {"SmartDebit collection report (CSV)"}


def test_every_ready_layout_has_a_sample_and_an_origin():
    assert {layout["name"] for layout in LAYOUTS} == set(FILES) | ELSEWHERE
    assert all(len(layout["origin"]) > 40 for layout in LAYOUTS)


@pytest.mark.parametrize("name", sorted(FILES))
def test_a_ready_layout_reads_its_banks_export(entity, alice, name):
    layout = ImportFormat.objects.get(name=name)  # installed by migration 0019
    content = FILES[name].encode("cp1252")
    preview = statement_preview(user=alice, import_format=layout, filename="x.csv", content=content)
    assert preview.ok, preview.file_error or [str(e) for e in preview.parsed.errors]
    assert preview.parsed.skipped == 1
    statement_import(user=alice, batch=preview.batch, content=content)
    payment = Payment.objects.get()
    assert payment.amount == Decimal("250.00")
    assert "INV-7" in payment.description
    assert payment.received_at.date().isoformat() == "2025-03-03"


def test_the_upload_screen_lists_formats_and_what_each_layout_expects(client, alice, entity):
    client.force_login(alice)
    page = client.get(reverse("payments:statement_upload")).content.decode()
    for text in ("camt.053", "mt940", "bai2", "ofx", "qif"):
        assert text in page
    assert "Transaction Date" in page and "31/03/2025" in page  # Lloyds' column, UK dates
    assert "31 Mar 2025 or 31/03/2025" in page  # NatWest: either
    assert "found by its names" in page


def test_every_ready_layout_fits_its_columns():
    """The migrations install LAYOUTS as they are today; PostgreSQL refuses a value longer than
    its column (SQLite does not), so a too-long text breaks every PostgreSQL migrate."""
    from payments.models import ImportFormat
    from payments.sources.bank_layouts import LAYOUTS

    for layout in LAYOUTS:
        for name, value in layout.items():
            field = ImportFormat._meta.get_field(name)
            if isinstance(value, str) and field.max_length:
                assert len(value) <= field.max_length, (layout["name"], name, len(value))
