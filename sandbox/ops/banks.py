"""Bank balances (GetBankAccountBalance: what a bank account holds at a point in time) and the
company's exchange rates (GetCurrencyExchangeRate).

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
                # a receipt in another currency than the bank's: what the bank holds of it
                total += Decimal(str(item.get("BankAmount", item["Amount"])))
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


@operation("GetCurrencyExchangeRate")
def get_currency_exchange_rate(ctx, args):
    """The company's rate for a currency: units of it per base unit (1 for the base)."""
    code = required(args.get("currencyCode"), "currencyCode").upper()
    if code == ctx.entity["base_currency"]:
        return Reply(result=Decimal(1))
    row = ctx.db.execute(
        "SELECT rate FROM currency_rate WHERE entity_id = ? AND currency = ?",
        (ctx.entity_id, code),
    ).fetchone()
    if row is None:
        raise AiqFailure(f"Currency '{code}' has no exchange rate.", NOT_FOUND)
    return Reply(result=Decimal(row["rate"]))
