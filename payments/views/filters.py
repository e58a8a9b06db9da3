"""The inbox filter form (django-filter) and the text search box."""

from decimal import Decimal

import django_filters
from django.db.models import Exists, OuterRef, Q

from core.forms import DATE_INPUT_FORMATS, DateInputGB
from core.money import MoneyError, amount_from_text
from payments.models import MatchProposal, MatchRule, Payment, Source
from payments.sources.statement_rows import account_key

# Each tab is one match state (or a pair), so the page is an ordered range scan of the
# payment_inbox index (match_state, received_at DESC, id DESC).
TABS = {
    "unmatched": ("Unmatched", [Payment.MatchState.UNMATCHED]),
    "proposed": ("Proposed", [Payment.MatchState.PROPOSED]),
    "awaiting": ("Awaiting approval", [Payment.MatchState.AWAITING_APPROVAL]),
    "sent": ("Approved / in AIQ", [Payment.MatchState.APPROVED, Payment.MatchState.SENT]),
    "failed": ("Failed or stuck", [Payment.MatchState.FAILED, Payment.MatchState.NEEDS_PERSON]),
    "all": ("All", None),
}
DEFAULT_TAB = "unmatched"
# A word search matching at most this many payments is answered from the matches' ids.
WORD_MATCH_CAP = 5000


def parse_amount(text: str) -> Decimal | None:
    """'1,250.00' -> Decimal('1250.00'); None when the text is not an amount (then the search
    treats it as a reference)."""
    if not any(ch.isdigit() for ch in text):
        return None
    try:
        value = amount_from_text(text)
    except MoneyError:
        return None
    return value if value is not None and value >= 0 else None


class InboxFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(
        label="Search reference, payer or amount", method="search", max_length=200
    )
    source = django_filters.ChoiceFilter(label="Source", choices=Source.choices, empty_label="Any")
    currency = django_filters.CharFilter(label="Currency", method="filter_currency", max_length=3)
    received_from = django_filters.DateFilter(
        label="Received from",
        field_name="received_at",
        lookup_expr="date__gte",
        widget=DateInputGB(),
        input_formats=DATE_INPUT_FORMATS,
    )
    received_to = django_filters.DateFilter(
        label="Received to",
        field_name="received_at",
        lookup_expr="date__lte",
        widget=DateInputGB(),
        input_formats=DATE_INPUT_FORMATS,
    )
    # 15 whole digits and 3 decimals: the most a stored amount has (core.money.MAX_AMOUNT)
    amount_min = django_filters.NumberFilter(
        label="Amount from", field_name="amount", lookup_expr="gte", min_value=0,
        max_digits=18, decimal_places=3,
    )  # fmt: skip
    amount_max = django_filters.NumberFilter(
        label="Amount to", field_name="amount", lookup_expr="lte", min_value=0,
        max_digits=18, decimal_places=3,
    )  # fmt: skip
    customer = django_filters.CharFilter(
        label="Customer code", method="filter_customer", max_length=50
    )
    rule = django_filters.ChoiceFilter(
        label="Rule", choices=MatchRule.Kind.choices, method="filter_rule", empty_label="Any"
    )

    class Meta:
        model = Payment
        fields: list[str] = []

    def filter_currency(self, queryset, name, value):
        return queryset.filter(currency=value.strip().upper())

    def filter_customer(self, queryset, name, value):
        return queryset.filter(customer__code=value.strip().upper())

    def filter_rule(self, queryset, name, value):
        proposals = MatchProposal.objects.filter(payment=OuterRef("pk"), rule_kind=value)
        return queryset.filter(Exists(proposals))

    def search(self, queryset, name, value):
        """An amount, a reference, an e-mail address, or words from the payer or description.

        Amounts and references are exact matches on indexed columns (fast at any size);
        words are a substring search, which reads through the newest payments until a page
        is full, so rare words over a large inbox are slower (bench/bench_pages.py).
        """
        value = value.strip()
        if not value:
            return queryset
        amount = parse_amount(value)
        if amount is not None:
            # an amount, or a reference that is all digits (bank rows often are): the bank's
            # own reference, or the payer's reference with the source
            return queryset.filter(
                Q(amount=amount)
                | Q(external_id=value)
                | Q(bank_reference=value)
                | Q(payer_reference=value)
            )
        exact = Q()
        if " " not in value and (any(ch.isdigit() for ch in value) or "_" in value):
            # a reference token: pi_/ch_ ids, PM/CU ids, the bank's reference or end-to-end
            # id, a payer's account; and (below) the bank's narrative that quotes it
            exact = (
                Q(external_id=value)
                | Q(payer_reference=value)
                | Q(bank_reference=value)
                | Q(end_to_end_id=value)
                | Q(payer_account=value)
            )
        elif "@" in value and " " not in value:
            return queryset.filter(payer_email__iexact=value)  # payment_payer_email_upper
        elif len(value.replace(" ", "")) >= 14 and value.replace(" ", "").isalnum():
            exact = Q(payer_account=account_key(account_id=value))  # an IBAN typed with spaces
        matching = queryset.filter(
            exact | Q(payer_name__icontains=value) | Q(description__icontains=value)
        )
        # Rare words: collect the (few) matches first, which PostgreSQL answers from its
        # trigram indexes (migration 0006), then page through them newest first. Common
        # words: the ordered scan finds a page at once, so use it directly. Either way the
        # result is every match, newest first.
        ids = list(matching.order_by().values_list("pk", flat=True)[: WORD_MATCH_CAP + 1])
        if len(ids) <= WORD_MATCH_CAP:
            return queryset.filter(pk__in=ids)
        return matching
