"""Read-only resources: invoices and credit notes (with show_payments_allocations=true),
customers, bank accounts. Every list is the client's company only, paged by cursor, filtered by
contact, status, date and updated_since (incremental sync)."""

import functools

from django.contrib.auth.decorators import login_not_required
from django.utils.decorators import method_decorator
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers as drf
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from api import representations as shape
from api import serializers as s
from api.schema import ERRORS
from ledger.models import BankAccount, CreditNote, Customer, Invoice


class Cursor(CursorPagination):
    """Stable pages while rows change: the cursor is a position in (updated_at, id) order."""

    page_size = 50
    max_page_size = 200
    page_size_query_param = "page_size"
    ordering = ("updated_at", "id")


@method_decorator(login_not_required, name="dispatch")
class ApiView(APIView):
    """Token-authenticated (no session), scoped to the client's company."""

    def entity(self):
        return self.request.auth.entity


def by_prefixed_id(queryset, value: str, prefix: str):
    number = value.removeprefix(f"{prefix}_")
    if not number.isdigit() or len(number) > 18 or number == value:
        raise NotFound(f"No {prefix}_… with id {value!r}.")
    row = queryset.filter(pk=int(number)).first()
    if row is None:
        raise NotFound(f"{value} does not exist.")
    return row


class ListFilters(drf.Serializer):
    contact_id = drf.CharField(required=False, max_length=50)
    status = drf.CharField(required=False, max_length=20)
    from_date = drf.DateField(required=False)
    to_date = drf.DateField(required=False)
    updated_since = drf.DateTimeField(required=False)


LIST_PARAMETERS = [
    OpenApiParameter("contact_id", str, description="Customer code"),
    OpenApiParameter("status", str),
    OpenApiParameter("from_date", OpenApiTypes.DATE),
    OpenApiParameter("to_date", OpenApiTypes.DATE),
    OpenApiParameter("updated_since", OpenApiTypes.DATETIME, description="Changed at or after"),
    OpenApiParameter("page_size", int),
]
DETAIL_PARAMETERS = [OpenApiParameter("show_payments_allocations", bool)]


def filtered(
    request, queryset, date_field: str, status=lambda rows, value: rows.filter(status=value)
):
    """contact_id, status, from_date/to_date (on `date_field`) and updated_since from the
    query string; `status(rows, value)` filters by the state the list shows."""
    form = ListFilters(data=request.query_params)
    if not form.is_valid():
        raise ValidationError(form.errors)
    f = form.validated_data
    if "contact_id" in f:
        queryset = queryset.filter(customer__code=f["contact_id"].upper())
    if "status" in f:
        queryset = status(queryset, f["status"])
    if "from_date" in f:
        queryset = queryset.filter(**{f"{date_field}__gte": f["from_date"]})
    if "to_date" in f:
        queryset = queryset.filter(**{f"{date_field}__lte": f["to_date"]})
    if "updated_since" in f:
        queryset = queryset.filter(updated_at__gte=f["updated_since"])
    return queryset


@functools.cache
def paged(item):
    """The response shape of a cursor-paged list of `item` (one class per item: the schema
    names it once)."""
    return type(
        f"Paged{item.__name__}",
        (drf.Serializer,),
        {
            "next": drf.CharField(allow_null=True),
            "previous": drf.CharField(allow_null=True),
            "results": item(many=True),
        },
    )


def page(view, queryset, represent):
    paginator = Cursor()
    rows = paginator.paginate_queryset(queryset, view.request, view=view)
    return paginator.get_paginated_response([represent(r) for r in rows])


def _flag(request) -> bool:
    return str(request.query_params.get("show_payments_allocations", "")).lower() == "true"


class InvoiceList(ApiView):
    @extend_schema(
        operation_id="invoices_list",
        parameters=LIST_PARAMETERS,
        responses={(200, "application/json"): paged(s.InvoiceOut), **ERRORS},
    )
    def get(self, request):
        rows = filtered(
            request,
            Invoice.objects.filter(entity=self.entity()).select_related("customer"),
            "invoice_date",
        )
        return page(self, rows, shape.invoice)


class InvoiceDetail(ApiView):
    @extend_schema(
        operation_id="invoices_read",
        parameters=DETAIL_PARAMETERS,
        responses={(200, "application/json"): s.InvoiceOut, **ERRORS},
    )
    def get(self, request, artefact_id: str):
        rows = Invoice.objects.filter(entity=self.entity()).select_related("customer")
        row = by_prefixed_id(rows.prefetch_related("allocations"), artefact_id, "inv")
        return Response(shape.invoice(row, with_allocations=_flag(request)))


class CreditNoteList(ApiView):
    @extend_schema(
        operation_id="credit_notes_list",
        parameters=LIST_PARAMETERS,
        responses={(200, "application/json"): paged(s.CreditNoteOut), **ERRORS},
    )
    def get(self, request):
        rows = filtered(
            request,
            CreditNote.objects.filter(entity=self.entity()).select_related("customer"),
            "credit_date",
        )
        return page(self, rows, shape.credit_note)


class CreditNoteDetail(ApiView):
    @extend_schema(
        operation_id="credit_notes_read",
        parameters=DETAIL_PARAMETERS,
        responses={(200, "application/json"): s.CreditNoteOut, **ERRORS},
    )
    def get(self, request, artefact_id: str):
        rows = CreditNote.objects.filter(entity=self.entity()).select_related("customer")
        row = by_prefixed_id(rows.prefetch_related("allocations"), artefact_id, "cn")
        return Response(shape.credit_note(row, with_allocations=_flag(request)))


class CustomerList(ApiView):
    @extend_schema(
        operation_id="customers_list",
        parameters=[LIST_PARAMETERS[-2], LIST_PARAMETERS[-1]],
        responses={(200, "application/json"): paged(s.CustomerOut), **ERRORS},
    )
    def get(self, request):
        rows = Customer.objects.filter(entity=self.entity())
        since = request.query_params.get("updated_since")
        if since is not None:
            form = ListFilters(data={"updated_since": since})
            if not form.is_valid():
                raise ValidationError(form.errors)
            rows = rows.filter(updated_at__gte=form.validated_data["updated_since"])
        return page(self, rows, shape.customer)


class CustomerDetail(ApiView):
    @extend_schema(
        operation_id="customers_read",
        responses={(200, "application/json"): s.CustomerOut, **ERRORS},
    )
    def get(self, request, contact_id: str):
        row = Customer.objects.filter(entity=self.entity(), code=contact_id.upper()[:50]).first()
        if row is None:
            raise NotFound(f"No customer {contact_id!r}.")
        return Response(shape.customer(row))


class BankAccountList(ApiView):
    @extend_schema(
        operation_id="bank_accounts_list",
        responses={(200, "application/json"): s.BankAccountOut(many=True), **ERRORS},
    )
    def get(self, request):
        rows = BankAccount.objects.filter(entity=self.entity()).order_by("bank_account_code")
        return Response([shape.bank_account(r) for r in rows])


# --- Sage's names for the same documents (GET /sales_invoices/{id}?show_payments_allocations=true)


class SalesInvoiceList(InvoiceList):
    @extend_schema(
        operation_id="sales_invoices_list",
        parameters=LIST_PARAMETERS,
        responses={(200, "application/json"): paged(s.InvoiceOut), **ERRORS},
    )
    def get(self, request):
        return super().get(request)


class SalesInvoiceDetail(InvoiceDetail):
    @extend_schema(
        operation_id="sales_invoices_read",
        parameters=DETAIL_PARAMETERS,
        responses={(200, "application/json"): s.InvoiceOut, **ERRORS},
    )
    def get(self, request, artefact_id: str):
        return super().get(request, artefact_id)


class SalesCreditNoteList(CreditNoteList):
    @extend_schema(
        operation_id="sales_credit_notes_list",
        parameters=LIST_PARAMETERS,
        responses={(200, "application/json"): paged(s.CreditNoteOut), **ERRORS},
    )
    def get(self, request):
        return super().get(request)


class SalesCreditNoteDetail(CreditNoteDetail):
    @extend_schema(
        operation_id="sales_credit_notes_read",
        parameters=DETAIL_PARAMETERS,
        responses={(200, "application/json"): s.CreditNoteOut, **ERRORS},
    )
    def get(self, request, artefact_id: str):
        return super().get(request, artefact_id)
