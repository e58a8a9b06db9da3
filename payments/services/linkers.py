"""Payments an app above has booked in AIQ already, recognised before matching sees them.

An already-paid order (sales: a web shop's sale posted with PostPayAndAllocateSalesInvoice)
puts the invoice, its receipt and their allocation into AIQ in one call. When the money itself
then arrives here (a Stripe payment, a bank statement line), it is that receipt: it is linked
to it, never matched and receipted a second time.

A linker takes the ids of payments just stored and returns those it linked; the apps above
register theirs from their AppConfig.ready() (payments imports nothing above it).
"""

from collections.abc import Callable

LINKERS: list[Callable[[list[int]], set[int]]] = []


def payment_linker_register(linker: Callable[[list[int]], set[int]]) -> None:
    if linker not in LINKERS:
        LINKERS.append(linker)


def payments_link_booked(*, payment_ids: list[int]) -> set[int]:
    """The payments of these that an app above linked to what it booked (inside the caller's
    transaction); the others are matching's as usual."""
    linked: set[int] = set()
    for linker in LINKERS:
        rest = [pk for pk in payment_ids if pk not in linked]
        if not rest:
            break
        linked |= linker(rest)
    return linked
