from django import forms
from django.contrib import admin

from payments import models as m
from payments.forms_company import check_provider_gl
from staff.admin_base import AuditedAdmin, MoneyRowAdmin, ViewOnlyAdmin, ViewOnlyInline


class FeeInline(admin.TabularInline):
    model = m.Fee
    extra = 0
    can_delete = False


@admin.register(m.Payment)
class PaymentAdmin(MoneyRowAdmin):
    list_display = (
        "external_id",
        "source",
        "received_at",
        "currency",
        "amount",
        "payer_name",
        "status",
        "match_state",
    )
    list_filter = ("source", "status", "match_state", "currency")
    search_fields = ("external_id", "payer_name", "payer_email", "description")
    date_hierarchy = "received_at"
    raw_id_fields = ("customer", "payout", "receipt")
    show_full_result_count = False
    inlines = [FeeInline]


@admin.register(m.Payout)
class PayoutAdmin(MoneyRowAdmin):
    list_display = ("external_id", "source", "amount", "currency", "status", "arrival_date")
    list_filter = ("source", "status", "currency")
    search_fields = ("external_id",)


@admin.register(m.Fee)
class FeeAdmin(MoneyRowAdmin):
    list_display = ("payment", "kind", "amount", "currency")
    raw_id_fields = ("payment",)


@admin.register(m.Dispute)
class DisputeAdmin(MoneyRowAdmin):
    list_display = ("external_id", "payment", "amount", "currency", "status", "reason")
    list_filter = ("status",)
    raw_id_fields = ("payment",)


@admin.register(m.WebhookEvent)
class WebhookEventAdmin(ViewOnlyAdmin):
    list_display = ("event_id", "source", "event_type", "state", "attempts", "received_at")
    list_filter = ("source", "state", "event_type")
    search_fields = ("event_id", "event_type")
    readonly_fields = [f.name for f in m.WebhookEvent._meta.fields]


@admin.register(m.StatementAccount)
class StatementAccountAdmin(AuditedAdmin):
    """Which AIQ bank account a statement's money goes to: a setting, changed and audited."""

    list_display = ("account_key", "name", "bank_account", "currency", "entity")
    list_filter = ("entity", "currency")
    search_fields = ("account_key", "name")


class ProviderAccountForm(forms.ModelForm):
    """Set-up asks AIQ itself whether every GL account the books will post to exists and can
    take a journal (payments/forms_company.py: check_provider_gl, the staff screen's check
    too). The admin gives it its model and fields."""

    def clean(self):
        data = super().clean()
        if not self.errors:
            check_provider_gl(data.get("entity"), data)
        return data


@admin.register(m.ProviderAccount)
class ProviderAccountAdmin(AuditedAdmin):
    """A Stripe/GoCardless account's books per currency: its clearing bank account in AIQ, the
    real bank its payouts arrive in, its fees (and VAT on fees) GL accounts, and how its payouts
    read on the bank statement. A setting, changed and audited; checked at start-up."""

    list_display = (
        "name",
        "source",
        "currency",
        "clearing_bank_account",
        "payout_bank_account",
        "fees_gl_account_code",
        "entity",
        "api_key_env",
        "webhook_secret_env",
    )
    list_filter = ("entity", "source", "currency")
    form = ProviderAccountForm
    # the NAMES of the variables holding its key and webhook secret are shown, never values


@admin.register(m.Statement)
class StatementAdmin(ViewOnlyAdmin):
    """A bank statement's period and balances as the bank sent them."""

    list_display = ("account", "statement_id", "start_date", "end_date", "closing_balance")
    raw_id_fields = ("account", "batch")


@admin.register(m.ClearingBalance)
class ClearingBalanceAdmin(ViewOnlyAdmin):
    """Each check of a clearing account: AIQ's balance beside the provider's, kept as taken."""

    list_display = ("provider_account", "checked_at", "aiq_balance", "provider_balance")
    raw_id_fields = ("provider_account", "checked_by")


@admin.register(m.DirectDebitNotice)
class DirectDebitNoticeAdmin(ViewOnlyAdmin):
    """Bacs report lines, kept as received."""


@admin.register(m.SettlementTerms)
class SettlementTermsAdmin(AuditedAdmin):
    """Early-settlement discount terms: a setting, changed and audited."""

    raw_id_fields = ("customer",)


@admin.register(m.ImportFormat)
class ImportFormatAdmin(AuditedAdmin):
    list_display = ("name", "entity", "source", "date_format", "decimal_comma", "currency")
    list_filter = ("entity", "source")


@admin.register(m.ImportBatch)
class ImportBatchAdmin(ViewOnlyAdmin):
    list_display = (
        "filename",
        "import_format",
        "state",
        "row_count",
        "imported_count",
        "created_at",
    )
    list_filter = ("state", "import_format")
    # content is the uploaded file itself (up to bank_csv.MAX_BYTES): never rendered, never even loaded
    readonly_fields = [f.name for f in m.ImportBatch._meta.fields if f.name != "content"]
    exclude = ("content",)

    def get_queryset(self, request):
        return super().get_queryset(request).defer("content")


@admin.register(m.PayerMapping)
class PayerMappingAdmin(AuditedAdmin):
    list_display = ("source", "payer_key", "customer", "confirmed_by", "created_at")
    list_filter = ("source",)
    search_fields = ("payer_key", "customer__code")
    raw_id_fields = ("customer",)


@admin.register(m.MatchRule)
class MatchRuleAdmin(AuditedAdmin):
    list_display = (
        "order",
        "name",
        "entity",
        "kind",
        "enabled",
        "auto_approve",
        "tolerance_action",
    )
    list_editable = ("enabled", "auto_approve")
    list_display_links = ("name",)
    list_filter = ("entity", "kind", "enabled")


@admin.register(m.MatchProposal)
class MatchProposalAdmin(ViewOnlyAdmin):
    """View only: a proposal row is the audit record of what a run proposed (the database
    refuses content changes); state changes go through the services, which audit them."""

    list_display = ("payment", "rule_kind", "rank", "confidence", "explanation", "state")
    list_filter = ("rule_kind", "state")
    raw_id_fields = ("payment", "rule")
    show_full_result_count = False


@admin.register(m.MatchingLease)
class MatchingLeaseAdmin(ViewOnlyAdmin):
    """Which matching run is writing (services/matching_lease.py); it frees itself."""

    list_display = ("holder", "until")


class PlanLineInline(admin.TabularInline):
    model = m.AllocationPlanLine
    extra = 0
    can_delete = False
    raw_id_fields = ("invoice",)


@admin.register(m.AllocationPlan)
class AllocationPlanAdmin(MoneyRowAdmin):
    """Plans change state only through the review services; the admin shows them."""

    list_display = ("id", "payment", "customer", "state", "maker", "approver", "on_account_amount")
    list_filter = ("state", "needs_approval")
    raw_id_fields = ("payment", "proposal", "customer")
    inlines = [PlanLineInline]


@admin.register(m.Refund)
class RefundAdmin(MoneyRowAdmin):
    list_display = ("id", "kind", "customer", "amount", "currency", "state", "maker", "approver")
    list_filter = ("kind", "state")
    raw_id_fields = ("customer", "payment", "invoice", "receipt", "credit_note")


@admin.register(m.AllocationPlanLine)
class AllocationPlanLineAdmin(MoneyRowAdmin):
    list_display = ("plan", "invoice", "amount", "discount_amount", "write_off_amount")
    raw_id_fields = ("plan", "invoice")


@admin.register(m.Unallocation)
class UnallocationAdmin(ViewOnlyAdmin):
    """Undo requests change only through payments/services/unallocations.py."""

    list_display = ("id", "allocation", "state", "maker", "approver", "created_at")
    list_filter = ("state",)
    raw_id_fields = ("allocation", "command")


class ContactAllocationLineInline(admin.TabularInline):
    model = m.ContactAllocationLine
    extra = 0
    can_delete = False


@admin.register(m.ContactAllocation)
class ContactAllocationAdmin(MoneyRowAdmin):
    """Allocations of money on account or a credit note made later: made and approved on the
    staff screens or the API (maker-checker), never here."""

    list_display = (
        "__str__",
        "entity",
        "customer",
        "transfer_to",
        "state",
        "maker",
        "approver",
        "created_at",
    )
    list_filter = ("state", "entity")
    inlines = [ContactAllocationLineInline]


class CustomerGroupMemberInline(ViewOnlyInline):
    model = m.CustomerGroupMember


@admin.register(m.CustomerGroup)
class CustomerGroupAdmin(ViewOnlyAdmin):
    """Customers who may pay each other's invoices: set by customer_group_set (admin role,
    audited), e.g. `manage.py shell`; shown here."""

    list_display = ("name", "entity", "created_at")
    list_filter = ("entity",)
    inlines = [CustomerGroupMemberInline]


@admin.register(m.CustomerGroupMember)
class CustomerGroupMemberAdmin(ViewOnlyAdmin):
    list_display = ("customer", "group")


@admin.register(m.ContactAllocationLine)
class ContactAllocationLineAdmin(MoneyRowAdmin):
    list_display = ("allocation", "invoice", "amount")


class OtherReceiptLineInline(admin.TabularInline):
    model = m.OtherReceiptLine
    extra = 0
    can_delete = False


@admin.register(m.OtherReceipt)
class OtherReceiptAdmin(MoneyRowAdmin):
    list_display = ("__str__", "entity", "purpose", "state", "maker", "approver", "created_at")
    list_filter = ("state", "purpose", "entity")
    inlines = [OtherReceiptLineInline]


@admin.register(m.OtherReceiptLine)
class OtherReceiptLineAdmin(MoneyRowAdmin):
    list_display = ("receipt", "line_number", "gl_account_code", "tax_code", "total_amount")


@admin.register(m.GroupPolicy)
class GroupPolicyAdmin(ViewOnlyAdmin):
    """Changed only on the group policy page (audited: payments/services/cross_company.py)."""

    list_display = ("__str__", "cross_company_receipts", "updated_at")


@admin.register(m.CrossCompanyReceipt)
class CrossCompanyReceiptAdmin(ViewOnlyAdmin):
    """Proposed and approved on the payment page; the services write every change."""

    list_display = ("__str__", "entity", "invoice", "amount", "state", "maker", "approver")
    list_filter = ("state", "entity")
