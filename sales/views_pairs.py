"""Screens of invoices made in pairs: back-to-back (purchase and sale of one source line) and
intercompany (the sale in one company, the purchase in the other), each half's state side by
side so a pair that is half in AIQ is seen by a person."""

from django import forms
from django.shortcuts import render

from ledger.companies import entities_visible_ids
from ledger.models import InterCompanyConnection
from sales import selectors
from staff.views import clerk_required


class ShowForm(forms.Form):
    show = forms.ChoiceField(choices=[("open", "Not both in AIQ"), ("all", "All")], required=False)


def _open_only(request) -> bool:
    form = ShowForm(request.GET)
    return not (form.is_valid() and form.cleaned_data["show"] == "all")


@clerk_required
def back_to_back(request):
    open_only = _open_only(request)
    visible = entities_visible_ids(request.user)
    pairs = selectors.back_to_back_pairs(open_only=open_only, visible=visible)
    return render(
        request,
        "sales/back_to_back.html",
        {"pairs": pairs, "open_only": open_only, "form": ShowForm(request.GET)},
    )


@clerk_required
def intercompany(request):
    open_only = _open_only(request)
    visible = entities_visible_ids(request.user)
    connections = InterCompanyConnection.objects.select_related("entity").order_by(
        "entity__name", "local_account_code"
    )
    if visible is not None:
        connections = connections.filter(entity__in=visible)
    return render(
        request,
        "sales/intercompany.html",
        {
            "sales": selectors.intercompany_sales(unmatched_only=open_only, visible=visible),
            "connections": connections,
            "open_only": open_only,
            "form": ShowForm(request.GET),
        },
    )
