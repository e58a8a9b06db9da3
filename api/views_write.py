"""contact_payments, contact_allocations, other_payments: Sage's semantics mapped onto the
product's services, as the client's service user (same roles, thresholds, maker-checker and
audit as the browser). Every POST needs an Idempotency-Key (api/services.py `idempotent`)."""

import json
from decimal import Decimal

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, PolymorphicProxySerializer, extend_schema
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from api import representations as shape
from api import serializers as s
from api.http import PROBLEM, Refused, problem_handler
from api.schema import ERRORS, IDEMPOTENCY_KEY, WRITE_ERRORS
from api.services import KeyReused, idempotent, request_hash
from api.views_read import (
    DETAIL_PARAMETERS,
    LIST_PARAMETERS,
    ApiView,
    SalesInvoiceDetail,
    SalesInvoiceList,
    by_prefixed_id,
    filtered,
    page,
    paged,
)
from core.prepared import prepared
from ledger.models import BankAccount, CreditNote, Customer, Invoice, Receipt
from payments.models import (
    AllocationPlan,
    ContactAllocation,
    OtherReceipt,
    Payment,
    Refund,
    Source,
)
from payments.services import contact_allocations, other_receipts, refunds
from payments.services.plan_lines import LineInput, locked_invoices
from payments.services.plans import plan_propose_submit
from sales.models import InvoiceSource, SalesInvoice
from sales.normalised import NormalisedInvoice, NormalisedLine, NormalisedPaid
from sales.services.invoices import sales_invoice_submit

ZERO = Decimal(0)
API_SOURCE = "API"  # the invoice source (sales.models.InvoiceSource) of POST /sales_invoices


class WriteView(ApiView):
    def idempotent_post(self, request, serializer_class, run) -> Response:
        key = request.headers.get("Idempotency-Key", "")
        if not key.strip():
            raise Refused("Send an Idempotency-Key header with every POST.", "Idempotency-Key", 400)
        if len(key) > 255:
            raise Refused("The Idempotency-Key is longer than 255.", "Idempotency-Key", 400)
        fingerprint = request_hash(request.method, request.path, request.data)

        def attempt(key_id: int):
            self.idempotency_key_id = key_id  # unique: names what this request makes
            try:
                form = serializer_class(data=request.data)
                form.is_valid(raise_exception=True)
                status, body = run(form.validated_data)
                # stored as the client will read it (dates, Decimals as JSON strings)
                return status, json.loads(JSONRenderer().render(body))
            except (
                Refused,
                exceptions.APIException,
                DjangoValidationError,
                DjangoPermissionDenied,
            ) as error:
                answer = problem_handler(error, {})
                return answer.status_code, dict(answer.data)

        try:
            status, body, replayed = idempotent(
                client=request.auth, key=key, fingerprint=fingerprint, run=attempt
            )
        except KeyReused:
            raise Refused(
                "This Idempotency-Key was used with a different request.", "Idempotency-Key", 409
            ) from None
        # keys sorted: the stored answer comes back from a JSON column in its own key order
        # (PostgreSQL's jsonb), and a replay must be the same bytes as the first answer
        response = HttpResponse(
            json.dumps(body, sort_keys=True, separators=(",", ":")),
            status=status,
            content_type=PROBLEM if status >= 400 else "application/json",
        )
        if replayed:
            response["Idempotent-Replayed"] = "true"
        return response

    # --- look-ups in the client's company (422 naming the field when not found) --------------

    def customer(self, code: str, field: str = "contact_id") -> Customer:
        rows = _customer(self.entity().pk, code.upper())
        if not rows:
            raise Refused(f"No customer {code!r}.", field)
        return rows[0]

    def bank(self, code: str, field: str = "bank_account_id") -> BankAccount:
        rows = _bank(self.entity().pk, code)
        if not rows:
            raise Refused(f"No bank account {code!r}.", field)
        return rows[0]

    def invoices(self, artefacts: list, field: str) -> list[Invoice]:
        """The inv_ ids of allocated_artefacts, read and locked (FOR UPDATE, in id order, as
        the plan's checks want them) in one query; 422 naming the first that is not an invoice
        of this company."""
        numbers = []
        for number, item in enumerate(artefacts):
            prefix, _, pk = item["artefact_id"].partition("_")
            if prefix != "inv" or not pk.isdigit() or len(pk) > 18:
                raise Refused(
                    "A receipt pays invoices (inv_ ids).", f"{field}[{number}].artefact_id"
                )
            numbers.append(int(pk))
        found = {row.pk: row for row in _invoices_locked(self.entity().pk, numbers)}
        for number, pk in enumerate(numbers):
            if pk not in found:
                raise Refused(
                    f"{artefacts[number]['artefact_id']} does not exist.",
                    f"{field}[{number}].artefact_id",
                )
        return [found[pk] for pk in numbers]

    def artefact(self, value: str, field: str):
        """inv_ / cn_ / rcpt_ / pay_ ids of this company; 422 when there is none."""
        prefix, _, number = value.partition("_")
        models = {
            "inv": Invoice,
            "cn": CreditNote,
            "rcpt": Receipt,
            "pay": Payment,
        }
        if prefix not in models or not number.isdigit() or len(number) > 18:
            raise Refused(f"{value!r} is not an inv_, cn_, rcpt_ or pay_ id.", field)
        row = models[prefix].objects.filter(entity=self.entity(), pk=int(number)).first()
        if row is None:
            raise Refused(f"{value} does not exist.", field)
        return row


# the look-ups of every POST, compiled once per shape (core/prepared.py)
@prepared
def _customer(entity_id: int, code: str):
    return Customer.objects.filter(entity_id=entity_id, code=code)[:1]


@prepared
def _bank(entity_id: int, code: str):
    return BankAccount.objects.filter(entity_id=entity_id, bank_account_code=code)[:1]


@prepared
def _invoices_locked(entity_id: int, numbers: list[int]):
    return locked_invoices(Invoice.objects.filter(entity_id=entity_id, pk__in=numbers))


# --- contact_payments -------------------------------------------------------------------------


def _payments(entity):
    return (
        Payment.objects.filter(entity=entity)
        .select_related("customer", "receipt__bank_account", "bank_account")
        .prefetch_related("plans__lines", "plans__customer")
    )


def _refunds(entity):
    return Refund.objects.filter(customer__entity=entity).select_related(
        "customer__entity__default_bank_account", "receipt__bank_account", "bank_account"
    )


def _by_state(rows, value):
    return rows.filter(state=value)


def _by_plan_state(rows, value):
    """A receipt's status is its live plan's state, or the payment's own with no plan."""
    live = AllocationPlan.objects.filter(payment=OuterRef("pk"), state__in=AllocationPlan.SHOWN)
    return rows.filter(
        Q(Exists(live.filter(state=value))) | (Q(match_state=value) & ~Q(Exists(live)))
    )


# Sage's supplier kinds of contact_payments, and why each is refused here (docs/api.md)
_NO_SUPPLIER_LEDGER = (
    "this product keeps no supplier ledger: AIQ's suppliers, their invoices and balances are "
    "not mirrored here, so a supplier's money could not be checked, allocated or followed. "
    "Book it in AIQ."
)
VENDOR_KINDS = {
    "VENDOR_PAYMENT": "Vendor payments are not taken through this API. AIQ has an operation "
    f"for them (SavePurchasePayment), but {_NO_SUPPLIER_LEDGER}",
    "VENDOR_REFUND": "Vendor refunds are not taken through this API. AIQ has no operation "
    f"for money a supplier pays back, and {_NO_SUPPLIER_LEDGER}",
}


class ContactPayments(WriteView):
    @extend_schema(
        operation_id="contact_payments_list",
        parameters=[
            OpenApiParameter(
                "transaction_type_id",
                str,
                enum=["CUSTOMER_RECEIPT", "CUSTOMER_REFUND", "VENDOR_PAYMENT", "VENDOR_REFUND"],
                description="VENDOR_PAYMENT and VENDOR_REFUND: 400, no supplier ledger here",
            ),
            *LIST_PARAMETERS,
        ],
        responses={(200, "application/json"): paged(s.ContactPaymentOut), **ERRORS},
    )
    def get(self, request):
        kind = request.query_params.get("transaction_type_id", "CUSTOMER_RECEIPT")
        if kind == "CUSTOMER_REFUND":
            rows = filtered(request, _refunds(self.entity()), "created_at__date", _by_state)
            return page(self, rows, shape.refund)
        if kind in VENDOR_KINDS:
            raise exceptions.ValidationError({"transaction_type_id": [VENDOR_KINDS[kind]]})
        if kind != "CUSTOMER_RECEIPT":
            raise exceptions.ValidationError(
                {"transaction_type_id": ["CUSTOMER_RECEIPT or CUSTOMER_REFUND."]}
            )
        rows = filtered(request, _payments(self.entity()), "received_at__date", _by_plan_state)
        return page(self, rows, shape.contact_payment)

    @extend_schema(
        operation_id="contact_payments_create",
        parameters=[IDEMPOTENCY_KEY],
        request=s.ContactPaymentRequest,
        responses={(201, "application/json"): s.ContactPaymentOut, **WRITE_ERRORS},
    )
    def post(self, request):
        return self.idempotent_post(request, s.ContactPaymentRequest, self.create)

    def create(self, data):
        data = data["contact_payment"]
        if data["transaction_type_id"] in VENDOR_KINDS:
            raise Refused(VENDOR_KINDS[data["transaction_type_id"]], "transaction_type_id")
        customer = self.customer(data["contact_id"])
        bank = self.bank(data["bank_account_id"])
        if data["transaction_type_id"] == "CUSTOMER_REFUND":
            return self.refund(data, customer, bank)
        return self.receipt(data, customer, bank)

    def receipt(self, data, customer, bank):
        """A customer receipt, allocated to any number of invoices, the rest on account."""
        if bank.currency != customer.currency:
            raise Refused(
                f"Bank account {bank.bank_account_code} is in {bank.currency}; "
                f"{customer.code} pays in {customer.currency}.",
                "bank_account_id",
            )
        artefacts = data.get("allocated_artefacts") or []
        invoices = self.invoices(artefacts, "contact_payment.allocated_artefacts")
        lines = []
        for number, item in enumerate(artefacts):
            field = f"contact_payment.allocated_artefacts[{number}]"
            invoice = invoices[number]
            if item["amount"] <= 0:
                raise Refused("The amount must be greater than zero.", f"{field}.amount")
            lines.append(
                LineInput(
                    invoice_id=invoice.pk,
                    amount=item["amount"],
                    discount_amount=item.get("discount") or ZERO,
                )
            )
        allocated = sum((line.amount for line in lines), ZERO)
        if data["total_amount"] < allocated or data["total_amount"] <= 0:
            raise Refused(
                f"total_amount cannot be less than the allocated artefacts' amounts ({allocated}).",
                "contact_payment.total_amount",
            )
        payment = Payment(
            entity=self.entity(),
            source=Source.API,
            # unique without reading the new row's id: the request's idempotency key row's
            external_id=f"api-{self.request.auth.pk}-{self.idempotency_key_id}",
            amount=data["total_amount"],
            currency=customer.currency,
            received_at=timezone.make_aware(
                timezone.datetime.combine(data["date"], timezone.datetime.min.time())
            ),
            payer_name=customer.name,
            description=data.get("reference", ""),
            customer=customer,
            bank_account=bank,
            raw={"payment_method_id": data.get("payment_method_id", ""), "api": True},
        )
        # the foreign keys were just read; the constraints are the database's
        payment.full_clean(
            exclude=[f.name for f in Payment._meta.fields if f.is_relation],
            validate_unique=False,
            validate_constraints=False,
        )
        with transaction.atomic():  # a refusal rolls back the payment with the plan
            plan = plan_propose_submit(
                payment=payment,
                lines=lines,
                actor=self.request.user,
                customer=customer,
                invoices={invoice.pk: invoice for invoice in invoices},
            )
        return 201, shape.contact_payment(payment, plan=plan, lines=lines)

    def refund(self, data, customer, bank):
        """CUSTOMER_REFUND of a credit note's open amount (cn_) or of money on account (pay_)."""
        artefacts = data.get("allocated_artefacts") or []
        field = "contact_payment.allocated_artefacts"
        if len(artefacts) != 1:
            raise Refused("A refund names one credit note or payment on account.", field)
        item = artefacts[0]
        target = self.artefact(item["artefact_id"], f"{field}[0].artefact_id")
        if data["total_amount"] > item["amount"] or data["total_amount"] <= 0:
            raise Refused(
                "total_amount cannot be more than the allocated artefact's amount.",
                "contact_payment.total_amount",
            )
        if getattr(target, "customer_id", None) not in (customer.pk, None):
            raise Refused(f"{item['artefact_id']} is not {customer.code}'s.", "contact_id")
        common = {
            "actor": self.request.user,
            "amount": data["total_amount"],
            "reason": data.get("reference") or "Refund through the API",
            "bank_account": bank,
        }
        if isinstance(target, Receipt):
            # the payment_on_account id a receipt's answer gives (Sage: refund the
            # payment_on_account_id the PUT returned)
            paid = Payment.objects.filter(entity=self.entity(), receipt=target).first()
            if paid is None:
                raise Refused(
                    f"{item['artefact_id']} was entered in AIQ, not through this product; "
                    "refund it in AIQ.",
                    f"{field}[0].artefact_id",
                )
            target = paid
        if isinstance(target, CreditNote):
            row = refunds.refund_request(kind="refund_credit_note", credit_note=target, **common)
        elif isinstance(target, Payment):
            row = refunds.refund_request(kind="refund_on_account", payment=target, **common)
        else:
            raise Refused(
                "Refund a credit note (cn_) or a payment on account (pay_).", f"{field}[0]"
            )
        return 201, shape.refund(_refunds(self.entity()).get(pk=row.pk))


class ContactPaymentDetail(WriteView):
    @extend_schema(
        operation_id="contact_payments_read",
        responses={(200, "application/json"): s.ContactPaymentOut, **ERRORS},
    )
    def get(self, request, payment_id: str):
        if payment_id.startswith("ref_"):
            return Response(
                shape.refund(by_prefixed_id(_refunds(self.entity()), payment_id, "ref"))
            )
        return Response(
            shape.contact_payment(by_prefixed_id(_payments(self.entity()), payment_id, "pay"))
        )

    @extend_schema(
        operation_id="contact_payments_update",
        request=s.ContactPaymentUpdateRequest,
        responses={(200, "application/json"): s.ContactPaymentOut, **WRITE_ERRORS},
    )
    def put(self, request, payment_id: str):
        """Only `"allocated_artefacts": []`: remove the receipt's allocations (each reversed in
        AIQ with UnallocateTransactions), so the money is on account and can be refunded."""
        form = s.ContactPaymentUpdateRequest(data=request.data)
        form.is_valid(raise_exception=True)
        payment = by_prefixed_id(_payments(self.entity()), payment_id, "pay")
        if payment.receipt is None:
            raise Refused("This payment is not in AIQ as a receipt yet.", "payment_id")
        # each undo above the approval threshold waits for a second person, as in the browser
        refunds.refund_unallocate_first(
            payment=payment, actor=request.user, reason="allocations removed through the API"
        )
        return Response(shape.contact_payment(_payments(self.entity()).get(pk=payment.pk)))


# --- contact_allocations ----------------------------------------------------------------------


class ContactAllocations(WriteView):
    @extend_schema(
        operation_id="contact_allocations_list",
        parameters=LIST_PARAMETERS,
        responses={(200, "application/json"): paged(s.ContactAllocationOut), **ERRORS},
    )
    def get(self, request):
        rows = ContactAllocation.objects.filter(entity=self.entity()).select_related("customer")
        rows = filtered(request, rows.prefetch_related("lines"), "allocation_date", _by_state)
        return page(self, rows, shape.contact_allocation)

    @extend_schema(
        operation_id="contact_allocations_create",
        parameters=[IDEMPOTENCY_KEY],
        request=s.ContactAllocationRequest,
        responses={(201, "application/json"): s.ContactAllocationOut, **WRITE_ERRORS},
    )
    def post(self, request):
        return self.idempotent_post(request, s.ContactAllocationRequest, self.create)

    def create(self, data):
        data = data["contact_allocation"]
        field = "contact_allocation.allocated_artefacts"
        invoices, credits = [], []
        total = ZERO
        for number, item in enumerate(data["allocated_artefacts"]):
            row = self.artefact(item["artefact_id"], f"{field}[{number}].artefact_id")
            total += item["amount"]
            if item["amount"] > 0 and isinstance(row, Invoice):
                invoices.append((row, item["amount"]))
            elif item["amount"] < 0 and not isinstance(row, Invoice):
                credits.append((row, -item["amount"]))
            else:
                raise Refused(
                    "Invoices are allocated with positive amounts, the payment on account or "
                    "credit note with a negative one.",
                    f"{field}[{number}].amount",
                )
        if total != 0:
            raise Refused(
                f"The amounts must sum to zero (they sum to {total.normalize():f}).", field
            )
        if len(credits) != 1:
            raise Refused("Give one payment on account or credit note (negative).", field)
        credit, _amount = credits[0]
        if isinstance(credit, Payment):
            if credit.receipt is None:
                raise Refused(contact_allocations.FULLY_PAID, field)
            credit = credit.receipt
        if "contact_id" in data and self.customer(data["contact_id"]).pk != credit.customer_id:
            raise Refused(f"{data['contact_id']} is not the credit's customer.", "contact_id")
        row = contact_allocations.contact_allocation_create(
            actor=self.request.user,
            lines=invoices,
            receipt=credit if isinstance(credit, Receipt) else None,
            credit_note=credit if isinstance(credit, CreditNote) else None,
            allocation_date=data.get("date"),
        )
        return 201, shape.contact_allocation(row)


class ContactAllocationDetail(WriteView):
    @extend_schema(
        operation_id="contact_allocations_read",
        responses={(200, "application/json"): s.ContactAllocationOut, **ERRORS},
    )
    def get(self, request, allocation_id: str):
        rows = ContactAllocation.objects.filter(entity=self.entity()).select_related("customer")
        return Response(shape.contact_allocation(by_prefixed_id(rows, allocation_id, "calloc")))


# --- other_payments ---------------------------------------------------------------------------


class OtherPayments(WriteView):
    @extend_schema(
        operation_id="other_payments_list",
        parameters=[
            OpenApiParameter(
                "transaction_type_id", str, enum=s.OTHER_KINDS, description="none: every kind"
            ),
            *LIST_PARAMETERS,
        ],
        responses={(200, "application/json"): paged(s.OtherPaymentOut), **ERRORS},
    )
    def get(self, request):
        rows = OtherReceipt.objects.filter(entity=self.entity()).select_related(
            "customer", "bank_account"
        )
        kind = request.query_params.get("transaction_type_id")
        if kind is not None:
            if kind not in s.OTHER_KINDS:
                raise exceptions.ValidationError(
                    {"transaction_type_id": [f"One of {', '.join(s.OTHER_KINDS)}."]}
                )
            rows = rows.filter(kind=kind)
        rows = filtered(request, rows.prefetch_related("lines"), "receipt_date", _by_state)
        return page(self, rows, shape.other_payment)

    @extend_schema(
        operation_id="other_payments_create",
        parameters=[IDEMPOTENCY_KEY],
        request=s.OtherPaymentRequest,
        responses={(201, "application/json"): s.OtherPaymentOut, **WRITE_ERRORS},
    )
    def post(self, request):
        return self.idempotent_post(request, s.OtherPaymentRequest, self.create)

    def create(self, data):
        data = data["other_payment"]
        bank = self.bank(data["bank_account_id"])
        customer = self.customer(data["contact_id"]) if data.get("contact_id") else None
        kind = data["transaction_type_id"]
        row = other_receipts.other_receipt_create(
            actor=self.request.user,
            kind=kind,
            bank_account=bank,
            customer=customer,
            receipt_date=data["date"],
            reference=data.get("reference", ""),
            description=data.get("description")
            or data.get("reference")
            or OtherReceipt.Kind(kind).label.split(" (")[0],
            total_amount=data.get("total_amount"),
            lines=[
                {
                    "gl_account_code": line["ledger_account_id"],
                    "tax_code": line.get("tax_rate_id", ""),
                    "net_amount": line["net_amount"],
                    "tax_amount": line.get("tax_amount"),
                    "total_amount": line.get("total_amount"),
                    "description": line.get("details", ""),
                }
                for line in data["payment_lines"]
            ],
        )
        return 201, shape.other_payment(row)


class OtherPaymentDetail(WriteView):
    @extend_schema(
        operation_id="other_payments_read",
        responses={(200, "application/json"): s.OtherPaymentOut, **ERRORS},
    )
    def get(self, request, other_id: str):
        rows = OtherReceipt.objects.filter(entity=self.entity()).select_related(
            "customer", "bank_account"
        )
        return Response(shape.other_payment(by_prefixed_id(rows, other_id, "orec")))


# --- sales_invoices ---------------------------------------------------------------------------


def _sales_answer(row) -> dict:
    return shape.sales_invoice(row, artefact_id=shape.sales_invoice_mirrors([row]).get(row.pk))


class SalesInvoices(WriteView, SalesInvoiceList):
    """GET: the company's invoices as AIQ has them (the mirror, as /invoices). POST: a new
    sales invoice into AIQ through the invoicing service (sales/services/invoices.py): checked,
    its customer made in AIQ first when new, credit-checked, posted once through the outbox;
    the same reference with the same content answers with the same invoice, with other content
    once AIQ has it: 422 "Raise a credit note"."""

    @extend_schema(
        operation_id="sales_invoices_create",
        parameters=[IDEMPOTENCY_KEY],
        request=s.SalesInvoiceRequest,
        responses={(201, "application/json"): s.SalesInvoiceOut, **WRITE_ERRORS},
    )
    def post(self, request):
        return self.idempotent_post(request, s.SalesInvoiceRequest, self.create)

    def create(self, data):
        data = data["sales_invoice"]
        entity = self.entity()
        code = data["contact_id"].strip().upper()
        known = Customer.objects.filter(entity=entity, code=code).first()
        name = (data.get("contact_name") or "").strip() or (known.name if known else "")
        if not name:
            raise Refused(f"{code} is a new customer: give contact_name.", "contact_name")
        currency = (data.get("currency_id") or "").upper() or (
            known.currency if known else entity.base_currency
        )
        invoice = NormalisedInvoice(
            external_reference=data["reference"].strip(),
            customer_code=code,
            customer_name=name,
            customer_email=data.get("contact_email") or (known.email if known else ""),
            invoice_date=data["date"],
            due_date=data.get("due_date"),
            currency=currency,
            description=data.get("notes", ""),
            lines=[
                NormalisedLine(
                    net_amount=line["net_amount"],
                    tax_amount=line.get("tax_amount") or ZERO,
                    tax_code=line.get("tax_rate_id", ""),
                    description=line.get("description", ""),
                    item_code=line.get("product_id", ""),
                    gl_account_code=line.get("ledger_account_id", ""),
                    quantity=line.get("quantity") or Decimal(1),
                    department=line.get("department_id", ""),
                    deferred_months=line.get("deferred_months"),
                )
                for line in data["invoice_lines"]
            ],
            paid=self.paid(data.get("payment")),
        )
        source, _ = InvoiceSource.objects.get_or_create(
            entity=entity,
            code=API_SOURCE,
            defaults={
                "name": "REST API",
                "type_reason": "The calling system computes VAT: batch invoices post its VAT "
                "to the cent.",
            },
        )
        row = sales_invoice_submit(
            entity=entity, source=source, invoice=invoice, actor=self.request.user
        )
        return 201, _sales_answer(row)

    def paid(self, payment: dict | None) -> NormalisedPaid | None:
        if not payment:
            return None
        code = (payment.get("bank_account_id") or "").strip()
        if code:
            bank = self.bank(code, "payment.bank_account_id")
        else:
            bank = self.entity().default_bank_account
            if bank is None:
                raise Refused(
                    "The company has no default bank account: give bank_account_id.",
                    "payment.bank_account_id",
                )
        return NormalisedPaid(
            amount=payment["total_amount"],
            bank_account_code=bank.bank_account_code,
            reference=payment["reference"].strip(),
            paid_on=payment["date"],
        )


class SalesInvoiceDetailWithSubmissions(SalesInvoiceDetail):
    @extend_schema(
        operation_id="sales_invoices_read",
        parameters=DETAIL_PARAMETERS,
        responses={
            (200, "application/json"): PolymorphicProxySerializer(
                component_name="SalesInvoiceOrInvoice",
                serializers=[s.SalesInvoiceOut, s.InvoiceOut],
                resource_type_field_name=None,
            ),
            **ERRORS,
        },
    )
    def get(self, request, artefact_id: str):
        """sinv_…: an invoice sent through POST /sales_invoices, on its way into AIQ;
        inv_…: an invoice as AIQ has it (as /invoices/{id})."""
        if artefact_id.startswith("sinv_"):
            rows = SalesInvoice.objects.filter(entity=self.entity()).prefetch_related("lines")
            return Response(_sales_answer(by_prefixed_id(rows, artefact_id, "sinv")))
        return super().get(request, artefact_id)
