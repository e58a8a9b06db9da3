"""The dashboard: unmatched cash by currency and age, plans awaiting approval, the outbox."""

from django.shortcuts import render

from payments import selectors
from staff.company_scope import company_ids
from staff.views import clerk_required


@clerk_required
def dashboard(request):
    companies = company_ids(request)  # the header's choice (None: every company)
    figures = selectors.dashboard_figures(entity_ids=companies)
    charts = {
        "match_rate": selectors.match_rate_by_day(days=30, entity_ids=companies),
        "cash_by_source": selectors.cash_by_day_and_source(days=30, entity_ids=companies),
    }
    return render(
        request,
        "staff/dashboard.html",
        {**figures, "charts": charts},
    )
