"""The dashboard: unmatched cash by currency and age, plans awaiting approval, the outbox."""

from django.shortcuts import render

from payments import selectors
from staff.views import clerk_required


@clerk_required
def dashboard(request):
    figures = selectors.dashboard_figures()
    charts = {
        "match_rate": selectors.match_rate_by_day(days=30),
        "cash_by_source": selectors.cash_by_day_and_source(days=30),
    }
    return render(
        request,
        "staff/dashboard.html",
        {**figures, "charts": charts},
    )
