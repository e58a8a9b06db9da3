"""Filter and upload forms for the ledger screens."""

import django_filters
from django import forms
from django.db.models import Q

from core.forms import DATE_INPUT_FORMATS, DateInputGB
from ledger.models import Customer, DocumentStatus, Entity, Invoice
from ledger.selectors import customer_search


def visible_companies(request):
    """The companies this person may pick in a filter (aiqrecon/companies.py)."""
    companies = Entity.objects.order_by("name")
    visible = getattr(request, "visible_company_ids", None) if request is not None else None
    return companies if visible is None else companies.filter(pk__in=sorted(visible))


class InvoiceFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(
        label="Invoice number or reference", method="search", max_length=100
    )
    status = django_filters.ChoiceFilter(
        label="Status", choices=DocumentStatus.choices, empty_label="Any"
    )
    entity = django_filters.ModelChoiceFilter(
        label="Company", queryset=visible_companies, empty_label="All companies"
    )
    customer = django_filters.CharFilter(label="Customer code", method="filter_customer")
    currency = django_filters.CharFilter(label="Currency", method="filter_currency", max_length=3)
    outstanding = django_filters.BooleanFilter(
        label="Open only",
        method="filter_open",
        widget=forms.CheckboxInput,
    )
    date_from = django_filters.DateFilter(
        label="Dated from",
        field_name="invoice_date",
        lookup_expr="gte",
        widget=DateInputGB(),
        input_formats=DATE_INPUT_FORMATS,
    )
    date_to = django_filters.DateFilter(
        label="Dated to",
        field_name="invoice_date",
        lookup_expr="lte",
        widget=DateInputGB(),
        input_formats=DATE_INPUT_FORMATS,
    )

    class Meta:
        model = Invoice
        fields: list[str] = []

    def search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(Q(invoice_number=value) | Q(external_reference=value))

    def filter_customer(self, queryset, name, value):
        return queryset.filter(customer__code=value.strip().upper())

    def filter_currency(self, queryset, name, value):
        return queryset.filter(currency=value.strip().upper())

    def filter_open(self, queryset, name, value):
        return queryset.filter(outstanding_amount__gt=0) if value else queryset


class CustomerFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(label="Code, name or email", method="search", max_length=100)
    currency = django_filters.CharFilter(label="Currency", method="filter_currency", max_length=3)

    class Meta:
        model = Customer
        fields: list[str] = []

    def search(self, queryset, name, value):
        return customer_search(queryset, value)

    def filter_currency(self, queryset, name, value):
        return queryset.filter(currency=value.strip().upper())


class AttachmentForm(forms.Form):
    """The upload's fields only: ledger.documents.attachment_check judges the file itself (type,
    size, content), for this form and for every other caller of document_attach."""

    file = forms.FileField(label="CSV or Excel breakdown (.csv, .xlsx; at most 5 MB)")
    description = forms.CharField(label="Description", max_length=200, required=False)
