"""Lloyds' MT940 variants and NatWest Bankline's CSV, shaped as the banks document them, each
read with every amount, date and reference right, and each statement's account found.

Lloyds (LloydsLink Online "SWIFT MT940 (Standard)" file format guide, May 2014) offers three
MT940 exports that differ in field 25: "SWIFT MT940" writes sort code/account number as
nnnnnnnn/nnnnnnnn (the sort code zero-padded to 8), "SWIFT MT940 (SAP compliant)" only the
account number nnnnnnnn, and "SWIFT MT940 V2" nnnnnn/nnnnnnnn. Commercial Banking Online's
export (its support page "What is a SWIFT MT940 export?") wraps block 4 ({4: ... -}) and writes
nnnnnn-nnnnnnnn, with :21:, :28C: nnnnn/nnnnn, :64: and :86: of up to 6 lines of 65.

NatWest Bankline's transaction CSV: 18 columns (Sort Code, Account Number, Account Alias,
Account Short Name, Currency, Account Type, BIC, Bank Name, Branch Name, Date dd/mm/yy,
Narrative #1-#5, Type, Debit, Credit), as the bookkeeping tools that load it describe it.
The figures and names below are made up; the shapes are the banks'."""

from datetime import date
from decimal import Decimal

import pytest

from payments.models import ImportFormat, Payment, StatementAccount
from payments.services.statements import statement_import, statement_preview
from payments.sources.bank_files import detect_format, read_entries

pytestmark = pytest.mark.django_db

BODY = """:28C:00064/00001
:60F:C250303GBP1000,00
:61:2503030303C120,50NTRFNONREF//LBG0001
:86:ACME LTD
INV-1001
:61:2503030303D900,00NCHQ100234//LBG0002
:86:RENT MARCH
:61:2503040304C300,00NTRFINV-1002//LBG0003
:86:GLOBEX PLC REMITTANCE FOR INVOICES INV-1002 AND INV-1003 PAID BY
FASTER PAYMENT
:61:2503040304C1250,00NBGCNONREF//LBG0004
:86:INITECH LIMITED BGC 7781
:62F:C250304GBP1770,50
:64:C250304GBP1770,50
"""


def _lloyds(account: str, envelope: bool = False) -> bytes:
    text = f":20:LLOYDS0304\n:21:NONREF\n:25:{account}\n{BODY}"
    if envelope:
        text = (
            "{1:F01LOYDGB2LAXXX0000000000}{2:O9401200250304LOYDGB2LAXXX00000000002503041200N}"
            "{4:\n" + text + "-}"
        )
    return text.encode()


VARIANTS = {
    "SWIFT MT940": _lloyds("00309950/12345678"),
    "SWIFT MT940 (SAP compliant)": _lloyds("12345678"),
    "SWIFT MT940 V2": _lloyds("309950/12345678"),
    "Commercial Banking Online": _lloyds("309950-12345678", envelope=True),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_each_lloyds_mt940_variant_reads_every_entry(variant):
    content = VARIANTS[variant]
    assert detect_format(content, "statement.txt") == "mt940"
    parsed, entries = read_entries(content, "statement.txt")
    assert [(e.booked, e.amount, e.bank_reference) for e in entries] == [
        (date(2025, 3, 3), Decimal("120.50"), "LBG0001"),
        (date(2025, 3, 3), Decimal("-900.00"), "LBG0002"),
        (date(2025, 3, 4), Decimal("300.00"), "LBG0003"),
        (date(2025, 3, 4), Decimal("1250.00"), "LBG0004"),
    ]
    assert [e.remittance for e in entries] == [
        "ACME LTD INV-1001",
        "100234 RENT MARCH",
        # the customer's reference (INV-1002) is in the narrative already: not repeated
        "GLOBEX PLC REMITTANCE FOR INVOICES INV-1002 AND INV-1003 PAID BY FASTER PAYMENT",
        "INITECH LIMITED BGC 7781",
    ]
    [header] = parsed.statements
    assert (header.opening_balance, header.closing_balance, header.currency) == (
        Decimal("1000.00"),
        Decimal("1770.50"),
        "GBP",
    )
    expected = "12345678" if "SAP" in variant else "309950 12345678"
    assert header.account_key == expected


def _upload(user, layout, content, account):
    """Preview (no row errors) and import one file as the clerk does, for the chosen account."""
    preview = statement_preview(
        user=user,
        import_format=layout,
        filename="upload",
        content=content,
        statement_account=account,
    )
    assert preview.ok, preview.file_error or [str(e) for e in preview.parsed.errors]
    statement_import(user=user, batch=preview.batch, content=content)
    return preview


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_each_lloyds_variant_lands_on_the_one_account(entity, alice, variant):
    account = StatementAccount.objects.create(entity=entity, account_key="309950 12345678")
    _upload(alice, None, VARIANTS[variant], account)
    received = Payment.objects.order_by("amount")
    assert [(p.amount, p.statement_account_id) for p in received] == [
        (Decimal("120.50"), account.pk),
        (Decimal("300.00"), account.pk),
        (Decimal("1250.00"), account.pk),
    ]
    assert received[0].external_id.startswith("row:")


BANKLINE = (
    "Sort Code,Account Number,Account Alias,Account Short Name,Currency,Account Type,BIC,"
    "Bank Name,Branch Name,Date,Narrative #1,Narrative #2,Narrative #3,Narrative #4,"
    "Narrative #5,Type,Debit,Credit\n"
    "'60-16-13,31926819,MAIN,DEMO LTD,GBP,BUSINESS CURRENT,NWBKGB2L,NATIONAL WESTMINSTER BANK,"
    "CITY OF LONDON,03/03/25,ACME LTD,INV-1001,FP 03/03/25 1032,,,BAC,,120.50\n"
    "'60-16-13,31926819,MAIN,DEMO LTD,GBP,BUSINESS CURRENT,NWBKGB2L,NATIONAL WESTMINSTER BANK,"
    "CITY OF LONDON,03/03/25,100234,,,,,CHQ,-900.00,\n"
    "'60-16-13,31926819,MAIN,DEMO LTD,GBP,BUSINESS CURRENT,NWBKGB2L,NATIONAL WESTMINSTER BANK,"
    'CITY OF LONDON,04/03/25,GLOBEX PLC,INV-1002,,,,BAC,,"1,300.00"\n'
    "'60-16-13,31926819,MAIN,DEMO LTD,GBP,BUSINESS CURRENT,NWBKGB2L,NATIONAL WESTMINSTER BANK,"
    "CITY OF LONDON,04/03/25,CHARGES,,,,,CHG,-12.40,\n"
)


def test_natwest_bankline_csv_reads_every_amount_date_and_reference(entity, alice):
    layout = ImportFormat.objects.get(name="NatWest Bankline (CSV)")
    account = StatementAccount.objects.create(entity=entity, account_key="601613 31926819")
    preview = _upload(alice, layout, BANKLINE.encode("cp1252"), account)
    assert preview.parsed.skipped == 2  # the cheque and the charges: money out
    received = [
        (p.received_at.date(), p.amount, p.currency, p.description, p.bank_reference)
        for p in Payment.objects.order_by("received_at", "amount")
    ]
    assert received == [
        (date(2025, 3, 3), Decimal("120.50"), "GBP", "ACME LTD", "INV-1001"),
        (date(2025, 3, 4), Decimal("1300.00"), "GBP", "GLOBEX PLC", "INV-1002"),
    ]
    assert set(Payment.objects.values_list("statement_account", flat=True)) == {account.pk}
