"""Payment inbox: tabs by match state, filters, keyset pages, CSV export, bulk approval."""

import csv

from django.contrib import messages
from django.http import StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from core.paging import keyset_page
from payments.models import AllocationPlan, Payment
from payments.views import actions
from payments.views.filters import DEFAULT_TAB, TABS, InboxFilter
from staff.models import Role
from staff.services import user_has_role
from staff.views import approver_required, clerk_required

PAGE_SIZE = 50


def _filtered(request):
    tab = request.GET.get("tab", DEFAULT_TAB)
    if tab not in TABS:
        tab = DEFAULT_TAB
    queryset = Payment.objects.select_related("customer")
    states = TABS[tab][1]
    if states:
        queryset = queryset.filter(match_state__in=states)
    filterset = InboxFilter(request.GET or None, queryset=queryset)
    if filterset.is_bound and not filterset.is_valid():
        return tab, filterset, queryset.none()
    return tab, filterset, filterset.qs


@clerk_required
def inbox(request):
    tab, filterset, queryset = _filtered(request)
    page = keyset_page(
        queryset, order=("received_at", "id"), after=request.GET.get("after"), size=PAGE_SIZE
    )
    plans = {}
    if tab == "awaiting":
        # the live plan of each payment on the page, for bulk approval (one query)
        live = AllocationPlan.objects.filter(
            payment__in=[p.pk for p in page.items],
            state=AllocationPlan.State.AWAITING_APPROVAL,
        ).only("id", "payment_id", "maker_id")
        plans = {plan.payment_id: plan for plan in live}
    rows = [(payment, plans.get(payment.pk)) for payment in page.items]
    context = {
        "tab": tab,
        "tabs": [(key, label) for key, (label, _) in TABS.items()],
        "filter": filterset,
        "page": page,
        "rows": rows,
        "can_approve": user_has_role(request.user, Role.APPROVER),
    }
    template = (
        "payments/_inbox_rows.html"
        if request.htmx and request.GET.get("after")
        else ("payments/inbox.html")
    )
    return render(request, template, context)


def _csv_safe(value) -> str:
    """Spreadsheet formula injection: a cell starting with = + - @ is read as text."""
    text = "" if value is None else str(value)
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


class _Echo:
    def write(self, value):
        return value


@clerk_required
def export_csv(request):
    """The current tab and filter as CSV, streamed in chunks (no whole table in memory)."""
    tab, filterset, queryset = _filtered(request)
    writer = csv.writer(_Echo())
    header = [
        "received_at", "source", "external_id", "amount", "currency", "payer_name",
        "payer_email", "customer_code", "match_state", "status", "description",
    ]  # fmt: skip

    def rows():
        yield writer.writerow(header)
        for p in queryset.order_by("-received_at", "-id").iterator(chunk_size=2000):
            yield writer.writerow(
                [
                    p.received_at.isoformat(),
                    p.source,
                    _csv_safe(p.external_id),
                    str(p.amount),
                    p.currency,
                    _csv_safe(p.payer_name),
                    _csv_safe(p.payer_email),
                    p.customer.code if p.customer_id else "",
                    p.match_state,
                    p.status,
                    _csv_safe(p.description),
                ]
            )

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="payments-{tab}.csv"'
    return response


@require_POST
@approver_required
def bulk_approve(request):
    ids = []
    for raw in request.POST.getlist("plan_ids"):
        if raw.isdigit():
            ids.append(int(raw))
    if not ids:
        messages.warning(request, "Select at least one plan to approve.")
        return redirect(f"{_inbox_url()}?tab=awaiting")
    approved, refused = 0, []
    for plan in AllocationPlan.objects.filter(pk__in=ids).select_related("payment"):
        outcome = actions.approve_plan(plan=plan, actor=request.user)
        if outcome.ok:
            approved += 1
        else:
            refused.append(f"{plan.payment.external_id}: {outcome.message}")
    if approved:
        messages.success(request, f"Approved {approved} plan{'s' if approved != 1 else ''}.")
    for line in refused:
        messages.error(request, f"Not approved — {line}")
    return redirect(f"{_inbox_url()}?tab=awaiting")


def _inbox_url():
    from django.urls import reverse

    return reverse("payments:inbox")


@require_POST
@approver_required
def bulk_accept(request):
    """Accept the best open proposal of each selected payment (services/proposals.py)."""
    ids = [int(raw) for raw in request.POST.getlist("payment_ids") if raw.isdigit()]
    back = redirect(f"{_inbox_url()}?tab=proposed")
    if not ids:
        messages.warning(request, "Select at least one proposal to accept.")
        return back
    accepted, refused = 0, []
    for payment in Payment.objects.filter(pk__in=ids):
        outcome = actions.accept_proposal(payment=payment, actor=request.user)
        if outcome.ok:
            accepted += 1
        else:
            refused.append(f"{payment.external_id}: {outcome.message}")
    if accepted:
        messages.success(request, f"Accepted {accepted} proposal{'s' if accepted != 1 else ''}.")
    for line in refused:
        messages.error(request, f"Not accepted — {line}")
    return back
