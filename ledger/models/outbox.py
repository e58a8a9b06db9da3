"""The outbox: each write to AIQ as a row (ledger/outbox/ runs them)."""

from django.db import models
from django.db.models import Q

from ledger.models.entities import Entity

# The command kinds that exist: kind -> label, one per registered executor. Filled by
# ledger.outbox.steps.command_kind_register from each owning app's AppConfig.ready(), so the
# field's choices are exactly the kinds something can send, and a new kind (in any app) needs
# no edit here and no migration (the field names this function, not a list).
COMMAND_KINDS: dict[str, str] = {}


def command_kind_choices() -> list[tuple[str, str]]:
    return list(COMMAND_KINDS.items())


class OutboxCommand(models.Model):
    """One write to AIQ. The queue only wakes work; this row is the truth about it.

    AIQ has no idempotency keys, so every command carries a deterministic external reference
    derived from the row; after any ambiguous outcome the executor reads back by that reference
    before sending again (see RELIABILITY.md).
    """

    class Kind(models.TextChoices):
        """ledger's own kinds and the ones payments had before kinds were registered; a new
        kind needs no member here (ledger/outbox/steps.py: command_kind_register)."""

        ENSURE_CUSTOMER = "ensure_customer", "Create or update customer"
        POST_RECEIPT = "post_receipt", "Post sales receipt"
        ALLOCATE = "allocate", "Allocate transactions"
        ALLOCATE_WITH_DISCOUNT = "allocate_discount", "Allocate with discount"
        UNALLOCATE = "unallocate", "Unallocate transactions"
        CREATE_CREDIT_NOTE = "create_credit_note", "Create and post credit note"
        POST_SALES_DEBIT_JOURNAL = "post_debit_journal", "Post sales debit journal"
        POST_GENERAL_JOURNAL = "post_general_journal", "Post general journal"
        ATTACH_DOCUMENT = "attach_document", "Attach document"
        POST_WRITE_OFF = "post_write_off", "Post write-off (sales credit journal)"
        STRIPE_REFUND = "stripe_refund", "Refund through Stripe"
        OTHER_RECEIPT = "other_receipt", "Post other receipt (sundry, to a GL account)"
        SALES_INVOICE = "sales_invoice", "Post batch sales invoice"
        SALES_ITEM_INVOICE = "sales_item_invoice", "Save and post item sales invoice"
        SALES_INVOICE_BULK = "sales_invoice_bulk", "Post batch sales invoices (bulk)"

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        IN_FLIGHT = "in_flight", "In flight"
        UNCERTAIN = "uncertain", "Uncertain (checking AIQ)"
        CONFIRMED = "confirmed", "Confirmed"
        FAILED = "failed", "Failed permanently"
        NEEDS_PERSON = "needs_person", "Needs a person"
        CANCELLED = "cancelled", "Cancelled"

    entity = models.ForeignKey(Entity, on_delete=models.PROTECT)
    kind = models.CharField(max_length=24, choices=command_kind_choices)
    payload = models.JSONField(default=dict, help_text="Arguments; never secrets.")
    external_reference = models.CharField(max_length=100)
    depends_on = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="dependents"
    )
    state = models.CharField(max_length=12, choices=State, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=8)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    last_error_code = models.CharField(max_length=100, blank=True)
    last_error_message = models.TextField(blank=True)
    result = models.JSONField(default=dict, blank=True, help_text="AIQ ids once confirmed.")
    # When the last send to AIQ started: AIQ may still commit it until OUTBOX_SETTLE_SECONDS
    # later, so an uncertain row is not read back (and resent) before then. Null = never sent.
    sent_at = models.DateTimeField(null=True, blank=True)
    # What the executor saw in AIQ just before sending (e.g. the AllocationIds already there),
    # so a read-back recognises its own write by AIQ's identity, never by what the mirror knows;
    # and answers that arrived after their lease ran out ("late_answers").
    evidence = models.JSONField(default=dict, blank=True)
    origin_type = models.CharField(max_length=40, blank=True, help_text='e.g. "allocation_plan"')
    origin_id = models.BigIntegerField(null=True, blank=True)
    # the origin's handler (ledger/outbox/origins.py) raised on the verdict: the sweeper runs it
    # again and the sync screen lists the command until it goes through
    origin_pending = models.BooleanField(default=False)
    origin_error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # the sweeper's query: due rows by state and time
            models.Index(fields=["state", "next_attempt_at"], name="outbox_due"),
            models.Index(fields=["origin_type", "origin_id"], name="outbox_origin"),
            # the sweeper's retry of origin handlers: only the few rows that need it
            models.Index(
                fields=["origin_pending"],
                condition=Q(origin_pending=True),
                name="outbox_origin_pending",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["entity", "external_reference"], name="outbox_external_reference_unique"
            ),
            models.CheckConstraint(
                condition=~Q(state="in_flight") | Q(lease_until__isnull=False),
                name="outbox_in_flight_has_lease",
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {self.external_reference} [{self.state}]"
