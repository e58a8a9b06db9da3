"""Each company's settings, changed from the staff screens (issue 21, point 2): match rules,
statement layouts, bank accounts' layouts, Stripe/GoCardless accounts with their clearing and
GL accounts, and the approval threshold.

Who: a finance manager (the approver role) of the company, within the companies they may see
(ledger/companies.py); a row every company shares (a rule or layout without a company) is
group finance's: someone who sees every company. Every change is audited in its own
transaction with who, what, and each changed field before and after. The screens validate
with forms (payments/forms_company.py); this module checks who asks, locks the row, checks
the model's own rules again (`full_clean`) and writes.

No second person approves a settings change: docs/maker-checker.md puts only what is posted
to AIQ or the bank behind approval (plans, refunds, undo, losses, other receipts), and a
setting posts nothing by itself; what it lets through (an auto-approved plan) is bounded by
the approval threshold, whose every change the audit log names.
"""

from django.core.exceptions import PermissionDenied
from django.db import models, transaction
from django.forms.models import model_to_dict

from ledger.companies import entities_visible_ids
from ledger.models import Entity
from staff.models import Role
from staff.services import audit_log, user_has_role

NOT_MANAGER = "Company settings need the approver role (a finance manager of the company)."
SHARED_ONLY_GROUP = (
    "This is shared by every company: group finance (someone who works for every company) "
    "changes it. Copy it to your company to change it there."
)


def may_manage(actor, entity_id: int | None) -> bool:
    """The approver role, and the company among those the person may see (a shared row:
    every company)."""
    if not user_has_role(actor, Role.APPROVER):
        return False
    visible = entities_visible_ids(actor)
    if visible is None:
        return True
    return entity_id is not None and entity_id in visible


def require_manager(actor, entity_id: int | None) -> None:
    if not user_has_role(actor, Role.APPROVER):
        raise PermissionDenied(NOT_MANAGER)
    if not may_manage(actor, entity_id):
        raise PermissionDenied(SHARED_ONLY_GROUP if entity_id is None else NOT_MANAGER)


def _company_of(obj: models.Model) -> int | None:
    return obj.pk if isinstance(obj, Entity) else obj.entity_id


def _values(obj: models.Model, fields) -> dict:
    """The fields' values as the audit keeps them (a foreign key: its id and its name)."""
    values = model_to_dict(obj, fields=fields)
    for name in list(values):
        field = obj._meta.get_field(name)
        if field.is_relation and values[name] is not None:
            values[name] = {"id": values[name], "name": str(getattr(obj, name))}
    return values


def setting_save(*, actor, obj: models.Model, fields: list[str], what: str) -> models.Model:
    """Save a company setting `obj` (new, or its changed `fields`), audited in the same
    transaction. `what` names it as a clerk reads it ("match rule 'Exact reference'")."""
    require_manager(actor, _company_of(obj))
    label = obj._meta.model_name
    with transaction.atomic():
        created = obj.pk is None
        before = None
        if not created:
            stored = type(obj).objects.select_for_update().filter(pk=obj.pk).first()
            if stored is None or _company_of(stored) != _company_of(obj):
                raise PermissionDenied("This setting no longer exists; reload the page.")
            before = _values(stored, fields)
            fields = [f for f in fields if before[f] != _values(obj, [f])[f]]
            if not fields:
                return obj
        obj.full_clean()
        obj.save()
        stored = type(obj).objects.get(pk=obj.pk)  # as kept (money to its stored places)
        after = _values(stored, None if created else fields)
        audit_log(
            actor=actor,
            action=f"settings.{label}.{'add' if created else 'change'}",
            obj=obj,
            summary=(f"Added {what}" if created else f"Changed {what}: {', '.join(fields)}"),
            before=before,
            after=after,
        )
    return obj


def setting_copy(*, actor, obj: models.Model, entity: Entity, what: str) -> models.Model:
    """A company's own copy of a shared rule or layout (which it then replaces for that
    company: a company's own rules of a kind replace the shared ones of that kind)."""
    if obj.entity_id is not None:
        raise PermissionDenied("Only a setting shared by every company can be copied.")
    copy = type(obj).objects.get(pk=obj.pk)
    copy.pk = None
    copy.entity = entity
    if hasattr(copy, "name") and type(obj)._meta.get_field("name").unique:
        copy.name = f"{obj.name} ({entity.name})"[: type(obj)._meta.get_field("name").max_length]
    return setting_save(actor=actor, obj=copy, fields=[], what=f"{what}, copied for {entity.name}")
