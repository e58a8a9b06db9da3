"""Request and response shapes, with Sage Business Cloud's field names (docs/api.md).

Ids are strings with a prefix saying what they name: contacts by AIQ customer code, bank
accounts by AIQ bank account code, GL accounts by code, tax rates by tax code; our own rows as
pay_<id> (a receipt), ref_<id> (a refund), calloc_<id>, orec_<id>, inv_<id>, cn_<id>,
rcpt_<id> (a receipt in AIQ's books, e.g. a payment on account entered in AIQ)."""

from rest_framework import serializers

AMOUNT = {"max_digits": 18, "decimal_places": 3}


def sensible_date(value):
    """A transaction date AIQ can book: refused far outside its periods (and the datetime
    range) rather than failing later."""
    if not 1990 <= value.year <= 2100:
        raise serializers.ValidationError("Give a date between 1990 and 2100.")
    return value


class ArtefactIn(serializers.Serializer):
    artefact_id = serializers.CharField(max_length=40)
    amount = serializers.DecimalField(**AMOUNT)
    discount = serializers.DecimalField(**AMOUNT, required=False, min_value=0)


class ContactPaymentIn(serializers.Serializer):
    transaction_type_id = serializers.ChoiceField(
        ["CUSTOMER_RECEIPT", "CUSTOMER_REFUND", "VENDOR_PAYMENT", "VENDOR_REFUND"],
        help_text="VENDOR_PAYMENT and VENDOR_REFUND are refused (422, docs/api.md): this "
        "product keeps no supplier ledger.",
    )
    payment_method_id = serializers.CharField(max_length=40, required=False, allow_blank=True)
    contact_id = serializers.CharField(max_length=50)
    bank_account_id = serializers.CharField(max_length=50)
    date = serializers.DateField(validators=[sensible_date])
    total_amount = serializers.DecimalField(**AMOUNT, min_value=0)
    reference = serializers.CharField(max_length=25, required=False, allow_blank=True)
    allocated_artefacts = ArtefactIn(many=True, required=False, max_length=200)


class ContactPaymentRequest(serializers.Serializer):
    contact_payment = ContactPaymentIn()


class ContactPaymentUpdateIn(serializers.Serializer):
    allocated_artefacts = serializers.ListField(
        child=serializers.DictField(), max_length=0, help_text="Only [] (remove allocations)"
    )


class ContactPaymentUpdateRequest(serializers.Serializer):
    contact_payment = ContactPaymentUpdateIn()


class SignedArtefactIn(serializers.Serializer):
    artefact_id = serializers.CharField(max_length=40)
    amount = serializers.DecimalField(**AMOUNT)


class ContactAllocationIn(serializers.Serializer):
    transaction_type_id = serializers.ChoiceField(["CUSTOMER_ALLOCATION"], required=False)
    contact_id = serializers.CharField(max_length=50, required=False)
    date = serializers.DateField(required=False, validators=[sensible_date])
    allocated_artefacts = SignedArtefactIn(many=True, min_length=2, max_length=200)


class ContactAllocationRequest(serializers.Serializer):
    contact_allocation = ContactAllocationIn()


class PaymentLineIn(serializers.Serializer):
    ledger_account_id = serializers.CharField(max_length=50)
    tax_rate_id = serializers.CharField(max_length=20, required=False, allow_blank=True)
    net_amount = serializers.DecimalField(**AMOUNT, min_value=0)
    tax_amount = serializers.DecimalField(**AMOUNT, required=False, min_value=0)
    total_amount = serializers.DecimalField(**AMOUNT, required=False, min_value=0)
    details = serializers.CharField(max_length=250, required=False, allow_blank=True)


OTHER_KINDS = ["OTHER_RECEIPT", "OTHER_PAYMENT", "OTHER_RECEIPT_REFUND", "OTHER_PAYMENT_REFUND"]


class OtherPaymentIn(serializers.Serializer):
    transaction_type_id = serializers.ChoiceField(
        OTHER_KINDS,
        help_text="Money in: OTHER_RECEIPT, OTHER_PAYMENT_REFUND; money out: OTHER_PAYMENT, "
        "OTHER_RECEIPT_REFUND. Amounts are positive either way.",
    )
    payment_method_id = serializers.CharField(max_length=40, required=False, allow_blank=True)
    contact_id = serializers.CharField(max_length=50, required=False, allow_blank=True)
    bank_account_id = serializers.CharField(max_length=50)
    date = serializers.DateField(validators=[sensible_date])
    reference = serializers.CharField(max_length=25, required=False, allow_blank=True)
    description = serializers.CharField(max_length=250, required=False, allow_blank=True)
    total_amount = serializers.DecimalField(**AMOUNT, required=False, min_value=0)
    payment_lines = PaymentLineIn(many=True, min_length=1, max_length=50)


class OtherPaymentRequest(serializers.Serializer):
    other_payment = OtherPaymentIn()


class SalesInvoiceLineIn(serializers.Serializer):
    description = serializers.CharField(max_length=500, required=False, allow_blank=True)
    ledger_account_id = serializers.CharField(max_length=50, required=False, allow_blank=True)
    product_id = serializers.CharField(
        max_length=50, required=False, allow_blank=True, help_text="Item code (an item invoice)"
    )
    quantity = serializers.DecimalField(
        max_digits=15, decimal_places=4, required=False, min_value=0
    )
    unit_price = serializers.DecimalField(**AMOUNT, required=False, min_value=0)
    net_amount = serializers.DecimalField(
        **AMOUNT, required=False, min_value=0, help_text="Default: quantity × unit_price"
    )
    tax_rate_id = serializers.CharField(max_length=20, required=False, allow_blank=True)
    tax_amount = serializers.DecimalField(
        **AMOUNT, required=False, min_value=0, help_text="Your VAT, posted to the cent"
    )
    department_id = serializers.CharField(
        max_length=50,
        required=False,
        allow_blank=True,
        help_text="AIQ BI code (department) of the line; a retired one is refused",
    )
    deferred_months = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=60,
        help_text="Deferred revenue: released to the line's account over this many months "
        "(12 for a year)",
    )

    def validate(self, data):
        if data.get("net_amount") is None:
            if data.get("quantity") is None or data.get("unit_price") is None:
                raise serializers.ValidationError(
                    {"net_amount": ["Give net_amount, or quantity and unit_price."]}
                )
            data["net_amount"] = data["quantity"] * data["unit_price"]
        if data.get("tax_rate_id") and data.get("tax_amount") is None:
            raise serializers.ValidationError(
                {"tax_amount": ["Give the VAT amount with a tax_rate_id (it is never recomputed)."]}
            )
        return data


class SalesInvoicePaymentIn(serializers.Serializer):
    """The payment of an already-paid order (a web shop's or a checkout's sale): AIQ posts the
    invoice, this receipt and their allocation in one call; the payment, when it reaches this
    product (Stripe, the bank), is linked to that receipt, not matched again."""

    total_amount = serializers.DecimalField(
        **AMOUNT, min_value=0, help_text="The invoice's total: a paid order is paid in full"
    )
    date = serializers.DateField(validators=[sensible_date], help_text="When it was paid")
    reference = serializers.CharField(
        max_length=100,
        help_text="The payment's own id (a Stripe pi_… or ch_…, the bank transfer's reference): "
        "the receipt's reference in AIQ, and how the payment is recognised when it arrives",
    )
    bank_account_id = serializers.CharField(
        max_length=50,
        required=False,
        allow_blank=True,
        help_text="AIQ bank account code the money went into; default: the company's",
    )


class SalesInvoiceIn(serializers.Serializer):
    contact_id = serializers.CharField(max_length=50, help_text="Customer code")
    contact_name = serializers.CharField(
        max_length=200, required=False, allow_blank=True, help_text="Needed for a new customer"
    )
    contact_email = serializers.EmailField(required=False, allow_blank=True)
    date = serializers.DateField(validators=[sensible_date])
    due_date = serializers.DateField(required=False, allow_null=True, validators=[sensible_date])
    reference = serializers.CharField(
        max_length=100, help_text="Your invoice number: one invoice per reference and company"
    )
    currency_id = serializers.CharField(max_length=3, required=False, allow_blank=True)
    notes = serializers.CharField(max_length=500, required=False, allow_blank=True)
    invoice_lines = SalesInvoiceLineIn(many=True, min_length=1, max_length=200)
    payment = SalesInvoicePaymentIn(
        required=False, allow_null=True, help_text="Already paid: the payment it was paid with"
    )


class SalesInvoiceRequest(serializers.Serializer):
    sales_invoice = SalesInvoiceIn()


# --- responses --------------------------------------------------------------------------------


class ArtefactOut(serializers.Serializer):
    artefact_id = serializers.CharField()
    amount = serializers.CharField()
    discount = serializers.CharField(required=False)


class OnAccountOut(serializers.Serializer):
    id = serializers.CharField()
    amount = serializers.CharField()


class ContactPaymentOut(serializers.Serializer):
    id = serializers.CharField()
    transaction_type_id = serializers.CharField()
    contact_id = serializers.CharField(allow_null=True)
    bank_account_id = serializers.CharField(allow_null=True)
    payment_method_id = serializers.CharField(allow_blank=True)
    date = serializers.DateField()
    total_amount = serializers.CharField()
    currency = serializers.CharField()
    reference = serializers.CharField(allow_blank=True)
    status = serializers.CharField()
    allocated_artefacts = ArtefactOut(many=True)
    payment_on_account = OnAccountOut(allow_null=True)
    aiq_transaction_id = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class ContactAllocationOut(serializers.Serializer):
    id = serializers.CharField()
    transaction_type_id = serializers.CharField()
    contact_id = serializers.CharField()
    date = serializers.DateField()
    currency = serializers.CharField()
    status = serializers.CharField()
    allocated_artefacts = ArtefactOut(many=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class PaymentLineOut(serializers.Serializer):
    ledger_account_id = serializers.CharField()
    tax_rate_id = serializers.CharField(allow_blank=True)
    net_amount = serializers.CharField()
    tax_amount = serializers.CharField()
    total_amount = serializers.CharField()
    details = serializers.CharField(allow_blank=True)


class OtherPaymentOut(serializers.Serializer):
    id = serializers.CharField()
    transaction_type_id = serializers.CharField()
    contact_id = serializers.CharField(allow_null=True)
    bank_account_id = serializers.CharField()
    date = serializers.DateField()
    reference = serializers.CharField(allow_blank=True)
    description = serializers.CharField()
    total_amount = serializers.CharField()
    currency = serializers.CharField()
    status = serializers.CharField()
    payment_lines = PaymentLineOut(many=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class PaymentAllocationOut(serializers.Serializer):
    id = serializers.CharField()
    artefact_id = serializers.CharField(allow_null=True)
    amount = serializers.CharField()
    discount = serializers.CharField()
    date = serializers.DateField()


class _DocumentOut(serializers.Serializer):
    """What invoices and credit notes share."""

    id = serializers.CharField()
    reference = serializers.CharField(allow_blank=True)
    contact_id = serializers.CharField()
    date = serializers.DateField()
    currency = serializers.CharField()
    net_amount = serializers.CharField()
    tax_amount = serializers.CharField()
    total_amount = serializers.CharField()
    outstanding_amount = serializers.CharField()
    status = serializers.CharField()
    aiq_transaction_id = serializers.IntegerField(allow_null=True)
    updated_at = serializers.DateTimeField()
    payments_allocations = PaymentAllocationOut(many=True, required=False)


class InvoiceOut(_DocumentOut):
    invoice_number = serializers.CharField(allow_blank=True)
    due_date = serializers.DateField(allow_null=True)


class CreditNoteOut(_DocumentOut):
    credit_note_number = serializers.CharField(allow_blank=True)


class CustomerOut(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    email = serializers.CharField(allow_blank=True)
    currency = serializers.CharField()
    updated_at = serializers.DateTimeField()


class BankAccountOut(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    currency = serializers.CharField()
    ledger_account_id = serializers.CharField()


class ProblemError(serializers.Serializer):
    field = serializers.CharField(allow_blank=True)
    message = serializers.CharField()


class Problem(serializers.Serializer):
    type = serializers.CharField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField(allow_blank=True)
    errors = ProblemError(many=True, required=False)


class SalesInvoiceLineOut(serializers.Serializer):
    description = serializers.CharField(allow_blank=True)
    ledger_account_id = serializers.CharField(allow_blank=True)
    product_id = serializers.CharField(allow_blank=True)
    quantity = serializers.CharField()
    net_amount = serializers.CharField()
    tax_rate_id = serializers.CharField(allow_blank=True)
    tax_amount = serializers.CharField()


class SalesInvoicePaymentOut(serializers.Serializer):
    total_amount = serializers.CharField()
    date = serializers.DateField()
    reference = serializers.CharField()
    bank_account_id = serializers.CharField()
    aiq_transaction_id = serializers.IntegerField(
        allow_null=True, help_text="AIQ's receipt, once posted with the invoice"
    )


class SalesInvoiceOut(serializers.Serializer):
    id = serializers.CharField()
    reference = serializers.CharField()
    contact_id = serializers.CharField()
    date = serializers.DateField()
    due_date = serializers.DateField(allow_null=True)
    currency = serializers.CharField()
    net_amount = serializers.CharField()
    tax_amount = serializers.CharField()
    total_amount = serializers.CharField()
    status = serializers.CharField()
    status_reason = serializers.CharField(allow_blank=True)
    invoice_type = serializers.CharField()
    invoice_number = serializers.CharField(allow_blank=True)
    aiq_transaction_id = serializers.IntegerField(allow_null=True)
    artefact_id = serializers.CharField(allow_null=True, help_text="inv_… once in the mirror")
    invoice_lines = SalesInvoiceLineOut(many=True)
    payment = SalesInvoicePaymentOut(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
