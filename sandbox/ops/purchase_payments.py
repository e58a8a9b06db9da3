"""Supplier payments: SavePurchasePayment and SavePurchasePaymentGetBackTransactionID.

Money out of a bank account to a supplier, on the supplier's account (ledger Purchases): what
the company owes the supplier goes down (the payment's amount is negative on the account, as a
purchase invoice's is positive, and waits there to be allocated to the supplier's invoices),
creditors control debited, the bank credited. Found again by its CheckReference
(GetTransactionsByExternalReference), as a sales receipt is. AIQ has no operation for money a
supplier pays back.
"""

from sandbox import invoicing
from sandbox.books import (
    account_by_code,
    bank_by_code,
    create_txn,
    gl_by_category,
    line,
    money,
    required,
)
from sandbox.registry import VALIDATION, AiqFailure, Reply, operation

PURCHASES_PAYMENT = "PurchasesPayment"


def save_purchase_payment(ctx, payment: dict | None) -> int:
    if not payment:
        raise AiqFailure("No purchase payment was sent.", VALIDATION)
    bank_code = required(payment.get("BankAccountCode"), "BankAccountCode")
    check_reference = required(payment.get("CheckReference"), "CheckReference")
    account = account_by_code(ctx, payment.get("SupplierCode"), ledger="Purchases")
    if not account["is_active"]:
        raise AiqFailure(f"Supplier '{account['code']}' is inactive.", VALIDATION)
    bank = bank_by_code(ctx, bank_code)
    currency = account["currency"]
    if bank["currency"] != currency:
        raise AiqFailure(
            f"Bank account '{bank_code}' is in {bank['currency']}; supplier "
            f"'{account['code']}' is paid in {currency}.",
            VALIDATION,
        )
    amount = money(payment.get("PaymentAmount"), currency, "PaymentAmount")
    if len(payment.get("Description") or "") > 500:
        raise AiqFailure("Description cannot be longer than 500 characters.", VALIDATION)
    description = payment.get("Description") or f"Payment {check_reference}"
    return create_txn(
        ctx,
        type=PURCHASES_PAYMENT,
        prefix="PP",
        currency=currency,
        amount=-amount,
        account=account,
        external_reference=check_reference,
        transaction_date=payment.get("PaymentDate") or ctx.now,
        exchange_rate=payment.get("ExchangeRate") or invoicing.rate_for(ctx, currency),
        description=description,
        bank_id=bank["id"],
        department_id=payment.get("DepartmentID"),
        lines=[
            line(bank["gl_code"], -amount, description, IsBankLine=True),
            line(gl_by_category(ctx, "creditors"), amount, description, IsControlLine=True),
        ],
        extra={"BankAccountCode": bank_code},
    )


@operation("SavePurchasePayment", write=True)
def save_purchase_payment_op(ctx, args):
    save_purchase_payment(ctx, args.get("purchasePayment"))
    return Reply()


@operation("SavePurchasePaymentGetBackTransactionID", write=True)
def save_purchase_payment_get_back_transaction_id(ctx, args):
    return Reply(
        siblings={"transactionID": save_purchase_payment(ctx, args.get("purchasePayment"))}
    )
