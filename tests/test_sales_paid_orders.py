"""Already-paid orders from every source (an upload's paid columns, the REST API's payment)
into the AIQ sandbox's books: the invoice, its receipt and their allocation once
(PostPayAndAllocateSalesInvoice through the outbox, after its own duplicate check), despite a
dropped answer and the same file twice; and the money, when it reaches this product (a bank
statement line, a Stripe payment), is linked to that receipt, never matched or receipted again.
"""

import csv
import io
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from ledger.models import BankAccount, OutboxCommand, Receipt
from payments.models import AllocationPlan, MatchProposal, Payment, StatementAccount
from payments.services.matching_runs import matching_run
from payments.services.statements import statement_import, statement_preview
from sales.models import SalesInvoice
from sales.services.uploads import sales_upload_import, sales_upload_preview
from staff.models import AuditEntry
from tests import statement_samples as samples
from tests.refunds_support import setup_books
from tests.sales_support import LAYOUT, aiq_invoices, crm_source, drain_all

pytestmark = pytest.mark.django_db
S = SalesInvoice.State
MatchState = Payment.MatchState

HEADER_BEFORE = {"Invoice", "Account", "Customer", "Date", "Due", "Currency", "Details", "Net",
                 "VAT code", "VAT"}  # fmt: skip
PAID_LAYOUT = {
    **{k: v for k, v in LAYOUT.items() if v in HEADER_BEFORE},
    "paid_amount": "Paid",
    "paid_date": "Paid on",
    "payment_reference": "Payment ref",
    "bank_account": "Bank",
}
HEADER = ["Invoice", "Account", "Customer", "Date", "Due", "Currency", "Details", "Net",
          "VAT code", "VAT", "Paid", "Paid on", "Payment ref", "Bank"]  # fmt: skip


def shop_file(rows, *, trailer: str = "") -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    writer.writerows(rows)
    return (out.getvalue() + trailer).encode()


def line(ref, net, vat, *, paid="", on="", pay_ref="", bank="", text="Goods"):
    return [ref, "ACME", "Acme", "15/11/2026", "15/12/2026", "GBP", text, net, "T1", vat,
            paid, on, pay_ref, bank]  # fmt: skip


# WEB-1 paid by bank transfer (the bank's reference NWB0001, as the statement will carry it),
# WEB-2 two lines paid by card, WEB-3 on credit
ROWS = [
    line("WEB-1", "100.42", "20.08", paid="120.50", on="14/11/2026", pay_ref="NWB0001",
         bank="BANK-GBP"),
    line("WEB-2", "10.00", "2.00", paid="18.00", on="15/11/2026", pay_ref="CARD-2002"),
    line("WEB-2", "5.00", "1.00", text="Delivery", paid="18.00", on="15/11/2026",
         pay_ref="CARD-2002"),
    line("WEB-3", "50.00", "10.00"),
]  # fmt: skip


@pytest.fixture
def shop(entity, aiq_sandbox):
    setup_books(entity)  # AIQ's banks (BANK-GBP the default), customers, GL and VAT codes
    source = crm_source(entity, code="SHOP")
    source.column_map = PAID_LAYOUT
    source.save(update_fields=["column_map"])
    return source


def test_paid_rows_of_a_file_post_invoice_receipt_and_allocation_once_then_the_bank_line_is_linked(
    shop, entity, aiq_sandbox, alice, client
):
    content = shop_file(ROWS)
    preview = sales_upload_preview(source=shop, filename="shop.csv", content=content, actor=alice)
    assert preview.ok, preview.errors
    paid = {i.external_reference: i.paid for i in preview.parsed.invoices}
    assert paid["WEB-1"].amount == Decimal("120.50") and paid["WEB-1"].reference == "NWB0001"
    # no bank column on the card payment's rows: the company's receiving bank
    assert paid["WEB-2"].bank_account_code == "BANK-GBP" and paid["WEB-3"] is None

    aiq_sandbox.faults.update(drop_next=1, ops=["PostPayAndAllocateSalesInvoice"])
    sales_upload_import(source=shop, filename="shop.csv", content=content, actor=alice)
    drain_all()
    rows = {r.external_reference: r for r in SalesInvoice.objects.all()}
    for ref, gross, pay_ref in (("WEB-1", "120.50", "NWB0001"), ("WEB-2", "18.00", "CARD-2002")):
        row = rows[ref]
        assert row.state == S.POSTED and row.command.kind == "sales_paid_invoice"
        [invoice] = aiq_invoices(aiq_sandbox, ref)  # once, despite the dropped answer
        assert invoice["transaction_id"] == row.aiq_transaction_id
        assert aiq_sandbox.state.outstanding(row.aiq_transaction_id) == 0  # settled by it
        assert aiq_sandbox.state.receipt_count(pay_ref) == 1
        [allocation] = aiq_sandbox.state.allocations(row.aiq_transaction_id)
        assert row.receipt_transaction_id and row.gross_amount == Decimal(gross)
    [on_credit] = aiq_invoices(aiq_sandbox, "WEB-3")
    assert aiq_sandbox.state.outstanding(on_credit["transaction_id"]) == Decimal("60.00")
    assert rows["WEB-3"].receipt_transaction_id is None
    calls = dict(aiq_sandbox.server.calls())

    # the same file again is refused; the same rows in another file change nothing
    with pytest.raises(ValidationError, match="imported already"):
        sales_upload_import(source=shop, filename="shop.csv", content=content, actor=alice)
    again = sales_upload_import(
        source=shop, filename="shop-again.csv", content=shop_file(ROWS, trailer="\n"), actor=alice
    )
    drain_all()
    assert again.invoice_count == 0
    assert dict(aiq_sandbox.server.calls()) == calls
    assert aiq_sandbox.state.receipt_count("NWB0001") == 1

    # the bank statement: WEB-1's transfer (120.50, the bank's reference NWB0001) is the
    # receipt AIQ already holds: linked to it, no plan, nothing sent, not matched
    StatementAccount.objects.create(
        entity=entity,
        bank_account=BankAccount.objects.get(entity=entity, bank_account_code="BANK-GBP"),
        account_key="GB29NWBK60161331926819",
        name="Shop account",
    )
    statement = samples.camt053()
    batch = statement_preview(
        user=alice, import_format=None, filename="s.xml", content=statement
    ).batch
    statement_import(user=alice, batch=batch, content=statement)
    payment = Payment.objects.get(bank_reference="NWB0001")
    assert payment.match_state == MatchState.SENT
    receipt = Receipt.objects.get(pk=payment.receipt_id)
    assert receipt.aiq_transaction_id == rows["WEB-1"].receipt_transaction_id
    assert receipt.amount == Decimal("120.50") and receipt.unallocated_amount == 0
    assert "WEB-1" in payment.match_notes["notes"][0]
    matching_run(dry_run=False)
    payment.refresh_from_db()
    assert payment.match_state == MatchState.SENT
    assert not MatchProposal.objects.filter(payment=payment).exists()
    assert not AllocationPlan.objects.filter(payment=payment).exists()
    assert not OutboxCommand.objects.filter(kind="post_receipt").exists()
    drain_all()
    assert aiq_sandbox.state.receipt_count("NWB0001") == 1
    assert aiq_sandbox.state.outstanding(rows["WEB-1"].aiq_transaction_id) == 0
    [entry] = AuditEntry.objects.filter(action="payment.paid_order")
    assert entry.object_id == str(payment.pk) and entry.after["match_state"] == "sent"
    # the clerk sees it on both pages, in figures
    client.force_login(alice)
    page = client.get(f"/sales/batches/{rows['WEB-1'].batch_id}/").content.decode()
    assert page.count('class="badge" title="Already paid') == 2  # WEB-1 and WEB-2, not WEB-3
    page = client.get(f"/sales/invoices/{rows['WEB-1'].pk}/").content.decode()
    assert "paid 120.50 GBP on 14/11/2026 · payment NWB0001 · into BANK-GBP" in page
    assert f"AIQ receipt {rows['WEB-1'].receipt_transaction_id}, allocated" in page
    assert f"/payments/{payment.pk}/" in page
    page = client.get(f"/payments/{payment.pk}/").content.decode()
    assert "The receipt of paid order WEB-1 (120.50 GBP)" in page


def test_a_paid_column_without_its_reference_or_a_part_payment_is_named_and_nothing_imported(
    shop, alice
):
    content = shop_file(
        [
            line("WEB-7", "10.00", "2.00", paid="12.00", on="15/11/2026"),
            line("WEB-8", "10.00", "2.00", paid="5.00", pay_ref="CARD-8"),
            line("WEB-9", "10.00", "2.00", pay_ref="CARD-9"),
        ]
    )
    preview = sales_upload_preview(source=shop, filename="bad.csv", content=content, actor=alice)
    errors = " | ".join(preview.errors)
    assert "row 2: a paid order needs its payment reference" in errors
    assert "paid 5.00 GBP but the invoice is 12.00 GBP" in errors
    assert "row 4: payment reference given but the paid amount is empty" in errors
    with pytest.raises(ValidationError):
        sales_upload_import(source=shop, filename="bad.csv", content=content, actor=alice)
    assert not SalesInvoice.objects.exists()


@pytest.fixture
def deliver(client, settings, django_capture_on_commit_callbacks):
    from tests.stripe_fixtures import SECRET, event, sign

    settings.STRIPE_WEBHOOK_SECRETS = [SECRET]

    def send(event_type: str, object_id: str, kind: str) -> None:
        payload = event(event_type, {"id": object_id, "object": kind})
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                "/webhooks/stripe/", data=payload, content_type="application/json",
                HTTP_STRIPE_SIGNATURE=sign(payload),
            )  # fmt: skip
        assert response.status_code == 200

    return send


def test_a_paid_order_through_the_api_takes_over_its_stripe_payment_that_came_first(
    localstripe, entity, aiq_sandbox, carol, deliver
):
    from payments.sources.stripe_demo import demo_payment_create
    from tests.api_support import Caller, api_client

    setup_books(entity)
    intent = demo_payment_create(amount_minor=5999)
    deliver("payment_intent.succeeded", intent["id"], "payment_intent")
    payment = Payment.objects.get(external_id=intent["id"])
    assert payment.match_state in (MatchState.UNMATCHED, MatchState.PROPOSED)

    api = Caller(api_client(entity, carol)[1])
    body = {
        "sales_invoice": {
            "contact_id": "ACME",
            "date": "2026-11-20",
            "reference": "CHECKOUT-77",
            "invoice_lines": [
                {
                    "description": "Beans",
                    "net_amount": "49.99",
                    "tax_rate_id": "T1",
                    "tax_amount": "10.00",
                },
            ],  # fmt: skip
            "payment": {
                "total_amount": "59.99",
                "date": "2026-11-20",
                "reference": intent["id"],
                "bank_account_id": "BANK-GBP",
            },
        }
    }
    answer = api.post("sales_invoices", body)
    assert answer.status_code == 201, answer.json()
    assert answer.json()["payment"]["reference"] == intent["id"]
    payment.refresh_from_db()
    assert payment.match_state == MatchState.APPROVED  # on its way with the order: not matched

    aiq_sandbox.faults.update(drop_next=1, ops=["PostPayAndAllocateSalesInvoice"])
    drain_all()
    row = SalesInvoice.objects.get(external_reference="CHECKOUT-77")
    assert row.state == S.POSTED
    [invoice] = aiq_invoices(aiq_sandbox, "CHECKOUT-77")
    assert aiq_sandbox.state.outstanding(invoice["transaction_id"]) == 0
    assert aiq_sandbox.state.receipt_count(intent["id"]) == 1
    payment.refresh_from_db()
    assert payment.match_state == MatchState.SENT
    assert payment.receipt.aiq_transaction_id == row.receipt_transaction_id
    assert not AllocationPlan.objects.filter(payment=payment).exists()
    answer = api.post("sales_invoices", body)  # the shop sends it again: the same invoice
    assert answer.status_code == 201 and answer.json()["id"] == f"sinv_{row.pk}"
    assert answer.json()["payment"]["aiq_transaction_id"] == row.receipt_transaction_id
    matching_run(dry_run=False)
    drain_all()
    payment.refresh_from_db()
    assert payment.match_state == MatchState.SENT
    assert aiq_sandbox.state.receipt_count(intent["id"]) == 1
    assert len(aiq_invoices(aiq_sandbox, "CHECKOUT-77")) == 1
    # refused with the field named: a bank account AIQ does not have
    body["sales_invoice"].update(reference="CHECKOUT-78")
    body["sales_invoice"]["payment"]["bank_account_id"] = "NOPE"
    answer = api.post("sales_invoices", body)
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "payment.bank_account_id"


def test_an_order_whose_payment_a_person_already_booked_is_refused_not_receipted_twice(
    shop, entity, alice
):
    from django.utils import timezone

    # the bank line came first and a clerk allocated it by hand: its receipt is in AIQ
    Payment.objects.create(
        entity=entity, source="bank", external_id="row:42", bank_reference="NWB0042",
        amount=Decimal("12.00"), currency="GBP", received_at=timezone.now(),
        match_state=MatchState.SENT,
    )  # fmt: skip
    content = shop_file([line("WEB-42", "10.00", "2.00", paid="12.00", pay_ref="NWB0042")])
    preview = sales_upload_preview(source=shop, filename="late.csv", content=content, actor=alice)
    assert (
        "WEB-42: its payment NWB0042 is recorded here already (Confirmed in AIQ): send the "
        "order without its payment" in " | ".join(preview.errors)
    )
    with pytest.raises(ValidationError):
        sales_upload_import(source=shop, filename="late.csv", content=content, actor=alice)
    assert not SalesInvoice.objects.exists()
