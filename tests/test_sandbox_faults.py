"""Fault injection: latency, failures (HTTP 500 or AIQ Failure), commit-then-drop, token expiry
every N calls; switched from Python, over the HTTP control endpoint and from the command line."""

import subprocess
import sys
import time
from decimal import Decimal

import pytest
import requests
from zeep.exceptions import Fault

from sandbox.testing import login, soap_service
from tests.conftest import free_port


def save_receipt(service, token, reference):
    return service.SaveSalesReceiptGetBackTransactionID(
        token=token,
        salesReceipt={
            "CustomerCode": "ACME",
            "CheckReference": reference,
            "PaymentAmount": Decimal("10.00"),
            "BankAccountCode": "BANK-GBP",
        },
    )


@pytest.fixture
def aiq(aiq_sandbox):
    service = soap_service(aiq_sandbox)
    return service, login(aiq_sandbox, service)


def test_latency_delays_every_call(aiq_sandbox, aiq):
    service, token = aiq
    aiq_sandbox.faults.update(latency_ms=300)
    started = time.monotonic()
    service.GetBankList(token=token)
    assert time.monotonic() - started >= 0.3


def test_injected_http_500_is_a_server_fault_and_writes_nothing(aiq_sandbox, aiq):
    service, token = aiq
    aiq_sandbox.faults.update(fail_next=1)
    with pytest.raises(Fault, match="Injected failure"):
        save_receipt(service, token, "FAULT-500")
    assert aiq_sandbox.state.receipt_count("FAULT-500") == 0
    assert save_receipt(service, token, "FAULT-500").transactionID > 0
    assert aiq_sandbox.faults.snapshot()["stats"]["failures"] == 1


def test_injected_aiq_failure_is_a_status_failure(aiq_sandbox, aiq):
    service, token = aiq
    aiq_sandbox.faults.update(fail_next=1, failure_mode="aiq")
    result = save_receipt(service, token, "FAULT-AIQ")
    status = result.SaveSalesReceiptGetBackTransactionIDResult
    assert (status.Status, status.ErrorCode) == ("Failure", "SERVER_ERROR")
    assert aiq_sandbox.state.receipt_count("FAULT-AIQ") == 0


def test_failure_rate_is_repeatable_with_a_seed(aiq_sandbox, aiq):
    service, token = aiq

    def run():
        aiq_sandbox.faults.update(failure_rate=0.5, failure_mode="aiq", seed=7)
        outcome = [service.GetBankList(token=token).Status for _ in range(20)]
        aiq_sandbox.faults.reset()
        return outcome

    first = run()
    assert first == run()
    assert 0 < first.count("Failure") < 20


def test_commit_then_drop_writes_but_the_caller_sees_a_broken_connection(aiq_sandbox, aiq):
    service, token = aiq
    aiq_sandbox.faults.update(drop_next=1, ops=["SaveSalesReceiptGetBackTransactionID"])
    service.GetBankList(token=token)  # not a targeted operation: answered normally
    with pytest.raises(requests.exceptions.ConnectionError):
        save_receipt(service, token, "DROPPED-1")
    # The write happened: a naive retry would double it; a read-back finds it.
    assert aiq_sandbox.state.receipt_count("DROPPED-1") == 1
    found = service.GetTransactionsByExternalReference(
        token=token, query={"ExternalReference": "DROPPED-1"}
    )
    assert len(found.Result.WSTransactionSummary) == 1
    assert aiq_sandbox.faults.snapshot()["stats"]["dropped_ops"] == [
        "SaveSalesReceiptGetBackTransactionID"
    ]


def test_a_reset_closes_the_connection_before_anything_is_written(aiq_sandbox, aiq):
    service, token = aiq
    aiq_sandbox.faults.update(reset_next=1)
    with pytest.raises(requests.exceptions.ConnectionError):
        save_receipt(service, token, "RESET-1")
    assert aiq_sandbox.state.receipt_count("RESET-1") == 0
    assert aiq_sandbox.faults.snapshot()["stats"]["resets"] == 1


def test_a_late_commit_lands_in_the_books_after_the_caller_gave_up(aiq_sandbox, aiq):
    """AIQ accepts the write, the caller hears nothing, and the receipt appears 0.4 s later:
    a read-back in between finds nothing, one after finds exactly one."""
    service, token = aiq
    aiq_sandbox.faults.update(late_commit_next=1, late_commit_ms=400)
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ConnectionError):
        save_receipt(service, token, "LATE-1")
    assert aiq_sandbox.state.receipt_count("LATE-1") == 0  # still being processed
    assert aiq_sandbox.late_pending() == 1
    assert aiq_sandbox.settle_late_commits(timeout=10)
    assert time.monotonic() - started >= 0.4
    assert aiq_sandbox.state.receipt_count("LATE-1") == 1
    stats = aiq_sandbox.faults.snapshot()["stats"]
    assert (stats["late_commits"], stats["late_landed"], stats["late_refused"]) == (1, 1, 0)


def test_a_late_write_aiq_refuses_when_its_time_comes_is_not_written(aiq_sandbox, aiq):
    """Late commits are processed against the books as they are then: the second of two
    allocations that both fit when sent, but not together, is refused and not written."""
    service, token = aiq
    receipt = save_receipt(service, token, "LATE-PAY").transactionID  # 10.00 to allocate
    invoice = aiq_sandbox.state.transactions("SO-2001")[0]["transaction_id"]

    def allocate():
        return service.AllocateTransactions(
            token=token,
            transactionID_1=receipt,
            transactionID_2=invoice,
            allocationReference="LATE-ALC",
            allocationAmount=Decimal("10.00"),
            allocationDate=None,
        )

    aiq_sandbox.faults.update(late_commit_next=1, late_commit_ms=300)
    with pytest.raises(requests.exceptions.ConnectionError):
        allocate()
    assert allocate().Status == "Success"  # the resend lands first
    assert aiq_sandbox.settle_late_commits(timeout=10)
    assert [a["amount"] for a in aiq_sandbox.state.allocations(receipt)] == [Decimal("10.00")]
    assert aiq_sandbox.faults.snapshot()["stats"]["late_refused"] == 1


def test_late_commits_can_be_released_at_a_chosen_moment(aiq_sandbox, aiq):
    service, token = aiq
    aiq_sandbox.faults.update(late_commit_next=2, late_commit_ms=3_600_000)
    for reference in ("HELD-1", "HELD-2"):
        with pytest.raises(requests.exceptions.ConnectionError):
            save_receipt(service, token, reference)
    assert aiq_sandbox.state.receipt_count("HELD-1") == 0
    assert aiq_sandbox.release_late_commits() == 2
    assert aiq_sandbox.late_pending() == 0
    assert aiq_sandbox.state.receipt_count("HELD-1") == 1
    assert aiq_sandbox.state.receipt_count("HELD-2") == 1


def test_a_stopped_sandbox_commits_no_late_write(tmp_path):
    from sandbox.testing import start_sandbox

    sandbox = start_sandbox(tmp_path / "books.sqlite3")
    service = soap_service(sandbox)
    token = login(sandbox, service)
    sandbox.faults.update(late_commit_next=1, late_commit_ms=60_000)
    with pytest.raises(requests.exceptions.ConnectionError):
        save_receipt(service, token, "NEVER")
    started = time.monotonic()
    sandbox.stop()  # does not wait a minute for the timer
    assert time.monotonic() - started < 10
    assert sandbox.late_pending() == 0


def test_reads_are_never_dropped(aiq_sandbox, aiq):
    service, token = aiq
    aiq_sandbox.faults.update(drop_after_commit_rate=1.0)
    assert service.GetBankList(token=token).Status == "Success"


def test_tokens_expire_every_n_calls(aiq_sandbox, aiq):
    service, token = aiq
    aiq_sandbox.faults.update(token_expire_every=3)
    statuses = [service.GetBankList(token=token).HasExpired for _ in range(4)]
    assert statuses == [False, False, False, True]
    fresh = login(aiq_sandbox, service)
    assert service.GetBankList(token=fresh).Status == "Success"


def test_the_http_control_endpoints(aiq_sandbox, aiq):
    service, token = aiq
    url = aiq_sandbox.url
    response = requests.post(f"{url}/_sandbox/faults", json={"fail_next": 1}, timeout=5)
    assert response.json()["settings"]["fail_next"] == 1
    with pytest.raises(Fault):
        service.GetBankList(token=token)
    assert requests.get(f"{url}/_sandbox/faults", timeout=5).json()["stats"]["failures"] == 1
    requests.post(f"{url}/_sandbox/faults/reset", timeout=5)
    assert service.GetBankList(token=token).Status == "Success"
    assert requests.post(f"{url}/_sandbox/tokens/expire", timeout=5).json()["expired"] >= 1
    assert service.GetBankList(token=token).HasExpired is True
    save_receipt(service, login(aiq_sandbox, service), "COUNTED-1")
    state = requests.get(f"{url}/_sandbox/state?entity=demo", timeout=5).json()
    assert state["entities"]["demo"]["receipts_by_check_reference"]["COUNTED-1"] == 1
    assert state["calls"]["SaveSalesReceiptGetBackTransactionID"] == 1


def test_the_command_line_serves_with_faults(tmp_path):
    from sandbox.seed import seed

    db = tmp_path / "cli.sqlite3"
    seed(str(db))
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "serve", "--port", str(port), "--db", str(db),
         "--drop-after-commit-rate", "1", "--latency-ms", "5", "--fault-seed", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(600):  # up to 30 s: a loaded machine starts it slowly
            try:
                if requests.get(f"{url}/_sandbox/health", timeout=1).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.05)
        settings = requests.get(f"{url}/_sandbox/faults", timeout=5).json()["settings"]
        assert settings["drop_after_commit_rate"] == 1
        assert settings["latency_ms"] == 5
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_stopped_sandbox_drops_open_keep_alive_connections(tmp_path):
    """After stop() a client already connected sees the connection go, like a real outage,
    instead of answers from a closed store."""
    from sandbox.testing import start_sandbox

    sandbox = start_sandbox(tmp_path / "books.sqlite3")
    session = requests.Session()
    assert session.get(sandbox.wsdl_url("1_1"), timeout=5).status_code == 200
    sandbox.stop()
    with pytest.raises(requests.ConnectionError):
        session.get(sandbox.wsdl_url("1_1"), timeout=5)
