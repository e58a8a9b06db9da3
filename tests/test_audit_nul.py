"""A NUL character typed into a filter reaches the audit log of an export: PostgreSQL's jsonb
refuses it, so the export answered 500 there. The audit keeps it as U+FFFD instead,
and every screen now refuses it with a 400 before its view runs (aiqrecon.security)."""

import pytest
from django.db import transaction
from django.urls import reverse

from staff.models import AuditEntry
from staff.services import audit_log


@pytest.mark.django_db
def test_an_audit_entry_keeps_a_nul_character_as_a_replacement_character(alice):
    with transaction.atomic():
        entry = audit_log(
            actor=alice,
            action="payments.export",
            summary="CSV export\x00",
            after={"filters": {"currency": "1\x00", "q\x00": ["a\x00b"]}},
        )
    stored = AuditEntry.objects.get(pk=entry.pk)
    assert stored.after == {"filters": {"currency": "1\ufffd", "q\ufffd": ["a\ufffdb"]}}
    assert stored.summary == "CSV export\ufffd"


@pytest.mark.django_db
def test_exporting_the_inbox_with_a_nul_in_a_filter_is_refused_and_not_a_server_error(
    client, alice
):
    """Since session 8 every screen refuses a NUL in a query or form field before its view
    runs (aiqrecon.security): a clear 400, and no export made or audited."""
    client.force_login(alice)
    response = client.get(reverse("payments:export"), {"currency": "1\x00"})
    assert response.status_code == 400
    assert b"currency: a NUL character cannot be used" in response.content
    assert not AuditEntry.objects.filter(action="payments.export").exists()
