"""What a statement must get right before any of it is money in: one currency for the account,
its balances and its entries; no amount with more decimals than its currency has (said where
the clerk finds it); and a bank's placeholder cheque number is not a reference."""

from decimal import Decimal

from django.core.cache import cache

from payments.models import Payment
from payments.services.statements import statement_import, statement_preview
from tests import statement_samples as samples


def _preview(user, content, name, import_format=None):
    return statement_preview(user=user, import_format=import_format, filename=name, content=content)


def test_a_camt053_whose_closing_balance_is_in_another_currency_is_refused(entity, alice):
    """A GBP account's statement adds up in figures (1000.00 - 479.50 = 520.50) but the bank
    wrote its closing balance in EUR: the figures prove nothing, so nothing is imported."""
    content = samples.camt053().replace(
        b'<Amt Ccy="GBP">520.50</Amt>', b'<Amt Ccy="EUR">520.50</Amt>'
    )
    preview = _preview(alice, content, "eur-closing.xml")
    assert not preview.ok
    (error,) = preview.parsed.errors
    assert error.field == "currency"
    assert "mixes currencies (EUR, GBP)" in error.message
    assert "opening balance 1000.00 GBP" in error.message
    assert "entries -479.50 GBP" in error.message
    assert "closing balance 520.50 EUR" in error.message
    assert preview.batch.state == "rejected" and Payment.objects.count() == 0


def test_an_mt940_closing_in_another_currency_than_its_opening_is_refused(entity, alice):
    content = samples.MT940_LLOYDS.replace(b":62F:C250304GBP520,50", b":62F:C250304EUR520,50")
    preview = _preview(alice, content, "lloyds.sta")
    assert not preview.ok
    (error,) = preview.parsed.errors
    assert error.field == "currency" and "closing balance 520.50 EUR" in error.message
    assert Payment.objects.count() == 0


def test_a_statement_in_one_currency_throughout_still_imports(entity, alice):
    preview = _preview(alice, samples.camt053(), "ok.xml")
    assert preview.ok
    statement_import(user=alice, batch=preview.batch, content=samples.camt053())
    assert sum(p.amount for p in Payment.objects.all()) == Decimal("420.50")


def test_three_decimals_in_a_gbp_csv_name_the_row_and_the_currencys_two(entity, alice, barclays):
    content = (
        b"Date,Description,Paid in,Paid out,Name\n"
        b"03/02/2025,INV-1,10.00,,A\n"
        b"04/02/2025,INV-2,12.345,,B\n"
    )
    preview = _preview(alice, content, "s.csv", import_format=barclays)
    assert not preview.ok
    (error,) = preview.parsed.errors
    assert (error.row, error.field) == (3, "credit")
    assert error.message.startswith(
        "row 3: 12.345 GBP has 3 decimal places, but GBP amounts have 2"
    )
    assert "nothing is rounded" in error.message
    assert Payment.objects.count() == 0


def test_three_decimals_in_a_gbp_camt_name_the_entry(entity, alice):
    content = samples.camt053().replace(
        b'<Amt Ccy="GBP">120.50</Amt>', b'<Amt Ccy="GBP">120.505</Amt>'
    )
    preview = _preview(alice, content, "precise.xml")
    assert not preview.ok
    messages = [e.message for e in preview.parsed.errors if e.field == "amount"]
    assert messages == [
        "entry 1: 120.505 GBP has 3 decimal places, but GBP amounts have 2 (like 12.34); "
        "nothing is rounded: check the file's currency and its decimal separator."
    ]
    assert Payment.objects.count() == 0


def test_ofx_cheque_number_zero_is_no_reference(entity, alice):
    """Banks write CHECKNUM 0 on every transaction that is not a cheque: the payment's bank
    reference is empty (so it never matches another payment's "0"), a real cheque number stays."""
    content = samples.OFX.replace(
        b"<FITID>202503030001<NAME>ACME LTD", b"<FITID>202503030001<CHECKNUM>0<NAME>ACME LTD"
    ).replace(
        b"<FITID>202503040001<NAME>GLOBEX", b"<FITID>202503040001<CHECKNUM>104512<NAME>GLOBEX"
    )
    preview = _preview(alice, content, "bank.ofx")
    assert preview.ok, [str(e) for e in preview.parsed.errors]
    statement_import(user=alice, batch=preview.batch, content=content)
    references = dict(Payment.objects.values_list("amount", "bank_reference"))
    assert references == {Decimal("120.50"): "", Decimal("300.00"): "104512"}


def test_the_import_writes_what_the_preview_read(entity, alice, monkeypatch):
    """The confirm does not read the file again: the preview's reading is kept for it. When the
    cache lost it, the kept bytes are read again and the same payments result."""
    from payments.services import statements

    reads = []
    real = statements.read_entries
    monkeypatch.setattr(
        statements, "read_entries", lambda *a, **k: reads.append(1) or real(*a, **k)
    )
    content = samples.camt053()
    preview = _preview(alice, content, "once.xml")
    statement_import(user=alice, batch=preview.batch, content=content)
    assert len(reads) == 1
    assert Payment.objects.count() == 4

    Payment.objects.all().delete()
    other = samples.camt053(stmt_id="STMT-2", prefix="XYZ")
    preview = _preview(alice, other, "twice.xml")
    cache.clear()
    statement_import(user=alice, batch=preview.batch, content=other)
    assert len(reads) == 3 and Payment.objects.count() == 4
