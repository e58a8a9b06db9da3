"""Cross-company receipts: money that arrived in one group company for another's invoice.

A payment belongs to the company of the account it arrived through (ledger/companies.py) and
matching never allocates it to another company's invoice as its own. When its reference names
an open invoice of another group company (and none of its own company), matching and the
payment page say whose the invoice is, and:

- when the group does not allow cross-company receipts (GroupPolicy, off by default; changed
  by an admin through `group_policy_set`, audited): "INV-1001 belongs to Demo Trading Ireland;
  cross-company receipts are not allowed". Nothing is booked;
- when it does: matching ranks a cross-company proposal beside the others, with its confidence
  and explanation (payments/matching/engine.py: cross_company), or a clerk proposes one from
  the payment page; accepting the proposal is proposing the receipt, and a second person
  approves it (money moves between companies). Only where the group's policy also lets
  matching approve them (cross_company_auto_approve, off by default) does matching make and
  send one itself, and only on the exact reference for exactly the invoice's open amount
  (cross_company_receipts_auto_approve). The outbox makes each company's entries once.

What AIQ's books allow (AIQ's Sales Invoicing Integrations document: intercompany
transactions cannot be made by the API in one step; each company's half is made in that
company, on the accounts AIQ's intercompany connections name, GetInterCompanyConnectionList):

- in the receiving company A (the money is in its bank): a sales receipt into that bank on the
  customer account that stands for company B in A's books (the connection's local account),
  left on account: A now owes B, on the account where B's intercompany sales to A are held.
  External reference XCR-<id>-RCPT;
- in the invoice's company B: a sales credit journal on the paying customer to the intercompany
  GL account (INTERCOMPANY_GL_ACCOUNT_CODE: what A owes B), XCR-<id>-JNL, allocated against the
  invoice, XCR-<id>-ALLOC (waits for the journal, whose transaction id the outbox fills in).
  AIQ allocates only within one account, and a sales journal is the only way to settle a
  customer's invoice without money in B's own bank; its other side is a GL account, because a
  sales journal cannot post to B's supplier account for A (that would need a purchase journal,
  which the product does not write).

Each is one outbox command with a deterministic external reference, read back from AIQ before
any resend (ledger/outbox), so a timeout or a crash never doubles an entry.
"""

from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from core.money import format_money
from ledger.companies import entities_visible_ids
from ledger.models import Customer, GLAccount, InterCompanyConnection, Invoice, OutboxCommand
from ledger.outbox.services import NewCommand
from payments.matching.index import reference_texts
from payments.models import CROSS_COMPANY, AllocationPlan, MatchProposal, Payment
from payments.models_money_later import CrossCompanyReceipt, GroupPolicy
from payments.services.contact_allocations import invoice_open
from payments.services.later import (
    FOLLOW,
    ORIGINS,
    LaterRefused,
    hand_to_outbox,
    later_approve,
    later_reject,
    open_or_send,
    require_clerk,
)
from payments.services.plan_lines import PlanRefused, available_amount
from payments.services.plan_outbox import payment_bank, receipt_exchange_rate
from staff.maker_checker import record_change
from staff.models import Role
from staff.services import audit_log, user_has_role

ORIGIN = "cross_company_receipt"
MatchState = Payment.MatchState
DECIDED = (MatchState.AWAITING_APPROVAL, MatchState.APPROVED, MatchState.SENT)
NOT_ALLOWED = "cross-company receipts are not allowed"


# --- the group's policy -----------------------------------------------------------------------


def cross_company_receipts_allowed() -> bool:
    return GroupPolicy.objects.filter(pk=1, cross_company_receipts=True).exists()


def group_policy_set(
    *, actor, cross_company_receipts: bool, cross_company_auto_approve: bool | None = None
) -> GroupPolicy:
    """Allow or stop cross-company receipts for the whole group, and whether matching may
    approve one without a person (None: as it is); group finance (the admin role) only,
    audited in the same transaction with the fields that changed."""
    if not user_has_role(actor, Role.ADMIN):
        raise PermissionDenied("The group's policy needs the admin role (group finance).")
    wanted = {"cross_company_receipts": bool(cross_company_receipts)}
    if cross_company_auto_approve is not None:
        wanted["cross_company_auto_approve"] = bool(cross_company_auto_approve)
    with transaction.atomic():
        policy, _made = GroupPolicy.objects.select_for_update().get_or_create(pk=1)
        before = {name: getattr(policy, name) for name, value in wanted.items()}
        changed = [name for name, value in wanted.items() if before[name] != value]
        if not changed:
            return policy
        for name in changed:
            setattr(policy, name, wanted[name])
        policy.save()
        said = [
            "cross-company receipts "
            + ("allowed" if policy.cross_company_receipts else "no longer allowed")
        ]
        if "cross_company_auto_approve" in changed:
            said.append(
                "matching "
                + ("may approve" if policy.cross_company_auto_approve else "no longer approves")
                + " them on the exact reference and amount"
            )
        audit_log(
            actor=actor,
            action="group_policy.change",
            obj=policy,
            summary="; ".join(said),
            before={name: before[name] for name in changed},
            after={name: wanted[name] for name in changed},
        )
    return policy


# --- what the payment page offers -------------------------------------------------------------


@dataclass(frozen=True)
class CrossCompanyInvoice:
    """Another group company's open invoice the payment names, and why it cannot be received
    there (empty: it can be proposed)."""

    invoice: Invoice
    problem: str

    @property
    def text(self) -> str:
        owner = self.invoice.entity.name
        if self.problem:
            return f"{self.invoice.invoice_number} belongs to {owner}; {self.problem}"
        return f"{self.invoice.invoice_number} belongs to {owner}."


def _named_keys(payment: Payment) -> set[str]:
    keys = set()
    for _source, _text, whole, word_keys in reference_texts(payment):
        if whole:
            keys.add(whole)
        keys.update(key for key, _words in word_keys)
    return keys


def cross_company_invoices(payment: Payment) -> list[CrossCompanyInvoice]:
    """Open invoices of other group companies that the payment's references name, when its
    own company has none of that number (then matching handles it), each with what stops a
    cross-company receipt, if anything."""
    keys = _named_keys(payment)
    if not keys:
        return []
    named = Invoice.objects.filter(number_key__in=keys, outstanding_amount__gt=0)
    own = set(named.filter(entity_id=payment.entity_id).values_list("number_key", flat=True))
    others = (
        named.exclude(entity_id=payment.entity_id)
        .exclude(number_key__in=own)
        .select_related("entity", "customer")
        .order_by("invoice_number", "pk")[:5]
    )
    allowed = cross_company_receipts_allowed()
    found = []
    for invoice in others:
        problem = NOT_ALLOWED + "." if not allowed else _problem(payment, invoice)
        found.append(CrossCompanyInvoice(invoice, problem))
    return found


def _connection(payment: Payment, invoice: Invoice) -> InterCompanyConnection | None:
    """AIQ's valid connection from the payment's company to the invoice's whose local side is
    a customer account in the payment's company (the other company as a customer there)."""
    connections = InterCompanyConnection.objects.filter(
        entity_id=payment.entity_id, remote_company_id=invoice.entity.company_id, valid=True
    ).order_by("pk")
    for connection in connections:
        customer = Customer.objects.filter(
            entity_id=payment.entity_id, code=connection.local_account_code
        ).first()
        # the same code may be a supplier there (the other direction of a connection) and a
        # customer too: only the customer account AIQ's connection names is the one
        if customer is not None and customer.aiq_account_id in (
            None,
            connection.local_account_id,
        ):
            return connection
    return None


def _problem(payment: Payment, invoice: Invoice) -> str:
    """Why this payment cannot be received for this invoice ('' when it can)."""
    if invoice.currency != payment.currency:
        return (
            f"it is in {invoice.currency} and the payment in {payment.currency}: currencies "
            "must match."
        )
    if invoice.aiq_transaction_id is None:
        return "it is not posted in AIQ yet."
    connection = _connection(payment, invoice)
    if connection is None:
        return (
            f"AIQ lists no intercompany connection giving {invoice.entity.name} a customer "
            f"account in {payment.entity.name}'s books (run the AIQ sync after adding one)."
        )
    if connection.local_currency and connection.local_currency != payment.currency:
        return (
            f"the intercompany account {connection.local_account_code} is in "
            f"{connection.local_currency}; the payment is in {payment.currency}."
        )
    code = settings.INTERCOMPANY_GL_ACCOUNT_CODE
    if not GLAccount.objects.filter(entity_id=invoice.entity_id, code=code).exists():
        return (
            f"{invoice.entity.name} has no GL account {code} (INTERCOMPANY_GL_ACCOUNT_CODE) "
            "for what it is owed by group companies."
        )
    amount = available_amount(payment)
    if amount > invoice_open(invoice):
        return (
            f"the payment ({format_money(amount, payment.currency)}) is more than the invoice "
            f"has open ({format_money(invoice_open(invoice), invoice.currency)})."
        )
    return ""


# --- the decision -----------------------------------------------------------------------------


def _sees_both(actor, payment: Payment, invoice: Invoice) -> bool:
    visible = entities_visible_ids(actor)
    return visible is None or {payment.entity_id, invoice.entity_id} <= visible


def _lock_payment(payment: Payment) -> Payment:
    payment = Payment.objects.select_for_update().get(pk=payment.pk)
    if (
        payment.match_state in DECIDED
        or payment.match_state == MatchState.IGNORED
        or payment.plans.filter(state__in=AllocationPlan.LIVE).exists()
    ):
        raise LaterRefused(
            f"Payment {payment.external_id} is already being allocated or booked; "
            "reject or undo that first."
        )
    return payment


def cross_company_receipt_propose(*, actor, payment: Payment, invoice: Invoice):
    """A clerk proposes receiving the whole payment for another group company's invoice (or
    accepts matching's cross-company proposal: the same); it waits for a second person.
    Refused, with the reason, when the group does not allow it or the books cannot hold it."""
    require_clerk(actor, "Proposing a cross-company receipt")
    if not _sees_both(actor, payment, invoice):
        raise PermissionDenied("You do not work for both companies.")
    with transaction.atomic():
        row = _receipt_make(payment, invoice, actor=actor)
        open_or_send(row, actor=actor, snapshot=snapshot(row))
    return row


def _receipt_make(payment: Payment, invoice: Invoice, *, actor) -> CrossCompanyReceipt:
    """The cross-company receipt of the whole payment for the invoice, saved: awaiting a
    second person when a person made it (`actor`), approved (sent) when matching did (None,
    under the group's policy). The payment's open proposals give way to it (the one that
    proposed it is accepted). Refused, with the reason, when the books cannot hold it."""
    if invoice.entity_id == payment.entity_id:
        raise LaterRefused(f"{invoice.invoice_number} is {payment.entity.name}'s own invoice.")
    payment = _lock_payment(payment)
    invoice = (
        Invoice.objects.select_for_update().select_related("entity", "customer").get(pk=invoice.pk)
    )
    if not cross_company_receipts_allowed():
        raise LaterRefused(
            f"{invoice.invoice_number} belongs to {invoice.entity.name}; {NOT_ALLOWED}."
        )
    problem = _problem(payment, invoice)
    if problem:
        raise LaterRefused(f"{invoice.invoice_number} belongs to {invoice.entity.name}; {problem}")
    try:
        bank = payment_bank(payment)
    except PlanRefused as error:
        raise LaterRefused(str(error)) from None
    connection = _connection(payment, invoice)
    by_person = actor is not None
    row = CrossCompanyReceipt(
        entity=payment.entity,
        payment=payment,
        invoice=invoice,
        connection=connection,
        intercompany_customer_code=connection.local_account_code,
        bank_account=bank,
        gl_account_code=settings.INTERCOMPANY_GL_ACCOUNT_CODE,
        amount=available_amount(payment),
        currency=payment.currency,
        receipt_date=timezone.localdate(payment.received_at),
        needs_approval=by_person,
        state=(
            CrossCompanyReceipt.State.AWAITING_APPROVAL
            if by_person
            else CrossCompanyReceipt.State.SENT
        ),
    )
    record_change(row, actor=actor)
    row.full_clean()
    row.save()
    open_proposals = payment.proposals.filter(state=MatchProposal.State.OPEN)
    accepted = [
        proposal.pk
        for proposal in open_proposals.filter(rule_kind=CROSS_COMPANY)
        if [str(line.get("invoice_id")) for line in proposal.lines] == [str(invoice.pk)]
    ]
    open_proposals.filter(pk__in=accepted).update(state=MatchProposal.State.ACCEPTED)
    open_proposals.exclude(pk__in=accepted).update(state=MatchProposal.State.SUPERSEDED)
    _payment_state(payment, row.state)
    return row


def cross_company_receipts_auto_approve(*, proposal_ids: list[int]) -> tuple[list, list]:
    """Matching's rank-1 cross-company proposals that the group's policy lets it approve
    (the exact reference and amount: engine.cross_company), each made and sent in its own
    transaction, audited. Returns (receipt ids, [(payment id, why not)])."""
    made, refused = [], []
    proposals = MatchProposal.objects.filter(
        pk__in=proposal_ids, rule_kind=CROSS_COMPANY, state=MatchProposal.State.OPEN
    ).select_related("payment")
    for proposal in proposals.order_by("id"):
        invoice_id = int(proposal.lines[0]["invoice_id"])
        try:
            with transaction.atomic():
                if not GroupPolicy.objects.filter(
                    pk=1, cross_company_receipts=True, cross_company_auto_approve=True
                ).exists():
                    raise LaterRefused("the group's policy no longer lets matching approve it.")
                row = _receipt_make(
                    proposal.payment, Invoice.objects.get(pk=invoice_id), actor=None
                )
                ids = hand_to_outbox(row, None)
                audit_log(
                    actor=None,
                    action="cross_company_receipt.create",
                    obj=row,
                    summary=f"auto-approved by matching (proposal #{proposal.pk}: "
                    f"{proposal.explanation}) under the group's policy; {len(ids)} AIQ "
                    "command(s) queued",
                    after=snapshot(row),
                    entity_id=row.entity_id,
                )
            made.append(row.pk)
        except LaterRefused as error:
            refused.append((proposal.payment_id, " ".join(error.messages)))
    return made, refused


def snapshot(row: CrossCompanyReceipt) -> dict:
    return {
        "state": row.state,
        "payment": row.payment.external_id,
        "received_by": row.entity.name,
        "invoice": row.invoice.invoice_number,
        "invoice_company": row.invoice.entity.name,
        "customer": row.invoice.customer.code,
        "intercompany_account": row.intercompany_customer_code,
        "bank_account": row.bank_account.bank_account_code,
        "gl_account": row.gl_account_code,
        "amount": row.amount,
        "currency": row.currency,
    }


def cross_company_receipt_approve(*, receipt: CrossCompanyReceipt, actor) -> CrossCompanyReceipt:
    if not _sees_both(actor, receipt.payment, receipt.invoice):
        raise PermissionDenied("You do not work for both companies.")
    row = later_approve(row=receipt, actor=actor, snapshot=snapshot)
    _payment_state(row.payment, row.state)
    return row


def cross_company_receipt_reject(*, receipt: CrossCompanyReceipt, actor, reason: str):
    row = later_reject(row=receipt, actor=actor, reason=reason, snapshot=snapshot)
    _payment_state(row.payment, row.state)
    return row


def _payment_state(payment: Payment, state: str) -> None:
    match_state = {
        CrossCompanyReceipt.State.AWAITING_APPROVAL: MatchState.AWAITING_APPROVAL,
        CrossCompanyReceipt.State.SENT: MatchState.APPROVED,
        CrossCompanyReceipt.State.CONFIRMED: MatchState.SENT,
        CrossCompanyReceipt.State.FAILED: MatchState.FAILED,
        CrossCompanyReceipt.State.NEEDS_PERSON: MatchState.NEEDS_PERSON,
        CrossCompanyReceipt.State.REJECTED: MatchState.UNMATCHED,
    }[state]
    Payment.objects.filter(pk=payment.pk).update(match_state=match_state, updated_at=timezone.now())


def reference(row: CrossCompanyReceipt, key: str) -> str:
    return f"XCR-{row.pk}-{key}"


def _commands(row: CrossCompanyReceipt, actor) -> list[NewCommand]:
    """The receiving company's receipt on the intercompany account; the invoice company's
    credit journal and its allocation against the invoice (module docstring)."""
    payment, invoice = row.payment, row.invoice
    common = {"origin_type": ORIGIN, "origin_id": row.pk, "created_by": actor}
    day, amount = row.receipt_date.isoformat(), str(row.amount)
    receipt = NewCommand(
        entity=row.entity,
        kind=OutboxCommand.Kind.POST_RECEIPT,
        external_reference=reference(row, "RCPT"),
        payload={
            "customer_code": row.intercompany_customer_code,
            "bank_account_code": row.bank_account.bank_account_code,
            "amount": amount,
            "currency": row.currency,
            "payment_date": day,
            "description": f"For {invoice.entity.name} {invoice.invoice_number} "
            f"({invoice.customer.code}): {payment.receipt_text}"[:250],
            "payment_id": payment.pk,
            "exchange_rate": receipt_exchange_rate(payment),
            "bank_currency": row.bank_account.currency,
        },
        **common,
    )
    journal = NewCommand(
        entity=invoice.entity,
        kind=OutboxCommand.Kind.POST_WRITE_OFF,  # AIQ's sales credit journal
        external_reference=reference(row, "JNL"),
        payload={
            "customer_code": invoice.customer.code,
            "gl_account_code": row.gl_account_code,
            "amount": amount,
            "currency": row.currency,
            "journal_date": day,
            "description": f"Paid to {row.entity.name} for {invoice.invoice_number} "
            f"(cross-company receipt #{row.pk})"[:250],
        },
        **common,
    )
    allocate = NewCommand(
        entity=invoice.entity,
        kind=OutboxCommand.Kind.ALLOCATE,
        external_reference=reference(row, "ALLOC"),
        payload={
            "paying_transaction_id": None,  # the journal's, filled in by the outbox
            "settled_transaction_id": invoice.aiq_transaction_id,
            "invoice_id": invoice.pk,
            "credit_note_id": None,
            "amount": amount,
            "allocation_date": day,
            "currency": row.currency,
        },
        depends_on=journal,
        **common,
    )
    return [receipt, journal, allocate]


ORIGINS[ORIGIN] = (CrossCompanyReceipt, "cross_company_receipt", _commands)


def cross_company_receipt_followed(row: CrossCompanyReceipt) -> None:
    """The outbox confirmed or failed it: its payment follows (called by the origin hooks)."""
    _payment_state(row.payment, row.state)


FOLLOW[ORIGIN] = cross_company_receipt_followed
