from django.urls import path

from payments.views import (
    approvals,
    banking,
    company_settings,
    detail,
    inbox,
    later,
    outbox,
    payers,
    provider_books,
    refunds,
    runs,
    statements,
)

app_name = "payments"

urlpatterns = [
    path("payments/", inbox.inbox, name="inbox"),
    path("payments/export.csv", inbox.export_csv, name="export"),
    path("payments/bulk-approve", inbox.bulk_approve, name="bulk_approve"),
    path("payments/bulk-accept", inbox.bulk_accept, name="bulk_accept"),
    path("payments/import/", statements.statement_upload, name="statement_upload"),
    path("payments/import/confirm", statements.statement_confirm, name="statement_confirm"),
    path("payments/bank-statements/", banking.bank_balances, name="bank_balances"),
    path("payments/payer-flags/", banking.payer_flags, name="payer_flags"),
    path("payments/<id:payment_id>/", detail.detail, name="detail"),
    path("payments/<id:payment_id>/invoices", detail.invoice_search, name="invoice_search"),
    path("payments/<id:payment_id>/editor-row", detail.editor_row, name="editor_row"),
    path("payments/<id:payment_id>/allocate", detail.allocate, name="allocate"),
    path("payments/<id:payment_id>/reject", detail.reject, name="reject"),
    path("allocations/<id:allocation_id>/unallocate", detail.unallocate, name="unallocate"),
    path("payments/runs/<str:run_id>/proposals", runs.run_proposals, name="run_proposals"),
    path(
        "payer-mappings/<id:mapping_id>/delete",
        payers.payer_mapping_delete,
        name="payer_mapping_delete",
    ),
    path("approvals/", approvals.approvals, name="approvals"),
    path("approvals/<id:plan_id>/approve", approvals.approve, name="approve"),
    path("approvals/<id:plan_id>/reject", approvals.reject, name="reject_plan"),
    path("outbox/", outbox.outbox, name="outbox"),
    path("provider-books/", provider_books.provider_books, name="provider_books"),
    path("disputes/", provider_books.disputes, name="disputes"),
    path(
        "disputes/<id:dispute_id>/approve-loss",
        provider_books.dispute_loss_approve_view,
        name="dispute_loss_approve",
    ),
    path(
        "provider-books/export",
        provider_books.reconciliation_export,
        name="provider_books_export",
    ),
    path(
        "provider-books/<id:account_id>/check",
        provider_books.clearing_check_now,
        name="clearing_check",
    ),
    path(
        "approvals/undo/<id:unallocation_id>/approve", approvals.approve_undo, name="approve_undo"
    ),
    path("approvals/undo/<id:unallocation_id>/reject", approvals.reject_undo, name="reject_undo"),
    path("refunds/", refunds.refund_list, name="refunds"),
    path("refunds/new", refunds.refund_new, name="refund_new"),
    path("refunds/<id:refund_id>/", refunds.refund_detail, name="refund"),
    path("refunds/<id:refund_id>/approve", refunds.refund_approve, name="refund_approve"),
    path("refunds/<id:refund_id>/reject", refunds.refund_reject, name="refund_reject"),
    path("refunds/<id:refund_id>/edit", refunds.refund_edit, name="refund_edit"),
    path("refunds/<id:refund_id>/credit-note.pdf", refunds.credit_note_pdf, name="refund_cn_pdf"),
    path("money-on-account/allocate", later.allocate_later, name="allocate_later"),
    path(
        "credit-notes/<id:credit_note_id>/refund",
        later.refund_credit_note,
        name="refund_credit_note",
    ),
    path("payments/<id:payment_id>/not-for-aiq", later.not_for_aiq, name="not_for_aiq"),
    path("payments/<id:payment_id>/back-to-inbox", later.back_to_inbox, name="back_to_inbox"),
    path("payments/<id:payment_id>/suspense", later.to_suspense, name="to_suspense"),
    path("payments/<id:payment_id>/on-account", later.on_account, name="on_account"),
    path("payments/<id:payment_id>/customer", later.change_customer, name="change_customer"),
    path(
        "payments/<id:payment_id>/cross-company",
        later.cross_company_propose,
        name="cross_company_propose",
    ),
    path("other-receipts/new", later.other_receipt_new, name="other_receipt_new"),
    path("later/", later.later_list, name="later"),
    path("group-policy/", later.group_policy, name="group_policy"),
    # each company's settings (payments/views/company_settings.py)
    path("settings/", company_settings.settings_list, name="settings"),
    path(
        "settings/companies/<id:company_id>/",
        company_settings.settings_company,
        name="settings_company",
    ),
    path(
        "settings/companies/<id:company_id>/rules/new", company_settings.rule_new, name="rule_new"
    ),
    path("settings/rules/<id:rule_id>/", company_settings.rule_edit, name="rule_edit"),
    path(
        "settings/companies/<id:company_id>/rules/<id:rule_id>/copy",
        company_settings.rule_copy,
        name="rule_copy",
    ),
    path(
        "settings/companies/<id:company_id>/layouts/new",
        company_settings.layout_new,
        name="layout_new",
    ),
    path("settings/layouts/<id:layout_id>/", company_settings.layout_edit, name="layout_edit"),
    path(
        "settings/companies/<id:company_id>/layouts/<id:layout_id>/copy",
        company_settings.layout_copy,
        name="layout_copy",
    ),
    path(
        "settings/bank-accounts/<id:statement_account_id>/",
        company_settings.bank_account_edit,
        name="bank_account_edit",
    ),
    path(
        "settings/companies/<id:company_id>/provider-accounts/new",
        company_settings.provider_account_new,
        name="provider_account_new",
    ),
    path(
        "settings/provider-accounts/<id:account_id>/",
        company_settings.provider_account_edit,
        name="provider_account_edit",
    ),
    path("later/<str:what>/<id:row_id>/approve", later.later_approve, name="later_approve"),
    path("later/<str:what>/<id:row_id>/reject", later.later_reject, name="later_reject"),
    path(
        "payments/<id:payment_id>/unallocate-for-refund",
        refunds.unallocate_first,
        name="refund_unallocate",
    ),
]
