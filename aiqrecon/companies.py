"""Every screen knows the company.

The middleware puts on each signed-in staff request:
- `visible_company_ids`: the companies this person may see and act on (None: all of them;
  ledger/companies.py: entities_visible_ids);
- `company_ids`: the companies the screen shows now, the header's switcher choice kept in the
  session (one company, or "All companies" for someone granted several), within the visible
  ones (None: every company). Lists filter with staff/company_scope.py.

and refuses, with a 404 before the view runs, any page or action whose URL names a payment,
plan, refund, invoice, customer, allocation, credit note... of a company the person may not
see: one check for every object URL, so a new action cannot forget it (the services a view
calls do not know who is asking for which company). 404, not 403: the other company's rows
are not even confirmed to exist.
"""

from django.db.models import Model
from django.http import Http404
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from ledger.companies import entities_for, entities_visible_ids
from ledger.models import (
    Allocation,
    CreditNote,
    Customer,
    Department,
    DuplicateWrite,
    Entity,
    Invoice,
    OutboxCommand,
    Receipt,
)
from payments.models import (
    AllocationPlan,
    ImportFormat,
    MatchRule,
    PayerMapping,
    Payment,
    Refund,
    StatementAccount,
    Unallocation,
)
from payments.models_money_later import ContactAllocation, CrossCompanyReceipt, OtherReceipt
from payments.models_provider import ProviderAccount
from sales.models import SalesBatch, SalesInvoice
from staff.company_scope import SESSION_KEY, company_id_from

# URL keyword -> (model, the lookup that reaches its company)
OBJECT_COMPANY: dict[str, tuple[type[Model], str]] = {
    "payment_id": (Payment, "entity_id"),
    "plan_id": (AllocationPlan, "payment__entity_id"),
    "refund_id": (Refund, "customer__entity_id"),
    "invoice_id": (Invoice, "entity_id"),
    "customer_id": (Customer, "entity_id"),
    "allocation_id": (Allocation, "entity_id"),
    "unallocation_id": (Unallocation, "allocation__entity_id"),
    "credit_note_id": (CreditNote, "entity_id"),
    "receipt_id": (Receipt, "entity_id"),
    "mapping_id": (PayerMapping, "customer__entity_id"),
    "account_id": (ProviderAccount, "entity_id"),
    "batch_id": (SalesBatch, "entity_id"),
    "command_id": (OutboxCommand, "entity_id"),
    "flag_id": (DuplicateWrite, "entity_id"),
    "department_id": (Department, "entity_id"),
    # the company settings screens (a shared rule or layout has no company: not refused here)
    "company_id": (Entity, "pk"),
    "rule_id": (MatchRule, "entity_id"),
    "layout_id": (ImportFormat, "entity_id"),
    "statement_account_id": (StatementAccount, "entity_id"),
}
# the same keyword naming another model on one namespace's screens (sales: its own invoices)
NAMESPACE_COMPANY: dict[tuple[str, str], tuple[type[Model], str]] = {
    ("sales", "invoice_id"): (SalesInvoice, "entity_id"),
}
# the /later/<what>/<row_id>/ actions: a cross-company receipt is the receiving company's
# (its service also asks that the person works for the invoice's company)
LATER_COMPANY = {
    "allocation": ContactAllocation,
    "other-receipt": OtherReceipt,
    "cross-company": CrossCompanyReceipt,
}
# the staff screens; the API (its own clients), the admin and webhooks are not scoped here
SCOPED_NAMESPACES = frozenset({"payments", "ledger", "sales", ""})


class CompanyScopeMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.visible_company_ids = None
        request.company_ids = None
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and not request.path.startswith(("/api/", "/webhooks/", "/admin/"))
        ):
            visible = entities_visible_ids(user)
            request.visible_company_ids = visible
            request.company_ids = _chosen(request.session.get(SESSION_KEY), visible)
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        visible = request.visible_company_ids
        match = request.resolver_match
        if visible is None or match is None or match.namespace not in SCOPED_NAMESPACES:
            return None
        for name, value in view_kwargs.items():
            entity_id = _company_of(name, value, view_kwargs, match.namespace)
            if entity_id is not None and entity_id not in visible:
                raise Http404("No such page.")
        return None


def _chosen(value, visible: frozenset[int] | None) -> list[int] | None:
    chosen = company_id_from(value)
    if chosen is not None and (visible is None or chosen in visible):
        return [chosen]
    return None if visible is None else sorted(visible)


def _company_of(name: str, value, kwargs, namespace: str = "") -> int | None:
    if name == "row_id":
        model = LATER_COMPANY.get(kwargs.get("what"))
        found = model.objects.filter(pk=value).values_list("entity_id", flat=True) if model else []
        return next(iter(found), None)
    known = NAMESPACE_COMPANY.get((namespace, name)) or OBJECT_COMPANY.get(name)
    if known is None:
        return None
    model, lookup = known
    return next(iter(model.objects.filter(pk=value).values_list(lookup, flat=True)), None)


def companies(request) -> dict:
    """The header's switcher: the companies this person may pick and the one chosen."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not hasattr(request, "company_ids"):
        return {}
    choices = list(entities_for(user).values_list("id", "name", "base_currency"))
    chosen = request.company_ids
    return {
        "company_choices": choices,
        "company_chosen": chosen[0] if chosen and len(chosen) == 1 else None,
        "company_all_label": "All companies",
    }


@require_POST
def company_switch(request):
    """Keep the chosen company (or all of them) in the session, then go back."""
    value = request.POST.get("company", "all")
    visible = getattr(request, "visible_company_ids", None)
    chosen = _chosen(value, visible)
    request.session[SESSION_KEY] = str(chosen[0]) if chosen and len(chosen) == 1 else "all"
    back = request.POST.get("next") or "/"
    safe = back.startswith("/") and back.isascii() and back.isprintable() and len(back) < 2000
    if not safe or not url_has_allowed_host_and_scheme(
        back, {request.get_host()}, request.is_secure()
    ):
        back = "/"
    return redirect(back)
