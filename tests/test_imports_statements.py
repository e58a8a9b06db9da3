"""Bank statement and SmartDebit files: mapping, per-row errors, whole-file rejection,
duplicates across uploads, Excel, and the management command."""

import io
from datetime import date
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from payments.models import ImportBatch, ImportFormat, Payment
from payments.services.statements import statement_import, statement_preview

GOOD = (
    "Date,Description,Paid in,Paid out,Name\n"
    '03/02/2025,"INV-1001, thanks",120.50,,Acme Ltd\n'
    "03/02/2025,Rent,,900.00,Landlord\n"
    '04/02/2025,INV-1002,"1,250.00",,Globex\n'
    '04/02/2025,INV-1002,"1,250.00",,Globex\n'
)


def _import(user, fmt, content, name="statement.csv"):
    preview = statement_preview(user=user, import_format=fmt, filename=name, content=content)
    assert preview.ok, preview.parsed.errors if preview.parsed else preview.file_error
    return preview, statement_import(user=user, batch=preview.batch, content=content)


def test_a_good_statement_imports_credits_only(entity, alice, barclays):
    preview, batch = _import(alice, barclays, GOOD.encode())
    assert len(preview.new_items) == 3
    assert preview.parsed.skipped == 1  # the rent going out
    assert batch.state == "imported" and batch.imported_count == 3
    payments = Payment.objects.order_by("received_at", "id")
    assert [p.amount for p in payments] == [Decimal("120.5"), Decimal("1250"), Decimal("1250")]
    first = payments[0]
    assert first.source == "bank" and first.currency == "GBP"
    assert first.received_at.date() == date(2025, 2, 3)
    assert first.references == [{"source": "bank.narrative", "value": "INV-1001, thanks"}]
    assert first.payer_name == "Acme Ltd"
    # two identical rows are two payments, with different ids
    assert payments[1].external_id != payments[2].external_id


def test_a_file_with_bad_rows_is_rejected_whole_with_every_error_named(entity, alice, barclays):
    content = (
        b"Date,Description,Paid in,Paid out,Name\n"
        b"03/02/2025,INV-1,10.00,,A\n"
        b"31/02/2025,INV-2,10.00,,B\n"
        b"05/02/2025,INV-3,ten,,C\n"
        b"06/02/2025,INV-4,1.005,,D\n"
    )
    preview = statement_preview(
        user=alice, import_format=barclays, filename="s.csv", content=content
    )
    assert not preview.ok
    found = [(e.row, e.field) for e in preview.parsed.errors]
    assert found == [(3, "date"), (4, "credit"), (5, "credit")]
    assert "1.005 GBP has 3 decimal places, but GBP amounts have 2" in str(preview.parsed.errors[2])
    assert preview.batch.state == "rejected"
    assert preview.batch.errors[0] == {
        "row": 3,
        "field": "date",
        "message": preview.parsed.errors[0].message,
    }
    with pytest.raises(ValueError):
        statement_import(user=alice, batch=preview.batch, content=content)
    assert Payment.objects.count() == 0


def test_the_file_is_kept_on_its_batch_from_preview_until_imported(entity, alice, barclays):
    def kept(batch):
        return bytes(ImportBatch.objects.get(pk=batch.pk).content)

    content = GOOD.encode()
    preview = statement_preview(
        user=alice, import_format=barclays, filename="s.csv", content=content
    )
    assert kept(preview.batch) == content  # the confirm needs it, from any web host
    with pytest.raises(ValueError):
        statement_import(user=alice, batch=preview.batch, content=content + b"\n")
    assert kept(preview.batch) == content  # refused: still there to confirm

    batch = statement_import(user=alice, batch=preview.batch, content=content)
    assert batch.state == "imported" and kept(batch) == b""

    rejected = statement_preview(
        user=alice, import_format=barclays, filename="again.csv", content=content
    )
    assert rejected.batch.state == "rejected" and kept(rejected.batch) == b""


def test_duplicates_across_uploads_are_detected(entity, alice, barclays):
    _import(alice, barclays, GOOD.encode())
    again = statement_preview(
        user=alice, import_format=barclays, filename="again.csv", content=GOOD.encode()
    )
    assert not again.ok and "already imported" in again.file_error

    # next statement overlaps the first by one row
    overlapping = (
        GOOD.splitlines()[0]
        + "\n"
        + GOOD.splitlines()[1]
        + "\n"
        + ("07/02/2025,INV-1003,75.00,,Initech\n")
    )
    preview, batch = _import(alice, barclays, overlapping.encode(), "next.csv")
    assert len(preview.duplicate_ids) == 1 and len(preview.new_items) == 1
    assert batch.imported_count == 1 and batch.duplicate_count == 1
    assert Payment.objects.count() == 4


def test_missing_column_or_empty_file_is_a_clear_file_error(entity, alice, barclays):
    preview = statement_preview(
        user=alice,
        import_format=barclays,
        filename="x.csv",
        content=b"When,What,Amount\n01/01/2025,x,1\n",
    )
    assert "Column 'Date' (for date) is not in the file's header row" in preview.file_error
    empty = statement_preview(user=alice, import_format=barclays, filename="e.csv", content=b"")
    assert empty.file_error == "The file is empty."
    assert ImportBatch.objects.filter(state="rejected").count() == 2


def test_smartdebit_report_with_semicolons_and_decimal_commas(entity, alice):
    fmt = ImportFormat.objects.create(
        name="SmartDebit collections",
        source="smartdebit",
        column_map={
            "date": "Collection Date",
            "amount": "Amount",
            "reference": "Reference",
            "payer_name": "Payer",
            "external_id": "Transaction ID",
        },
        date_format="%Y-%m-%d",
        decimal_comma=True,
        currency="EUR",
    )
    content = (
        "Transaction ID;Collection Date;Payer;Reference;Amount\n"
        "SD-1;2025-03-01;Hooli;DD INV-1044;1.234,56\n"
    ).encode("cp1252")
    _import(alice, fmt, content, "sd.csv")
    payment = Payment.objects.get()
    assert (payment.source, payment.external_id, payment.amount, payment.currency) == (
        "smartdebit",
        "id:SD-1",
        Decimal("1234.56"),
        "EUR",
    )


def test_excel_statement(entity, alice, barclays):
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["Date", "Description", "Paid in", "Paid out", "Name"])
    sheet.append([date(2025, 2, 3), "INV-1005", 99.99, None, "Acme"])
    sheet.append([date(2025, 2, 4), "INV-1006", 10, None, "Acme"])
    buffer = io.BytesIO()
    book.save(buffer)
    _import(alice, barclays, buffer.getvalue(), "statement.xlsx")
    assert sorted(p.amount for p in Payment.objects.all()) == [Decimal("10"), Decimal("99.99")]


def test_import_statement_command(entity, carol, barclays, tmp_path, capsys):
    path = tmp_path / "feb.csv"
    path.write_text(GOOD)
    call_command("import_statement", str(path), "--format", "Barclays CSV")
    assert "Imported batch" in capsys.readouterr().out
    assert Payment.objects.count() == 3
    bad = tmp_path / "bad.csv"
    bad.write_text("Date,Description,Paid in,Paid out,Name\nnot-a-date,x,1,,y\n")
    with pytest.raises(CommandError, match="Row 2, date"):
        call_command("import_statement", str(bad), "--format", "Barclays CSV")
    with pytest.raises(CommandError, match="No import format"):
        call_command("import_statement", str(path), "--format", "Nope")


def _layout(name, column_map, **fields):
    return ImportFormat.objects.create(
        name=name, column_map=column_map, currency=fields.pop("currency", "GBP"), **fields
    )


def test_a_preamble_before_the_header_row_is_found(entity, alice):
    """Nationwide's export: four lines about the account before the column headers."""
    nationwide = _layout(
        "Nationwide",
        {"date": "Date", "credit": "Paid in", "debit": "Paid out", "reference": "Description"},
        date_format="%d %b %Y",
    )
    content = (
        '"Account Name:","FlexDirect ****12345"\n'
        '"Account Balance:","\xa31,520.50"\n'
        '"Available Balance: ","\xa31,520.50"\n'
        "\n"
        '"Date","Transaction type","Description","Paid out","Paid in","Balance"\n'
        '"03 Mar 2025","Bank credit","ACME LTD INV-1001","","\xa3120.50","\xa31,120.50"\n'
        '"04 Mar 2025","Direct debit","RENT","\xa3900.00","","\xa3220.50"\n'
    ).encode("cp1252")
    preview, _ = _import(alice, nationwide, content, "nationwide.csv")
    payment = Payment.objects.get()
    assert payment.amount == Decimal("120.50") and payment.description == "ACME LTD INV-1001"
    assert preview.parsed.skipped == 1

    # told where the header is, a wrong row number is a clear error
    nationwide.header_row = 1
    nationwide.save()
    wrong = statement_preview(
        user=alice, import_format=nationwide, filename="n2.csv", content=content + b"\n"
    )
    assert "is not in the file's header row (row 1)" in wrong.file_error


def test_money_out_rows_are_skipped_before_their_other_cells_are_checked(entity, alice):
    """Revolut Business: pending card payments have no completed date yet; they must not
    reject the file and its top-up."""
    revolut = _layout(
        "Revolut Business",
        {
            "date": "Date completed (UTC)",
            "amount": "Amount",
            "currency": "Payment currency",
            "reference": "Reference",
            "payer_name": "Payer",
            "external_id": "ID",
        },
        date_format="%Y-%m-%d",
    )
    content = (
        b"Date started (UTC),Date completed (UTC),ID,Type,State,Description,Reference,Payer,"
        b"Payment currency,Amount\n"
        b"2025-03-03,,a1,CARD_PAYMENT,PENDING,Coffee,,,GBP,-3.20\n"
        b"2025-03-03,,a2,CARD_PAYMENT,PENDING,Train,,,GBP,-45.00\n"
        b"2025-03-03,2025-03-03,a3,TOPUP,COMPLETED,Top-up,INV-1001,Acme Ltd,GBP,500.00\n"
    )
    preview, _ = _import(alice, revolut, content, "revolut.csv")
    assert preview.parsed.skipped == 2
    assert Payment.objects.get().amount == Decimal("500.00")


def test_a_bad_debit_cell_is_named_as_the_debit_column(entity, alice, barclays):
    content = b"Date,Description,Paid in,Paid out,Name\n03/02/2025,x,,12..0,A\n"
    preview = statement_preview(
        user=alice, import_format=barclays, filename="d.csv", content=content
    )
    assert [(e.row, e.field) for e in preview.parsed.errors] == [(2, "debit")]


def test_debit_credit_indicator_column_and_inverted_signs(entity, alice):
    indicator = _layout(
        "Indicator CSV",
        {"date": "Date", "amount": "Amount", "indicator": "Dr/Cr", "reference": "Narrative"},
    )
    content = (
        b"Date,Amount,Dr/Cr,Narrative\n"
        b"03/03/2025,120.50,CR,INV-1001\n"
        b"03/03/2025,900.00,DR,RENT\n"
        b"04/03/2025,10.00,C,INV-1002\n"
        b"04/03/2025,10.00,X,??\n"
    )
    preview = statement_preview(
        user=alice, import_format=indicator, filename="i.csv", content=content
    )
    assert [(e.row, e.field) for e in preview.parsed.errors] == [(5, "indicator")]
    _import(alice, indicator, content.rsplit(b"\n", 2)[0] + b"\n", "i2.csv")
    assert sorted(p.amount for p in Payment.objects.all()) == [Decimal("10.00"), Decimal("120.50")]

    inverted = _layout(
        "Card style",
        {"date": "#1", "amount": "#3", "reference": "#2"},
        amounts_inverted=True,
    )
    # HSBC-style: no header row, columns by position; money in shown negative
    _import(alice, inverted, b"05/03/2025,INV-1003,-75.00\n05/03/2025,FEE,12.00\n", "h.csv")
    assert Payment.objects.get(description="INV-1003").amount == Decimal("75.00")


def test_ids_of_one_csv_layout_are_per_bank_account(entity, alice, barclays):
    """One layout, two accounts: the bank's own ids may repeat across them."""
    from payments.models import StatementAccount

    first = StatementAccount.objects.create(entity=entity, account_key="200000 11111111")
    second = StatementAccount.objects.create(entity=entity, account_key="200000 22222222")
    barclays.column_map = {**barclays.column_map, "external_id": "Id"}
    barclays.save()
    content_a = b"Id,Date,Description,Paid in,Paid out,Name\n7,03/02/2025,INV-1,10.00,,A\n"
    content_b = b"Id,Date,Description,Paid in,Paid out,Name\n7,03/02/2025,INV-9,99.00,,B\n"
    for account, content in ((first, content_a), (second, content_b)):
        preview = statement_preview(
            user=alice,
            import_format=barclays,
            filename="s.csv",
            content=content,
            statement_account=account,
        )
        assert preview.ok and len(preview.new_items) == 1
        statement_import(user=alice, batch=preview.batch, content=content)
    assert sorted(Payment.objects.values_list("external_id", flat=True)) == [
        "200000 11111111|7",
        "200000 22222222|7",
    ]
