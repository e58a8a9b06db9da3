"""AiqClient against the running AIQ sandbox over real HTTP, for Integration 1.1 and 2.0 entities.

The peer is sandbox/ (one server for the test session, AIQ's wire format, its own books); the
client is built the way the product builds it, `AiqClient.for_entity(entity)`, WSDL fetched from
the sandbox. Every test starts logged out. What happened on the AIQ side is checked from outside
the client too: the sandbox's per-operation call counter and its books (`sandbox.state`).
The books accumulate across tests, so every reference and customer code here is unique.
"""

from __future__ import annotations

import io
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from functools import partial
from pathlib import Path

import pytest
import requests
from pypdf import PdfReader

from ledger.aiq import auth, wsdl
from ledger.aiq.client import AiqClient
from ledger.aiq.errors import (
    AiqAmbiguousError,
    AiqAuthError,
    AiqPermanentError,
    AiqTemporaryError,
)
from ledger.models import Entity
from sandbox.seed import credentials as sandbox_credentials
from tests.conftest import free_port

LOGIN = {"1.1": "Login", "2.0": "TokenGet"}
RENEW = {"1.1": "Login", "2.0": "TokenRefresh"}  # after HasExpired: 2.0 uses its refresh token
SECRET_ENV = {"1.1": "AIQ_DEMO_USER_KEY", "2.0": "AIQ_DEMO_CLIENT_SECRET"}
SAVE_RECEIPT = "SaveSalesReceiptGetBackTransactionID"
PAID_ON = datetime(2026, 11, 2, 10, 0)
WINDOW = {"from_date": datetime(2000, 1, 1), "to_date": datetime(2100, 1, 1)}


@pytest.fixture(autouse=True)
def _logged_out():
    auth.TOKENS.clear()
    yield
    auth.TOKENS.clear()


@pytest.fixture
def sandbox(aiq_sandbox_session):
    return aiq_sandbox_session


@pytest.fixture(params=["1.1", "2.0"])
def version(request):
    return request.param


@pytest.fixture
def client(sandbox, entity, version) -> AiqClient:
    entity.api_version = version
    entity.save()
    return AiqClient.for_entity(entity)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10].upper()}"


def calls_since(sandbox, before: dict) -> dict:
    """Operations the sandbox answered since `before` (a `server.calls()` snapshot)."""
    now = sandbox.server.calls()
    return {op: n - before.get(op, 0) for op, n in now.items() if n != before.get(op, 0)}


def receipt_count(sandbox) -> int:
    """All sales receipts in the demo books (for refusals that carry no reference to look up)."""
    snapshot = sandbox.state.snapshot("demo")["entities"]["demo"]
    return snapshot["transactions_by_type"].get("SalesReceipt", 0)


def receipt(customer="ACME", amount="100.00", reference=None, bank="BANK-GBP") -> dict:
    return {
        "CustomerCode": customer,
        "CheckReference": reference or unique("RC"),
        "PaymentAmount": Decimal(amount),
        "BankAccountCode": bank,
        "PaymentDate": PAID_ON,
    }


def new_customer(client: AiqClient) -> str:
    """GetNewCustomerFromDefaults + UpdateCustomer(create=True); returns the new code."""
    code = ("T" + uuid.uuid4().hex[:9]).upper()
    record = client.get_new_customer_from_defaults()
    record.update(Code=code, Name=f"Flow {code} Ltd", Email="ap@flow.example", City="Leeds")
    client.update_customer(record, create=True)
    return code


def new_invoice(client: AiqClient, code: str, price="150.00") -> tuple[int, int, str]:
    """GetNewSalesInvoice -> SaveInvoiceGetBackInvoiceID -> PostInvoiceGetBackTransactionID for
    two units at `price` plus 20 % VAT (T1); returns (invoice id, transaction id, reference)."""
    record = client.get_new_sales_invoice(code)
    reference = unique("SO")
    record.update(
        ExternalReference=reference,
        Lines={
            "InvoiceLine": [
                {
                    "StockItemDescription": "Consulting day",
                    "GLAccountCode": "4010",
                    "InvoicedQuantity": Decimal(2),
                    "StockItemPrice": Decimal(price),
                    "TaxCode": "T1",
                }
            ]
        },
    )
    invoice_id = client.save_invoice_get_back_invoice_id(record)
    return invoice_id, client.post_invoice(invoice_id), reference


def summary(client: AiqClient, reference: str) -> dict:
    [found] = client.get_transactions_by_external_reference(reference, **WINDOW)
    return found


def outstanding(client: AiqClient, reference: str) -> Decimal:
    amount = summary(client, reference)["OutstandingAmount"]
    assert isinstance(amount, Decimal)
    return amount


def pdf_text(data: bytes) -> str:
    assert isinstance(data, bytes) and data.startswith(b"%PDF-")
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


# --- login and tokens ------------------------------------------------------------------------


def test_logs_in_once_and_reads_the_books(sandbox, client, version, caplog):
    caplog.set_level("DEBUG")
    before = sandbox.server.calls()
    banks = client.get_bank_list()
    customer = client.get_customer("acme")  # codes are upper case in AIQ; the helper says so
    assert {"BANK-GBP", "BANK-EUR"} <= {bank["BankAccountCode"] for bank in banks}
    assert (customer["Code"], customer["Name"]) == ("ACME", "Acme Widgets Ltd")
    assert isinstance(customer["CreditLimit"], Decimal)
    assert calls_since(sandbox, before) == {LOGIN[version]: 1, "GetBankList": 1, "GetCustomer": 1}
    session = auth.TOKENS.get(client._token_key)
    secrets = [*client._credentials.secrets(), session.token.reveal()]
    if session.refresh_token is not None:
        secrets.append(session.refresh_token.reveal())
    assert all(secret and secret not in caplog.text for secret in secrets)


def test_2_0_entity_header_picks_the_company_of_each_entity(sandbox, entity):
    entity.api_version = "2.0"
    entity.save()
    ireland = Entity.objects.create(
        name="Demo Ireland", company_id="demo-ie", api_version="2.0", base_currency="EUR",
        credentials_key="DEMO",
    )  # fmt: skip
    uk_banks = {b["BankAccountCode"] for b in AiqClient.for_entity(entity).get_bank_list()}
    ie_banks = {b["BankAccountCode"] for b in AiqClient.for_entity(ireland).get_bank_list()}
    assert "BANK-GBP" in uk_banks and "BANK-EUR-IE" not in uk_banks
    assert ie_banks == {"BANK-EUR-IE", "BANK-GBP-IE"}


def test_tokens_expired_now_a_read_logs_in_again_and_is_replayed(sandbox, client, version):
    client.get_bank_list()
    assert sandbox.expire_tokens() >= 1
    before = sandbox.server.calls()
    assert client.get_customer("ACME")["Code"] == "ACME"
    assert calls_since(sandbox, before) == {"GetCustomer": 2, RENEW[version]: 1}


@pytest.mark.parametrize("version", ["2.0"])  # 1.1 has no refresh token
def test_2_0_refresh_token_refused_falls_back_to_token_get(sandbox, client):
    client.get_bank_list()
    session = auth.TOKENS.get(client._token_key)
    auth.TOKENS.put(client._token_key, replace(session, refresh_token=auth.Secret("revoked")))
    sandbox.expire_tokens()
    before = sandbox.server.calls()
    assert client.get_bank_list()
    assert calls_since(sandbox, before) == {"GetBankList": 2, "TokenRefresh": 1, "TokenGet": 1}


def test_tokens_expired_now_a_write_is_refused_not_replayed_and_not_written(
    sandbox, client, version
):
    client.get_bank_list()
    sandbox.expire_tokens()
    fields = receipt(amount="12.34")
    before = sandbox.server.calls()
    with pytest.raises(AiqAuthError) as info:
        client.save_sales_receipt(fields)
    assert not isinstance(info.value, AiqAmbiguousError)  # AIQ refused it: safe to send again
    assert calls_since(sandbox, before) == {SAVE_RECEIPT: 1}
    assert sandbox.state.receipt_count(fields["CheckReference"]) == 0
    # The caller's retry logs in by itself and writes it once.
    assert client.save_sales_receipt(fields) > 0
    assert sandbox.state.receipt_count(fields["CheckReference"]) == 1


def test_tokens_expired_now_a_replay_safe_write_logs_in_again_and_is_written_once(
    sandbox, client, version
):
    client.get_bank_list()
    sandbox.expire_tokens()
    fields = receipt(amount="23.45")
    before = sandbox.server.calls()
    transaction_id = client.save_sales_receipt(fields, replay_safe=True)
    assert calls_since(sandbox, before) == {SAVE_RECEIPT: 2, RENEW[version]: 1}
    assert [t["transaction_id"] for t in sandbox.state.transactions(fields["CheckReference"])] == [
        transaction_id
    ]


def test_tokens_expiring_every_three_calls_mid_batch_cost_one_login_each(sandbox, client, version):
    sandbox.faults.update(token_expire_every=3)
    batch = [receipt(amount=f"{n}.01") for n in range(1, 9)]
    before = sandbox.server.calls()
    for fields in batch:
        client.get_customer("ACME")
        client.save_sales_receipt(fields, replay_safe=True)
    # 16 answered calls at 3 per token: 6 tokens, so 5 refusals (the 4th call on each token:
    # a write, a read, a write, a read, a write), each followed by one renewal and the replay.
    renewals = {"Login": 6} if version == "1.1" else {"TokenGet": 1, "TokenRefresh": 5}
    assert calls_since(sandbox, before) == {**renewals, "GetCustomer": 10, SAVE_RECEIPT: 11}
    assert [sandbox.state.receipt_count(f["CheckReference"]) for f in batch] == [1] * 8


# --- error paths -----------------------------------------------------------------------------


def test_wrong_credentials_are_an_auth_error_and_nothing_else_is_sent(
    sandbox, entity, version, monkeypatch
):
    wrong = "wrong-secret-value-42"
    monkeypatch.setenv(SECRET_ENV[version], wrong)
    entity.api_version = version
    entity.save()
    client = AiqClient.for_entity(entity)
    before = sandbox.server.calls()
    with pytest.raises(AiqAuthError) as info:
        client.get_bank_list()
    assert calls_since(sandbox, before) == {LOGIN[version]: 1}
    assert wrong not in str(info.value) + repr(info.value) + repr(client)


@pytest.mark.parametrize(
    "version,error,code", [("1.1", AiqAuthError, ""), ("2.0", AiqPermanentError, "ACCESS_DENIED")]
)
def test_a_company_the_keys_do_not_open(sandbox, entity, version, error, code):
    # 1.1: Login itself gives no token. 2.0: the token is issued for the application, and the
    # call naming a company it has no access to is refused with AIQ's Failure.
    entity.company_id, entity.api_version = "no-such-company", version
    entity.save()
    with pytest.raises(error) as info:
        AiqClient.for_entity(entity).get_bank_list()
    assert getattr(info.value, "error_code", "") == code


@pytest.mark.parametrize("missing", ["CheckReference", "BankAccountCode", "CustomerCode"])
def test_a_receipt_without_a_mandatory_field_is_a_permanent_error_naming_it(
    sandbox, client, missing
):
    fields = receipt(amount="9.99")
    del fields[missing]
    before = receipt_count(sandbox)
    with pytest.raises(AiqPermanentError) as info:
        client.save_sales_receipt(fields)
    error = info.value
    assert (error.error_code, error.operation) == ("VALIDATION_ERROR", SAVE_RECEIPT)
    assert missing in error.error_message and missing in str(error)
    assert (error.result.status, error.result.transaction_id) == ("Failure", 0)
    assert receipt_count(sandbox) == before


def test_over_allocation_is_refused_and_changes_nothing(sandbox, client):
    _, invoice, invoice_ref = new_invoice(client, "ACME")  # 360.00 gross
    fields = receipt(amount="400.00")
    paid = client.save_sales_receipt(fields)
    for amount, short in (("380.00", invoice), ("361.00", invoice)):
        with pytest.raises(AiqPermanentError) as info:
            client.allocate_transactions(
                transaction_id_1=invoice, transaction_id_2=paid, reference=unique("AL"),
                amount=Decimal(amount), date=PAID_ON,
            )  # fmt: skip
        assert info.value.error_code == "OVER_ALLOCATION"
        assert f"transaction {short} has only 360.00 outstanding" in info.value.error_message
    small = receipt(amount="50.00")
    small_id = client.save_sales_receipt(small)
    with pytest.raises(AiqPermanentError, match="has only 50.00 unallocated") as info:
        client.allocate_transactions(
            transaction_id_1=invoice, transaction_id_2=small_id, reference=unique("AL"),
            amount=Decimal("60.00"), date=PAID_ON,
        )  # fmt: skip
    assert info.value.error_code == "OVER_ALLOCATION"
    assert outstanding(client, invoice_ref) == Decimal("360.00")
    assert outstanding(client, fields["CheckReference"]) == Decimal("-400.00")
    assert sandbox.state.allocations(invoice) == []


def test_allocating_across_customers_is_refused(sandbox, client):
    _, invoice, invoice_ref = new_invoice(client, "BRIGHT")
    paid = client.save_sales_receipt(receipt("ACME", "360.00"))
    with pytest.raises(AiqPermanentError, match="belong to different accounts") as info:
        client.allocate_transactions(
            transaction_id_1=invoice, transaction_id_2=paid, reference=unique("AL"),
            amount=Decimal("100.00"), date=PAID_ON,
        )  # fmt: skip
    assert info.value.error_code == "VALIDATION_ERROR"
    assert outstanding(client, invoice_ref) == Decimal("360.00")


@pytest.fixture
def sandbox_process(tmp_path):
    """The sandbox in a process of its own, so that "down" means what it means for AIQ: the
    process is gone and its connections with it. (SandboxServer.stop() in-process leaves open
    keep-alive connections answering, with 500 faults, so it cannot stand for an outage.)"""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "serve", "--port", str(port), "--seed-if-empty",
         "--db", str(tmp_path / "aiq.sqlite3")],
        cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if requests.get(f"{url}/_sandbox/health", timeout=1).ok:
                break
        except requests.ConnectionError:
            time.sleep(0.05)
    else:
        process.kill()
        pytest.fail("the sandbox process did not start")
    yield process, url
    if process.poll() is None:
        process.kill()
        process.wait(timeout=10)


def test_sandbox_down_is_temporary_and_not_ambiguous(sandbox_process, monkeypatch):
    process, url = sandbox_process
    for name, value in sandbox_credentials().items():
        monkeypatch.setenv(name, value)
    clients = [
        AiqClient(company_id="demo", credentials_key="DEMO", api_version=version,
                  endpoint=url + wsdl.PATHS[version], fetch_wsdl=False)
        for version in ("1.1", "2.0")
    ]  # fmt: skip
    for client in clients:
        assert client.get_bank_list()  # logged in, connection kept alive
    process.terminate()
    process.wait(timeout=10)
    for client in clients:
        for call in (client.get_bank_list, partial(client.save_sales_receipt, receipt())):
            with pytest.raises(AiqTemporaryError, match="could not connect") as info:
                call()
            assert not isinstance(info.value, AiqAmbiguousError)  # nothing can have been written
    auth.TOKENS.clear()  # not even the login gets through: still temporary, not an auth problem
    for client in clients:
        with pytest.raises(AiqTemporaryError, match="could not connect") as info:
            client.get_bank_list()
        assert not isinstance(info.value, AiqAuthError)


def test_commit_then_drop_is_ambiguous_and_read_back_finds_the_one_receipt(
    sandbox, client, version
):
    client.get_bank_list()
    sandbox.faults.update(drop_next=1, ops=[SAVE_RECEIPT])
    fields = receipt(amount="75.25")
    with pytest.raises(AiqAmbiguousError, match="may have been applied"):
        client.save_sales_receipt(fields)
    assert sandbox.faults.snapshot()["stats"]["dropped_ops"] == [SAVE_RECEIPT]
    found = client.get_transactions_by_external_reference(fields["CheckReference"], **WINDOW)
    assert [(t["TransactionType"], t["ControlAmount"]) for t in found] == [
        ("SalesReceipt", Decimal("-75.25"))
    ]
    assert sandbox.state.receipt_count(fields["CheckReference"]) == 1


def test_a_dropped_allocation_is_ambiguous_and_visible_on_the_invoice(sandbox, client):
    _, invoice, invoice_ref = new_invoice(client, "ACME")
    paid = client.save_sales_receipt(receipt(amount="100.00"))
    sandbox.faults.update(drop_next=1, ops=["AllocateTransactions"])
    with pytest.raises(AiqAmbiguousError):
        client.allocate_transactions(
            transaction_id_1=invoice, transaction_id_2=paid, reference=unique("AL"),
            amount=Decimal("100.00"), date=PAID_ON,
        )  # fmt: skip
    [entry] = client.allocation_entries(invoice)
    assert (entry["AllocatedToTransactionID"], entry["AllocationAmount"]) == (
        paid, Decimal("100.00"),
    )  # fmt: skip
    assert outstanding(client, invoice_ref) == Decimal("260.00")


def test_an_injected_server_fault_on_a_write_is_ambiguous_and_read_back_shows_nothing(
    sandbox, client
):
    client.get_bank_list()
    sandbox.faults.update(fail_next=2, failure_mode="http500")
    with pytest.raises(AiqTemporaryError) as info:
        client.get_bank_list()
    assert not isinstance(info.value, AiqAmbiguousError)
    fields = receipt(amount="5.00")
    with pytest.raises(AiqAmbiguousError, match="SOAP fault"):
        client.save_sales_receipt(fields)
    # The read-back rule: nothing there, so sending it again cannot double it.
    assert client.get_transactions_by_external_reference(fields["CheckReference"], **WINDOW) == []
    client.save_sales_receipt(fields)
    assert sandbox.state.receipt_count(fields["CheckReference"]) == 1


def test_latency_above_the_read_timeout_is_ambiguous_for_a_write_and_it_lands_later(
    sandbox, entity, version
):
    entity.api_version = version
    entity.save()
    client = AiqClient.for_entity(entity, read_timeout=0.2)
    client.get_bank_list()
    sandbox.faults.update(latency_ms=500)
    with pytest.raises(AiqTemporaryError, match="ReadTimeout") as info:
        client.get_bank_list()
    assert not isinstance(info.value, AiqAmbiguousError)
    fields = receipt(amount="31.41")
    with pytest.raises(AiqAmbiguousError, match="ReadTimeout"):
        client.save_sales_receipt(fields)
    sandbox.faults.update(latency_ms=0)
    deadline = time.monotonic() + 5
    while not (found := client.get_transactions_by_external_reference(
        fields["CheckReference"], **WINDOW
    )) and time.monotonic() < deadline:  # fmt: skip
        time.sleep(0.05)  # the sandbox is still sleeping off the latency before it commits
    assert len(found) == 1 and sandbox.state.receipt_count(fields["CheckReference"]) == 1


# --- the whole flow --------------------------------------------------------------------------


def test_customer_invoice_receipt_allocate_pdfs_unallocate(sandbox, client):
    # customer: defaults -> create -> read -> update with its RowVersionNumber
    code = new_customer(client)
    customer = client.get_customer(code)
    assert (customer["Code"], customer["CurrencyCode"], customer["IsActive"]) == (code, "GBP", True)
    stale = customer["RowVersionNumber"]
    customer["Name"] = f"{code} Group Ltd"
    client.update_customer(customer, create=False)
    customer.update(RowVersionNumber=stale, Name="Lost update")
    with pytest.raises(AiqPermanentError) as info:
        client.update_customer(customer, create=False)
    assert info.value.error_code == "CONCURRENCY_ERROR"
    assert client.get_customer(code)["Name"] == f"{code} Group Ltd"

    # invoice: new -> saved -> posted
    invoice_id, invoice, invoice_ref = new_invoice(client, code)
    saved = client.get_invoice(invoice_id)
    assert (saved["Status"], saved["NetAmount"], saved["TaxAmount"], saved["GrossAmount"]) == (
        "Processed", Decimal("300.00"), Decimal("60.00"), Decimal("360.00"),
    )  # fmt: skip
    assert all(isinstance(saved[k], Decimal) for k in ("NetAmount", "TaxAmount", "GrossAmount"))
    number = saved["InvoiceNumber"]
    assert summary(client, invoice_ref)["InternalNumber"] == number

    # receipt, then allocate part of it
    fields = receipt(code, "360.00")
    paid = client.save_sales_receipt(fields)
    client.allocate_transactions(
        transaction_id_1=invoice, transaction_id_2=paid, reference=unique("AL"),
        amount=Decimal("200.00"), date=PAID_ON,
    )  # fmt: skip
    assert outstanding(client, invoice_ref) == Decimal("160.00")
    assert outstanding(client, fields["CheckReference"]) == Decimal("-160.00")
    [entry] = client.allocation_entries(paid)
    assert (entry["AllocatedToTransactionID"], entry["AllocationAmount"]) == (
        invoice, Decimal("200.00"),
    )  # fmt: skip

    # documents: real PDFs that name the invoice
    invoice_text = pdf_text(client.get_invoice_pdf(invoice))
    for expected in (f"Invoice {number}", code, "Consulting day", "360.00", "160.00"):
        assert expected in invoice_text
    receipt_number = summary(client, fields["CheckReference"])["InternalNumber"]
    receipt_text = pdf_text(client.get_sales_receipt_pdf(paid))
    for expected in (f"Receipt {receipt_number}", code, f"Allocated 200.00 to {number}"):
        assert expected in receipt_text

    # unallocate: both sides back to their full amounts
    [status] = client.unallocate_transactions([paid])
    assert status["Status"] == "Success"
    assert outstanding(client, invoice_ref) == Decimal("360.00")
    assert outstanding(client, fields["CheckReference"]) == Decimal("-360.00")
    assert client.allocation_entries(invoice) == []
    with pytest.raises(AiqPermanentError, match="has no allocations") as info:
        client.unallocate_transactions([paid])
    assert info.value.error_code == "NOT_FOUND"


def test_allocate_with_discount_settles_the_invoice_and_books_the_discount(sandbox, client):
    _, invoice, invoice_ref = new_invoice(client, "ACME")  # 360.00
    fields = receipt(amount="355.00")
    paid = client.save_sales_receipt(fields)
    reference = unique("DS")
    client.allocate_transactions_with_discount(
        transaction_id_1=invoice, transaction_id_2=paid, reference=reference,
        amount=Decimal("350.00"), discount=Decimal("10.00"), date=PAID_ON,
    )  # fmt: skip
    assert outstanding(client, invoice_ref) == Decimal("0.00")
    assert outstanding(client, fields["CheckReference"]) == Decimal("-5.00")
    discount = summary(client, reference)
    assert (discount["TransactionType"], discount["ControlAmount"]) == (
        "SalesDiscount", Decimal("-10.00"),
    )  # fmt: skip
    # more than is left on the invoice, discount included, is refused
    _, second, second_ref = new_invoice(client, "ACME", price="5.00")  # 12.00
    with pytest.raises(AiqPermanentError) as info:
        client.allocate_transactions_with_discount(
            transaction_id_1=second, transaction_id_2=paid, reference=unique("DS"),
            amount=Decimal("5.00"), discount=Decimal("7.01"), date=PAID_ON,
        )  # fmt: skip
    assert info.value.error_code == "OVER_ALLOCATION"
    assert outstanding(client, second_ref) == Decimal("12.00")
