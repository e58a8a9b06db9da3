"""Admin base classes: every change made in the admin is audited; money rows are never deleted."""

from django.contrib import admin
from django.forms.models import model_to_dict

from staff.services import audit_log


class AuditedAdmin(admin.ModelAdmin):
    """Writes an audit entry for each add/change, in the admin's own transaction."""

    def save_model(self, request, obj, form, change):
        before = None
        if change and obj.pk:
            previous = type(obj).objects.filter(pk=obj.pk).first()
            before = model_to_dict(previous, fields=form.changed_data) if previous else None
        super().save_model(request, obj, form, change)
        audit_log(
            actor=request.user,
            action=f"admin.{'change' if change else 'add'}",
            obj=obj,
            summary=f"{'Changed' if change else 'Added'} via admin: {', '.join(form.changed_data)}",
            before=before,
            after=model_to_dict(obj, fields=form.changed_data),
        )

    def delete_model(self, request, obj):
        audit_log(actor=request.user, action="admin.delete", obj=obj, before=model_to_dict(obj))
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            audit_log(actor=request.user, action="admin.delete", obj=obj, before=model_to_dict(obj))
        super().delete_queryset(request, queryset)


class MoneyRowAdmin(AuditedAdmin):
    """Rows that carry money: no delete (undo is a reversing entry), AIQ ids read-only."""

    aiq_readonly_fields: tuple[str, ...] = ()

    def has_delete_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        return tuple(super().get_readonly_fields(request, obj)) + self.aiq_readonly_fields


class ViewOnlyAdmin(admin.ModelAdmin):
    """Rows only a service writes (an outbox step, a pull, a run, the audit log): the admin shows
    them, no more."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
