"""Payment inbox: tabs by match state, filters, keyset pages, CSV export, bulk approval."""

import csv

from django.contrib import messages
from django.db import transaction
from django.http import StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from core.inputs import parse_ids
from core.money import quantize
from core.paging import keyset_page
from payments import selectors
from payments.models import AllocationPlan, AllocationPlanLine, Payment
from payments.views import actions
from payments.views.filters import DEFAULT_TAB, TABS, InboxFilter
from staff.company_scope import company_ids, company_scope, visible_scope
from staff.models import Role
from staff.services import audit_log, user_has_role
from staff.views import approver_required, clerk_required

PAGE_SIZE = 50


def _filtered(request):
    tab = request.GET.get("tab", DEFAULT_TAB)
    if tab not in TABS:
        tab = DEFAULT_TAB
    queryset = company_scope(Payment.objects.select_related("customer", "entity"), request)
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
        # with its lines: the row says what approving it posts, and the checkbox carries the
        # version shown, so a plan changed since the page was drawn is refused, not approved
        live = (
            AllocationPlan.objects.filter(
                payment__in=[p.pk for p in page.items],
                state=AllocationPlan.State.AWAITING_APPROVAL,
            )
            .select_related("payment")
            .prefetch_related("lines__invoice")
        )
        plans = {plan.payment_id: plan for plan in live}
    rows = [(payment, plans.get(payment.pk)) for payment in page.items]
    # count and totals per tab, of the companies shown
    figures = selectors.inbox_tab_figures(TABS, company_ids(request))
    context = {
        "tab": tab,
        "tabs": [(key, label, figures[key]) for key, (label, _) in TABS.items()],
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


def _invoices_by_payment(payment_ids) -> dict[int, str]:
    """The invoice numbers each payment's live plan settles, for one chunk of the export."""
    lines = (
        AllocationPlanLine.objects.filter(
            plan__payment_id__in=payment_ids,
            plan__state__in=AllocationPlan.LIVE,
            unallocated_at__isnull=True,
        )
        .order_by("invoice__invoice_number")
        .values_list("plan__payment_id", "invoice__invoice_number")
    )
    numbers: dict[int, list[str]] = {}
    for payment_id, number in lines:
        numbers.setdefault(payment_id, []).append(number)
    return {payment_id: " ".join(found) for payment_id, found in numbers.items()}


@clerk_required
def export_csv(request):
    """The current tab and filter as CSV, streamed in chunks (no whole table in memory).
    Amounts at the currency's own decimals; states as the screens name them; the invoices a
    payment settles and its AIQ receipt, so the file can be checked against the books."""
    tab, filterset, queryset = _filtered(request)
    writer = csv.writer(_Echo())
    header = [
        "Received", "Source", "Payment id", "Amount", "Currency", "Payer", "Payer e-mail",
        "Customer", "State", "Provider status", "Invoices", "AIQ receipt",
        "AIQ receipt transaction", "Description",
    ]  # fmt: skip
    chunk = 2000

    def rows():
        yield writer.writerow(header)
        payments = queryset.select_related("customer", "receipt").order_by("-received_at", "-id")
        batch = []
        for payment in payments.iterator(chunk_size=chunk):
            batch.append(payment)
            if len(batch) == chunk:
                yield from _export_rows(writer, batch)
                batch = []
        yield from _export_rows(writer, batch)

    filters = {k: v for k, v in request.GET.items() if v and k != "after"}
    with transaction.atomic():  # who took which payments out of the app, and how many
        audit_log(
            actor=request.user,
            action="payments.export",
            object_type="payments.payment",
            summary=f"CSV export of the {tab} tab: {queryset.count()} payment(s)",
            after={"filters": filters},
        )
    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="payments-{tab}.csv"'
    return response


def _export_rows(writer, payments):
    invoices = _invoices_by_payment([p.pk for p in payments]) if payments else {}
    for p in payments:
        receipt = p.receipt
        yield writer.writerow(
            [
                timezone.localtime(p.received_at).strftime("%d/%m/%Y %H:%M"),
                p.get_source_display(),
                _csv_safe(p.external_id),
                str(quantize(p.amount, p.currency)),
                p.currency,
                _csv_safe(p.payer_name),
                _csv_safe(p.payer_email),
                p.customer.code if p.customer_id else "",
                p.get_match_state_display(),
                p.get_status_display(),
                invoices.get(p.pk, ""),
                receipt.check_reference if receipt else "",
                (receipt.aiq_transaction_id or "") if receipt else "",
                _csv_safe(p.description),
            ]
        )


@require_POST
@approver_required
def bulk_approve(request):
    ids = parse_ids(request.POST.getlist("plan_ids"), field="Plans to approve")
    if not ids:
        messages.warning(request, "Select at least one plan to approve.")
        return redirect(f"{_inbox_url()}?tab=awaiting")
    approved, refused = 0, []
    # only plans of the companies this person may act on (another's ids are skipped)
    plans = visible_scope(AllocationPlan.objects.filter(pk__in=ids), request, "payment__entity_id")
    for plan in plans.select_related("payment"):
        # the version the page showed for this plan: approve exactly that, or nothing
        seen = request.POST.get(f"version_{plan.pk}", "")
        if not (seen.isascii() and seen.isdigit() and len(seen) < 10):
            refused.append(
                f"{plan.payment.external_id}: the page did not say which version of the plan "
                "you saw; open the list again."
            )
            continue
        outcome = actions.approve_plan(plan=plan, actor=request.user, seen_version=int(seen))
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
    ids = parse_ids(request.POST.getlist("payment_ids"), field="Proposals to accept")
    back = redirect(f"{_inbox_url()}?tab=proposed")
    if not ids:
        messages.warning(request, "Select at least one proposal to accept.")
        return back
    accepted, refused = 0, []
    for payment in visible_scope(Payment.objects.filter(pk__in=ids), request):
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
