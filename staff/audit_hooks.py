"""Audit of who may do what, and of every authentication event, whatever path makes them.

Changes of people and permissions (a user created, made superuser/staff, deactivated, given a
group or a permission; a group's permissions; django-q schedules, which decide what code the
workers run) can be made by the admin, a management command, a service or a shell. Hooking
Django's model and auth signals here audits every one of those paths, so no screen can forget.
The hooks are connected in StaffConfig.ready().

Same transaction: a hook writes its audit row inside the transaction of the change when there is
one (the admin's views, our commands and services are atomic). A save made in autocommit mode
(a shell, Django's own createsuperuser) has already committed when the signal runs; its row is
then written at once in its own transaction, the nearest thing possible.

Who: the person of the current request (AuditActorMiddleware), else the system (empty actor).
"""

from contextvars import ContextVar

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save

from staff.login_throttle import client_ip
from staff.services import audit_log
from staff.signals import login_locked_out

_request = ContextVar("audit_request", default=None)

# What decides what a person may do; a change of any other field (last_login on each login,
# the name) is not a change of permissions. Passwords are audited as "changed", never valued.
USER_FIELDS = ("username", "is_active", "is_staff", "is_superuser")
SCHEDULE_FIELDS = ("name", "func", "hook", "args", "kwargs", "schedule_type", "minutes", "cron")


class AuditActorMiddleware:
    """Remembers the request so hooks know who acted (request.user is read lazily)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _request.set(request)
        try:
            return self.get_response(request)
        finally:
            _request.reset(token)


def current_actor():
    request = _request.get()
    user = getattr(request, "user", None) if request is not None else None
    return user if user is not None and user.is_authenticated else None


def _audit(**kwargs) -> None:
    """In the change's transaction when there is one (atomic joins it), else its own."""
    kwargs.setdefault("actor", current_actor())
    with transaction.atomic():
        audit_log(**kwargs)


# --- authentication ---------------------------------------------------------------------------


def _on_login(sender, request, user, **kwargs):
    _audit(
        actor=user, action="auth.login", obj=user, summary=f"signed in from {client_ip(request)}"
    )


def _on_logout(sender, request, user, **kwargs):
    if user is None:  # an anonymous visitor pressed "log out"
        return
    _audit(
        actor=user, action="auth.logout", obj=user, summary=f"signed out from {client_ip(request)}"
    )


def _on_login_failed(sender, credentials, request=None, **kwargs):
    username = str(credentials.get("username", ""))[:150]  # Django removed the password
    _audit(
        actor=None,
        action="auth.login_failed",
        object_type="auth.user",
        object_id=username[:64],
        summary=f"failed sign-in as {username!r} from {client_ip(request)}",
    )


def _on_locked_out(sender, username: str, ip: str, until=None, **kwargs):
    _audit(
        actor=None,
        action="auth.lockout",
        object_type="auth.user",
        object_id=str(username)[:64],
        summary=f"sign-in locked for {username!r} from {ip}"
        + (f" until {until:%d/%m/%Y %H:%M}" if until else ""),
    )


# --- people, groups and permissions -----------------------------------------------------------


def _remember_user(sender, instance, raw=False, **kwargs):
    if raw or instance.pk is None:
        instance._audit_before = None
        return
    old = sender.objects.filter(pk=instance.pk).values(*USER_FIELDS, "password").first()
    instance._audit_before = old


def _on_user_saved(sender, instance, created, raw=False, update_fields=None, **kwargs):
    if raw:
        return
    now = {f: getattr(instance, f) for f in USER_FIELDS}
    if created:
        _audit(action="user.create", obj=instance, summary=_user_text(instance), after=now)
        return
    old = getattr(instance, "_audit_before", None) or {}
    before = {f: old.get(f) for f in USER_FIELDS if old.get(f) != now[f]}
    after = {f: now[f] for f in before}
    if old and old.get("password") != instance.password:
        before["password"], after["password"] = "(old)", "(changed)"
    if before:
        _audit(
            action="user.change",
            obj=instance,
            summary=f"{instance.username}: {', '.join(sorted(before))} changed",
            before=before,
            after=after,
        )


def _user_text(user) -> str:
    flags = [f for f in ("is_superuser", "is_staff") if getattr(user, f)]
    return f"user {user.username} created" + (f" ({', '.join(flags)})" if flags else "")


def _on_deleted(sender, instance, **kwargs):
    _audit(
        action=f"{sender._meta.model_name}.delete",
        obj=instance,
        summary=f"{sender._meta.verbose_name} {instance} deleted",
    )


def _on_group_saved(sender, instance, created, raw=False, **kwargs):
    if not raw:
        _audit(
            action="group.create" if created else "group.change",
            obj=instance,
            summary=f"group {instance.name} {'created' if created else 'saved'}",
        )


def _name(obj) -> str:
    if isinstance(obj, Permission):
        return f"{obj.content_type.app_label}.{obj.codename}"
    return str(obj)


def _through_map():
    """Each m2m that grants something: (its owner's column, the granted side's column, label)."""
    user = get_user_model()
    return {
        user.groups.through: ("user", "group", "groups"),
        user.user_permissions.through: ("user", "permission", "permissions"),
        Group.permissions.through: ("group", "permission", "permissions"),
    }


def _on_m2m(sender, instance, action, reverse, model, pk_set, **kwargs):
    """user.groups, user.user_permissions, group.permissions: who may do what. `reverse` is
    the other way round (group.user_set.add(user)): audited on the owner's side all the same."""
    owner, granted, label = _through_map()[sender]
    if action == "pre_clear":  # what is about to go, read while it is still there
        side, other = (granted, owner) if reverse else (owner, granted)
        links = sender.objects.filter(**{side: instance}).values_list(f"{other}_id", flat=True)
        instance._audit_cleared = set(links)
        return
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    pks = getattr(instance, "_audit_cleared", set()) if action == "post_clear" else pk_set or set()
    others = list(model.objects.filter(pk__in=pks))
    if not reverse:
        _audit_m2m(instance, label, action, sorted(_name(o) for o in others))
        return
    for owner_row in others:
        _audit_m2m(owner_row, label, action, [_name(instance)])


def _audit_m2m(owner_row, label, action, names):
    if not names:
        return
    verb = {"post_add": "added", "post_remove": "removed", "post_clear": "removed"}[action]
    kind = type(owner_row)._meta.model_name
    _audit(
        action=f"{kind}.{label}",
        obj=owner_row,
        summary=f"{kind} {owner_row}: {label} {verb}: {', '.join(names)}"[:500],
        before={label: names} if action != "post_add" else None,
        after={label: names} if action == "post_add" else None,
    )


# --- django-q schedules: what code the workers run --------------------------------------------


def _remember_schedule(sender, instance, raw=False, **kwargs):
    instance._audit_before = (
        None
        if raw or instance.pk is None
        else sender.objects.filter(pk=instance.pk).values(*SCHEDULE_FIELDS).first()
    )


def _on_schedule_saved(sender, instance, created, raw=False, **kwargs):
    if raw:
        return
    now = {f: getattr(instance, f) for f in SCHEDULE_FIELDS}
    old = getattr(instance, "_audit_before", None) or {}
    # the scheduler saves each schedule after every run (next run, last task): not a change
    changed = {f: old.get(f) for f in SCHEDULE_FIELDS if old.get(f) != now[f]}
    if created or changed:
        _audit(
            action="schedule.create" if created else "schedule.change",
            obj=instance,
            summary=f"schedule {instance.name}: {instance.func}",
            before=None if created else changed,
            after=now if created else {f: now[f] for f in changed},
        )


def connect() -> None:
    from django_q.models import Schedule

    user = get_user_model()
    user_logged_in.connect(_on_login, dispatch_uid="audit.login")
    user_logged_out.connect(_on_logout, dispatch_uid="audit.logout")
    user_login_failed.connect(_on_login_failed, dispatch_uid="audit.login_failed")
    login_locked_out.connect(_on_locked_out, dispatch_uid="audit.lockout")
    pre_save.connect(_remember_user, sender=user, dispatch_uid="audit.user_pre")
    post_save.connect(_on_user_saved, sender=user, dispatch_uid="audit.user")
    post_save.connect(_on_group_saved, sender=Group, dispatch_uid="audit.group")
    for model in (user, Group, Schedule):
        post_delete.connect(_on_deleted, sender=model, dispatch_uid=f"audit.delete.{model}")
    for through in _through_map():
        m2m_changed.connect(_on_m2m, sender=through, dispatch_uid=f"audit.m2m.{through}")
    pre_save.connect(_remember_schedule, sender=Schedule, dispatch_uid="audit.schedule_pre")
    post_save.connect(_on_schedule_saved, sender=Schedule, dispatch_uid="audit.schedule")
