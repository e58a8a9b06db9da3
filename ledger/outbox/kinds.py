"""ledger's own command kinds: each one typed payload and one executor, registered here from
LedgerConfig.ready() exactly as another app registers its kinds from its own ready()
(payments/services/stripe_refund_step.py). See docs/architecture.md, "A new outbox command kind".
"""

from ledger.aiq.operations import AiqOperations
from ledger.models import OutboxCommand
from ledger.outbox import payloads
from ledger.outbox.executors import (
    MIRRORS,
    Executor,
    allocate_prepare,
    allocate_read_back,
    allocate_send,
    journal_executor,
    receipt_read_back,
    receipt_send,
    unallocate_prepare,
    unallocate_read_back,
    unallocate_send,
)
from ledger.outbox.executors_customers import (
    customer_mirror_apply,
    customer_read_back,
    customer_send,
)
from ledger.outbox.executors_departments import (
    KIND as UPDATE_DEPARTMENT,
)
from ledger.outbox.executors_departments import (  # noqa: I001
    UpdateDepartmentPayload,
    department_mirror,
    department_read_back,
    department_send,
)
from ledger.outbox.executors_documents import attach_mirror_apply, attach_read_back, attach_send
from ledger.outbox.executors_journals import (
    GeneralJournalPayload,
    general_journal_mirror,
    general_journal_read_back,
    general_journal_send,
)
from ledger.outbox.executors_refunds import credit_note_read_back, credit_note_send
from ledger.outbox.executors_sundry import sundry_read_back, sundry_send
from ledger.outbox.executors_supplier_payments import (
    KIND as SUPPLIER_PAYMENT,
)
from ledger.outbox.executors_supplier_payments import (  # noqa: I001
    SupplierPaymentPayload,
    supplier_payment_read_back,
    supplier_payment_send,
)
from ledger.outbox.steps import command_kind_register

Kind = OutboxCommand.Kind


def register() -> None:
    allocate = Executor(allocate_send, allocate_read_back, allocate_prepare)
    for kind, executor, payload in (
        (
            Kind.ENSURE_CUSTOMER,
            Executor(customer_send, customer_read_back),
            payloads.EnsureCustomerPayload,
        ),
        (Kind.POST_RECEIPT, Executor(receipt_send, receipt_read_back), payloads.ReceiptPayload),
        (Kind.ALLOCATE, allocate, payloads.AllocatePayload),
        (Kind.ALLOCATE_WITH_DISCOUNT, allocate, payloads.AllocatePayload),
        (
            Kind.UNALLOCATE,
            Executor(unallocate_send, unallocate_read_back, unallocate_prepare),
            payloads.UnallocatePayload,
        ),
        (
            Kind.CREATE_CREDIT_NOTE,
            Executor(credit_note_send, credit_note_read_back),
            payloads.CreditNotePayload,
        ),
        (
            Kind.POST_SALES_DEBIT_JOURNAL,
            journal_executor(AiqOperations.post_sales_debit_journal, "Refund"),
            payloads.JournalPayload,
        ),
        (
            Kind.ATTACH_DOCUMENT,
            Executor(attach_send, attach_read_back),
            payloads.AttachDocumentPayload,
        ),
        (
            Kind.POST_WRITE_OFF,
            journal_executor(AiqOperations.post_sales_credit_journal, "Write-off"),
            payloads.JournalPayload,
        ),
        (
            Kind.POST_GENERAL_JOURNAL,
            Executor(general_journal_send, general_journal_read_back),
            GeneralJournalPayload,
        ),
        (Kind.OTHER_RECEIPT, Executor(sundry_send, sundry_read_back), payloads.OtherReceiptPayload),
    ):
        command_kind_register(kind, executor=executor, payload=payload)
    command_kind_register(
        UPDATE_DEPARTMENT,
        executor=Executor(department_send, department_read_back),
        payload=UpdateDepartmentPayload,
        label="Update BI code (department)",
    )
    command_kind_register(
        SUPPLIER_PAYMENT,
        executor=Executor(supplier_payment_send, supplier_payment_read_back),
        payload=SupplierPaymentPayload,
        label="Post supplier payment",
    )
    MIRRORS[Kind.ENSURE_CUSTOMER] = customer_mirror_apply
    MIRRORS[Kind.ATTACH_DOCUMENT] = attach_mirror_apply
    MIRRORS[Kind.POST_GENERAL_JOURNAL] = general_journal_mirror
    MIRRORS[UPDATE_DEPARTMENT] = department_mirror
