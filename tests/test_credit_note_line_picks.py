# ruff: noqa: F811  (the refund scenarios' fixtures are imported by name)
"""A credit note for part of an invoice: the clerk picks the line and the quantity (or an
amount of one line) on the refund screen, a second person approves, and AIQ's books show
exactly that line credited (issue 16 point 10: "a 100.00 credit on one invoice was spread over
all its lines with no way to pick the line or quantity")."""

import itertools
from datetime import date
from decimal import Decimal

import pytest

from ledger.aiq.client import AiqClient
from ledger.models import CreditNote, Customer, DocumentStatus, Invoice, OutboxCommand
from payments.models import Refund
from payments.services.refunds import refund_approve
from tests.refunds_support import drain_all

# the refund scenarios' fixtures: roles seeded, no matching rule; the sandbox's books
from tests.test_refunds_scenarios import _seeded, books  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)
_numbers = itertools.count(1)


def _invoice(entity) -> Invoice:
    """5 licences at 20.00 (GL 4010) and a 25.00 set-up (GL 4020), 20 % VAT: 150.00 gross,
    posted in AIQ through its own operations."""
    client = AiqClient.for_entity(entity)
    record = client.get_new_sales_invoice("ACME")
    record.update(
        ExternalReference=f"T-PICK-{next(_numbers)}",
        Lines={
            "InvoiceLine": [
                {"StockItemDescription": "Licences", "GLAccountCode": "4010",
                 "InvoicedQuantity": Decimal(5), "ActualPrice": Decimal("20.00"),
                 "TaxCode": "T1"},
                {"StockItemDescription": "Set-up", "GLAccountCode": "4020",
                 "InvoicedQuantity": Decimal(1), "NetAmount": Decimal("25.00"), "TaxCode": "T1"},
            ]
        },
    )  # fmt: skip
    invoice_id = client.save_invoice_get_back_invoice_id(record)
    transaction_id = client.post_invoice(invoice_id)
    posted = client.get_invoice(invoice_id)
    gross = Decimal(posted["GrossAmount"])
    assert gross == Decimal("150.00")
    return Invoice.objects.create(
        entity=entity, customer=Customer.objects.get(entity=entity, code="ACME"),
        invoice_number=posted["InvoiceNumber"], external_reference=record["ExternalReference"],
        aiq_invoice_id=invoice_id, aiq_transaction_id=transaction_id,
        currency=posted["CurrencyCode"], invoice_date=date.today(),
        net_amount=Decimal(posted["NetAmount"]), tax_amount=Decimal(posted["TaxAmount"]),
        gross_amount=gross, outstanding_amount=gross, status=DocumentStatus.POSTED,
    )  # fmt: skip


def _lines(client, invoice) -> dict[str, int]:
    """Open the form (which reads the invoice's lines from AIQ) and name each line's id."""
    page = client.get(f"/refunds/new?kind=cancel_invoice&invoice={invoice.pk}")
    assert page.status_code == 200
    return {line.description: line.pk for line in invoice.lines.all()}


def test_two_of_five_licences_are_credited_and_only_that_reaches_aiq(
    client, books, entity, alice, bob
):
    invoice = _invoice(entity)
    client.force_login(alice)
    # the form lists the invoice's lines (read from AIQ the first time they are needed)
    page = client.get(f"/refunds/new?kind=cancel_invoice&invoice={invoice.pk}").content.decode()
    ids = {line.description: line.pk for line in invoice.lines.all()}
    assert set(ids) == {"Licences", "Set-up"}
    assert f'name="qty_{ids["Licences"]}"' in page and f'name="part_{ids["Set-up"]}"' in page
    gl_before = (books.state.gl_total("4010"), books.state.gl_total("4020"))

    response = client.post(
        "/refunds/new",
        {"kind": "cancel_invoice", "invoice": invoice.pk, f"qty_{ids['Licences']}": "2",
         "reason": "Two seats returned"},
    )  # fmt: skip
    refund = Refund.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/refunds/{refund.pk}/"
    assert refund.amount == Decimal("48.00")  # 2 x 20.00 + 20 % VAT
    [line] = refund.credit_note.lines.all()
    assert (line.quantity, line.unit_price, line.net_amount, line.tax_amount) == (
        Decimal(2),
        Decimal("20.00"),
        Decimal("40.00"),
        Decimal("8.00"),
    )
    assert line.gl_account_code == "4010"
    detail = client.get(f"/refunds/{refund.pk}/").content.decode()
    assert "Credit: Licences" in detail  # the approver reads the line that will be posted

    refund_approve(refund=refund, actor=bob)
    drain_all()
    note = CreditNote.objects.get(pk=refund.credit_note_id)
    assert books.state.outstanding(invoice.aiq_transaction_id) == Decimal("102.00")
    assert books.state.outstanding(note.aiq_transaction_id) == 0
    # AIQ's ledger: 40.00 back on the licences' GL, nothing on the set-up's
    assert books.state.gl_total("4010") - gl_before[0] == Decimal("40.00")
    assert books.state.gl_total("4020") == gl_before[1]


def test_an_amount_of_one_line_is_credited_on_that_line_alone(client, books, entity, alice, bob):
    invoice = _invoice(entity)
    client.force_login(alice)
    ids = _lines(client, invoice)
    gl_before = (books.state.gl_total("4010"), books.state.gl_total("4020"))
    client.post(
        "/refunds/new",
        {"kind": "cancel_invoice", "invoice": invoice.pk, f"part_{ids['Set-up']}": "12.00",
         "reason": "Set-up half done"},
    )  # fmt: skip
    refund = Refund.objects.get()
    [line] = refund.credit_note.lines.all()
    assert (line.gl_account_code, line.net_amount, line.tax_amount) == (
        "4020",
        Decimal("10.00"),
        Decimal("2.00"),
    )
    refund_approve(refund=refund, actor=bob)
    drain_all()
    assert books.state.outstanding(invoice.aiq_transaction_id) == Decimal("138.00")
    assert books.state.gl_total("4020") - gl_before[1] == Decimal("10.00")
    assert books.state.gl_total("4010") == gl_before[0]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("qty_Licences", "6", "at most 5, the quantity invoiced"),
        ("qty_Licences", "0", "more than 0"),
        ("qty_Licences", "1.00001", "at most 4 decimal places"),
        ("qty_Licences", "two", "is not"),
        ("part_Set-up", "30.01", "at most the line&#x27;s 30.00 GBP"),
        ("part_Set-up", "1.001", "more decimal places"),
    ],
)
def test_impossible_picks_are_refused_naming_the_line_and_nothing_is_written(
    client, books, entity, alice, field, value, message
):
    invoice = _invoice(entity)
    client.force_login(alice)
    ids = _lines(client, invoice)
    prefix, name = field.split("_", 1)
    response = client.post(
        "/refunds/new",
        {"kind": "cancel_invoice", "invoice": invoice.pk, f"{prefix}_{ids[name]}": value,
         "reason": "x"},
        follow=True,
    )  # fmt: skip
    page = response.content.decode()
    assert response.status_code == 200 and "Not requested" in page and message in page, page[-3000:]
    assert not Refund.objects.exists() and not CreditNote.objects.exists()
    assert not OutboxCommand.objects.exists()


def test_a_quantity_and_an_amount_on_one_line_or_lines_and_an_amount_are_refused(
    client, books, entity, alice
):
    invoice = _invoice(entity)
    client.force_login(alice)
    ids = _lines(client, invoice)
    both = client.post(
        "/refunds/new",
        {"kind": "cancel_invoice", "invoice": invoice.pk, f"qty_{ids['Licences']}": "1",
         f"part_{ids['Licences']}": "24.00", "reason": "x"},
    ).content.decode()  # fmt: skip
    assert "give a quantity or an amount, not both" in both
    mixed = client.post(
        "/refunds/new",
        {"kind": "cancel_invoice", "invoice": invoice.pk, f"qty_{ids['Licences']}": "1",
         "amount": "50.00", "reason": "x"},
    ).content.decode()  # fmt: skip
    assert "not both" in mixed
    assert not Refund.objects.exists()
