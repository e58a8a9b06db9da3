"""AIQ sandbox throughput for SaveSalesReceiptGetBackTransactionID on this machine.

    .venv/bin/python bench/bench_sandbox.py [--calls 2000] [--threads 1,4,8] [--zeep-calls 300]

Starts a seeded sandbox (sandbox.testing) on a free port, logs in, generates receipts (random
customer of the demo company, random amount, unique CheckReference) and posts them as raw
SOAP 1.1 envelopes over keep-alive HTTP connections, one connection per thread, so the figure
is the server's: parse against the WSDL, authenticate, one SQLite transaction, write the
answer. Prints calls/s per thread count, then the same call through a zeep client (what the
product's client adds on the caller's side), and checks every receipt was written once.
"""

import argparse
import random
import statistics
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from sandbox import wsdl  # noqa: E402
from sandbox.testing import login, soap_service, start_sandbox  # noqa: E402

GBP_CUSTOMERS = ["ACME", "BRIGHT", "CASTLE", "DELTA", "EVERGR", "FOXTON", "GRANIT", "HARBOR"]
ACTION = f"{wsdl.TNS}SaveSalesReceiptGetBackTransactionID"


def generate(count: int, prefix: str, seed: int = 1) -> list[tuple[str, str, Decimal]]:
    """(customer, CheckReference, amount) triples: the bench's data generator."""
    rng = random.Random(seed)
    return [
        (rng.choice(GBP_CUSTOMERS), f"{prefix}-{n:06d}", Decimal(rng.randint(100, 500000)) / 100)
        for n in range(count)
    ]


def envelope(token: str, customer: str, reference: str, amount: Decimal) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
        f'<SaveSalesReceiptGetBackTransactionID xmlns="{wsdl.TNS}"><token>{token}</token>'
        f"<salesReceipt><CustomerCode>{customer}</CustomerCode>"
        f"<CheckReference>{reference}</CheckReference><PaymentAmount>{amount}</PaymentAmount>"
        "<BankAccountCode>BANK-GBP</BankAccountCode></salesReceipt>"
        "</SaveSalesReceiptGetBackTransactionID></soap:Body></soap:Envelope>"
    ).encode()


def run_raw(sandbox, token: str, receipts, threads: int) -> tuple[float, list[float]]:
    chunks = [receipts[i::threads] for i in range(threads)]
    latencies: list[float] = []
    lock = threading.Lock()
    errors: list[str] = []

    def worker(chunk):
        session = requests.Session()
        mine = []
        for customer, reference, amount in chunk:
            started = time.perf_counter()
            response = session.post(
                sandbox.endpoint("1_1"),
                data=envelope(token, customer, reference, amount),
                headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": ACTION},
                timeout=30,
            )
            mine.append(time.perf_counter() - started)
            if response.status_code != 200 or b"<Status>Success</Status>" not in response.content:
                errors.append(response.text[:200])
        with lock:
            latencies.extend(mine)

    workers = [threading.Thread(target=worker, args=(chunk,)) for chunk in chunks]
    started = time.perf_counter()
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise SystemExit(f"{len(errors)} calls failed, e.g. {errors[0]}")
    return len(receipts) / elapsed, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--threads", default="1,4,8")
    parser.add_argument("--zeep-calls", type=int, default=300)
    args = parser.parse_args()
    sandbox = start_sandbox()
    try:
        token = login(sandbox)
        print(f"AIQ sandbox at {sandbox.url}; {args.calls} receipts per run")
        for threads in [int(t) for t in args.threads.split(",")]:
            receipts = generate(args.calls, f"BENCH-T{threads}", seed=threads)
            rate, latencies = run_raw(sandbox, token, receipts, threads)
            p50 = statistics.median(latencies) * 1000
            p99 = sorted(latencies)[int(len(latencies) * 0.99) - 1] * 1000
            print(
                f"  raw SOAP, {threads:2d} thread(s): {rate:7.0f} calls/s  "
                f"(p50 {p50:.2f} ms, p99 {p99:.2f} ms)"
            )
            sample = receipts[len(receipts) // 2][1]
            assert sandbox.state.receipt_count(sample) == 1
        service = soap_service(sandbox)
        receipts = generate(args.zeep_calls, "BENCH-ZEEP")
        started = time.perf_counter()
        for customer, reference, amount in receipts:
            result = service.SaveSalesReceiptGetBackTransactionID(
                token=token,
                salesReceipt={"CustomerCode": customer, "CheckReference": reference,
                              "PaymentAmount": amount, "BankAccountCode": "BANK-GBP"},
            )  # fmt: skip
            assert result.transactionID > 0
        rate = len(receipts) / (time.perf_counter() - started)
        print(f"  zeep client, 1 thread:  {rate:7.0f} calls/s")
        counts = sandbox.state.snapshot("demo")["entities"]["demo"]["receipts_by_check_reference"]
        duplicates = [ref for ref, n in counts.items() if n != 1]
        print(
            f"  receipts written: {sum(counts.values())}, duplicated references: {len(duplicates)}"
        )
    finally:
        sandbox.stop()


if __name__ == "__main__":
    main()
