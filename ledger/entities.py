"""Entity services: the AIQ companies this installation works with."""

from django.db import transaction

from ledger.models import Entity
from staff.services import audit_log


def entity_ensure(
    *,
    name: str,
    company_id: str,
    region: str,
    api_version: str,
    base_currency: str,
    credentials_key: str,
    actor=None,
) -> tuple[Entity, bool]:
    """Create the entity if it does not exist yet; an existing one is left as it is."""
    with transaction.atomic():
        entity, created = Entity.objects.get_or_create(
            company_id=company_id,
            defaults=dict(
                name=name,
                region=region,
                api_version=api_version,
                base_currency=base_currency,
                credentials_key=credentials_key,
            ),
        )
        if created:
            audit_log(
                actor=actor,
                action="entity.create",
                obj=entity,
                summary=f"{name} ({company_id}, AIQ {api_version}, {region})",
            )
    return entity, created
