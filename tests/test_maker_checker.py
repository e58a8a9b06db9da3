"""Maker-checker cannot be walked around by editing (staff/maker_checker.py).

The table: for allocation plans and refunds, every step (create / edit / submit / approve) by
each of a clerk, an approver, an admin and a superuser is tried, through the real services, from
every state a sequence of such steps can reach. After each step the row is compared with an
independent model of the rule: whoever last changed what will be posted is its maker, and an
approval succeeds only for an approver who is not the maker. The tree is walked depth first,
one savepoint per step, so each branch starts from exactly the rows its sequence made.

Two pruning rules keep it fast, and each is checked rather than assumed: a refused step must
leave the row exactly as it was (so what follows a refusal is what follows without it), and a
state of the model (stage, maker, approver) already explored is not explored again from another
sequence (the model says it behaves the same; the explicit scenarios below walk longer chains
of editors, where the last one, not the first, is the maker).
"""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction

from ledger.models import Customer, Invoice, InvoiceLine, OutboxCommand
from payments.models import AllocationPlan, Refund
from payments.services import refunds as refund_services
from payments.services.plans import plan_approve, plan_edit, plan_propose, plan_submit
from staff.maker_checker import SelfApproval
from staff.models import AuditEntry
from tests.test_plans_factories import D, make_customer, make_invoice, make_payment, setup_books

pytestmark = pytest.mark.django_db

# Steps after the creation; every approval is also tried after the last step.
DEPTH = 4
APPROVERS = {"approver", "admin", "superuser"}  # who holds the approver role


@pytest.fixture
def people(db):
    """One person per role: the clerk, the approver, an admin (group) and a superuser
    (no group at all: superusers hold every role)."""
    made = {}
    for name, group in [("clerk", "clerk"), ("approver", "approver"), ("admin", "admin")]:
        user = User.objects.create_user(username=f"mc-{name}")
        user.groups.add(Group.objects.get(name=group))
        made[name] = user
    made["superuser"] = User.objects.create_superuser(username="mc-root", password=None)
    return made


@dataclass(frozen=True)
class Model:
    """What the rule says the row must be."""

    stage: str  # draft | awaiting | approved
    maker: str
    approver: str | None = None


def expect(kind, model: Model, step: str, who: str) -> Model | None:
    """The next model state, or None when the step must be refused."""
    if step == "edit":  # any clerk-or-above may change it; they become its maker
        return Model(kind.EDITED, who) if kind.editable(model) else None
    if step == "submit":
        return Model("awaiting", model.maker) if model.stage == "draft" else None
    if model.stage == "awaiting" and who in APPROVERS and who != model.maker:
        return Model("approved", model.maker, who)
    return None


class Table:
    """Runs every sequence from a created row, depth first, one savepoint per step."""

    def __init__(self, people, kind):
        self.people, self.kind = people, kind
        self.sequences = self.refusals = 0
        self.approved: set[tuple] = set()
        self.explored: set[Model] = set()

    def run(self, obj, model: Model, depth: int, path: tuple):
        for step in ("edit", "submit", "approve"):
            if step != "approve" and depth == 0:
                continue
            for who in self.people:
                expected = expect(self.kind, model, step, who)
                point = transaction.savepoint()
                try:
                    obj2 = self.kind.step(obj, step, self.people[who])
                except (SelfApproval, PermissionDenied, ValidationError) as error:
                    self.refusals += 1
                    assert expected is None, f"{path + ((step, who),)} refused: {error}"
                    assert self.kind.snapshot(obj) == self.kind.snapshot_of_db(obj)
                    if isinstance(error, SelfApproval):
                        assert who == model.maker
                else:
                    here = path + ((step, who),)
                    assert expected is not None, f"{here} should have been refused"
                    self.check(obj2, expected, here)
                    self.sequences += 1
                    if step == "approve":
                        self.approved.add((expected.maker, expected.approver))
                    if depth > 0 and expected not in self.explored:
                        self.explored.add(expected)
                        self.run(obj2, expected, depth - 1, here)
                finally:
                    transaction.savepoint_rollback(point)

    def check(self, obj, model: Model, path):
        obj = type(obj).objects.get(pk=obj.pk)
        by = {u.pk: name for name, u in self.people.items()}
        assert self.kind.stage(obj) == model.stage, path
        assert by.get(obj.maker_id) == model.maker, path
        assert by.get(obj.approver_id) == model.approver, path
        assert (obj.approved_at is not None) == (model.approver is not None), path


class Plans:
    """A 200.00 payment for a 200.00 invoice; edits swap between 190.00 + 10.00 discount and
    150.00 + 50.00 discount (the discount means a second person must approve)."""

    STAGES = {"draft": "draft", "awaiting_approval": "awaiting", "sent": "approved"}
    EDITED = "draft"  # an edited plan is submitted again

    def __init__(self, entity):
        setup_books(entity)
        customer = make_customer(entity, code="MCPLAN")
        self.invoice = make_invoice(customer, "200.00")
        self.payment = make_payment(entity, "200.00", customer=customer)

    def lines(self, version):
        cash = D("190.00") if version % 2 else D("150.00")
        return [{"invoice_id": self.invoice.pk, "amount": cash, "discount_amount": 200 - cash}]

    def create(self, who):
        return plan_propose(payment=self.payment, lines=self.lines(1), actor=who)

    def editable(self, model):
        return True  # a draft, an awaiting plan, and an approved one whose lines are unsent

    def step(self, plan, step, who):
        if step == "edit":
            return plan_edit(plan=plan, lines=self.lines(plan.version + 1), actor=who)
        if step == "submit":
            return plan_submit(plan=plan, actor=who)
        return plan_approve(plan=plan, actor=who)

    def stage(self, plan):
        return self.STAGES[plan.state]

    def snapshot(self, plan):
        return (plan.state, plan.maker_id, plan.approver_id, plan.version)

    def snapshot_of_db(self, plan):
        return self.snapshot(AllocationPlan.objects.get(pk=plan.pk))


class Refunds:
    """A credit note cancelling part of an unpaid 120.00 invoice; edits swap 100.00 and 60.00.
    A refund is submitted when it is asked for: `submit` is always refused."""

    STAGES = {"requested": "awaiting", "sent": "approved", "completed": "approved"}
    EDITED = "awaiting"

    def __init__(self, entity):
        customer = Customer.objects.create(entity=entity, code="MCREF", name="Mc", currency="GBP")
        self.invoice = Invoice.objects.create(
            entity=entity,
            customer=customer,
            invoice_number="INV-MC",
            aiq_invoice_id=91,
            aiq_transaction_id=9100,
            currency="GBP",
            invoice_date=date(2026, 11, 1),
            net_amount=D("100.00"),
            tax_amount=D("20.00"),
            gross_amount=D("120.00"),
            outstanding_amount=D("120.00"),
        )
        InvoiceLine.objects.create(
            invoice=self.invoice,
            line_number=1,
            description="Pro plan",
            gl_account_code="4000",
            tax_code="T1",
            tax_rate=D("20"),
            net_amount=D("100.00"),
            tax_amount=D("20.00"),
            gross_amount=D("120.00"),
        )

    def create(self, who):
        return refund_services.refund_request(
            actor=who, kind="cancel_invoice", reason="wrong plan", invoice=self.invoice,
            amount="100.00",
        )  # fmt: skip

    def editable(self, model):
        return model.stage == "awaiting"

    def step(self, refund, step, who):
        if step == "edit":
            amount = "60.00" if refund.amount == D("100.00") else "100.00"
            return refund_services.refund_edit(refund=refund, actor=who, amount=amount)
        if step == "submit":
            raise refund_services.RefundRefused("A refund is submitted when it is asked for.")
        return refund_services.refund_approve(refund=refund, actor=who)

    def stage(self, refund):
        return self.STAGES[refund.state]

    def snapshot(self, refund):
        return (refund.state, refund.maker_id, refund.approver_id, refund.amount)

    def snapshot_of_db(self, refund):
        return self.snapshot(Refund.objects.get(pk=refund.pk))


@pytest.mark.parametrize("kind", [Plans, Refunds], ids=["plans", "refunds"])
def test_nobody_approves_what_they_last_changed_in_any_sequence(kind, entity, people, settings):
    settings.APPROVAL_THRESHOLD = Decimal("1.00")
    books = kind(entity)
    table = Table(people, books)
    for who in people:
        point = transaction.savepoint()
        obj = books.create(people[who])
        start = Model(kind.EDITED, who)
        table.check(obj, start, (("create", who),))
        table.explored.add(start)
        table.run(obj, start, DEPTH, (("create", who),))
        transaction.savepoint_rollback(point)
    # every state the rule allows was reached: each maker in each stage, and for an approved
    # row each maker with each approver but themselves
    makers = set(people)
    stages = ["draft", "awaiting"] if kind is Plans else ["awaiting"]
    reachable = {Model(stage, m) for stage in stages for m in makers} | {
        Model("approved", m, a) for m in makers for a in APPROVERS - {m}
    }
    assert table.explored | {Model("approved", m, a) for m, a in table.approved} == reachable


def test_the_issue_scenario_an_approver_who_edits_cannot_approve(entity, people, settings):
    """A clerk submits 190.00 + 10.00 discount; the approver changes it to 150.00 + 50.00: the
    approver is now its maker and cannot approve it; the clerk cannot either (no role); another
    approver can, and the audit says who chose the amounts."""
    settings.APPROVAL_THRESHOLD = Decimal("1.00")
    books = Plans(entity)
    clerk, approver, admin = people["clerk"], people["approver"], people["admin"]
    plan = plan_submit(plan=books.create(clerk), actor=clerk)
    plan = plan_edit(plan=plan, lines=books.lines(2), actor=approver)
    plan = plan_submit(plan=plan, actor=approver)
    with pytest.raises(SelfApproval, match="different person"):
        plan_approve(plan=plan, actor=approver)
    with pytest.raises(PermissionDenied):
        plan_approve(plan=plan, actor=clerk)
    plan = plan_approve(plan=plan, actor=admin)
    assert (plan.maker, plan.approver) == (approver, admin)
    line = plan.lines.get()
    assert (line.amount, line.discount_amount) == (D("150.00"), D("50.00"))
    edit = AuditEntry.objects.get(action="plan.edit", object_id=str(plan.pk))
    assert edit.actor == approver and D(edit.after["lines"][0]["amount"]) == D("150.00")
    assert OutboxCommand.objects.filter(origin_id=plan.pk).exists()


@pytest.mark.parametrize("kind", [Plans, Refunds], ids=["plans", "refunds"])
def test_the_last_of_several_editors_is_the_maker(kind, entity, people, settings):
    """Clerk makes it, the approver changes it, the admin changes it again: the admin may not
    approve, the approver (no longer the maker) may."""
    settings.APPROVAL_THRESHOLD = Decimal("1.00")
    books = kind(entity)
    obj = books.create(people["clerk"])
    obj = books.step(obj, "edit", people["approver"])
    obj = books.step(obj, "edit", people["admin"])
    if kind is Plans:
        obj = books.step(obj, "submit", people["admin"])
    with pytest.raises(SelfApproval):
        books.step(obj, "approve", people["admin"])
    obj = books.step(obj, "approve", people["approver"])
    assert (obj.maker, obj.approver) == (people["admin"], people["approver"])


def test_the_database_refuses_an_approver_who_is_the_maker(entity, people):
    """Whatever code path writes the row (a raw update here), the constraint holds."""
    books = Refunds(entity)
    refund = books.create(people["approver"])
    with pytest.raises(IntegrityError), transaction.atomic():
        Refund.objects.filter(pk=refund.pk).update(approver=people["approver"])
    with pytest.raises(IntegrityError), transaction.atomic():
        Refund.objects.filter(pk=refund.pk).update(maker=people["admin"], approver=people["admin"])


def test_an_approver_approves_only_the_version_their_screen_showed(
    client, entity, people, settings
):
    """The clerk changes the plan and submits it again while the approver's page is open: the
    approver's click approves nothing; reloading shows the new amounts, which they can approve."""
    settings.APPROVAL_THRESHOLD = Decimal("1.00")
    books = Plans(entity)
    clerk, approver = people["clerk"], people["approver"]
    plan = plan_submit(plan=books.create(clerk), actor=clerk)
    client.force_login(approver)
    shown = client.get("/approvals/").content.decode()
    assert f'name="version" value="{plan.version}"' in shown
    plan = plan_submit(plan=plan_edit(plan=plan, lines=books.lines(2), actor=clerk), actor=clerk)
    response = client.post(f"/approvals/{plan.pk}/approve", {"version": plan.version - 1})
    assert "changed since you opened it" in client.get(response["Location"]).content.decode()
    assert AllocationPlan.objects.get(pk=plan.pk).state == "awaiting_approval"
    client.post(f"/approvals/{plan.pk}/approve", {"version": plan.version})
    assert AllocationPlan.objects.get(pk=plan.pk).state == "sent"
