"""A matching run's proposals: the audit record of what the run proposed, read-only.

The run's audit entry says who ran it and when; each proposal row is the record of one
proposal (the database refuses changes to anything but its state, migration 0009). A run can
write 100,000s of rows, so the list pages with a keyset over the primary key, newest first.
"""

from decimal import Decimal, InvalidOperation

from django.http import Http404
from django.shortcuts import render

from core.inputs import is_id
from core.paging import keyset_page
from ledger.models import Invoice
from payments.models import MatchProposal
from payments.selectors import run_rule_counts
from staff.company_scope import visible_scope
from staff.models import AuditEntry
from staff.views import clerk_required

PAGE_SIZE = 50


def _nonzero(amount) -> str:
    """The amount as stored, or "" when it is absent or zero (nothing worth showing)."""
    try:
        return str(amount) if amount not in (None, "") and Decimal(str(amount)) != 0 else ""
    except InvalidOperation:
        return str(amount)  # shown as stored rather than hidden


def _with_invoices(proposals: list[MatchProposal]) -> list[MatchProposal]:
    """Each proposal's lines with their invoices, read in one query for the page."""
    wanted = {
        int(line["invoice_id"])
        for p in proposals
        for line in p.lines
        if is_id(str(line.get("invoice_id", "")))
    }
    invoices = Invoice.objects.only("id", "invoice_number").in_bulk(wanted)
    for proposal in proposals:
        proposal.shown_lines = [
            {
                "invoice": invoices.get(int(line["invoice_id"])),
                "invoice_id": line["invoice_id"],
                "amount": line.get("amount", ""),
                "discount": _nonzero(line.get("discount", line.get("discount_amount"))),
                "write_off": _nonzero(line.get("write_off", line.get("write_off_amount"))),
            }
            for line in proposal.lines
            if is_id(str(line.get("invoice_id", "")))
        ]
    return proposals


@clerk_required
def run_proposals(request, run_id: str):
    if "\x00" in run_id or len(run_id) > 64:  # PostgreSQL refuses NUL in text; no run id is long
        raise Http404("No matching run with that id.")
    run = (
        AuditEntry.objects.select_related("actor")
        .filter(action="matching.run", object_type="matching_run", object_id=run_id)
        .first()
    )
    proposals = MatchProposal.objects.filter(run_id=run_id).select_related("payment", "rule")
    # another company's proposals are not shown to a person who does not work for it
    proposals = visible_scope(proposals, request, "payment__entity_id")
    if run is None and not proposals.exists():
        raise Http404("No matching run with that id.")
    page = keyset_page(
        proposals, order=("id", "id"), after=request.GET.get("after"), size=PAGE_SIZE
    )
    page.items = _with_invoices(page.items)
    if request.htmx:
        return render(request, "payments/_run_proposal_rows.html", {"page": page})
    context = {"run": run, "run_id": run_id, "page": page, "by_rule": run_rule_counts(run_id)}
    return render(request, "payments/run.html", context)
