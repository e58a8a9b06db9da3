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
    assert "more decimal places than GBP" in str(preview.parsed.errors[2])
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
