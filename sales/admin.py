"""Configuration of sales invoicing: the selling systems (with their upload layouts and batch
or item choice) and each company's rules. Invoices and batches are worked on the Sales
invoicing screens, where every decision is a service with its audit entry; here they are
read-only."""

from django.contrib import admin

from sales import models as m
from staff.admin_base import AuditedAdmin, ViewOnlyAdmin


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
