"""The disputes screen (issue 17.4): open disputes with their deadline and evidence-due date,
the one due first on top; settled ones are not listed."""

import json
from decimal import Decimal
from pathlib import Path

import pytest

from payments.models import Dispute, Payment

pytestmark = pytest.mark.django_db
DISPUTE = json.loads((Path(__file__).parent / "stripe_fixtures" / "dispute.json").read_text())


def _dispute(entity, n: int, status: str, due_by: int | None) -> Dispute:
    payment = Payment.objects.create(
        entity=entity, source="stripe", external_id=f"pi_disputed{n}", amount=Decimal("120.00"),
        currency="GBP", received_at="2026-11-20T10:00:00Z",
    )  # fmt: skip
    raw = {**DISPUTE, "id": f"dp_{n}", "status": status}
    raw["evidence_details"] = {**DISPUTE["evidence_details"], "due_by": due_by}
    return Dispute.objects.create(
        source="stripe", external_id=f"dp_{n}", payment=payment, amount=Decimal("120.00"),
        currency="GBP", status=status, reason="fraudulent", raw=raw,
    )  # fmt: skip


def test_open_disputes_are_listed_with_their_evidence_due_date_earliest_first(
    client, alice, entity
):
    _dispute(entity, 1, "needs_response", 1796774400)  # 2026-12-09 00:00 UTC
    _dispute(entity, 2, "warning_needs_response", 1682294399)  # April 2023: overdue
    _dispute(entity, 3, "won", 1796774400)  # settled for us: not listed
    _dispute(entity, 4, "under_review", None)
    client.force_login(alice)
    page = client.get("/disputes/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "3 open disputes: 360.00 GBP" in html
    assert html.index("dp_2") < html.index("dp_1") < html.index("dp_4")
    assert "dp_3" not in html
    # 23/04/2023 23:59:59 UTC is 00:59 the next day in London (BST)
    assert "Overdue: 24/04/2023 00:59" in html and "09/12/2026 00:00" in html


def test_the_disputes_screen_needs_a_role(client, mallory):
    client.force_login(mallory)
    assert client.get("/disputes/").status_code == 403
