"""Pull AIQ's valid intercompany connections into the mirror (GetInterCompanyConnectionList)."""

from django.utils import timezone

from ledger.aiq.results import get
from ledger.models import InterCompanyConnection


def _side(row, name: str) -> dict:
    side = get(row, name) or {}
    return {
        "company_id": str(get(side, "EntityID") or ""),
        "company_name": get(side, "EntityName") or "",
        "base_currency": get(side, "EntityBaseCurrencyCode") or "",
        "account_id": int(get(side, "AccountID") or 0),
        "account_code": (get(side, "AccountCode") or "").upper(),
        "account_name": get(side, "AccountName") or "",
        "currency": get(side, "AccountCurrencyCode") or "",
    }


def sync_intercompany_connections(client, entity) -> int:
    """Every connection AIQ lists is valid; one it no longer lists is kept, marked not valid."""
    now = timezone.now()
    rows = client.get_inter_company_connection_list()
    seen = []
    for row in rows:
        local, remote = _side(row, "Local"), _side(row, "Remote")
        if local["company_id"] and local["company_id"] != entity.company_id:
            continue  # listed for another company of the same login: not this one's
        connection, _ = InterCompanyConnection.objects.update_or_create(
            entity=entity,
            local_account_code=local["account_code"],
            remote_company_id=remote["company_id"],
            remote_account_code=remote["account_code"],
            defaults={
                "local_account_id": local["account_id"],
                "local_account_name": local["account_name"][:200],
                "local_currency": local["currency"][:3],
                "remote_company_name": remote["company_name"][:200],
                "remote_base_currency": remote["base_currency"][:3],
                "remote_account_id": remote["account_id"],
                "remote_account_name": remote["account_name"][:200],
                "remote_currency": remote["currency"][:3],
                "valid": True,
                "last_synced_at": now,
            },
        )
        seen.append(connection.pk)
    InterCompanyConnection.objects.filter(entity=entity).exclude(pk__in=seen).update(
        valid=False, last_synced_at=now
    )
    return len(seen)
