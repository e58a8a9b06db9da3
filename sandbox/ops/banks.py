"""Bank balances: what AIQ's bank account holds at a point in time (GetBankAccountBalance).

A bank account's balance is the net of every posted line on its GL code (BankCode) dated on
or before the point in time: receipts and sundry receipts debit it, general journals move
money between it and other GL accounts (a provider's clearing account and the real bank
account are two such codes, so a payout journal moves money from one to the other)."""

from decimal import Decimal

from sandbox.books import required
from sandbox.registry import NOT_FOUND, AiqFailure, Reply, operation
from sandbox.store import iso, loads


def bank_gl_balance(db, entity_id: str, gl_code: str, until: str | None = None) -> Decimal:
    sql = "SELECT lines FROM txn WHERE entity_id = ?"
    params: list = [entity_id]
    if until is not None:
        sql += " AND transaction_date <= ?"
        params.append(until)
    total = Decimal(0)
    for row in db.execute(sql, params):
        for item in loads(row["lines"]):
            if item.get("GLAccountCode") == gl_code:
                total += Decimal(str(item["Amount"]))
    return total


@operation("GetBankAccountBalance")
def get_bank_account_balance(ctx, args):
    code = required(args.get("GLAccountCode"), "GLAccountCode")
    bank = ctx.db.execute(
        "SELECT * FROM bank WHERE entity_id = ? AND gl_code = ?", (ctx.entity_id, code)
    ).fetchone()
    if bank is None:
        raise AiqFailure(f"No bank account has the GL code '{code}'.", NOT_FOUND)
    point = args.get("pointInTime") or ctx.now
    balance = bank_gl_balance(ctx.db, ctx.entity_id, code, iso(point))
    return Reply(
        result={
            "FinancialYear": point.year,
            "PeriodNumber": point.month,
            "PeriodName": point.strftime("%b %Y"),
            "Date": point,
            "Balance": balance,
            "LastReconciledDate": None,
        }
    )
