"""Provider books: per Stripe/GoCardless account, the clearing balance in AIQ beside the
provider's, its chart over time, and the reconciliation of a period (payments, refunds,
disputes, fees, payouts, each tied to its AIQ transaction), exportable as CSV or xlsx."""

import csv
import io
from datetime import date
from decimal import Decimal

from django import forms
from django.contrib import messages
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from ledger.aiq.errors import AiqError
from payments.models import Dispute, ProviderAccount
from payments.services.provider_disputes import DISPUTE_LOST_EXPLAINED, dispute_loss_approve
from payments.services.provider_report import (
    clearing_chart,
    clearing_check,
    disputes_booked,
    open_disputes,
    reconciliation,
)
from staff.maker_checker import is_maker
from staff.models import Role
from staff.services import audit_log, user_has_role
from staff.views import approver_required, clerk_required, get_or_404, run_service

HEADER = ["Section", "Date", "Provider reference", "Amount", "Currency", "AIQ reference",
          "AIQ transaction", "Note"]  # fmt: skip


class PeriodForm(forms.Form):
    start = forms.DateField(required=False, input_formats=["%Y-%m-%d", "%d/%m/%Y"])
    end = forms.DateField(required=False, input_formats=["%Y-%m-%d", "%d/%m/%Y"])

    def period(self) -> tuple[date, date]:
        today = timezone.localdate()
        data = self.cleaned_data if self.is_valid() else {}
        start = data.get("start") or today.replace(day=1)
        end = data.get("end") or today
        return (start, end) if start <= end else (end, start)


def _reports(request):
    form = PeriodForm(request.GET or None)
    start, end = form.period()
    accounts = ProviderAccount.objects.select_related(
        "entity", "clearing_bank_account", "payout_bank_account"
    ).order_by("entity__name", "source", "currency")
    return form, start, end, [reconciliation(a, start, end) for a in accounts]


@clerk_required
def provider_books(request):
    form, start, end, reports = _reports(request)
    charts = [{"id": r.account.pk, **clearing_chart(r.account)} for r in reports]
    return render(
        request,
        "payments/provider_books.html",
        {"form": form, "start": start, "end": end, "reports": reports, "charts": charts},
    )


@require_POST
@clerk_required
def clearing_check_now(request, account_id):
    account = get_or_404(
        ProviderAccount.objects.select_related("entity", "clearing_bank_account"), pk=account_id
    )
    try:
        row = clearing_check(account=account, actor=request.user)
    except AiqError as error:
        messages.error(request, f"AIQ did not answer the balance check: {error}")
    else:
        if row.difference:
            messages.warning(request, f"{account}: the clearing account differs from the provider.")
        else:
            messages.success(request, f"{account}: checked.")
    return redirect("payments:provider_books")


@clerk_required
def reconciliation_export(request):
    form, start, end, reports = _reports(request)
    rows = [
        [section, day.strftime("%d/%m/%Y") if day else "", ref, str(amount),
         r.account.currency, aiq_ref, aiq_id or "", f"{r.account}: {note}".rstrip(": ")]
        for r in reports
        for section, day, ref, amount, aiq_ref, aiq_id, note in r.rows
    ]  # fmt: skip
    kind = "xlsx" if request.GET.get("format") == "xlsx" else "csv"
    with transaction.atomic():
        audit_log(
            actor=request.user,
            action="provider_books.export",
            object_type="payments.provideraccount",
            summary=f"Reconciliation {start:%d/%m/%Y}-{end:%d/%m/%Y} exported as {kind}: "
            f"{len(rows)} row(s)",
        )
    name = f"provider-reconciliation-{start.isoformat()}-{end.isoformat()}"
    if kind == "xlsx":
        from openpyxl import Workbook

        book = Workbook()
        sheet = book.active
        sheet.title = "Reconciliation"
        sheet.append(HEADER)
        for row in rows:
            sheet.append([*row[:3], Decimal(row[3]) if row[3] else None, *row[4:]])
        out = io.BytesIO()
        book.save(out)
        response = HttpResponse(
            out.getvalue(),
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
        response["Content-Disposition"] = f'attachment; filename="{name}.xlsx"'
        return response
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADER)
    writer.writerows(rows)
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    return response


@clerk_required
def disputes(request):
    rows = open_disputes()
    booked = disputes_booked()
    can_approve = user_has_role(request.user, Role.APPROVER)
    for dispute in booked:
        dispute.can_approve = can_approve and not is_maker(dispute, request.user)
    totals: dict[str, object] = {}
    for row in rows:
        currency = row["dispute"].currency
        totals[currency] = totals.get(currency, 0) + row["dispute"].amount
    return render(
        request,
        "payments/disputes.html",
        {
            "rows": rows,
            "totals": sorted(totals.items()),
            "booked": booked,
            "lost_explained": DISPUTE_LOST_EXPLAINED,
        },
    )


@require_POST
@approver_required
def dispute_loss_approve_view(request, dispute_id):
    """The second person approves reversing a lost dispute (its writes queued, audited)."""
    dispute = get_or_404(Dispute.objects.all(), pk=dispute_id)
    outcome = run_service(dispute_loss_approve, dispute=dispute, actor=request.user)
    if outcome.ok:
        reversed_ = outcome.value.loss_command.kind == "post_debit_journal"
        done = "the invoice is outstanding again" if reversed_ else "it is written off"
        messages.success(request, f"Approved: dispute {dispute.external_id}: {done}.")
    else:
        messages.error(request, f"Not approved: {outcome.message}")
    return redirect("payments:disputes")
