"""Per-call overhead of AiqClient over a bare zeep call of the same operation, against the sandbox.

    .venv/bin/python bench/bench_aiq_client.py [--calls 300] [--rounds 5]

Starts a seeded AIQ sandbox (sandbox.testing) on a free port, logs in once for each side, then
alternates rounds of: bare zeep (`service.Op(token=..., ...)` on a zeep Client built from the
same committed WSDL) and `AiqClient.call(...)` for a read (GetBankList) and a write
(SaveSalesReceiptGetBackTransactionID, unique CheckReference per call). Prints the median per-call
time per side and the ratio (target <= 1.2x), plus the write throughput. `--peer fake` runs the
same against tests/aiq_fake.py, whose near-zero server time makes our own cost visible.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aiqrecon.settings")
os.environ.setdefault("AIQRECON_VAR_DIR", tempfile.mkdtemp(prefix="bench-aiq-"))

import django  # noqa: E402

django.setup()

from ledger.aiq.client import AiqClient  # noqa: E402
from sandbox.testing import login, soap_service, start_sandbox  # noqa: E402


class FakePeer:
    """tests/aiq_fake.py behind the same small interface as sandbox.testing.RunningSandbox."""

    def __init__(self):
        from tests.aiq_fake import FakeAiq
        from tests.conftest import free_port

        self.credentials = {"AIQ_DEMO_PARTNER_KEY": "bench-pk", "AIQ_DEMO_USER_KEY": "bench-uk"}
        self.fake = FakeAiq(keys=("bench-pk", "bench-uk"))
        self._endpoint = self.fake.start(free_port())
        self.url = self._endpoint.split("/system/")[0]

    def endpoint(self, version: str = "1_1") -> str:
        return self._endpoint

    def stop(self):
        self.fake.stop()


def receipt(n: int, side: str) -> dict:
    return {
        "CustomerCode": "ACME",
        "CheckReference": f"bench-{side}-{n}",
        "PaymentAmount": Decimal("1.00"),
        "BankAccountCode": "BANK-GBP",
        "PaymentDate": datetime(2026, 7, 10),
        "ExchangeRate": Decimal(1),
        "BankExchangeRate": Decimal(1),
    }


def timed(fn, calls: int) -> float:
    started = time.perf_counter()
    for i in range(calls):
        fn(i)
    return (time.perf_counter() - started) / calls


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument(
        "--peer",
        choices=("sandbox", "fake"),
        default="sandbox",
        help="fake = tests/aiq_fake.py (sample answers, near-zero server time): isolates our cost",
    )
    args = ap.parse_args()

    peer = start_sandbox() if args.peer == "sandbox" else FakePeer()
    try:
        for key, value in peer.credentials.items():
            os.environ[key] = value
        service = soap_service(peer, "1_1")
        token = login(peer, service)
        client = AiqClient(company_id="demo", credentials_key="DEMO", endpoint=peer.endpoint("1_1"))
        client.get_bank_list()  # log in, warm up both sides
        service.GetBankList(token=token)

        counter = iter(range(10**9))
        cases = {
            "GetBankList (read)": (
                lambda i: service.GetBankList(token=token),
                lambda i: client.call("GetBankList"),
            ),
            "SaveSalesReceiptGetBackTransactionID (write)": (
                lambda i: service.SaveSalesReceiptGetBackTransactionID(
                    token=token, salesReceipt=receipt(next(counter), "zeep")
                ),
                lambda i: client.call(
                    "SaveSalesReceiptGetBackTransactionID",
                    salesReceipt=receipt(next(counter), "ours"),
                ),
            ),
        }
        print(f"AIQ {args.peer} at {peer.url}; {args.rounds} rounds x {args.calls} calls per side")
        worst = 0.0
        for name, (bare, ours) in cases.items():
            bare_t, ours_t = [], []
            for _ in range(args.rounds):
                bare_t.append(timed(bare, args.calls))
                ours_t.append(timed(ours, args.calls))
            # Short interleaved rounds: the machine is shared, so load drifts; the best round of
            # each side is the least disturbed estimate, the median shows the typical one.
            b, o = statistics.median(bare_t), statistics.median(ours_t)
            best_ratio = min(ours_t) / min(bare_t)
            worst = max(worst, o / b)
            print(
                f"{name:48s} bare zeep {b * 1000:7.3f} ms/call   AiqClient {o * 1000:7.3f} ms/call"
                f"   ratio {o / b:5.3f}x (best rounds {best_ratio:5.3f}x)"
                f"   overhead {(o - b) * 1000:+.3f} ms"
                f"   ({1 / o:6.0f} calls/s through AiqClient)"
            )
        print(f"worst ratio {worst:.3f}x (target <= 1.2x): {'OK' if worst <= 1.2 else 'OVER'}")
    finally:
        peer.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
