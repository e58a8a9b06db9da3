from django.contrib import admin
from django_q.admin import ScheduleAdmin
from django_q.models import Schedule

from staff.admin_base import ViewOnlyAdmin
from staff.models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(ViewOnlyAdmin):
    list_display = ("at", "actor", "action", "object_type", "object_id", "summary")
    list_filter = ("action", "object_type")
    search_fields = ("object_id", "summary", "actor__username")
    date_hierarchy = "at"


# django-q's own admin lets a superuser add a schedule whose function is any importable
# callable, which the workers then run. The product's schedules are made by `manage.py
# setup_schedules` (ledger/management/commands/setup_schedules.py), audited like every schedule
# change (staff/audit_hooks.py); here they are shown, never written.
admin.site.unregister(Schedule)


@admin.register(Schedule)
class ReadOnlyScheduleAdmin(ViewOnlyAdmin, ScheduleAdmin):
    pass
