from django.contrib import admin

from ledger import models as m
from staff.admin_base import AuditedAdmin, MoneyRowAdmin, ViewOnlyAdmin, ViewOnlyInline

SYNC = ("last_synced_at", "created_at", "updated_at")


@admin.register(m.Entity)
class EntityAdmin(AuditedAdmin):
    list_display = (
        "name",
        "company_id",
        "region",
        "api_version",
        "base_currency",
        "last_synced_at",
    )
    search_fields = ("name", "company_id")
    list_filter = ("api_version", "region")
    readonly_fields = ("last_synced_at",)

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(m.EntityGrant)
class EntityGrantAdmin(AuditedAdmin):
    """Who works for which company (ledger/companies.py); every grant and removal audited."""

    list_display = ("user", "entity", "created_at")
    list_filter = ("entity",)
    search_fields = ("user__username", "entity__name")


@admin.register(m.Customer)
class CustomerAdmin(MoneyRowAdmin):
    list_display = ("code", "name", "email", "currency", "credit_limit", "balance", "entity")
    list_filter = ("entity", "currency", "active")
    search_fields = ("code", "name", "email")


@admin.register(m.Supplier)
class SupplierAdmin(ViewOnlyAdmin):
    """Pulled from AIQ (GetSupplierList, GetSupplier); set up in AIQ, never here."""

    list_display = ("code", "name", "currency", "active", "entity", "last_synced_at")
    list_filter = ("entity", "currency", "active")
    search_fields = ("code", "name")


@admin.register(m.GLAccount)
class GLAccountAdmin(AuditedAdmin):
    list_display = ("code", "name", "account_type", "active", "entity")
    list_filter = ("entity", "active")
    search_fields = ("code", "name")
    readonly_fields = SYNC


@admin.register(m.BankAccount)
class BankAccountAdmin(MoneyRowAdmin):
    list_display = ("bank_account_code", "bank_code", "name", "currency", "entity")
    list_filter = ("entity", "currency")
    search_fields = ("bank_account_code", "bank_code", "name")


@admin.register(m.TaxCode)
class TaxCodeAdmin(AuditedAdmin):
    list_display = ("code", "description", "rate", "entity")
    list_filter = ("entity",)
    search_fields = ("code", "description")
    readonly_fields = SYNC


@admin.register(m.Department)
class DepartmentAdmin(ViewOnlyAdmin):
    """Mirrored from AIQ; renamed, retired and activated on the BI codes screen, which writes
    to AIQ through the outbox (an edit here would leave AIQ behind)."""

    list_display = ("department_id", "name", "bi_code", "active", "entity")
    list_filter = ("entity", "active")
    search_fields = ("department_id", "name", "bi_code")


@admin.register(m.AnalysisDimension)
class AnalysisDimensionAdmin(ViewOnlyAdmin):
    list_display = ("position", "code", "description", "entity")
    list_filter = ("entity",)


class InvoiceLineInline(admin.TabularInline):
    model = m.InvoiceLine
    extra = 0
    can_delete = False
    readonly_fields = ("aiq_invoice_item_id",)


@admin.register(m.Invoice)
class InvoiceAdmin(MoneyRowAdmin):
    list_display = (
        "invoice_number",
        "customer",
        "invoice_date",
        "currency",
        "gross_amount",
        "outstanding_amount",
        "status",
    )
    list_filter = ("status", "kind", "currency", "entity")
    search_fields = ("invoice_number", "external_reference", "customer__code", "customer__name")
    list_select_related = ("customer",)
    raw_id_fields = ("customer",)
    date_hierarchy = "invoice_date"
    show_full_result_count = False
    inlines = [InvoiceLineInline]


class CreditNoteLineInline(admin.TabularInline):
    model = m.CreditNoteLine
    extra = 0
    can_delete = False


@admin.register(m.CreditNote)
class CreditNoteAdmin(MoneyRowAdmin):
    list_display = (
        "credit_note_number",
        "customer",
        "credit_date",
        "currency",
        "gross_amount",
        "outstanding_amount",
        "status",
    )
    list_filter = ("status", "currency", "entity")
    search_fields = ("credit_note_number", "external_reference", "customer__code")
    list_select_related = ("customer",)
    raw_id_fields = ("customer", "invoice")
    inlines = [CreditNoteLineInline]


@admin.register(m.Receipt)
class ReceiptAdmin(MoneyRowAdmin):
    list_display = (
        "check_reference",
        "customer",
        "payment_date",
        "currency",
        "amount",
        "unallocated_amount",
        "aiq_transaction_id",
    )
    list_filter = ("currency", "entity")
    search_fields = ("check_reference", "customer__code", "aiq_transaction_id")
    list_select_related = ("customer",)
    raw_id_fields = ("customer",)


class JournalLineInline(admin.TabularInline):
    model = m.JournalLine
    extra = 0
    can_delete = False


@admin.register(m.Journal)
class JournalAdmin(MoneyRowAdmin):
    list_display = ("reference", "kind", "customer", "journal_date", "currency", "amount")
    list_filter = ("kind", "currency", "entity")
    search_fields = ("reference", "customer__code")
    raw_id_fields = ("customer",)
    inlines = [JournalLineInline]


@admin.register(m.Allocation)
class AllocationAdmin(MoneyRowAdmin):
    list_display = (
        "reference",
        "transaction_id_1",
        "transaction_id_2",
        "amount",
        "discount_amount",
        "currency",
        "allocation_date",
        "state",
    )
    list_filter = ("state", "currency", "entity")
    search_fields = ("reference", "transaction_id_1", "transaction_id_2")
    raw_id_fields = ("receipt", "credit_note", "invoice", "journal")


@admin.register(m.Document)
class DocumentAdmin(ViewOnlyAdmin):
    """PDFs cached from AIQ; written only by ledger.documents."""

    list_display = ("kind", "aiq_transaction_id", "filename", "fetched_at", "entity")
    list_filter = ("kind", "entity")
    search_fields = ("aiq_transaction_id", "filename")
    exclude = ("content",)
    readonly_fields = ("kind", "aiq_transaction_id", "filename", "fetched_at", "entity")


@admin.register(m.SyncState)
class SyncStateAdmin(AuditedAdmin):
    """Editable (e.g. a cursor moved back to pull again), and audited."""

    list_display = (
        "entity",
        "object_type",
        "last_modified_cursor",
        "last_finished_at",
        "running",
        "progress_done",
        "progress_total",
        "progress_step",
        "progress_rows",
    )
    list_filter = ("entity", "object_type", "running")


@admin.register(m.OutboxCommand)
class OutboxCommandAdmin(ViewOnlyAdmin):
    """Shown; retried or cancelled only by the actions below, which call the audited services."""

    list_display = (
        "id",
        "kind",
        "external_reference",
        "state",
        "attempts",
        "next_attempt_at",
        "last_error_code",
        "created_at",
    )
    list_filter = ("state", "kind", "entity")
    search_fields = ("external_reference", "last_error_message")
    readonly_fields = [f.name for f in m.OutboxCommand._meta.fields]
    show_full_result_count = False
    actions = ["retry_commands", "cancel_commands"]

    def _each(self, request, queryset, service, verb):
        from django.contrib import messages
        from django.core.exceptions import PermissionDenied, ValidationError

        done = 0
        for command in queryset:
            try:
                service(command=command, actor=request.user)
                done += 1
            except (PermissionDenied, ValidationError) as exc:
                text = "; ".join(getattr(exc, "messages", [str(exc)]))
                self.message_user(request, f"{command}: {text}", messages.ERROR)
        if done:
            self.message_user(request, f"{verb} {done} command(s).", messages.SUCCESS)

    @admin.action(description="Retry selected commands (reads AIQ back first)")
    def retry_commands(self, request, queryset):
        # the admin loads in every process at setup; the outbox (and the AIQ client it pulls
        # in) only when an action runs
        from ledger.outbox.services import outbox_retry

        self._each(request, queryset, outbox_retry, "Retried")

    @admin.action(description="Cancel selected commands (only before confirmation)")
    def cancel_commands(self, request, queryset):
        # the admin loads in every process at setup; the outbox (and the AIQ client it pulls
        # in) only when an action runs
        from ledger.outbox.services import outbox_cancel

        self._each(request, queryset, outbox_cancel, "Cancelled")


@admin.register(m.InvoiceLine)
class InvoiceLineAdmin(MoneyRowAdmin):
    list_display = (
        "invoice",
        "line_number",
        "description",
        "net_amount",
        "tax_amount",
        "gross_amount",
    )
    search_fields = ("invoice__invoice_number", "description")
    raw_id_fields = ("invoice",)
    list_select_related = ("invoice",)


@admin.register(m.CreditNoteLine)
class CreditNoteLineAdmin(MoneyRowAdmin):
    list_display = ("credit_note", "line_number", "description", "gross_amount")
    search_fields = ("credit_note__credit_note_number", "description")
    raw_id_fields = ("credit_note",)


@admin.register(m.JournalLine)
class JournalLineAdmin(MoneyRowAdmin):
    list_display = ("journal", "line_number", "gl_account_code", "debit", "credit")
    search_fields = ("journal__reference", "gl_account_code")
    raw_id_fields = ("journal",)


@admin.register(m.Attachment)
class AttachmentAdmin(ViewOnlyAdmin):
    """Files queued for AIQ's AttachDocument; changed only through ledger.documents."""

    list_display = ("filename", "invoice", "size", "created_at")
    search_fields = ("filename", "invoice__invoice_number")
    exclude = ("content",)
    raw_id_fields = ("invoice",)


class CustomerStatementLineInline(ViewOnlyInline):
    model = m.CustomerStatementLine


@admin.register(m.CustomerStatement)
class CustomerStatementAdmin(ViewOnlyAdmin):
    """AIQ's statements as the pull mirrored them: read-only (a pull replaces them)."""

    list_display = ("customer", "up_to", "balance", "currency", "entity")
    list_filter = ("entity", "currency")
    search_fields = ("customer__code", "customer__name")
    list_select_related = ("customer", "entity")
    inlines = [CustomerStatementLineInline]


@admin.register(m.CustomerStatementLine)
class CustomerStatementLineAdmin(ViewOnlyAdmin):
    """Statement lines across customers, read-only like their statement (a pull replaces them)."""

    list_display = (
        "statement",
        "position",
        "transaction_date",
        "transaction_type",
        "internal_number",
        "amount",
        "outstanding_amount",
        "running_balance",
    )
    search_fields = ("statement__customer__code", "internal_number", "external_reference")
    list_select_related = ("statement__customer",)
    raw_id_fields = ("statement",)


@admin.register(m.DuplicateWrite)
class DuplicateWriteAdmin(ViewOnlyAdmin):
    """Repairs go through the Sync screen (an approver's reversal via the outbox), never here."""

    list_display = ("kind", "external_reference", "entity", "amount", "currency", "state")
    list_filter = ("state", "kind", "entity")
    search_fields = ("external_reference", "key")


@admin.register(m.InterCompanyConnection)
class InterCompanyConnectionAdmin(ViewOnlyAdmin):
    """Pulled from AIQ (GetInterCompanyConnectionList); changed there, never here."""

    list_display = (
        "entity",
        "local_account_code",
        "remote_company_id",
        "remote_account_code",
        "remote_currency",
        "valid",
        "last_synced_at",
    )
    list_filter = ("entity", "valid")
