"""Configuration of sales invoicing: the selling systems (with their upload layouts and batch
or item choice) and each company's rules. Invoices and batches are worked on the Sales
invoicing screens, where every decision is a service with its audit entry; here they are
read-only."""

from django.contrib import admin

from sales import models as m
from staff.admin_base import AuditedAdmin, MoneyRowAdmin, ViewOnlyAdmin


@admin.register(m.InvoiceSource)
class InvoiceSourceAdmin(AuditedAdmin):
    list_display = ("code", "name", "entity", "invoice_type", "attach_breakdown")
    list_filter = ("entity", "invoice_type")


@admin.register(m.SalesSettings)
class SalesSettingsAdmin(AuditedAdmin):
    list_display = (
        "entity",
        "credit_action",
        "approve_new_customers",
        "batch_approval_total",
        "email_invoices",
        "email_receipts",
        "deferred_revenue_gl_account_code",
    )


@admin.register(m.SalesInvoice)
class SalesInvoiceAdmin(ViewOnlyAdmin):
    list_display = ("external_reference", "customer_code", "state", "gross_amount", "currency")
    list_filter = ("state", "source")
    search_fields = ("external_reference", "customer_code")


@admin.register(m.SalesBatch)
class SalesBatchAdmin(ViewOnlyAdmin):
    list_display = ("filename", "source", "state", "invoice_count", "gross_total", "created_at")
    exclude = ("content",)


class DeferredReleaseInline(admin.TabularInline):
    model = m.DeferredRelease
    extra = 0
    can_delete = False
    fields = ("kind", "number", "release_date", "amount", "state", "aiq_transaction_id", "error")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(m.DeferredRevenueSchedule)
class DeferredRevenueScheduleAdmin(MoneyRowAdmin):
    """Made when AIQ posts a deferred line; released by the outbox; shown on the Deferred
    revenue screen."""

    list_display = ("invoice", "amount", "currency", "months", "state", "entity")
    list_filter = ("entity", "state")
    inlines = [DeferredReleaseInline]


@admin.register(m.DeferredRelease)
class DeferredReleaseAdmin(MoneyRowAdmin):
    list_display = ("external_reference", "kind", "release_date", "amount", "state")
    list_filter = ("state", "kind")
    search_fields = ("external_reference",)


@admin.register(m.SalesCreditNote)
class SalesCreditNoteAdmin(ViewOnlyAdmin):
    list_display = ("external_reference", "invoice", "state", "gross_amount", "currency")
    list_filter = ("state",)
    search_fields = ("external_reference",)


@admin.register(m.CustomerUpdate)
class CustomerUpdateAdmin(ViewOnlyAdmin):
    list_display = ("customer_code", "origin", "state", "created_at")
    list_filter = ("state",)
    search_fields = ("customer_code",)
