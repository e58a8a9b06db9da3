"""Invoices made in pairs (back-to-back, intercompany): what both kinds share.

A pair is one row linking a purchase invoice and a sales invoice, made once per reference:

    pair_submit(actor=..., check=..., existing=queryset, same=..., changed=..., make=...,
                action=..., summary=...)

runs the clerk check, then `check()` (every problem at once: ValidationError, nothing stored),
then, inside one transaction with the reference's pair locked: the pair made before when it is
given again with the same figures, a ValidationError (`changed`) when the figures differ, else
`make()`'s new pair (both halves stored and queued by it), validated, saved and audited in the
same transaction. Which half waits for which in the outbox is `make`'s choice.
"""

from collections.abc import Callable

from django.core.exceptions import ValidationError
from django.db import models, transaction

from sales.services.invoices import _require_clerk
from staff.services import audit_log


def pair_submit(
    *,
    actor,
    check: Callable[[], list[str]],
    existing: models.QuerySet,
    same: Callable[[models.Model], bool],
    changed: str,
    make: Callable[[], models.Model],
    action: str,
    summary: Callable[[models.Model], str],
):
    _require_clerk(actor)
    problems = check()
    if problems:
        raise ValidationError(problems)
    with transaction.atomic():
        before = existing.select_for_update().first()
        if before is not None:
            if same(before):
                return before
            raise ValidationError(changed)
        pair = make()
        pair.full_clean()
        pair.save()
        audit_log(
            actor=actor,
            action=action,
            obj=pair,
            summary=summary(pair),
            after={"purchase": pair.purchase_id, "sales_invoice": pair.sales_invoice_id},
        )
    return pair
