"""Company settings: each company's match rules, statement layouts, bank accounts, Stripe and
GoCardless accounts (clearing and GL accounts) and approval threshold, for a finance manager
(the approver role) of the company and group finance. Another company's settings are a 404
(aiqrecon/companies.py: the URL's company, rule, layout or account); a change is made by
payments/services/company_settings.py, which checks who asks and audits it."""

from dataclasses import dataclass

from django.contrib import messages
from django.db.models import Q
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from ledger.companies import approval_threshold, entities_for
from ledger.models import Entity
from payments.forms_company import (
    ImportFormatForm,
    MatchRuleForm,
    ProviderAccountForm,
    StatementAccountForm,
    ThresholdForm,
)
from payments.models import ImportFormat, MatchRule, SettlementTerms, StatementAccount
from payments.models_provider import ProviderAccount
from payments.services.company_settings import (
    NOT_MANAGER,
    SHARED_ONLY_GROUP,
    may_manage,
    setting_copy,
    setting_save,
)
from staff.company_scope import visible_scope
from staff.views import approver_required, get_or_404, run_service


def _company(request, company_id) -> Entity:
    return get_or_404(visible_scope(Entity.objects.all(), request, "pk"), pk=company_id)


@approver_required
def settings_list(request):
    """Every company this person works for, with how many of each setting it has."""
    rows = []
    for company in entities_for(request.user):
        rows.append(
            {
                "company": company,
                "threshold": approval_threshold(company.pk, entity=company),
                "own_threshold": company.approval_threshold is not None,
                "rules": MatchRule.objects.filter(entity=company).count(),
                "layouts": ImportFormat.objects.filter(entity=company).count(),
                "bank_accounts": StatementAccount.objects.filter(entity=company).count(),
                "provider_accounts": ProviderAccount.objects.filter(entity=company).count(),
            }
        )
    shared = {
        "rules": MatchRule.objects.filter(entity__isnull=True).count(),
        "layouts": ImportFormat.objects.filter(entity__isnull=True).count(),
    }
    return render(request, "payments/settings_list.html", {"rows": rows, "shared": shared})


def _rules_in_effect(company: Entity) -> list[dict]:
    """The company's own rules and the shared ones, each saying whether it applies to the
    company's payments (a company's own enabled rule of a kind replaces the shared ones of
    that kind: payments/matching/index.py rules_for)."""
    rules = list(
        MatchRule.objects.filter(Q(entity=company) | Q(entity__isnull=True)).order_by("order", "id")
    )
    own_kinds = {r.kind for r in rules if r.entity_id == company.pk and r.enabled}
    rows = []
    for rule in rules:
        replaced = rule.entity_id is None and rule.kind in own_kinds
        rows.append({"rule": rule, "own": rule.entity_id is not None, "replaced": replaced})
    return rows


@approver_required
def settings_company(request, company_id):
    company = _company(request, company_id)
    form = ThresholdForm(
        request.POST or None,
        entity=company,
        initial={"approval_threshold": company.approval_threshold},
    )
    if request.method == "POST" and form.is_valid():
        company.approval_threshold = form.cleaned_data["approval_threshold"]
        outcome = run_service(
            setting_save,
            actor=request.user,
            obj=company,
            fields=["approval_threshold"],
            what=f"{company.name}'s approval threshold",
        )
        _say(request, outcome, "The approval threshold is saved; it applies from now on.")
        if outcome.ok:
            return redirect("payments:settings_company", company_id=company.pk)
        company.refresh_from_db()
    status = 400 if request.method == "POST" else 200
    rules = _rules_in_effect(company)
    layouts = ImportFormat.objects.filter(Q(entity=company) | Q(entity__isnull=True)).order_by(
        "entity_id", "name"
    )
    context = {
        "company": company,
        "threshold_form": form,
        "threshold": approval_threshold(company.pk, entity=company),
        "can_change": may_manage(request.user, company.pk),
        "can_change_shared": may_manage(request.user, None),
        "rules": rules,
        "rules_applying": sum(1 for r in rules if r["rule"].enabled and not r["replaced"]),
        "layouts": layouts,
        "bank_accounts": StatementAccount.objects.filter(entity=company)
        .select_related("bank_account", "import_format")
        .order_by("name", "account_key"),
        "provider_accounts": ProviderAccount.objects.filter(entity=company)
        .select_related("clearing_bank_account", "payout_bank_account")
        .order_by("source", "currency"),
        "customer_terms": SettlementTerms.objects.filter(customer__entity=company).count(),
        "default_terms": SettlementTerms.objects.filter(customer__isnull=True).first(),
    }
    return render(request, "payments/settings_company.html", context, status=status)


def _say(request, outcome, done: str) -> None:
    if outcome.ok:
        messages.success(request, done)
    else:
        messages.error(request, outcome.message)


def _changed(form) -> list[str]:
    """The model fields a form changed (a layout's column boxes are its column_map)."""
    names = [n for n in form.changed_data if not n.startswith("column_")]
    if len(names) != len(form.changed_data):
        names.append("column_map")
    return names


def _form_page(request, *, form, company, what, title, intro, back, extra=None):
    """A settings form: shown, or checked and saved (then back to the company's page)."""
    entity_id = form.instance.entity_id if company is None else company.pk
    can_change = may_manage(request.user, entity_id)
    if request.method == "POST" and not can_change:
        messages.error(request, SHARED_ONLY_GROUP if entity_id is None else NOT_MANAGER)
        status = 403
    elif request.method == "POST" and form.is_valid():
        outcome = run_service(
            setting_save, actor=request.user, obj=form.instance, fields=_changed(form), what=what
        )
        _say(request, outcome, f"Saved: {what}.")
        if outcome.ok:
            return redirect(back)
        for field, errors in outcome.field_errors.items():
            for error in errors:
                form.add_error(field if field in form.fields else None, error)
        status = 400
    else:
        status = 400 if request.method == "POST" else 200
    context = {
        "form": form,
        "company": company,
        "title": title,
        "intro": intro,
        "back": back,
        "can_change": can_change,
        **(extra or {}),
    }
    return render(request, "payments/settings_form.html", context, status=status)


def _back(company: Entity | None) -> str:
    if company is None:
        return reverse("payments:settings")
    return reverse("payments:settings_company", kwargs={"company_id": company.pk})


def _owner(request, obj) -> Entity | None:
    """The company of a rule or layout (None: shared by every company)."""
    return None if obj.entity_id is None else _company(request, obj.entity_id)


# --- match rules and statement layouts: a company's own, or shared by every company ----------


@dataclass(frozen=True)
class Shareable:
    """A setting a company may have of its own or share with every company."""

    model: type
    form: type
    noun: str
    intro: str
    edit_url: str


RULES = Shareable(
    MatchRule,
    MatchRuleForm,
    "match rule",
    "The matcher tries the rules in order. A rule that approves without a person does so only "
    "at or below the company's approval threshold and never for a discount or write-off. A "
    "company's own rule of a kind replaces the shared rules of that kind for its payments.",
    "payments:rule_edit",
)
LAYOUTS = Shareable(
    ImportFormat,
    ImportFormatForm,
    "statement layout",
    "How a bank's CSV or Excel export reads: for each of our fields, the file's column header "
    "as it appears in the file (or #1, #2… for its position when the file has no headers). "
    "A date and an amount (or money-in) column are needed.",
    "payments:layout_edit",
)


def _new(request, company_id, kind: Shareable):
    company = _company(request, company_id)
    form = kind.form(request.POST or None, instance=kind.model(entity=company), entity=company)
    return _form_page(
        request,
        form=form,
        company=company,
        what=f"{kind.noun} for {company.name}",
        title=f"New {kind.noun} for {company.name}",
        intro=kind.intro,
        back=_back(company),
    )


def _edit(request, pk, kind: Shareable):
    obj = get_or_404(kind.model.objects.all(), pk=pk)
    company = _owner(request, obj)
    whose = company.name if company else "every company"
    return _form_page(
        request,
        form=kind.form(request.POST or None, instance=obj, entity=company),
        company=company,
        what=f"{kind.noun} '{obj.name}' ({whose})",
        title=f"{kind.noun.capitalize()}: {obj.name} ({whose})",
        intro=kind.intro,
        back=_back(company),
    )


def _copy(request, company_id, pk, kind: Shareable):
    company = _company(request, company_id)
    shared = get_or_404(kind.model.objects.filter(entity__isnull=True), pk=pk)
    what = f"{kind.noun} '{shared.name}'"
    outcome = run_service(setting_copy, actor=request.user, obj=shared, entity=company, what=what)
    _say(request, outcome, f"{company.name} has its own copy of {what} now; change it there.")
    if outcome.ok:
        return redirect(kind.edit_url, outcome.value.pk)
    return redirect("payments:settings_company", company_id=company.pk)


@approver_required
def rule_new(request, company_id):
    return _new(request, company_id, RULES)


@approver_required
def rule_edit(request, rule_id):
    return _edit(request, rule_id, RULES)


@require_POST
@approver_required
def rule_copy(request, company_id, rule_id):
    return _copy(request, company_id, rule_id, RULES)


@approver_required
def layout_new(request, company_id):
    return _new(request, company_id, LAYOUTS)


@approver_required
def layout_edit(request, layout_id):
    return _edit(request, layout_id, LAYOUTS)


@require_POST
@approver_required
def layout_copy(request, company_id, layout_id):
    return _copy(request, company_id, layout_id, LAYOUTS)


# --- bank accounts ----------------------------------------------------------------------------


@approver_required
def bank_account_edit(request, statement_account_id):
    account = get_or_404(StatementAccount.objects.all(), pk=statement_account_id)
    company = _company(request, account.entity_id)
    form = StatementAccountForm(request.POST or None, instance=account)
    return _form_page(
        request,
        form=form,
        company=company,
        what=f"bank account {account} of {company.name}",
        title=f"Bank account {account} ({company.name})",
        intro="Where this bank account's money is booked in AIQ, and the layout its CSV or "
        "Excel statements are read with (the company's own layouts and the shared ones).",
        back=_back(company),
    )


# --- Stripe and GoCardless accounts -----------------------------------------------------------

PROVIDER_INTRO = (
    "A Stripe or GoCardless account's books in AIQ: its receipts land in the clearing account, "
    "its fees go to the fees GL account, and its payouts move the money to the real bank. "
    "AIQ is asked whether each GL account exists before anything is saved. Its API key and "
    "webhook secret are never stored here or shown: they come from the environment variables "
    "named below, set on the servers."
)


@approver_required
def provider_account_new(request, company_id):
    company = _company(request, company_id)
    form = ProviderAccountForm(
        request.POST or None,
        instance=ProviderAccount(entity=company, currency=company.base_currency),
    )
    return _form_page(
        request,
        form=form,
        company=company,
        what=f"payment provider account for {company.name}",
        title=f"New Stripe or GoCardless account for {company.name}",
        intro=PROVIDER_INTRO,
        back=_back(company),
        extra={"secrets": form.secret_states()},
    )


@approver_required
def provider_account_edit(request, account_id):
    account = get_or_404(ProviderAccount.objects.all(), pk=account_id)
    company = _company(request, account.entity_id)
    form = ProviderAccountForm(request.POST or None, instance=account)
    return _form_page(
        request,
        form=form,
        company=company,
        what=f"{account} of {company.name}",
        title=f"{account} ({company.name})",
        intro=PROVIDER_INTRO,
        back=_back(company),
        extra={
            "secrets": form.secret_states(),
            "webhook_path": reverse(f"webhook-{account.source}-account", args=[account.pk]),
        },
    )
