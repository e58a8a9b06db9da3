from django.contrib import admin
from django_q.admin import FailAdmin, QueueAdmin, ScheduleAdmin, TaskAdmin
from django_q.models import Failure, OrmQ, Schedule, Success

from staff.admin_base import ViewOnlyAdmin
from staff.models import AuditEntry, FormSubmission, LoginThrottle


@admin.register(AuditEntry)
class AuditEntryAdmin(ViewOnlyAdmin):
    list_display = ("at", "actor", "action", "object_type", "object_id", "summary")
    list_filter = ("action", "object_type")
    search_fields = ("object_id", "summary", "actor__username")
    date_hierarchy = "at"


@admin.register(LoginThrottle)
class LoginThrottleAdmin(ViewOnlyAdmin):
    """Who is locked out of signing in, and until when (staff/login_throttle.py)."""

    list_display = ("key", "failures", "window_started_at", "locked_until")
    search_fields = ("key",)


@admin.register(FormSubmission)
class FormSubmissionAdmin(ViewOnlyAdmin):
    """Which form posts were already acted on (a repeated submit does nothing twice)."""


# django-q's own admin lets a superuser add a schedule whose function is any importable
# callable, which the workers then run. The product's schedules are made by `manage.py
# setup_schedules` (ledger/management/commands/setup_schedules.py), audited like every schedule
# change (staff/audit_hooks.py); here they are shown, never written.
# The task records and the queue are the workers' own rows: shown, and failed tasks can be
# resubmitted (an action), but no row is edited or deleted by hand.
class ReadOnlyScheduleAdmin(ViewOnlyAdmin, ScheduleAdmin):
    pass


class ReadOnlyTaskAdmin(ViewOnlyAdmin, TaskAdmin):
    pass


class ReadOnlyFailAdmin(ViewOnlyAdmin, FailAdmin):
    pass


class ReadOnlyQueueAdmin(ViewOnlyAdmin, QueueAdmin):
    pass


for model, model_admin in [
    (Schedule, ReadOnlyScheduleAdmin),
    (Success, ReadOnlyTaskAdmin),
    (Failure, ReadOnlyFailAdmin),
    (OrmQ, ReadOnlyQueueAdmin),  # registered by django-q with its ORM broker only
]:
    if admin.site.is_registered(model):
        admin.site.unregister(model)
        admin.site.register(model, model_admin)
