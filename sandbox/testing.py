"""Start a real sandbox server for tests: a background thread, a free port, a temp database.

    from sandbox.testing import start_sandbox

    sandbox = start_sandbox(tmp_path / "aiq.sqlite3")        # seeded demo company
    sandbox.url                      # http://127.0.0.1:<port>
    sandbox.wsdl_url("1_1")          # .../integration_1_1.asmx?wsdl (also "2_0")
    sandbox.credentials              # AIQ_DEMO_PARTNER_KEY, _USER_KEY, _CLIENT_ID, _CLIENT_SECRET
    sandbox.faults.update(drop_next=1, ops=["SaveSalesReceiptGetBackTransactionID"])
    sandbox.expire_tokens()
    sandbox.state.receipt_count("REF-1")
    sandbox.stop()

The pytest fixtures `aiq_sandbox` (fresh books per test) and `aiq_sandbox_session` (one
server for the whole run) in tests/conftest.py wrap this module.
"""

import shutil
import tempfile
import threading
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path

from sandbox import wsdl
from sandbox.books import Ctx
from sandbox.ops.banks import bank_gl_balance
from sandbox.ops.customers import save_customer
from sandbox.seed import credentials, seed
from sandbox.server import SandboxServer

_template_lock = threading.Lock()
_template: Path | None = None


def _seeded_template() -> Path:
    """Seed once per process and copy the file for every fresh sandbox (seeding takes
    ~0.3 s; a copy takes a millisecond)."""
    global _template
    with _template_lock:
        if _template is None or not _template.exists():
            directory = Path(tempfile.mkdtemp(prefix="aiq-sandbox-template-"))
            path = directory / "seeded.sqlite3"
            seed(str(path))
            _template = path
        return _template


@dataclass
class RunningSandbox:
    server: SandboxServer
    db_path: Path
    credentials: dict[str, str]

    @property
    def url(self) -> str:
        return self.server.url

    def wsdl_url(self, version: str = "1_1") -> str:
        return self.server.wsdl_url(version)

    def endpoint(self, version: str = "1_1") -> str:
        return f"{self.url}/system/dashboard/integration/integration_{version}.asmx"

    @property
    def faults(self):
        return self.server.faults

    @property
    def state(self):
        return self.server.state

    def expire_tokens(self) -> int:
        return self.server.expire_tokens()

    def late_pending(self) -> int:
        return self.server.late_pending()

    def settle_late_commits(self, timeout: float = 120) -> bool:
        return self.server.settle_late_commits(timeout)

    def release_late_commits(self) -> int:
        return self.server.release_late_commits()

    def add_bank(
        self, bank_account_code: str, gl_code: str, currency: str, *, entity: str = "demo"
    ) -> None:
        """Set up one more bank account (with its own bank GL code), as an AIQ administrator
        does in AIQ's screens (Integration 1.1 has no operation that creates a bank): e.g. a
        provider's clearing account "STRIPE-GBP" on GL 1150."""
        with self.server.store.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO gl_account VALUES (?, ?, ?, 'bank')",
                (entity, gl_code, f"{bank_account_code} clearing"),
            )
            db.execute(
                "INSERT INTO bank (entity_id, gl_code, bank_account_code, name, currency) "
                "VALUES (?, ?, ?, ?, ?)",
                (entity, gl_code, bank_account_code, bank_account_code, currency),
            )

    def add_supplier(self, code: str, name: str, currency: str, *, entity: str = "demo") -> None:
        """Set up one more supplier, as an AIQ user does in AIQ's screens (the product never
        creates suppliers), with the purchases account 5000 as its default."""
        with self.server.store.transaction() as db:
            row = db.execute("SELECT * FROM entity WHERE id = ?", (entity,)).fetchone()
            ctx = Ctx(db=db, entity=row, now=datetime.now(), user="admin")
            save_customer(ctx, {"Code": code, "Name": name, "CurrencyCode": currency,
                                "DefaultGLAccountCode": "5000"},
                          create=True, ledger="Purchases")  # fmt: skip

    def set_account_active(
        self, code: str, active: bool, *, ledger: str = "Purchases", entity: str = "demo"
    ) -> None:
        """Make a supplier (or, with ledger="Sales", a customer) inactive or active again, as
        an AIQ user does in AIQ's screens."""
        with self.server.store.transaction() as db:
            db.execute(
                "UPDATE account SET is_active = ? WHERE entity_id = ? AND ledger = ? AND code = ?",
                (int(active), entity, ledger, code.upper()),
            )

    def add_gl_account(self, code: str, name: str, category: str, *, entity: str = "demo") -> None:
        """One more GL account, as an AIQ administrator adds it in AIQ's screens (no
        Integration operation creates a GL account): e.g. "1170 Payments in dispute"."""
        with self.server.store.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO gl_account VALUES (?, ?, ?, ?)",
                (entity, code, name, category),
            )

    def set_rate(self, currency: str, rate, *, entity: str = "demo") -> None:
        """The company's rate for a currency (units of it per base unit), as an AIQ user sets
        the day's rate in AIQ's currency screens (GetCurrencyExchangeRate answers it)."""
        with self.server.store.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO currency_rate VALUES (?, ?, ?)",
                (entity, currency.upper(), str(rate)),
            )

    def bank_balance(self, gl_code: str, *, entity: str = "demo"):
        """What AIQ's bank account on `gl_code` holds now (GetBankAccountBalance's figure)."""
        with self.server.store.transaction() as db:
            return bank_gl_balance(db, entity, gl_code)

    def stop(self) -> None:
        self.server.stop()


def start_sandbox(
    db_path: str | Path | None = None,
    *,
    seeded: bool = True,
    token_ttl_seconds: float = 1200,
    faults: dict | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
) -> RunningSandbox:
    """Serve a sandbox in a background thread. Port 0 lets the OS pick a free port."""
    if db_path is None:
        db_path = Path(tempfile.mkdtemp(prefix="aiq-sandbox-")) / "aiq-sandbox.sqlite3"
    db_path = Path(db_path)
    if seeded and not db_path.exists():
        shutil.copyfile(_seeded_template(), db_path)
    server = SandboxServer(
        str(db_path), host=host, port=port, token_ttl_seconds=token_ttl_seconds, faults=faults
    )
    return RunningSandbox(server=server.start(), db_path=db_path, credentials=credentials())


# --- client helpers for tests ---------------------------------------------------------------


@cache
def _zeep_client(version: str):
    from zeep import Client

    # Parsed once per process from the committed WSDL; services are then bound per sandbox.
    return Client(str(wsdl.VERSIONS[version]))


def soap_service(sandbox: RunningSandbox, version: str = "1_1"):
    """A zeep service proxy for this sandbox's endpoint (the committed WSDL as the client)."""
    client = _zeep_client(version)
    return client.create_service(f"{{{wsdl.TNS}}}IntegrationSoap", sandbox.endpoint(version))


def login(sandbox: RunningSandbox, service=None, company_id: str = "demo") -> str:
    service = service or soap_service(sandbox)
    return service.Login(
        companyID=company_id,
        partnerKey=sandbox.credentials["AIQ_DEMO_PARTNER_KEY"],
        userKey=sandbox.credentials["AIQ_DEMO_USER_KEY"],
    )


def aiq_header(access_token: str, entity: str = "demo") -> dict:
    return {"AiqSoapHeader": {"Entity": entity, "AccessToken": access_token}}
