"""Which AIQ company money and people belong to.

Money: a payment belongs to the company of the account it arrived through (a Stripe or
GoCardless ProviderAccount, a bank StatementAccount). Money that arrives through no account
of its own (the installation's default webhook address, an import run without an account)
belongs to the default company: PAYMENTS_ENTITY (an AIQ company id) when set, else the only
company. With several companies and no PAYMENTS_ENTITY there is no default: such money is
refused with a message saying so, never booked to a guessed company.

People: `entities_visible_ids(user)` is the set of companies a person may see and act on, or
None for all of them (superusers, the Admin role, and anyone without a company grant).
"""

from django.conf import settings

from ledger.models import Entity, EntityGrant
from staff.models import Role


class NoDefaultCompany(Exception):
    """No company to book money to that arrived through no account of its own."""


def default_entity() -> Entity:
    """The company of money that arrived through no account of its own (module docstring)."""
    wanted = getattr(settings, "PAYMENTS_ENTITY", "")
    if wanted:
        entity = Entity.objects.filter(company_id=wanted).first()
        if entity is None:
            raise NoDefaultCompany(
                f"PAYMENTS_ENTITY names AIQ company {wanted!r}, which is not set up here "
                "(create it in the admin or run the AIQ sync)."
            )
        return entity
    entities = list(Entity.objects.order_by("id")[:2])
    if not entities:
        raise NoDefaultCompany(
            "No AIQ entity to record payments for: create one (admin) or run the AIQ sync."
        )
    if len(entities) > 1:
        raise NoDefaultCompany(
            "Several AIQ companies are set up and this money came through no account of its "
            "own: give each Stripe/GoCardless account and bank account its company, or set "
            "PAYMENTS_ENTITY to the company id such money belongs to."
        )
    return entities[0]


def sees_every_company(user) -> bool:
    if not user or not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    return user.groups.filter(name=Role.ADMIN).exists()


def entities_visible_ids(user) -> frozenset[int] | None:
    """The companies this person may see and act on; None: every company."""
    if sees_every_company(user):
        return None
    if not user or not user.is_authenticated:
        return frozenset()
    granted = frozenset(EntityGrant.objects.filter(user=user).values_list("entity_id", flat=True))
    return granted or None


def entities_for(user):
    """The companies this person may pick in the header's switcher, by name."""
    visible = entities_visible_ids(user)
    entities = Entity.objects.order_by("name", "id")
    return entities if visible is None else entities.filter(pk__in=visible)


def approval_threshold(entity_id: int | None, *, entity: Entity | None = None):
    """Above this (in the money's currency) a second person approves: the company's own
    threshold, else the installation's APPROVAL_THRESHOLD. `entity`: the company's row when
    the caller read it in this request already (not read again)."""
    own = None
    if entity is not None:
        own = entity.approval_threshold
    elif entity_id is not None:
        own = Entity.objects.filter(pk=entity_id).values_list("approval_threshold", flat=True)
        own = next(iter(own), None)
    return settings.APPROVAL_THRESHOLD if own is None else own
