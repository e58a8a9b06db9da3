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


@admin.register(m.SalesInvoiceLine)
class SalesInvoiceLineAdmin(MoneyRowAdmin):
    list_display = ("invoice", "line_number", "net_amount", "tax_amount", "department")
    search_fields = ("invoice__external_reference",)


@admin.register(m.BackToBackRule)
class BackToBackRuleAdmin(AuditedAdmin):
    """Configuration: which supplier a resold cost is bought from and the mark-up it is sold
    on at; the pairs themselves are made by back_to_back_submit."""

    list_display = ("code", "name", "entity", "supplier_code", "markup_percent", "active")
    list_filter = ("entity", "active")


class PurchaseInvoiceLineInline(admin.TabularInline):
    model = m.PurchaseInvoiceLine
    extra = 0
    can_delete = False
    fields = ("line_number", "description", "net_amount", "tax_code", "tax_amount", "department")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(m.PurchaseInvoice)
class PurchaseInvoiceAdmin(MoneyRowAdmin):
    """Made by the back-to-back and intercompany services, moved by the outbox."""

    list_display = (
        "external_reference",
        "entity",
        "supplier_code",
        "state",
        "gross_amount",
        "currency",
        "aiq_transaction_id",
    )
    list_filter = ("state", "entity")
    search_fields = ("external_reference", "supplier_code")
    inlines = [PurchaseInvoiceLineInline]


@admin.register(m.PurchaseInvoiceLine)
class PurchaseInvoiceLineAdmin(MoneyRowAdmin):
    list_display = ("invoice", "line_number", "net_amount", "tax_amount", "department")


@admin.register(m.BackToBackPair)
class BackToBackPairAdmin(MoneyRowAdmin):
    list_display = ("reference", "entity", "rule", "customer_code", "cost_net", "sale_net")
    search_fields = ("reference", "customer_code")


@admin.register(m.InterCompanySale)
class InterCompanySaleAdmin(ViewOnlyAdmin):
    list_display = ("reference", "seller", "buyer", "sales_invoice", "purchase", "created_at")
    search_fields = ("reference",)
