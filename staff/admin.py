from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django_q.admin import FailAdmin, QueueAdmin, ScheduleAdmin, TaskAdmin
from django_q.models import Failure, OrmQ, Schedule, Success

from staff.admin_base import ViewOnlyAdmin
from staff.login_throttle import login_unlock
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
    actions = ["unlock_now"]

    @admin.action(description="Unlock now (audited)")
    def unlock_now(self, request, queryset):
        """Lift the chosen lock-outs through the audited service (admins only)."""
        try:
            count = login_unlock(
                keys=list(queryset.values_list("key", flat=True)), actor=request.user
            )
        except PermissionDenied as error:
            self.message_user(request, str(error), messages.ERROR)
            return
        self.message_user(request, f"Unlocked {count} sign-in lock(s); each is in the audit log.")


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
