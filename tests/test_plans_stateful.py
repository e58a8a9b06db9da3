"""Stateful property test: any sequence of propose / edit / submit / approve / reject /
AIQ-confirms / unallocate keeps the books whole.

Checked after every step: a live plan's allocated cash + on account = its payment; no invoice's
open amount (outstanding minus what unconfirmed plans hold) goes negative; nobody approved
their own plan. Each service call is also predicted: the test computes independently whether
the change is allowed and requires the service to agree (accept exactly when allowed).
AIQ's confirmations go through the outbox's real mirror code (ledger/outbox/mirror.py).
"""

from decimal import Decimal

import pytest
from django.db import transaction
from django.test import override_settings
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from ledger.models import Allocation, Invoice, OutboxCommand
from ledger.outbox.executors import resolve_payload
from ledger.outbox.mirror import mirror_apply
from payments.models import AllocationPlan, AllocationPlanLine, Payment
from payments.services.plans import (
    PlanRefused,
    plan_approve,
    plan_edit,
    plan_propose,
    plan_reject,
    plan_submit,
)
from payments.services.unallocations import allocation_unallocate
from staff.maker_checker import SelfApproval
from tests.test_plans_factories import D, make_customer, make_invoice, make_payment, setup_books

State = AllocationPlan.State
RESERVING = (State.DRAFT, State.AWAITING_APPROVAL, State.APPROVED, State.SENT)
LIVE = (*RESERVING, State.CONFIRMED)
INVOICE_AMOUNTS = ("100.00", "50.00", "80.00")
PAYMENT_AMOUNTS = ("120.00", "60.00", "30.00")

# mostly amounts that fit (so plans get far), sometimes any amount (so limits get hit)
cents = st.one_of(
    st.sampled_from(["10.00", "25.00", "30.00", "50.00"]).map(Decimal),
    st.integers(min_value=1, max_value=13000).map(lambda c: Decimal(c).scaleb(-2)),
)
lines_strategy = st.lists(
    st.tuples(st.integers(0, len(INVOICE_AMOUNTS) - 1), cents), min_size=0, max_size=2
)


class Books(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self._atomic = transaction.atomic()
        self._atomic.__enter__()  # every example is rolled back at teardown
        from django.contrib.auth.models import User

        self.alice = User.objects.get(username="alice")
        self.bob = User.objects.get(username="bob")
        self.carol = User.objects.get(username="carol")
        self.entity = ENTITY[0]
        self.customer = make_customer(self.entity, code=f"C{id(self) % 100000}")
        self.invoices = [make_invoice(self.customer, a) for a in INVOICE_AMOUNTS]
        self.payments = [
            make_payment(self.entity, a, customer=self.customer) for a in PAYMENT_AMOUNTS
        ]
        self.next_transaction = 800000

    def teardown(self):
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)

    # --- an independent view of what is allowed --------------------------------------------
    def held(self, invoice_id, exclude_plan_id=None):
        rows = AllocationPlanLine.objects.filter(
            invoice_id=invoice_id, plan__state__in=RESERVING, unallocated_at__isnull=True
        ).exclude(plan_id=exclude_plan_id)
        return sum((r.amount + r.discount_amount + r.write_off_amount for r in rows), D(0))

    def allowed(self, payment, lines, plan=None):
        ids = [self.invoices[i].pk for i, _a in lines]
        if len(set(ids)) != len(ids):
            return False
        if sum((a for _i, a in lines), D(0)) > payment.amount:
            return False
        for i, amount in lines:
            invoice = Invoice.objects.get(pk=self.invoices[i].pk)
            if invoice.status not in ("posted", "part_paid"):
                return False
            if amount > invoice.outstanding_amount - self.held(invoice.pk, plan and plan.pk):
                return False
        return True

    def live_plan(self, payment):
        return AllocationPlan.objects.filter(payment=payment, state__in=LIVE).first()

    @staticmethod
    def payload(lines, invoices):
        return [{"invoice_id": invoices[i].pk, "amount": str(a)} for i, a in lines]

    # --- rules ---------------------------------------------------------------------------
    @rule(p=st.integers(0, len(PAYMENT_AMOUNTS) - 1), lines=lines_strategy, by_bob=st.booleans())
    def propose(self, p, lines, by_bob):
        payment = Payment.objects.get(pk=self.payments[p].pk)
        expected = self.live_plan(payment) is None and self.allowed(payment, lines)
        maker = self.bob if by_bob else self.alice  # a clerk, or an approver making a plan
        try:
            plan_propose(payment=payment, lines=self.payload(lines, self.invoices), actor=maker)
            assert expected, "the service accepted a plan that breaks a limit"
        except PlanRefused:
            assert not expected, "the service refused a plan within every limit"

    @rule(p=st.integers(0, len(PAYMENT_AMOUNTS) - 1), lines=lines_strategy)
    def edit(self, p, lines):
        payment = Payment.objects.get(pk=self.payments[p].pk)
        plan = self.live_plan(payment)
        if plan is None:
            return
        editable = plan.state in (State.DRAFT, State.AWAITING_APPROVAL) or (
            plan.state == State.SENT
            and not OutboxCommand.objects.filter(origin_id=plan.pk, origin_type="allocation_plan")
            .exclude(kind="post_receipt")
            .exclude(state="pending", attempts=0)
            .exists()
        )
        # an approved plan is voided first, so its own lines do not count against the edit
        expected = editable and self.allowed(payment, lines, plan)
        try:
            plan_edit(plan=plan, lines=self.payload(lines, self.invoices), actor=self.alice)
            assert expected, "the service accepted an edit that breaks a limit"
        except PlanRefused:
            assert not expected, "the service refused an edit within every limit"

    @rule(p=st.integers(0, len(PAYMENT_AMOUNTS) - 1), confirm=st.booleans())
    def submit_and_approve(self, p, confirm):
        plan = self.live_plan(self.payments[p])
        if plan is None or plan.state != State.DRAFT:
            return
        maker = plan.maker
        plan = plan_submit(plan=plan, actor=maker)
        if plan.state == State.AWAITING_APPROVAL:
            if maker == self.bob:
                with pytest.raises(SelfApproval):  # an approver cannot approve their own plan
                    plan_approve(plan=plan, actor=self.bob)
            plan_approve(plan=plan, actor=self.carol if maker == self.bob else self.bob)
        if confirm:
            self.aiq_confirms(p)

    @rule(p=st.integers(0, len(PAYMENT_AMOUNTS) - 1))
    def reject(self, p):
        plan = self.live_plan(self.payments[p])
        if plan is None:
            return
        try:
            plan_reject(plan=plan, actor=self.bob, reason="not right")
            assert plan.state in (State.DRAFT, State.AWAITING_APPROVAL)
        except PlanRefused:
            assert plan.state not in (State.DRAFT, State.AWAITING_APPROVAL)

    @rule(p=st.integers(0, len(PAYMENT_AMOUNTS) - 1))
    def aiq_confirms(self, p):
        """The outbox writes the plan to AIQ and records what AIQ confirmed."""
        plan = self.live_plan(self.payments[p])
        if plan is None or plan.state != State.SENT:
            return
        commands = OutboxCommand.objects.filter(
            depends_on__isnull=True, external_reference=f"RCPT-{plan.payment_id}"
        )
        for command in [*commands, *OutboxCommand.objects.filter(origin_id=plan.pk)]:
            command.refresh_from_db()
            if command.state != "pending":
                continue
            result = {}
            if command.kind in ("post_receipt", "post_write_off"):
                self.next_transaction += 1
                result = {"transaction_id": self.next_transaction}
            payload = resolve_payload(command)
            command.state, command.result = "confirmed", result
            command.save(update_fields=["state", "result"])
            mirror_apply(command, payload, result)

    @rule(data=st.data())
    def unallocate(self, data):
        active = list(Allocation.objects.filter(state="active").order_by("pk"))
        if not active:
            return
        allocation = data.draw(st.sampled_from(active))
        command = allocation_unallocate(
            allocation=allocation, actor=self.alice, reason="undo"
        ).command  # every amount here is under the threshold: asking is approving
        command.state = "confirmed"
        command.save(update_fields=["state"])
        mirror_apply(command, command.payload, {"unallocated": True})

    # --- invariants ----------------------------------------------------------------------
    @invariant()
    def plans_add_up_to_their_payment(self):
        for plan in AllocationPlan.objects.filter(state__in=LIVE):
            active = plan.lines.filter(unallocated_at__isnull=True)
            allocated = sum((line.amount for line in active), D(0))
            assert allocated + plan.on_account_amount == plan.payment.amount, plan.pk
            assert plan.on_account_amount >= 0

    @invariant()
    def no_open_amount_goes_negative(self):
        for invoice in Invoice.objects.filter(pk__in=[i.pk for i in self.invoices]):
            assert 0 <= invoice.outstanding_amount <= invoice.gross_amount
            assert invoice.outstanding_amount - self.held(invoice.pk) >= 0, invoice.pk

    @invariant()
    def nobody_approved_their_own_plan(self):
        for plan in AllocationPlan.objects.filter(approver__isnull=False):
            assert plan.approver_id != plan.maker_id


ENTITY = []


@pytest.mark.django_db
def test_allocation_books_stay_whole_under_any_sequence(entity, alice, bob, carol):
    setup_books(entity)
    ENTITY[:] = [entity]
    with override_settings(APPROVAL_THRESHOLD=D("50.00")):
        run_state_machine_as_test(
            Books,
            settings=settings(
                max_examples=40,
                stateful_step_count=20,
                deadline=None,
                database=None,  # no example files in the working tree
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
