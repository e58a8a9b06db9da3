"""BI codes (AIQ's departments): renamed, retired and activated from the product, and checked
on every new line the product writes.

A change is an approver's decision: audited and queued in one transaction as an
update_department command (ledger/outbox/executors_departments.py), which writes it to AIQ
exactly once; the mirror row takes the new name or state when AIQ confirms it. One change per
BI code at a time, so two approvers cannot race each other's values into AIQ.

A retired BI code stays on the lines that carry it (AIQ keeps history) but no new line may
carry it: `department_problems` names every line that would, for the services that write lines
(sales invoices, credit notes, journals) to refuse them before anything reaches AIQ.
"""

from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from core.money import split
from ledger.aiq.client import AiqClient
from ledger.aiq.errors import AiqError, AiqPermanentError
from ledger.models import AnalysisDimension, Department, Entity, Invoice, OutboxCommand
from ledger.outbox.executors_departments import KIND
from ledger.outbox.services import outbox_enqueue
from ledger.sync.pull import sync_department, sync_departments_by_analysis_code
from staff.models import Role
from staff.services import audit_log, user_has_role

OPEN = (OutboxCommand.State.PENDING, OutboxCommand.State.IN_FLIGHT, OutboxCommand.State.UNCERTAIN)


def retired_message(department: Department) -> str:
    return (
        f"BI code {department.department_id} ({department.name}) is retired: new lines cannot "
        "use it. Choose another BI code, or ask an approver to activate it on the BI codes screen."
    )


def department_problems(entity: Entity, codes) -> dict[str, str]:
    """For each BI code given that no new line may carry, why not ({code: message}). An empty
    code is fine (AIQ's defaults apply); a code the mirror does not know is refused only when
    the mirror knows the company's BI codes at all (a pull has run)."""
    wanted = {c for c in codes if c}
    if not wanted:
        return {}
    known = {d.department_id: d for d in Department.objects.filter(entity=entity)}
    # a retirement on its way to AIQ already counts: AIQ will refuse the line by the time it
    # arrives (commands are sent in order of approval, not of lines)
    changing = dict(
        OutboxCommand.objects.filter(
            entity=entity, kind=KIND, state__in=OPEN, payload__department_id__in=sorted(wanted)
        )
        .order_by("pk")
        .values_list("payload__department_id", "payload__active")
    )
    problems = {}
    for code in sorted(wanted):
        department = known.get(code)
        if department is None and known:
            department = _ask_aiq(entity, code)  # made in AIQ since the last pull?
            if department is None:
                problems[code] = f"BI code {code} does not exist in {entity.name}'s AIQ."
                continue
        if department is not None and not changing.get(code, department.active):
            problems[code] = retired_message(department)
    return problems


def _ask_aiq(entity: Entity, code: str) -> Department | None:
    """A BI code the mirror does not know, read from AIQ (GetDepartmentById) and mirrored; None
    when AIQ has no such code. When AIQ cannot be asked, the line is let through: AIQ itself
    refuses an unknown code when the line reaches it."""
    try:
        return sync_department(AiqClient.for_entity(entity), entity, code)
    except AiqPermanentError:
        return None
    except AiqError:
        return Department(entity=entity, department_id=code, name=code, active=True)


@dataclass(frozen=True)
class AnalysisCodeAnswer:
    """AIQ's own answer for one analysis code: the BI codes filed under it (`ids`), or None
    when the code is not in the company's analysis set-up or AIQ did not answer (`warning`
    then says so, for the screen to fall back on the last pull)."""

    ids: list[str] | None
    warning: str = ""


def departments_under_analysis_code(entity: Entity, code: str) -> AnalysisCodeAnswer:
    """The BI codes AIQ files under `code` (GetDepartmentsByAnalysisCode, on the dimension of
    the set-up that lists it), mirrored as they come."""
    code = code.strip().upper()
    position = next(
        (
            d.position
            for d in AnalysisDimension.objects.filter(entity=entity).order_by("position")
            if any(c.get("code", "").upper() == code for c in d.codes)
        ),
        None,
    )
    if position is None:
        return AnalysisCodeAnswer(None)
    try:
        client = AiqClient.for_entity(entity)
        return AnalysisCodeAnswer(sync_departments_by_analysis_code(client, entity, position, code))
    except AiqError as error:
        return AnalysisCodeAnswer(None, f"AIQ did not answer ({error}); showing the last pull.")


def department_check(entity: Entity, codes) -> None:
    """Raise ValidationError naming every BI code no new line may carry."""
    problems = department_problems(entity, codes)
    if problems:
        raise ValidationError(list(problems.values()))


def department_change_pending(department: Department) -> OutboxCommand | None:
    return (
        OutboxCommand.objects.filter(
            entity=department.entity,
            kind=KIND,
            state__in=OPEN,
            payload__department_id=department.department_id,
        )
        .order_by("pk")
        .first()
    )


def department_change(
    *, department: Department, actor, name: str | None = None, active: bool | None = None
) -> OutboxCommand:
    """An approver renames a BI code and/or retires (active=False) or activates it."""
    if not user_has_role(actor, Role.APPROVER):
        raise PermissionDenied("Only an approver can rename, retire or activate a BI code.")
    with transaction.atomic():
        row = Department.objects.select_for_update().get(pk=department.pk)
        new_name = (name if name is not None else row.name).strip()
        new_active = row.active if active is None else bool(active)
        if not new_name:
            raise ValidationError("The BI code's name cannot be empty.")
        if len(new_name) > 200:
            raise ValidationError("The BI code's name is longer than 200 characters.")
        if department_change_pending(row) is not None:
            raise ValidationError(
                f"A change of BI code {row.department_id} is on its way to AIQ: wait for it."
            )
        if (new_name, new_active) == (row.name, row.active):
            raise ValidationError(f"BI code {row.department_id} is already like that.")
        command = outbox_enqueue(
            entity=row.entity,
            kind=KIND,
            payload={
                "department_id": row.department_id,
                "description": new_name,
                "active": new_active,
            },
            external_reference=(f"DEPT-{row.department_id}-{timezone.now():%Y%m%d%H%M%S%f}"[:100]),
            origin_type="department",
            origin_id=row.pk,
            created_by=actor,
        )
        what = []
        if new_name != row.name:
            what.append(f"renamed to {new_name!r}")
        if new_active != row.active:
            what.append("activated" if new_active else "retired")
        audit_log(
            actor=actor,
            action="department.change",
            obj=row,
            summary=f"BI code {row.department_id} {' and '.join(what)} (sent to AIQ)",
            before={"name": row.name, "active": row.active},
            after={"name": new_name, "active": new_active, "command": command.pk},
        )
    return command


def lines_by_department(
    invoice: Invoice, amount: Decimal, currency: str, gl_account_code: str, description: str
) -> list[dict] | None:
    """A journal's GL lines for `amount` on an invoice (a write-off), one per BI code of the
    invoice's lines, in proportion to their gross (core.money.split: exact to the cent). None
    when the invoice's lines carry no BI code (or are not mirrored): one line, as before."""
    weights: dict[str, Decimal] = {}
    for line in invoice.lines.all():
        weights[line.department_id] = weights.get(line.department_id, Decimal(0)) + abs(
            line.gross_amount
        )
    if not any(weights) or not sum(weights.values()):
        return None
    codes = sorted(weights)
    parts = split(amount, currency, [weights[code] for code in codes])
    return [
        {
            "gl_account_code": gl_account_code,
            "amount": str(part),
            "department_id": code,
            "description": description[:250],
        }
        for code, part in zip(codes, parts, strict=True)
        if part
    ]
