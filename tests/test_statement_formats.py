"""Bank statement formats a UK/Irish finance team receives, each read into the same payments:
camt.053/054, MT940 (Lloyds, NatWest Bankline), BAI2, OFX, QIF. The statement's account,
balances (and the balance check), the payer's name and account, remittance text, end-to-end id
and bank reference; camt batch bookings split into one payment per detail; ids unique per
bank account; overlapping statements recognised."""

from decimal import Decimal

import pytest

from ledger.models import BankAccount
from payments.models import ImportBatch, Payment, Statement, StatementAccount
from payments.services.statements import statement_import, statement_preview
from tests import statement_samples as samples


def _import(user, content, name, **kwargs):
    preview = statement_preview(
        user=user, import_format=None, filename=name, content=content, **kwargs
    )
    assert preview.ok, preview.file_error or [str(e) for e in preview.parsed.errors]
    return preview, statement_import(user=user, batch=preview.batch, content=content)


@pytest.mark.parametrize("version", ["02", "04", "08", "13"])
def test_a_camt053_statement_books_every_credit_and_keeps_the_balances(entity, alice, version):
    preview, batch = _import(alice, samples.camt053(version=version), "stmt.xml")
    assert preview.parsed.file_format == "camt.053"
    # the batch of three becomes three payments; the debit and the pending entry are not money in
    assert len(preview.new_items) == 4 and preview.parsed.skipped == 2
    payments = {p.end_to_end_id or p.payer_name: p for p in Payment.objects.all()}
    acme = payments["E2E-ACME-1001"]
    assert (acme.amount, acme.currency, acme.received_at.date().isoformat()) == (
        Decimal("120.50"),
        "GBP",
        "2025-03-03",
    )
    assert acme.payer_name == "ACME LTD"
    assert acme.payer_account == "GB33BUKB20201555555555"
    assert acme.bank_reference == "NWB0001"
    assert acme.description == "INV-1001 THANK YOU"
    assert {"source": "bank.narrative", "value": "INV-1001 THANK YOU"} in acme.references
    # a UK account number given as sort code + number (Othr/Id) reads as one
    assert payments["E2E-G-1"].payer_account == "400515 12345678"
    assert sorted(p.amount for p in Payment.objects.filter(bank_reference="NWB0003")) == [
        Decimal("50.00"),
        Decimal("100.00"),
        Decimal("150.00"),
    ]
    account = StatementAccount.objects.get()
    assert account.account_key == "GB29NWBK60161331926819"
    assert set(Payment.objects.values_list("statement_account", flat=True)) == {account.pk}
    statement = Statement.objects.get()
    assert (statement.opening_balance, statement.closing_balance) == (
        Decimal("1000.00"),
        Decimal("520.50"),
    )
    assert statement.batch == batch and statement.entry_count == 5


def test_a_statement_that_does_not_balance_is_refused_with_the_numbers(entity, alice):
    preview = statement_preview(
        user=alice,
        import_format=None,
        filename="short.xml",
        content=samples.camt053(closing="620.50"),
    )
    assert not preview.ok
    (error,) = preview.parsed.errors
    assert error.field == "balance"
    assert "opening balance 1000.00 + entries -479.50 = 520.50 GBP" in error.message
    assert "closing balance is 620.50 GBP" in error.message
    assert Payment.objects.count() == 0 and preview.batch.state == "rejected"


def test_a_camt054_notification_names_payer_account_and_end_to_end_id(entity, alice):
    preview, _ = _import(alice, samples.CAMT054, "ntf.xml")
    assert preview.parsed.file_format == "camt.054"
    payment = Payment.objects.get()
    assert (payment.amount, payment.currency) == (Decimal("250.00"), "EUR")
    assert payment.payer_name == "Dublin Widgets DAC"
    assert payment.payer_account == "IE64IRCE92050112345678"
    assert payment.end_to_end_id == "SEPA-E2E-77"
    assert payment.statement_account.account_key == "IE29AIBK93115212345678"


@pytest.mark.parametrize(
    ("content", "account", "closing", "credits"),
    [
        (samples.MT940_LLOYDS, "309950 12345678", "520.50", ["120.50", "300.00"]),
        (samples.MT940_NATWEST, "GB29NWBK60161331926819", "220.50", ["120.50"]),
    ],
    ids=["lloyds", "natwest-bankline"],
)
def test_mt940_statements(entity, alice, content, account, closing, credits):
    preview, _ = _import(alice, content, "stmt.sta")
    assert preview.parsed.file_format == "mt940"
    assert sorted(p.amount for p in Payment.objects.all()) == [Decimal(c) for c in credits]
    statement = Statement.objects.get()
    assert statement.account.account_key == account
    assert statement.closing_balance == Decimal(closing)


def test_mt940_structured_narrative_gives_payer_and_remittance(entity, alice):
    _import(alice, samples.MT940_NATWEST, "bankline.txt")
    payment = Payment.objects.get()
    assert payment.payer_name == "ACME LTD"
    assert payment.payer_account == "GB33BUKB20201555555555"
    assert payment.description == "INV-1001"
    assert payment.bank_reference == "NWB0001"


def test_bai2_ofx_and_qif(entity, alice):
    _import(alice, samples.BAI2, "report.bai")
    bai2 = Payment.objects.filter(statement_account__account_key="601613 31926819")
    assert sorted(p.amount for p in bai2) == [Decimal("120.50"), Decimal("300.00")]
    assert Statement.objects.get().opening_balance == Decimal("1000.00")

    # the same account's OFX download for the same days: its own ids (FITID), new payments
    preview, _ = _import(alice, samples.OFX, "money.ofx")
    assert preview.parsed.file_format == "ofx"
    globex = Payment.objects.get(payer_name="GLOBEX & SONS")
    assert globex.statement_account.account_key == "601613 31926819"
    assert globex.description == "INV-1002"

    # QIF names no account: the clerk says which
    account = StatementAccount.objects.create(
        entity=entity, account_key="IE29AIBK93115212345678", name="AIB current"
    )
    preview, _ = _import(alice, samples.QIF, "export.qif", statement_account=account)
    assert preview.parsed.file_format == "qif"
    qif = Payment.objects.filter(statement_account=account).order_by("received_at")
    assert [(p.received_at.date().isoformat(), p.amount) for p in qif] == [
        ("2025-03-03", Decimal("120.50")),
        ("2025-03-04", Decimal("1300.00")),
    ]
    assert qif[1].bank_reference == "000123"


def test_the_same_bank_ids_in_two_accounts_are_two_payments(entity, alice):
    """Two accounts at one bank number their entries alike (NWB0001, NWB0003…): every receipt
    of both is imported, none is taken for a duplicate of the other account's."""
    _import(alice, samples.camt053(iban="GB29NWBK60161331926819"), "a.xml")
    _import(alice, samples.camt053(iban="GB94BARC10201530093459", stmt_id="B-1"), "b.xml")
    assert Payment.objects.count() == 8
    assert StatementAccount.objects.count() == 2


def test_an_overlapping_statement_says_which_earlier_entry_each_duplicate_is(entity, alice):
    _import(alice, samples.camt053(), "march-3-4.xml")
    # the next statement repeats the same days (a re-download with another id)
    again = samples.camt053(stmt_id="STMT-2025-03-04-B")
    preview = statement_preview(user=alice, import_format=None, filename="again.xml", content=again)
    assert preview.ok and preview.new_items == []
    assert len(preview.duplicates) == 4
    first = preview.duplicates[0]
    assert first["rule"] == "same bank transaction id on account GB29NWBK60161331926819"
    assert first["earlier"].endswith("of march-3-4.xml")
    assert first["payment_id"] == Payment.objects.get(bank_reference="NWB0001").pk
    assert any("Overlaps statement STMT-2025-03-04" in note for note in preview.notes)
    # and the same bytes twice are refused outright
    twice = statement_preview(
        user=alice, import_format=None, filename="x.xml", content=samples.camt053()
    )
    assert "already imported" in twice.file_error


def test_a_file_for_another_account_than_chosen_is_refused(entity, alice):
    chosen = StatementAccount.objects.create(entity=entity, account_key="601613 31926819")
    preview = statement_preview(
        user=alice,
        import_format=None,
        filename="x.xml",
        content=samples.camt053(),
        statement_account=chosen,
    )
    assert "is a statement of GB29NWBK60161331926819" in preview.file_error


def test_statement_account_maps_to_the_aiq_bank_account(entity, alice):
    bank = BankAccount.objects.create(
        entity=entity, bank_code="1200", bank_account_code="NWB-CUR", name="NatWest", currency="GBP"
    )
    StatementAccount.objects.create(
        entity=entity, bank_account=bank, account_key="GB29NWBK60161331926819"
    )
    _import(alice, samples.camt053(), "stmt.xml")
    assert {p.statement_account.bank_account for p in Payment.objects.all()} == {bank}
    assert ImportBatch.objects.get(state="imported").statement_account.bank_account == bank


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"<?xml version='1.0'?><Document><Foo/></Document>", "not a bank statement we read"),
        (
            b'<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02">'
            b"<BkToCstmrStmt><Stmt>",
            "cannot be read",
        ),
        (b":20:X\n:25:123\n:60F:C250303GBP1000,00\n:61:garbage\n", "MT940"),
        (b"!Type:Invst\nD1/1/2025\n^\n", "holds no bank transactions"),
        (b"OFXHEADER:100\n\n<OFX><BANKMSGSRSV1>", "OFX"),
        (b"01,A,B,250305,0600,1,80,1,2/\n02,B/\n", "BAI2"),
        (
            samples.camt053().replace(b"2025-03-03T00:00:00", b"3rd of March"),
            "The camt.053 file cannot be read",
        ),
        (samples.camt053().replace(b">1000.00<", b">1.000,00<"), "camt.053 file cannot be read"),
    ],
)
def test_broken_files_get_a_clear_error_and_change_nothing(entity, alice, content, message):
    preview = statement_preview(user=alice, import_format=None, filename="f", content=content)
    assert message in preview.file_error
    assert Payment.objects.count() == 0


def test_an_xml_bomb_is_not_expanded(entity, alice):
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt>'
        b"<Stmt><Id>&b;</Id></Stmt></BkToCstmrStmt></Document>"
    )
    preview = statement_preview(user=alice, import_format=None, filename="b.xml", content=bomb)
    assert Payment.objects.count() == 0
    assert preview.parsed is None or not preview.parsed.items
