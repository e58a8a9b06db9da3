"""Two read-only screens for the bank side of money in: Direct Debit payers flagged by Bacs
reports (ARUDD returns, ADDACS changes, AUDDIS refusals), and each bank statement's figures
beside what the app holds for that account and period ("the bank says X, we hold Y")."""

from django.shortcuts import render

from core.inputs import parse_optional_id
from payments.models import DirectDebitNotice, StatementAccount
from payments.selectors_banking import flagged_payers, statement_figures
from staff.company_scope import company_ids, company_scope
from staff.views import clerk_required


@clerk_required
def payer_flags(request):
    kind = request.GET.get("kind", "")
    kind = kind if kind in DirectDebitNotice.Kind.values else ""
    context = flagged_payers(kind=kind)
    context.update(kind=kind, kinds=DirectDebitNotice.Kind.choices)
    return render(request, "payments/payer_flags.html", context)


@clerk_required
def bank_balances(request):
    account_id = parse_optional_id(request.GET.get("account"), field="Bank account")
    context = statement_figures(account_id=account_id, entity_ids=company_ids(request))
    context.update(
        accounts=company_scope(StatementAccount.objects, request).order_by("name", "account_key"),
        account_id=account_id,
    )
    return render(request, "payments/bank_balances.html", context)
