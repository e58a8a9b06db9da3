"""What a refund will do, step by step: the plan the approver reads and the outbox commands
approval queues are the same list, built here from the Refund row alone.

Ordering (each step depends on the one before it, so nothing runs before approval and no
allocation runs before both of its sides are in AIQ):

    cancel an unpaid invoice   credit note -> allocate(credit note, invoice)
    refund a paid invoice      [Stripe refund] -> credit note -> debit journal
                               -> allocate(credit note, debit journal)
    refund money on account    [Stripe refund] -> debit journal -> allocate(receipt, journal)
    refund made outside        as the two above, without the Stripe step (the money has left)

The money leaves first: AIQ records a refund only once Stripe has accepted it, and a refused
Stripe refund stops the AIQ steps (they wait for a person) instead of leaving books that say
money went back when it did not. Payments that did not come through Stripe are paid back by a
person (bank transfer); the plan says so and books the same AIQ entries.

An allocation can name only one dependency, but the refund-invoice allocation needs two ids:
the debit journal's comes from its dependency (the outbox fills an empty id from it); the
credit note's is written into the waiting payload when the credit note is confirmed
("fill", see ledger/outbox/mirror_refunds.py).
"""

from dataclasses import dataclass, field

from django.utils import timezone

from core.money import format_money
from core.stripe_money import stripe_to_minor
from ledger.models import OutboxCommand
from payments.models import Refund, Source
from payments.services.credit_notes import credit_note_payload

Kind = OutboxCommand.Kind
ORIGIN = "refund"


class RefundStepError(ValueError):
    """The refund cannot be turned into AIQ entries as it stands (a person must fix the data)."""


@dataclass
class Step:
    key: str
    kind: str
    reference: str
    payload: dict
    text: str
    depends: str | None = None
    notes: list[str] = field(default_factory=list)


def reference(refund: Refund, key: str) -> str:
    return f"REF-{refund.pk}-{key.upper()}"


def _bank(refund: Refund):
    if refund.bank_account_id:
        return refund.bank_account
    receipt = refund.receipt or (refund.payment.receipt if refund.payment_id else None)
    bank = receipt.bank_account if receipt else refund.customer.entity.default_bank_account
    if bank is None:
        raise RefundStepError(
            f"{refund.customer.entity.name} has no default bank account to refund from."
        )
    return bank


def _stripe_step(refund: Refund, money: str) -> Step:
    payment = refund.payment
    target = "payment_intent" if payment.external_id.startswith("pi_") else "charge"
    return Step(
        key="stripe",
        kind=Kind.STRIPE_REFUND,
        reference=reference(refund, "stripe"),
        payload={
            "refund_id": refund.pk,
            target: payment.external_id,
            "amount_minor": stripe_to_minor(refund.amount, refund.currency),
            "currency": refund.currency,
        },
        text=f"Stripe refund of {money} against {payment.external_id} "
        f"(idempotency key refund:{refund.pk})",
    )


def refund_steps(refund: Refund) -> list[Step]:
    today = timezone.localdate().isoformat()
    money = format_money(refund.amount, refund.currency)
    customer = refund.customer
    steps: list[Step] = []
    if (
        refund.kind in (Refund.Kind.REFUND_INVOICE, Refund.Kind.REFUND_ON_ACCOUNT)
        and refund.payment_id
        and refund.payment.source == Source.STRIPE
    ):
        steps.append(_stripe_step(refund, money))
    note = refund.credit_note
    if refund.kind == Refund.Kind.REFUND_CREDIT_NOTE:
        return _credit_note_refund_steps(refund, note, money)
    if note is not None:
        payload = credit_note_payload(note)
        steps.append(
            Step(
                key="cn",
                kind=Kind.CREATE_CREDIT_NOTE,
                reference=note.external_reference,
                payload=payload,
                text=f"AIQ credit note {note.external_reference} for {customer.code}: "
                f"{len(payload['lines'])} line(s), "
                f"{format_money(note.gross_amount, note.currency)} "
                f"(net {format_money(note.net_amount, note.currency, with_code=False)}, "
                f"tax {format_money(note.tax_amount, note.currency, with_code=False)})"
                + (f", crediting {refund.invoice}" if refund.invoice_id else ""),
                depends=steps[-1].key if steps else None,
            )
        )
    base = {"allocation_date": today, "currency": refund.currency, "amount": str(refund.amount)}
    if refund.kind == Refund.Kind.CANCEL_INVOICE:
        invoice = refund.invoice
        if invoice.aiq_transaction_id is None:
            raise RefundStepError(f"Invoice {invoice} is not posted in AIQ yet.")
        if note is None:  # a request always drafts one; a row made otherwise is shown, not a 500
            raise RefundStepError("This cancellation has no draft credit note; ask again.")
        steps.append(
            Step(
                key="alloc",
                kind=Kind.ALLOCATE,
                reference=reference(refund, "alloc"),
                payload={
                    **base,
                    "amount": str(note.gross_amount),
                    "paying_transaction_id": None,  # the credit note's, from its command
                    "settled_transaction_id": invoice.aiq_transaction_id,
                    "invoice_id": invoice.pk,
                    "credit_note_id": note.pk,
                },
                text=f"AIQ allocation of the credit note against {invoice} "
                f"(transaction {invoice.aiq_transaction_id})",
                depends="cn",
            )
        )
        return steps
    if note is None and (refund.receipt is None or refund.receipt.aiq_transaction_id is None):
        raise RefundStepError(
            "Nothing to refund against in AIQ: neither a credit note nor a posted receipt."
        )
    steps.append(
        _debit_journal_step(
            refund,
            money,
            f"Refund to {customer.code}: {refund.reason}",
            depends=steps[-1].key if steps else None,
        )
    )
    if note is not None:
        alloc = {
            "paying_transaction_id": None,
            "fill": {"paying_transaction_id": note.external_reference},
            "credit_note_id": note.pk,
        }
        against = f"credit note {note.external_reference}"
    else:
        alloc = {"paying_transaction_id": refund.receipt.aiq_transaction_id, "credit_note_id": None}
        against = f"receipt {refund.receipt.check_reference}"
    steps.append(
        Step(
            key="alloc",
            kind=Kind.ALLOCATE,
            reference=reference(refund, "alloc"),
            payload={**base, **alloc, "settled_transaction_id": None, "invoice_id": None},
            text=f"AIQ allocation of the debit journal against {against}",
            depends="dj",
        )
    )
    if refund.payment_id and refund.payment.source != Source.STRIPE and refund.kind != "external":
        steps[-1].notes.append(
            f"Pay {money} back to the customer by bank transfer: "
            f"{refund.payment.get_source_display()} payments cannot be refunded from here."
        )
    return steps


def _debit_journal_step(refund: Refund, money: str, description: str, depends=None) -> Step:
    """The money paid back, on the customer's account: a sales debit journal from the bank."""
    customer, bank = refund.customer, _bank(refund)
    return Step(
        key="dj",
        kind=Kind.POST_SALES_DEBIT_JOURNAL,
        reference=reference(refund, "dj"),
        payload={
            "customer_code": customer.code,
            "gl_account_code": bank.bank_code,
            "amount": str(refund.amount),
            "currency": refund.currency,
            "journal_date": timezone.localdate().isoformat(),
            "description": description[:250],
        },
        text=f"AIQ sales debit journal of {money} on {customer.code}, paid from bank "
        f"{bank.bank_account_code} (GL {bank.bank_code})",
        depends=depends,
    )


def _credit_note_refund_steps(refund: Refund, note, money: str) -> list[Step]:
    """A posted credit note's open amount paid back (Sage CUSTOMER_REFUND against a sales
    credit note): a sales debit journal from the bank, allocated against the credit note."""
    if note is None or note.aiq_transaction_id is None:
        raise RefundStepError("The credit note is not posted in AIQ.")
    customer, bank = refund.customer, _bank(refund)
    today = timezone.localdate().isoformat()
    return [
        _debit_journal_step(
            refund, money, f"Refund of credit note {note} to {customer.code}: {refund.reason}"
        ),
        Step(
            key="alloc",
            kind=Kind.ALLOCATE,
            reference=reference(refund, "alloc"),
            payload={
                "allocation_date": today,
                "currency": refund.currency,
                "amount": str(refund.amount),
                "paying_transaction_id": note.aiq_transaction_id,
                "settled_transaction_id": None,  # the debit journal's, from its command
                "credit_note_id": note.pk,
                "invoice_id": None,
            },
            text=f"AIQ allocation of the debit journal against credit note {note}",
            depends="dj",
            notes=[f"Pay {money} back to {customer.name} from {bank.name}."],
        ),
    ]


def refund_compensation_step(refund: Refund, journal: OutboxCommand) -> Step:
    """A Stripe refund that failed after it was booked: a sales credit journal reverses the
    debit journal (money did not leave after all), leaving the amount on the customer's
    account. Never a delete; it runs after the journal it reverses."""
    payload = dict(journal.payload)
    payload["journal_date"] = timezone.localdate().isoformat()
    payload["description"] = f"Reversal: Stripe refund failed ({refund.stripe_refund_id})"[:250]
    return Step(
        key="reverse",
        kind=Kind.POST_WRITE_OFF,  # executor: PostSalesCreditJournalGetBackTransactionID
        reference=reference(refund, "reverse"),
        payload=payload,
        text=f"AIQ sales credit journal reversing {journal.external_reference}",
        depends="dj",
    )
