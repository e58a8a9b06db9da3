"""Handing an approved plan to the outbox (payload contract: ledger/outbox/services.py).

One receipt for the whole payment (what is not allocated stays on account), then per line an
allocate (or allocate_discount) depending on the receipt, and for a write-off a sales credit
journal to the GL account plus an allocate depending on that journal. External references are
deterministic, so the outbox can read each write back from AIQ before ever repeating it.
"""

from decimal import Decimal, InvalidOperation

from django.utils import timezone

from ledger.departments import department_problems, lines_by_department
from ledger.models import BankAccount, Invoice, OutboxCommand
from ledger.outbox.services import NewCommand, outbox_enqueue, outbox_enqueue_many
from payments.models import AllocationPlan, Payment, StatementAccount
from payments.services.plan_lines import PlanRefused, amount_text, available_amount
from payments.services.provider_books import clearing_bank


def receiving_bank(entity, currency: str) -> BankAccount:
    """The bank account money in this currency lands in: the entity's default bank when it is
    in that currency, else the entity's only bank account in that currency, else the default
    (AIQ records a foreign-currency receipt with its exchange rate)."""
    default = entity.default_bank_account
    if default is not None and default.currency == currency:
        return default
    same_currency = list(BankAccount.objects.filter(entity=entity, currency=currency)[:2])
    if len(same_currency) == 1:
        return same_currency[0]
    if default is None:
        raise PlanRefused(f"{entity.name} has no default bank account to receive into.")
    return default


def payment_bank(payment: Payment) -> BankAccount:
    """The AIQ bank account a payment's receipt goes to: the one its statement's bank account
    is linked to (money that arrived in that account), the one its source named (an API
    client's bank_account_id), a card or Direct Debit provider's clearing account (its payouts
    move the money on to the real bank: payments/services/provider_books.py), else
    receiving_bank's choice."""
    if payment.bank_account_id:
        return payment.bank_account
    clearing = clearing_bank(payment)
    if clearing is not None:
        return clearing
    if payment.statement_account_id:
        linked = (
            StatementAccount.objects.filter(pk=payment.statement_account_id)
            .select_related("bank_account")
            .first()
        )
        if linked is not None and linked.bank_account is not None:
            return linked.bank_account
    return receiving_bank(payment.entity, payment.currency)


def receipt_exchange_rate(payment: Payment) -> str:
    """AIQ's ExchangeRate for a payment's receipt (units of the payment's currency per base
    unit), from the provider's balance transaction when it converted into the base currency:
    Stripe's exchange_rate is base per unit of the charge's currency, so AIQ's is its inverse.
    Empty: the receipt is in the base currency (rate 1), or no provider rate applies and the
    outbox asks AIQ for the company's rate for the day when it sends (never 1 by default)."""
    base = payment.entity.base_currency
    if payment.currency == base or not payment.exchange_rate:
        return ""
    txn = (payment.raw or {}).get("balance_transaction")
    settled_in = (txn.get("currency") or "").upper() if isinstance(txn, dict) else ""
    if settled_in != base:
        return ""
    try:
        provider_rate = Decimal(payment.exchange_rate)
    except InvalidOperation:
        return ""
    if not provider_rate.is_finite() or provider_rate <= 0:
        return ""
    return str((Decimal(1) / provider_rate).quantize(Decimal("0.000001")))


def plan_hand_to_outbox(
    plan: AllocationPlan, payment: Payment, actor, pairs=None, new_payment: bool = False
) -> list:
    """One receipt, then per line its allocations, each depending on what it allocates.
    `pairs`: the (line, invoice) pairs in invoice id order when the caller has them in hand
    (plan_propose_submit); the commands are then inserted together (outbox_enqueue_many) and
    returned as the NewCommands they were made from (external_reference, kind, payload).
    `new_payment`: the payment was inserted in this transaction, so no command can hold the
    references made from its id yet."""
    if pairs is not None:
        commands = plan_commands(
            plan_id=plan.pk,
            payment=payment,
            customer_code=plan.customer.code,
            bank=payment_bank(payment),
            lines=pairs,
            actor=actor,
        )
        outbox_enqueue_many(commands, new_references=new_payment)
        return commands
    lines = plan.lines.select_related("invoice").order_by("invoice_id")
    commands = plan_commands(
        plan_id=plan.pk,
        payment=payment,
        customer_code=plan.customer.code,
        bank=payment_bank(payment),
        lines=[(line, line.invoice) for line in lines],
        actor=actor,
    )
    saved: dict[int, OutboxCommand] = {}  # id(NewCommand) -> its row
    for command in commands:
        depends_on = command.depends_on
        saved[id(command)] = outbox_enqueue(
            entity=command.entity,
            kind=command.kind,
            payload=command.payload,
            external_reference=command.external_reference,
            depends_on=saved[id(depends_on)] if depends_on is not None else None,
            origin_type=command.origin_type,
            origin_id=command.origin_id,
            created_by=command.created_by,
        )
    return list(saved.values())


def require_posted(invoice: Invoice) -> None:
    if invoice.aiq_transaction_id is None:
        raise PlanRefused(f"Invoice {invoice} is not posted in AIQ yet; it cannot be settled.")


def plan_commands(
    *, plan_id: int, payment: Payment, customer_code: str, bank: BankAccount, lines, actor
) -> list[NewCommand]:
    """The outbox commands of an approved plan, built without touching the database (shared by
    plan_hand_to_outbox and the set-based auto-approval). `lines` are (line, invoice) pairs
    in invoice id order; a line is a plan line or a LineInput."""
    entity = payment.entity
    today = timezone.localdate().isoformat()
    origin = {"origin_type": "allocation_plan", "origin_id": plan_id, "created_by": actor}
    receipt = NewCommand(
        entity=entity,
        kind=OutboxCommand.Kind.POST_RECEIPT,
        external_reference=f"RCPT-{payment.pk}",
        payload={
            "customer_code": customer_code,
            "bank_account_code": bank.bank_account_code,
            "amount": amount_text(available_amount(payment), payment.currency),
            "currency": payment.currency,
            "payment_date": timezone.localdate(payment.received_at).isoformat(),
            "description": payment.receipt_text,
            "lodgment_number": payment.lodgment_number,
            "payment_id": payment.pk,
            "exchange_rate": receipt_exchange_rate(payment),
            "bank_currency": bank.currency,
        },
        **origin,
    )
    commands = [receipt]
    for line, invoice in lines:
        require_posted(invoice)
        base = {
            "paying_transaction_id": None,
            "settled_transaction_id": invoice.aiq_transaction_id,
            "invoice_id": invoice.pk,
            "credit_note_id": None,
            "allocation_date": today,
            "currency": payment.currency,
        }
        if line.amount:
            discount = line.discount_amount
            payload = {**base, "amount": amount_text(line.amount, payment.currency)}
            if discount:
                payload["discount_amount"] = amount_text(discount, payment.currency)
            commands.append(
                NewCommand(
                    entity=entity,
                    kind=OutboxCommand.Kind.ALLOCATE_WITH_DISCOUNT
                    if discount
                    else OutboxCommand.Kind.ALLOCATE,
                    external_reference=f"ALLOC-{plan_id}-{invoice.pk}",
                    payload=payload,
                    depends_on=receipt,
                    **origin,
                )
            )
        if line.write_off_amount:
            text = f"Write-off on {invoice} (payment {payment.external_id})"
            payload = {
                "customer_code": customer_code,
                "gl_account_code": line.write_off_gl_account_code,
                "amount": amount_text(line.write_off_amount, payment.currency),
                "currency": payment.currency,
                "journal_date": today,
                "description": text,
            }
            # the write-off carries the BI codes of the invoice's lines, where AIQ gave them
            by_department = lines_by_department(
                invoice, line.write_off_amount, payment.currency,
                line.write_off_gl_account_code, text,
            )  # fmt: skip
            if by_department:
                refused = department_problems(entity, {x["department_id"] for x in by_department})
                if refused:
                    raise PlanRefused(f"The write-off on {invoice}: " + " ".join(refused.values()))
                payload["lines"] = by_department
            journal = NewCommand(
                entity=entity,
                kind=OutboxCommand.Kind.POST_WRITE_OFF,
                external_reference=f"WOFF-{plan_id}-{invoice.pk}",
                payload=payload,
                **origin,
            )
            commands.append(journal)
            commands.append(
                NewCommand(
                    entity=entity,
                    kind=OutboxCommand.Kind.ALLOCATE,
                    external_reference=f"ALLOC-WOFF-{plan_id}-{invoice.pk}",
                    payload={
                        **base,
                        "amount": amount_text(line.write_off_amount, payment.currency),
                    },
                    depends_on=journal,
                    **origin,
                )
            )
    return commands
