"""AiqClient over real HTTP: tokens, replay rules, every error path, secrets.

The peer is tests/aiq_fake.py (AIQ's sample envelopes served over HTTP) until the AIQ sandbox can
be started from tests; the flow test against the sandbox lives at the end and skips without it.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from decimal import Decimal

import pytest

from ledger.aiq import auth, wsdl
from ledger.aiq.client import AiqClient, http_session
from ledger.aiq.errors import (
    AiqAmbiguousError,
    AiqAuthError,
    AiqConfigurationError,
    AiqPermanentError,
    AiqTemporaryError,
)
from tests.aiq_fake import FakeAiq
from tests.conftest import free_port

KEYS = ("partner-key-XYZ", "user-key-XYZ")
RECEIPT = {
    "CustomerCode": "ACME",
    "CheckReference": "rcpt-1",
    "PaymentAmount": Decimal("120.50"),
    "BankAccountCode": "BANK1",
    "PaymentDate": datetime(2026, 1, 5),
}


@pytest.fixture(autouse=True)
def _fresh_tokens(monkeypatch):
    auth.TOKENS.clear()
    wsdl.forget_documents()
    monkeypatch.setenv("AIQ_T_PARTNER_KEY", KEYS[0])
    monkeypatch.setenv("AIQ_T_USER_KEY", KEYS[1])
    monkeypatch.setenv("AIQ_T_CLIENT_ID", KEYS[0])
    monkeypatch.setenv("AIQ_T_CLIENT_SECRET", KEYS[1])
    yield
    auth.TOKENS.clear()


def _peer(version):
    fake = FakeAiq(version=version, keys=KEYS)
    endpoint = fake.start(free_port())
    return fake, endpoint


@pytest.fixture
def fake():
    peer, endpoint = _peer("1.1")
    peer.endpoint = endpoint
    yield peer
    peer.stop()


@pytest.fixture
def fake2():
    peer, endpoint = _peer("2.0")
    peer.endpoint = endpoint
    yield peer
    peer.stop()


def make(peer, version="1.1", **kw) -> AiqClient:
    kw.setdefault("read_timeout", 2)
    kw.setdefault("fetch_wsdl", False)  # the WSDL-fetch path has its own test below
    return AiqClient(
        company_id="CO1", credentials_key="T", endpoint=peer.endpoint, api_version=version, **kw
    )


# --- tokens --------------------------------------------------------------------------------------


def test_logs_in_once_and_sends_the_token_in_the_body(fake):
    client = make(fake)
    client.get_bank_list()
    client.get_customer("acme")
    assert fake.ops() == ["Login", "GetBankList", "GetCustomer"]
    assert b"<ns0:token>tok-1</ns0:token>" in fake.calls[1][1]
    assert b">ACME<" in fake.calls[2][1]  # customer codes are upper case in AIQ


def test_2_0_gets_an_access_token_and_sends_it_in_the_aiq_soap_header(fake2):
    client = make(fake2, "2.0")
    client.get_customer("acme")
    assert fake2.ops() == ["TokenGet", "GetCustomer"]
    body = fake2.calls[1][1]
    assert b"AiqSoapHeader" in body and b"<ns0:AccessToken>at-1</ns0:AccessToken>" in body
    assert b"<ns0:Entity>CO1</ns0:Entity>" in body
    assert b"token>" not in body


def test_token_is_renewed_before_its_twenty_minutes_run_out(fake, monkeypatch):
    client = make(fake)
    client.get_bank_list()
    later = time.monotonic() + auth.TOKEN_LIFETIME_SECONDS - auth.REFRESH_MARGIN_SECONDS + 1
    monkeypatch.setattr(auth.time, "monotonic", lambda: later)
    client.get_bank_list()
    assert fake.ops() == ["Login", "GetBankList", "Login", "GetBankList"]
    assert b"tok-2" in fake.calls[3][1]


def test_2_0_renews_with_token_refresh(fake2, monkeypatch):
    client = make(fake2, "2.0")
    client.get_bank_list()
    later = time.monotonic() + auth.TOKEN_LIFETIME_SECONDS
    monkeypatch.setattr(auth.time, "monotonic", lambda: later)
    client.get_bank_list()
    assert fake2.ops() == ["TokenGet", "GetBankList", "TokenRefresh", "GetBankList"]
    assert b"rt-1" in fake2.calls[2][1]


def test_expired_token_on_a_read_logs_in_again_and_replays_once(fake):
    client = make(fake)
    client.get_bank_list()
    fake.expire_all_tokens()
    assert isinstance(client.get_bank_list(), list)
    assert fake.ops() == ["Login", "GetBankList", "GetBankList", "Login", "GetBankList"]


def test_expired_token_on_a_write_is_not_replayed_unless_the_caller_says_so(fake):
    client = make(fake)
    client.get_bank_list()
    fake.expire_all_tokens()
    with pytest.raises(AiqAuthError) as info:
        client.save_sales_receipt(RECEIPT)
    assert not isinstance(info.value, AiqAmbiguousError)  # AIQ refused it: nothing written
    assert fake.ops().count("SaveSalesReceiptGetBackTransactionID") == 1
    # The next attempt logs in again by itself.
    assert client.save_sales_receipt(RECEIPT) == 100
    assert fake.ops()[-2:] == ["Login", "SaveSalesReceiptGetBackTransactionID"]


def test_expired_token_on_a_replay_safe_write_is_replayed(fake):
    client = make(fake)
    client.get_bank_list()
    fake.expire_all_tokens()
    assert client.save_sales_receipt(RECEIPT, replay_safe=True) == 100
    assert fake.ops()[-3:] == [
        "SaveSalesReceiptGetBackTransactionID",
        "Login",
        "SaveSalesReceiptGetBackTransactionID",
    ]


def test_token_expiring_again_right_after_login_is_an_auth_error(fake):
    client = make(fake)
    fake.then("GetBankList", "expired", "expired")
    with pytest.raises(AiqAuthError):
        client.get_bank_list()
    assert fake.ops() == ["Login", "GetBankList", "Login", "GetBankList"]


def test_wrong_keys_are_an_auth_error_without_the_keys_in_it(fake, monkeypatch):
    monkeypatch.setenv("AIQ_T_USER_KEY", "wrong-user-key-123")
    client = make(fake)
    with pytest.raises(AiqAuthError) as info:
        client.get_bank_list()
    assert "wrong-user-key-123" not in str(info.value)
    assert fake.ops() == ["Login"]


def test_missing_credentials_name_the_variable(monkeypatch, fake):
    monkeypatch.delenv("AIQ_T_USER_KEY")
    with pytest.raises(AiqConfigurationError, match="AIQ_T_USER_KEY"):
        make(fake)


def test_concurrent_first_calls_log_in_once(fake):
    errors = []

    def work():
        try:
            make(fake).get_bank_list()
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert fake.ops().count("Login") == 1
    assert fake.ops().count("GetBankList") == 12


# --- results --------------------------------------------------------------------------------------


def test_results_are_plain_python_with_decimals_ints_and_bytes(fake):
    client = make(fake)
    invoice = client.get_invoice(100)
    assert invoice["InvoiceID"] == 100
    assert invoice["Lines"][0]["NetAmount"] == Decimal("92")
    assert isinstance(invoice["Lines"][0]["NetAmount"], Decimal)
    assert invoice["CurrrencyCode"] == "string"
    assert client.get_invoice_pdf(1) == b"content"
    result = client.call("SaveSalesReceiptGetBackTransactionID", salesReceipt=RECEIPT)
    assert (result.ok, result.transaction_id, result.siblings["transactionID"]) == (True, 100, 100)
    sent = fake.calls[-1][1]
    assert b"<ns0:PaymentAmount>120.50</ns0:PaymentAmount>" in sent


def test_failure_is_a_permanent_error_with_aiq_code_and_message(fake):
    client = make(fake)
    fake.then("SaveSalesReceiptGetBackTransactionID", ("failure", "E_BANK", "Bank code missing"))
    with pytest.raises(AiqPermanentError) as info:
        client.save_sales_receipt(RECEIPT)
    err = info.value
    assert (err.error_code, err.error_message) == ("E_BANK", "Bank code missing")
    assert (
        err.result.status == "Failure" and err.operation == "SaveSalesReceiptGetBackTransactionID"
    )


def test_one_failed_item_in_a_status_list_fails_the_call(fake):
    client = make(fake)
    fake.then(
        "UnallocateTransactions",
        lambda data: data.replace(
            b"<Status>Success</Status>", b"<Status>Failure</Status>", 2
        ).replace(b"<Status>Failure</Status>", b"<Status>Success</Status>", 1),
    )
    with pytest.raises(AiqPermanentError):
        client.unallocate_transactions([5, 6])
    assert client.unallocate_transactions([5, 6])[0]["Status"] == "Success"


def test_success_without_the_created_id_is_ambiguous(fake):
    client = make(fake)
    fake.then(
        "SaveSalesReceiptGetBackTransactionID",
        lambda data: data.replace(b"<transactionID>100</transactionID>", b""),
    )
    with pytest.raises(AiqAmbiguousError):
        client.save_sales_receipt(RECEIPT)


# --- transport failures ---------------------------------------------------------------------------


def test_connection_refused_is_temporary_and_not_ambiguous(fake):
    client = make(fake)
    client.get_bank_list()
    client.endpoint = client._options["address"] = f"http://127.0.0.1:{free_port()}/x.asmx"
    with pytest.raises(AiqTemporaryError) as info:
        client.save_sales_receipt(RECEIPT)
    assert not isinstance(info.value, AiqAmbiguousError)


def test_read_timeout_on_a_write_is_ambiguous(fake):
    client = make(fake, read_timeout=0.3)
    client.get_bank_list()
    fake.then("SaveSalesReceiptGetBackTransactionID", ("sleep", 1.0))
    with pytest.raises(AiqAmbiguousError, match="may have been applied"):
        client.save_sales_receipt(RECEIPT)


def test_read_timeout_on_a_read_is_temporary_not_ambiguous(fake):
    client = make(fake, read_timeout=0.3)
    client.get_bank_list()
    fake.then("GetBankList", ("sleep", 1.0))
    with pytest.raises(AiqTemporaryError) as info:
        client.get_bank_list()
    assert not isinstance(info.value, AiqAmbiguousError)


def test_connection_dropped_after_sending_a_write_is_ambiguous(fake):
    client = make(fake)
    client.get_bank_list()
    fake.then("AllocateTransactions", "drop")
    with pytest.raises(AiqAmbiguousError):
        client.allocate_transactions(
            transaction_id_1=1,
            transaction_id_2=2,
            reference="a",
            amount=Decimal("1.00"),
            date=datetime(2026, 1, 1),
        )


def test_a_kept_connection_aiq_closed_while_idle_is_not_written_to(fake):
    """AIQ closes idle keep-alive connections; a write must then go on a new connection, not
    fail on the closed one (which would make it ambiguous: a read-back for nothing)."""
    client = make(fake)
    fake.then("GetBankList", "answer_then_close")
    client.get_bank_list()
    time.sleep(0.3)  # the close reaches us while the connection waits in the pool
    client.allocate_transactions(  # answered, not AiqAmbiguousError
        transaction_id_1=1,
        transaction_id_2=2,
        reference="a",
        amount=Decimal("1.00"),
        date=datetime(2026, 1, 1),
    )
    assert [op for op, _ in fake.calls].count("AllocateTransactions") == 1


@pytest.mark.parametrize(
    "behaviour,error",
    [
        ("fault_server", AiqAmbiguousError),
        (("http", 503), AiqAmbiguousError),
        ("garbage", AiqAmbiguousError),
        ("fault_client", AiqPermanentError),
        (("http", 404), AiqPermanentError),
    ],
)
def test_faults_and_http_errors_on_a_write(fake, behaviour, error):
    client = make(fake)
    fake.then("SaveSalesReceiptGetBackTransactionID", behaviour)
    with pytest.raises(error):
        client.save_sales_receipt(RECEIPT)


@pytest.mark.parametrize("behaviour", ["fault_server", ("http", 502), "garbage"])
def test_faults_and_http_errors_on_a_read_are_temporary(fake, behaviour):
    client = make(fake)
    fake.then("GetBankList", behaviour)
    with pytest.raises(AiqTemporaryError) as info:
        client.get_bank_list()
    assert not isinstance(info.value, AiqAmbiguousError)


def test_bad_parameters_and_unknown_operations_send_nothing(fake):
    client = make(fake)
    with pytest.raises(AiqPermanentError, match="invalid parameters"):
        client.call("GetBankList", nonsense=1)
    with pytest.raises(AiqPermanentError, match="no such AIQ operation"):
        client.call("DropAllTables")
    with pytest.raises(AiqPermanentError):
        client.call("Login")
    assert "GetBankList" not in fake.ops() and "DropAllTables" not in fake.ops()


# --- secrets ---------------------------------------------------------------------------------------


def test_keys_and_tokens_never_reach_logs_exceptions_or_reprs(fake, caplog):
    caplog.set_level(logging.DEBUG)
    client = make(fake)
    client.get_bank_list()
    fake.then("GetBankList", ("failure", "E", f"echo {KEYS[0]} tok-1"), "fault_server")
    raised = []
    for _ in range(2):
        try:
            client.get_bank_list()
        except Exception as exc:
            raised.append(exc)
    assert len(raised) == 2
    text = (
        caplog.text
        + repr(client)
        + repr(client._credentials)
        + repr(auth.TOKENS.get(client._token_key))
    )
    text += "".join(str(e) + repr(e) for e in raised)
    for secret in (*KEYS, "tok-1"):
        assert secret not in text
    assert "***" in str(raised[0])


# --- endpoint and WSDL ------------------------------------------------------------------------------


def test_endpoint_comes_from_the_entity_region(settings):
    settings.AIQ_SANDBOX_URL = "http://127.0.0.1:9999/"
    assert wsdl.endpoint_for("sandbox", "1.1") == (
        "http://127.0.0.1:9999/system/dashboard/integration/integration_1_1.asmx"
    )
    assert wsdl.endpoint_for("EU1", "2.0") == (
        "https://eu1.accountsiq.com/system/dashboard/integration/integration_2_0.asmx"
    )
    with pytest.raises(ValueError):
        wsdl.endpoint_for("evil.example.com/x", "1.1")


def test_for_entity_uses_region_version_and_credentials_key(entity, settings, fake):
    settings.AIQ_SANDBOX_URL = fake.endpoint.split("/system/")[0]
    entity.region, entity.api_version, entity.credentials_key = "sandbox", "1.1", "T"
    client = AiqClient.for_entity(entity)
    assert client.endpoint == fake.endpoint
    client.get_bank_list()
    assert fake.ops() == ["Login", "GetBankList"]
    assert f"<ns0:companyID>{entity.company_id}</ns0:companyID>".encode() in fake.calls[0][1]


def test_wsdl_is_fetched_from_the_endpoint_once_and_falls_back_to_the_bundled_file(
    fake, settings, tmp_path
):
    settings.VAR_DIR = tmp_path
    make(fake, fetch_wsdl=True)
    make(fake, fetch_wsdl=True)
    assert fake.wsdl_gets == 1  # parsed once per process, shared by clients
    down = f"http://127.0.0.1:{free_port()}/system/dashboard/integration/integration_1_1.asmx"
    assert wsdl.document_for(down, "1.1") is wsdl.bundled_document("1.1")


def test_proxy_and_ca_bundle_from_the_environment_are_read_when_the_client_is_made(
    fake, monkeypatch
):
    # the client reads them once (not on every call); calls then go through that proxy
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/company-ca.pem")
    remote = http_session("https://eu1.accountsiq.com/system/dashboard/integration/x.asmx")
    assert remote.proxies["https"] == "http://proxy.internal:3128"
    assert remote.verify == "/etc/ssl/certs/company-ca.pem"
    assert http_session(fake.endpoint).proxies == {}  # NO_PROXY names the local peer
    client = make(fake)
    monkeypatch.delenv("NO_PROXY")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")  # nobody listens there
    client.get_bank_list()  # made before: still straight to AIQ
    assert fake.ops() == ["Login", "GetBankList"]
