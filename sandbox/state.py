"""Read-only views of the sandbox's books for tests: exactly-once is asserted from outside.

Available as `server.state` in-process and as `GET /_sandbox/state` over HTTP.
"""

from decimal import Decimal

from sandbox.books import bc
from sandbox.store import from_milli, loads


class State:
    def __init__(self, server):
        self._server = server

    def _rows(self, sql: str, params=()):
        with self._server.store.transaction() as db:
            return db.execute(sql, params).fetchall()

    def receipt_count(self, check_reference: str, entity: str = "demo") -> int:
        """How many receipts carry this CheckReference (the exactly-once probe)."""
        return self._rows(
            "SELECT count(*) AS n FROM txn WHERE entity_id = ? AND type = 'SalesReceipt' "
            "AND external_reference = ?",
            (entity, check_reference),
        )[0]["n"]

    def transactions(self, external_reference: str, entity: str = "demo") -> list[dict]:
        rows = self._rows(
            "SELECT id, type, account_id, amount_milli, outstanding_milli, currency FROM txn "
            "WHERE entity_id = ? AND external_reference = ? ORDER BY id",
            (entity, external_reference),
        )
        return [
            {
                "transaction_id": row["id"],
                "type": row["type"],
                "account_id": row["account_id"],
                "amount": from_milli(row["amount_milli"]),
                "outstanding": from_milli(row["outstanding_milli"]),
                "currency": row["currency"],
            }
            for row in rows
        ]

    def gl_total(self, code: str, entity: str = "demo") -> Decimal:
        """The net of every posted line on one GL account (debits positive)."""
        rows = self._rows("SELECT lines FROM txn WHERE entity_id = ?", (entity,))
        return sum(
            (
                Decimal(str(item["Amount"]))
                for row in rows
                for item in loads(row["lines"])
                if item["GLAccountCode"] == code
            ),
            Decimal(0),
        )

    def gl_total_base(self, code: str, entity: str = "demo") -> Decimal:
        """The net of every posted line on one GL account in the company's base currency
        (each line's BCAmount: its amount at its transaction's rate), as AIQ's trial balance
        holds it; gl_total adds amounts as written, whatever their currency."""
        rows = self._rows("SELECT lines, exchange_rate FROM txn WHERE entity_id = ?", (entity,))
        return sum(
            (
                bc(Decimal(str(item["Amount"])), Decimal(row["exchange_rate"]))
                for row in rows
                for item in loads(row["lines"])
                if item["GLAccountCode"] == code
            ),
            Decimal(0),
        )

    def lines(self, transaction_id: int) -> list[dict]:
        """One transaction's GL lines: GLAccountCode, Amount (Decimal, debits positive),
        DepartmentID, IsControlLine, IsTaxLine."""
        rows = self._rows("SELECT lines FROM txn WHERE id = ?", (transaction_id,))
        if not rows:
            raise KeyError(transaction_id)
        return [
            {**item, "Amount": Decimal(str(item["Amount"]))} for item in loads(rows[0]["lines"])
        ]

    def account_code(self, account_id: int) -> tuple[str, str]:
        """(ledger, code) of an account: Sales for customers, Purchases for suppliers."""
        [row] = self._rows("SELECT ledger, code FROM account WHERE id = ?", (account_id,))
        return row["ledger"], row["code"]

    def customer_balance(self, code: str, entity: str = "demo") -> Decimal:
        """What a customer owes (debits positive): the net of every transaction on its account,
        as AIQ's customer balance is."""
        rows = self._rows(
            "SELECT coalesce(sum(t.amount_milli), 0) AS milli FROM txn t JOIN account a ON "
            "a.id = t.account_id WHERE t.entity_id = ? AND a.ledger = 'Sales' AND a.code = ?",
            (entity, code.upper()),
        )
        return from_milli(rows[0]["milli"])

    def outstanding(self, transaction_id: int) -> Decimal:
        rows = self._rows("SELECT outstanding_milli FROM txn WHERE id = ?", (transaction_id,))
        if not rows:
            raise KeyError(transaction_id)
        return from_milli(rows[0]["outstanding_milli"])

    def allocations(self, transaction_id: int, *, active: bool = True) -> list[dict]:
        rows = self._rows(
            "SELECT * FROM allocation WHERE (debit_txn = ? OR credit_txn = ?) AND active = ? "
            "ORDER BY id",
            (transaction_id, transaction_id, int(active)),
        )
        return [
            {
                "allocation_id": row["id"],
                "debit_transaction_id": row["debit_txn"],
                "credit_transaction_id": row["credit_txn"],
                "amount": from_milli(row["amount_milli"]),
                "reference": row["reference"],
            }
            for row in rows
        ]

    def snapshot(self, entity: str | None = None) -> dict:
        where, params = ("WHERE entity_id = ?", (entity,)) if entity else ("", ())
        receipts = self._rows(
            f"SELECT entity_id, external_reference, count(*) AS n FROM txn {where} "
            f"{'AND' if where else 'WHERE'} type = 'SalesReceipt' "
            "GROUP BY entity_id, external_reference",
            params,
        )
        refs = self._rows(
            f"SELECT entity_id, type, external_reference, count(*) AS n FROM txn {where} "
            f"{'AND' if where else 'WHERE'} external_reference IS NOT NULL "
            "GROUP BY entity_id, type, external_reference",
            params,
        )
        types = self._rows(
            f"SELECT entity_id, type, count(*) AS n FROM txn {where} GROUP BY entity_id, type",
            params,
        )
        allocations = self._rows(
            f"SELECT entity_id, count(*) AS n FROM allocation {where} "
            f"{'AND' if where else 'WHERE'} active = 1 GROUP BY entity_id",
            params,
        )
        documents = self._rows(
            f"SELECT entity_id, count(*) AS n FROM document {where} GROUP BY entity_id", params
        )
        entities: dict[str, dict] = {}

        def bucket(entity_id):
            return entities.setdefault(
                entity_id,
                {
                    "receipts_by_check_reference": {},
                    "transactions_by_external_reference": {},
                    "transactions_by_type": {},
                    "active_allocations": 0,
                    "documents": 0,
                },
            )

        for row in receipts:
            bucket(row["entity_id"])["receipts_by_check_reference"][
                row["external_reference"] or ""
            ] = row["n"]
        for row in refs:
            by_ref = bucket(row["entity_id"])["transactions_by_external_reference"]
            by_ref.setdefault(row["external_reference"], {})[row["type"]] = row["n"]
        for row in types:
            bucket(row["entity_id"])["transactions_by_type"][row["type"]] = row["n"]
        for row in allocations:
            bucket(row["entity_id"])["active_allocations"] = row["n"]
        for row in documents:
            bucket(row["entity_id"])["documents"] = row["n"]
        return {
            "entities": entities,
            "calls": self._server.calls(),
            "faults": self._server.faults.snapshot(),
            "live_tokens": self._server.tokens.live_count(),
        }
