"""Reads of the audit log (the audit screen)."""

from django.db.models import Q, QuerySet

from staff.models import AuditEntry


def audit_entries() -> QuerySet:
    return AuditEntry.objects.select_related("actor")


def audit_filter(
    queryset, *, q="", user="", object_type="", object_id="", date_from=None, date_to=None
):
    if q:
        queryset = queryset.filter(Q(action__icontains=q) | Q(summary__icontains=q))
    if user:
        queryset = queryset.filter(actor__username__iexact=user)
    if object_type:
        queryset = queryset.filter(object_type__iexact=object_type)
    if object_id:
        queryset = queryset.filter(object_id=object_id)
    if date_from:
        queryset = queryset.filter(at__date__gte=date_from)
    if date_to:
        queryset = queryset.filter(at__date__lte=date_to)
    return queryset
