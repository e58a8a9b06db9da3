"""Each ready UK/Irish bank layout against a file shaped as the bank's export is published
(tests/bank_layout_samples/README.md says where each shape comes from): its preamble, the
headings as the bank spells them, its dates and amounts, its money out and its rows that are
not money yet. Every credit becomes one payment with the bank's narrative and payer."""

from decimal import Decimal
from pathlib import Path

import pytest

from payments.models import ImportFormat, Payment
from payments.services.statements import statement_import, statement_preview

SAMPLES = Path(__file__).parent / "bank_layout_samples"

# layout -> (file, [(amount, booked, payer name, bank reference)], rows skipped)
CASES = {
    "Barclays (CSV export)": (
        "barclays.csv",
        [("250.00", "2025-03-03", "", "")],  # Number 0 is no reference
        1,
    ),
    "HSBC UK (CSV download)": (
        "hsbc.csv",
        [("250.00", "2025-03-03", "", ""), ("1250.00", "2025-03-03", "", "")],
        1,
    ),
    "Lloyds / Halifax / Bank of Scotland (CSV)": (
        "lloyds.csv",
        [("250", "2025-03-03", "", "")],
        2,
    ),
    "NatWest / RBS / Ulster (CSV)": ("natwest.csv", [("250.00", "2025-03-03", "", "")], 1),
    "NatWest Bankline (CSV)": (
        "natwest-bankline.csv",
        [("250.00", "2025-03-03", "", "BGC 0301")],
        1,
    ),
    "Nationwide (CSV)": ("nationwide.csv", [("250.00", "2025-03-03", "", "")], 1),
    "AIB (CSV)": ("aib.csv", [("250.00", "2025-03-03", "", "")], 1),
    "Bank of Ireland (CSV)": ("bank-of-ireland.csv", [("250.00", "2025-03-03", "", "")], 1),
    # the pending top-up and the declined card payment are not money (yet); neither has a
    # completed date, and neither rejects the file
    "Revolut Business (CSV)": (
        "revolut-business.csv",
        [("250.00", "2025-03-03", "ACME LTD", "")],
        3,
    ),
    "Wise Business (CSV)": ("wise.csv", [("250.00", "2025-03-03", "ACME LTD", "")], 2),
    "Starling (CSV)": ("starling.csv", [("250.00", "2025-03-03", "ACME LTD", "")], 1),
    "Monzo Business (CSV)": ("monzo-business.csv", [("250.00", "2025-03-03", "ACME LTD", "")], 1),
}


def test_every_bank_layout_has_a_published_shape_file(db):
    bank_layouts = set(
        ImportFormat.objects.filter(source="bank").values_list("name", flat=True)
    ) & {name for name in CASES}
    assert bank_layouts == set(CASES)
    readme = (SAMPLES / "README.md").read_text()
    for file, _, _ in CASES.values():
        assert (SAMPLES / file).exists() and f"`{file}`" in readme


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_ready_layout_books_the_credits_of_its_banks_export(entity, alice, name):
    file, expected, skipped = CASES[name]
    content = (SAMPLES / file).read_bytes()
    layout = ImportFormat.objects.get(name=name)  # as the migrations install it
    preview = statement_preview(user=alice, import_format=layout, filename=file, content=content)
    assert preview.ok, preview.file_error or [str(e) for e in preview.parsed.errors]
    assert preview.parsed.skipped == skipped
    statement_import(user=alice, batch=preview.batch, content=content)
    payments = Payment.objects.order_by("amount")
    assert [
        (p.amount, p.received_at.date().isoformat(), p.payer_name, p.bank_reference)
        for p in payments
    ] == [(Decimal(a), day, payer, ref) for a, day, payer, ref in expected]
    for payment in payments:
        assert "INV-7" in payment.description or "INV-8" in payment.description, payment.description
