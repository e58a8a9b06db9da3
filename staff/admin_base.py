"""Admin base classes: every change made in the admin is audited; money rows are read-only."""

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


class ViewOnlyAdmin(admin.ModelAdmin):
    """Rows only a service writes (an outbox step, a pull, a run, the audit log): the admin shows
    them, no more."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class MoneyRowAdmin(ViewOnlyAdmin):
    """Money mirrored from AIQ (invoices, credit notes, receipts, allocations, journals,
    customers' balances) or received from a provider (payments, fees, payouts, disputes), and
    the plans and refunds made of it: read-only in the admin, every field, inlines included.
    AIQ is the book of record and the provider the record of what arrived; a correction is a
    reversing action through a service that needs a second person (plans, refunds, undo)."""


class ViewOnlyInline(admin.TabularInline):
    """The rows of a view-only admin's object, shown and never changed there."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False
