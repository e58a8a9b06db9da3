"""Maker-checker: whoever last changed what will be posted is its maker; someone else approves.

A model whose content needs a second person before it reaches AIQ (or the bank) inherits
`MakerChecked` and lists `approver_is_not_maker(...)` in its constraints:
  - `maker`: the person who LAST changed what will be posted (creating it counts; empty = the
    system, e.g. an auto-approve rule or a webhook);
  - `approver`, `approved_at`: the checker, who must not be the maker (superusers included).

Its services call, inside their transaction and under the row's lock:
  - `record_change(obj, actor=...)` on every change of the content (creation included): the actor
    becomes the maker and any approval lapses, so approving someone's plan after editing it is
    approving one's own;
  - `record_approval(obj, actor=...)` to approve, which refuses the maker (`SelfApproval`);
    `check_approver` refuses early, before other checks, so the maker hears the reason first.
The database constraint refuses `approver = maker` whatever code path writes the row.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.utils import timezone


class SelfApproval(ValidationError):
    """The approver is the last person who changed what would be posted."""


class MakerChecked(models.Model):
    maker = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Who last changed what will be posted (empty: the system).",
    )
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The second person; never the maker.",
    )
    approved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True


def approver_is_not_maker(name: str) -> models.CheckConstraint:
    """The database half of maker-checker: a NULL maker (the system) may be approved by anyone."""
    return models.CheckConstraint(
        condition=Q(approver__isnull=True) | ~Q(approver=F("maker")), name=name
    )


def _person(actor):
    return actor if actor is not None and getattr(actor, "is_authenticated", False) else None


def record_change(obj: MakerChecked, *, actor) -> None:
    """`actor` changed what `obj` will post: they are its maker now and it is not approved.
    The caller saves `obj` (fields: maker, approver, approved_at)."""
    obj.maker = _person(actor)
    obj.approver = None
    obj.approved_at = None


def is_maker(obj: MakerChecked, actor) -> bool:
    """Screens hide the approve button from the maker; the services refuse them anyway."""
    return obj.maker_id is not None and obj.maker_id == getattr(actor, "pk", None)


def check_approver(obj: MakerChecked, *, actor, what: str = "this") -> None:
    """Refuse `actor` as the approver of `obj` when they last changed it."""
    if is_maker(obj, actor):
        raise SelfApproval(
            f"You last changed {what}; a different person must approve it.", code="self_approval"
        )


def record_approval(obj: MakerChecked, *, actor, what: str = "this") -> None:
    """`actor` approves `obj` (None: the system's rule): refused when they last changed it.
    The caller saves `obj` (fields: approver, approved_at)."""
    check_approver(obj, actor=actor, what=what)
    obj.approver = _person(actor)
    obj.approved_at = timezone.now()
