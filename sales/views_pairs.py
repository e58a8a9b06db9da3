"""Screens of invoices made in pairs: back-to-back (purchase and sale of one source line) and
intercompany (the sale in one company, the purchase in the other), each half's state side by
side so a pair that is half in AIQ is seen by a person; a form on each sends one more."""

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from core.forms import DATE_INPUT_FORMATS, DateInputGB
from core.money import MoneyError, amount_from_text
from ledger.models import InterCompanyConnection
from sales import selectors
from sales.models import BackToBackRule, InvoiceSource
from sales.normalised import NormalisedInvoice, NormalisedLine
from sales.services.back_to_back import BackToBackLine, back_to_back_submit
from sales.services.intercompany import intercompany_sale_submit
from staff.company_scope import company_ids
from staff.views import clerk_required, run_service


class ShowForm(forms.Form):
    show = forms.ChoiceField(choices=[("open", "Not both in AIQ"), ("all", "All")], required=False)


def _open_only(request) -> bool:
    form = ShowForm(request.GET)
    return not (form.is_valid() and form.cleaned_data["show"] == "all")


def _scoped(queryset, request, field="entity_id"):
    ids = company_ids(request)
    return queryset if ids is None else queryset.filter(**{f"{field}__in": ids})


class _LineForm(forms.Form):
    reference = forms.CharField(max_length=40)
    invoice_date = forms.DateField(input_formats=DATE_INPUT_FORMATS, widget=DateInputGB())
    description = forms.CharField(max_length=500)
    department = forms.CharField(max_length=50, required=False, label="BI code")

    def amount(self, name: str, currency: str):
        """The typed amount of field `name` in `currency`, or None with the field's error."""
        try:
            value = amount_from_text(self.data.get(name, ""), currency)
        except MoneyError as error:
            self.add_error(name, str(error))
            return None
        if value is None:
            self.add_error(name, "Enter an amount.")
        return value


class BackToBackForm(_LineForm):
    rule = forms.ModelChoiceField(queryset=BackToBackRule.objects.none())
    customer_code = forms.CharField(max_length=50)
    customer_name = forms.CharField(max_length=200)
    cost_net = forms.CharField(max_length=40, label="Cost (net)")
    currency = forms.CharField(min_length=3, max_length=3)

    def __init__(self, *args, request=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["rule"].queryset = _scoped(
            BackToBackRule.objects.filter(active=True).order_by("code"), request
        )


class InterCompanyForm(_LineForm):
    connection = forms.ModelChoiceField(queryset=InterCompanyConnection.objects.none())
    source = forms.ModelChoiceField(queryset=InvoiceSource.objects.none())
    net_amount = forms.CharField(max_length=40, label="Net")
    tax_code = forms.CharField(max_length=20, required=False, label="VAT code")
    tax_amount = forms.CharField(max_length=40, required=False, label="VAT")

    def __init__(self, *args, request=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["connection"].queryset = _scoped(
            InterCompanyConnection.objects.filter(valid=True).select_related("entity"), request
        )
        self.fields["source"].queryset = _scoped(InvoiceSource.objects.order_by("name"), request)


def _screen(request, template: str, **context):
    """A pairs screen: its rows (not both halves in AIQ, or all), the filter and the form."""
    return render(request, template, {"form": ShowForm(request.GET), **context})


def _send(request, form, build, service, done, back: str):
    """One more pair from a posted form: `build(form)` gives the service's arguments (or None
    with the form's errors), `done(pair)` the message; every refusal says nothing was sent."""
    arguments = build(form) if form.is_valid() else None
    if arguments is None or not form.is_valid():
        messages.error(request, f"Nothing was sent: {_errors(form)}")
        return redirect(back)
    outcome = run_service(service, actor=request.user, **arguments)
    if outcome.ok:
        messages.success(request, done(outcome.value))
    else:
        messages.error(request, f"Nothing was sent: {outcome.message}")
    return redirect(back)


@clerk_required
def back_to_back(request):
    open_only = _open_only(request)
    return _screen(
        request,
        "sales/back_to_back.html",
        heading="Back-to-back invoices",
        pairs=selectors.back_to_back_pairs(open_only=open_only, visible=company_ids(request)),
        open_only=open_only,
        new=BackToBackForm(request=request),
    )


def _back_to_back_line(form: BackToBackForm) -> dict | None:
    data = form.cleaned_data
    currency = data["currency"].upper()
    cost = form.amount("cost_net", currency)
    if cost is None:
        return None
    line = BackToBackLine(
        reference=data["reference"],
        customer_code=data["customer_code"].upper(),
        customer_name=data["customer_name"],
        description=data["description"],
        cost_net=cost,
        currency=currency,
        invoice_date=data["invoice_date"],
        department=data["department"].upper(),
    )
    return {"rule": data["rule"], "line": line}


@require_POST
@clerk_required
def back_to_back_new(request):
    return _send(
        request,
        BackToBackForm(request.POST, request=request),
        _back_to_back_line,
        back_to_back_submit,
        lambda pair: (
            f"{pair.reference}: purchase from {pair.rule.supplier_code} and sale to "
            f"{pair.customer_code} queued for AIQ."
        ),
        "sales:back_to_back",
    )


@clerk_required
def intercompany(request):
    open_only = _open_only(request)
    connections = _scoped(
        InterCompanyConnection.objects.select_related("entity").order_by(
            "entity__name", "local_account_code"
        ),
        request,
    )
    return _screen(
        request,
        "sales/intercompany.html",
        heading="Intercompany invoices",
        sales=selectors.intercompany_sales(unmatched_only=open_only, visible=company_ids(request)),
        connections=connections,
        open_only=open_only,
        new=InterCompanyForm(request=request),
    )


def _intercompany_invoice(form: InterCompanyForm) -> dict | None:
    data = form.cleaned_data
    connection = data["connection"]
    currency = connection.local_currency or connection.entity.base_currency
    net = form.amount("net_amount", currency)
    tax = amount_from_text("0", currency)
    if form.data.get("tax_amount", "").strip():
        tax = form.amount("tax_amount", currency)
    if net is None or tax is None:
        return None
    invoice = NormalisedInvoice(
        external_reference=data["reference"],
        customer_code=connection.local_account_code,
        customer_name=connection.local_account_name or connection.local_account_code,
        invoice_date=data["invoice_date"],
        currency=currency,
        description=data["description"],
        lines=[
            NormalisedLine(
                net_amount=net,
                tax_amount=tax,
                tax_code=data["tax_code"].upper(),
                description=data["description"],
                department=data["department"].upper(),
            )
        ],
    )
    return {"connection": connection, "source": data["source"], "invoice": invoice}


@require_POST
@clerk_required
def intercompany_new(request):
    return _send(
        request,
        InterCompanyForm(request.POST, request=request),
        _intercompany_invoice,
        intercompany_sale_submit,
        lambda sale: (
            f"{sale.reference}: sale in {sale.seller.name} and purchase in "
            f"{sale.buyer.name} queued for AIQ."
        ),
        "sales:intercompany",
    )


def _errors(form) -> str:
    return "; ".join(
        f"{form.fields[name].label or name.replace('_', ' ') if name in form.fields else name}: "
        f"{' '.join(errors)}"
        for name, errors in form.errors.items()
    )
