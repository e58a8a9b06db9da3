"""Sales debit/credit journals (on a customer account) and general journals (debits = credits)."""

from decimal import Decimal

from sandbox import books, invoicing
from sandbox.books import account_by_code, create_txn, gl_account, line, money
from sandbox.registry import VALIDATION, AiqFailure, Reply, operation


def ledger_journal(ctx, journal: dict | None, sign: int) -> int:
    """sign +1: sales debit journal (raises what the customer owes, e.g. a refund paid out);
    -1: sales credit journal. The control line balances the GL lines."""
    if not journal:
        raise AiqFailure("No journal was sent.", VALIDATION)
    account = account_by_code(ctx, journal.get("AccountCode"))
    currency = account["currency"]
    raw_lines = (journal.get("Lines") or {}).get("WSLedgerJournalLine") or []
    if not raw_lines:
        raise AiqFailure("The journal has no lines.", VALIDATION)
    lines, total = [], Decimal(0)
    for number, item in enumerate(raw_lines, start=1):
        item = item or {}
        gl_account(ctx, item.get("GLAccountCode"), f"Line {number} GLAccountCode")
        amount = money(item.get("Amount"), currency, f"Line {number} Amount")
        lines.append(
            line(item["GLAccountCode"], -sign * amount, item.get("Description"),
                 DepartmentID=item.get("DepartmentID"))
        )  # fmt: skip
        total += amount
    reference = journal.get("ExternalReference") or None
    lines.insert(0, line(books.DEBTORS_GL, sign * total, reference, IsControlLine=True))
    kind = books.SALES_DEBIT_JOURNAL if sign > 0 else books.SALES_CREDIT_JOURNAL
    return create_txn(
        ctx,
        type=kind,
        prefix="SDJ" if sign > 0 else "SCJ",
        internal_number=journal.get("JournalNumber") or None,
        currency=currency,
        amount=sign * total,
        account=account,
        external_reference=reference,
        transaction_date=journal.get("TransactionDate") or ctx.now,
        exchange_rate=journal.get("ExchangeRate") or invoicing.rate_for(ctx, currency),
        description=raw_lines[0].get("Description") if raw_lines[0] else None,
        lines=lines,
    )


@operation("PostSalesDebitJournalGetBackTransactionID", write=True)
def post_sales_debit_journal_get_back_transaction_id(ctx, args):
    return Reply(siblings={"transactionID": ledger_journal(ctx, args.get("journal"), +1)})


@operation("PostSalesCreditJournalGetBackTransactionID", write=True)
def post_sales_credit_journal_get_back_transaction_id(ctx, args):
    return Reply(siblings={"transactionID": ledger_journal(ctx, args.get("journal"), -1)})


def _not_a_currency_bank(ctx, code: str, number: int, base: str) -> None:
    """A general journal's lines are base-currency amounts with no rate: they cannot move
    money in or out of a bank kept in another currency (its balance is in that currency). The
    bank payments and receipts (SaveSundryReceiptPayments) carry the bank's currency and rate."""
    bank = ctx.db.execute(
        "SELECT bank_account_code, currency FROM bank WHERE entity_id = ? AND gl_code = ?",
        (ctx.entity_id, code),
    ).fetchone()
    if bank is not None and bank["currency"] != base:
        raise AiqFailure(
            f"Line {number}: GL account '{code}' is bank account '{bank['bank_account_code']}' "
            f"kept in {bank['currency']}; a general journal is in {base}. Post a bank payment "
            "or receipt in the bank's currency instead.",
            VALIDATION,
        )


@operation("CreateGeneralJournalGetBackTransactionID", write=True)
def create_general_journal_get_back_transaction_id(ctx, args):
    journal = args.get("journal")
    if not journal:
        raise AiqFailure("No journal was sent.", VALIDATION)
    currency = ctx.entity["base_currency"]
    raw_lines = (journal.get("Lines") or {}).get("GeneralJournalLine") or []
    if len(raw_lines) < 2:
        raise AiqFailure("A general journal needs at least two lines.", VALIDATION)
    lines, debits, credits = [], Decimal(0), Decimal(0)
    for number, item in enumerate(raw_lines, start=1):
        item = item or {}
        gl_account(ctx, item.get("GLAccountCode"), f"Line {number} GLAccountCode")
        _not_a_currency_bank(ctx, item["GLAccountCode"], number, currency)
        debit = money(item.get("Debit") or 0, currency, f"Line {number} Debit", positive=False)
        credit = money(item.get("Credit") or 0, currency, f"Line {number} Credit", positive=False)
        if debit < 0 or credit < 0 or (debit == 0) == (credit == 0):
            raise AiqFailure(
                f"Line {number}: give either a positive Debit or a positive Credit.", VALIDATION
            )
        debits += debit
        credits += credit
        lines.append(
            line(item["GLAccountCode"], debit - credit, item.get("Description"),
                 DepartmentID=item.get("DepartmentID"))
        )  # fmt: skip
    if debits != credits:
        raise AiqFailure(
            f"The journal does not balance: debits {debits}, credits {credits}.", VALIDATION
        )
    transaction_id = create_txn(
        ctx,
        type=books.GENERAL_JOURNAL,
        prefix="GJ",
        internal_number=journal.get("InternalReference") or None,
        currency=currency,
        amount=debits,
        external_reference=journal.get("ExternalReference") or None,
        transaction_date=journal.get("TransactionDate") or ctx.now,
        lines=lines,
    )
    return Reply(siblings={"transactionID": transaction_id})
