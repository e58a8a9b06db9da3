from django.contrib import admin

from staff.admin_base import ViewOnlyAdmin
from staff.models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(ViewOnlyAdmin):
    list_display = ("at", "actor", "action", "object_type", "object_id", "summary")
    list_filter = ("action", "object_type")
    search_fields = ("object_id", "summary", "actor__username")
    date_hierarchy = "at"
