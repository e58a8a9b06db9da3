"""Audit, roles and login throttling."""

import json
import uuid

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, models, transaction

from core.bulk import insert_rows
from staff.models import AuditEntry, FormSubmission, Role


def _jsonable(data):
    """Decimals and dates as strings: audit values must round-trip exactly. A NUL character
    (typed into a filter, say) is kept as U+FFFD: PostgreSQL's jsonb cannot hold it, and an
    audit entry must never be what makes a request fail."""
    if data is None:
        return None
    return _without_nul(json.loads(json.dumps(data, cls=DjangoJSONEncoder)))


def _without_nul(value):
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value


def audit_log(
    *,
    actor: AbstractBaseUser | None,
    action: str,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: str | int = "",
    summary: str = "",
    before: dict | None = None,
    after: dict | None = None,
    entity_id: int | None = None,
) -> AuditEntry:
    """Write one audit entry. Call it inside the same transaction as the change it records."""
    _require_atomic()
    entry = audit_entry(
        actor=actor,
        action=action,
        obj=obj,
        object_type=object_type,
        object_id=object_id,
        summary=summary,
        before=before,
        after=after,
        entity_id=entity_id,
    )
    entry.save()
    return entry


def audit_entry(
    *,
    actor: AbstractBaseUser | None,
    action: str,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: str | int = "",
    summary: str = "",
    before: dict | None = None,
    after: dict | None = None,
    entity_id: int | None = None,
) -> AuditEntry:
    """The unsaved entry audit_log writes; audit_log_many writes a list of them at once."""
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or obj.pk
        if entity_id is None:
            entity_id = audit_entity_of(obj)
    if actor is not None and (isinstance(actor, AnonymousUser) or not actor.is_authenticated):
        actor = None
    return AuditEntry(
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        summary=_without_nul(summary[:500]),
        before=_jsonable(before),
        after=_jsonable(after),
        entity_id=entity_id,
    )


# How the company of an audited object is found: its own entity, or that of the payment,
# customer or invoice it hangs on (a plan, a refund, an unallocation's allocation). Read by
# attribute, since staff knows none of the models above it.
ENTITY_PATHS = (
    ("entity_id",),
    ("payment", "entity_id"),
    ("customer", "entity_id"),
    ("invoice", "entity_id"),
    ("allocation", "entity_id"),
)


def audit_entity_of(obj) -> int | None:
    """The company (entity id) an audited object belongs to, or None for an object of none."""
    if obj._meta.label_lower == "ledger.entity":
        return obj.pk
    for path in ENTITY_PATHS:
        value = obj
        for name in path:
            if value is None or not hasattr(value, name):
                value = None
                break
            value = getattr(value, name)
        if isinstance(value, int):
            return value
    return None


def audit_log_many(entries: list[AuditEntry]) -> None:
    """Write many audit_entry() rows at once (multi-row INSERTs), in the change's transaction."""
    _require_atomic()
    insert_rows(
        AuditEntry,
        ("actor", "action", "object_type", "object_id", "summary", "before", "after", "entity_id"),
        [
            (
                e.actor_id,
                e.action,
                e.object_type,
                e.object_id,
                e.summary,
                e.before,
                e.after,
                e.entity_id,
            )
            for e in entries
        ],
    )


def _require_atomic() -> None:
    if not transaction.get_connection().in_atomic_block:
        # An audit row outside the change's transaction could survive a rollback of the change.
        raise RuntimeError("audit_log must be called inside transaction.atomic()")


# A user read for one request may carry its group names, read in the same query (the API's
# token look-up): user_has_role uses them instead of asking the database again.
ROLE_NAMES = "_role_names"


def user_has_role(user, role: Role | str) -> bool:
    """Admins can do what approvers and clerks can; approvers what clerks can."""
    if not user or not user.is_authenticated or not user.is_active:
        return False
    names = user.__dict__.get(ROLE_NAMES)
    if names is None:
        names = set(user.groups.values_list("name", flat=True))
    if user.is_superuser or Role.ADMIN in names:
        return True
    if role == Role.APPROVER:
        return Role.APPROVER in names
    if role == Role.CLERK:
        return bool(names & {Role.CLERK, Role.APPROVER})
    return False


def user_roles(user) -> list[str]:
    return [role.value for role in Role if user_has_role(user, role)]


class FormTokenMissing(ValueError):
    """The form carried no (valid) submission token: a page from before tokens, or forged."""


def form_submission_claim(*, token, actor, action: str):
    """Claim a form's submission token inside the caller's transaction.

    Returns None when this is the first submission (the caller acts, then calls
    form_submission_done), or the earlier FormSubmission when the same form was already
    submitted (the caller answers with its result and changes nothing). Two concurrent POSTs
    of one form: the second INSERT waits on the unique index until the first commits, then
    fails and reads the first's row (on SQLite, IMMEDIATE transactions serialise them).
    """
    _require_atomic()
    try:
        token = uuid.UUID(str(token))
    except ValueError:
        raise FormTokenMissing(
            "This form is out of date or incomplete; reload the page and submit again."
        ) from None
    try:
        with transaction.atomic():
            FormSubmission.objects.create(token=token, actor=actor, action=action)
    except IntegrityError:
        earlier = FormSubmission.objects.get(token=token)
        if earlier.actor_id != actor.pk or earlier.action != action:
            raise FormTokenMissing(
                "This form was already used; reload the page and submit again."
            ) from None
        return earlier
    return None


def form_submission_done(*, token, obj: models.Model) -> None:
    """Record what the first submission of a form produced, for its repeats to answer with."""
    FormSubmission.objects.filter(token=uuid.UUID(str(token))).update(
        object_type=obj._meta.label_lower, object_id=str(obj.pk)
    )
