"""AIQ suppliers, checked before a purchase invoice is queued (back-to-back and intercompany
purchases): a purchase invoice to a supplier AIQ does not have, has made inactive, or keeps in
another currency would be refused by AIQ after its other half was queued; it is refused here
first, with what to do, and nothing is stored.

The mirror (ledger.Supplier) is filled by the pull (GetSupplierList). A code the mirror does
not know is read from AIQ once (GetSupplier: made since the last pull?); when AIQ cannot be
asked, the code is let through, since AIQ itself refuses an unknown supplier when the purchase
reaches it and the outbox then holds the other half for a person.
"""

from ledger.aiq.client import AiqClient
from ledger.aiq.errors import AiqError, AiqPermanentError
from ledger.models import Entity, Supplier
from ledger.sync.pull import sync_supplier


def _ask_aiq(entity: Entity, code: str) -> Supplier | None:
    try:
        return sync_supplier(AiqClient.for_entity(entity), entity, code)
    except AiqPermanentError:
        return None
    except AiqError:
        return Supplier(entity=entity, code=code, name=code, currency="", active=True)


def supplier_problems(entity: Entity, code: str, currency: str) -> list[str]:
    """Why a purchase invoice in `currency` to supplier `code` of `entity` cannot be queued
    (an empty list: it can)."""
    code = (code or "").strip().upper()
    if not code:
        return [f"No supplier code: say which of {entity.name}'s AIQ suppliers to buy from."]
    supplier = Supplier.objects.filter(entity=entity, code=code).first() or _ask_aiq(entity, code)
    if supplier is None:
        return [
            f"Supplier {code} does not exist in {entity.name}'s AIQ: set it up in AIQ (or "
            "correct the code), pull AIQ's lists on the Sync screen, then send it again."
        ]
    problems = []
    if not supplier.active:
        problems.append(
            f"Supplier {code} ({supplier.name}) is inactive in {entity.name}'s AIQ: activate "
            "it in AIQ or choose another supplier."
        )
    if supplier.currency and currency and supplier.currency != currency.upper():
        problems.append(
            f"Supplier {code} is a {supplier.currency} account in {entity.name}'s AIQ; the "
            f"purchase invoice is in {currency.upper()}."
        )
    return problems
