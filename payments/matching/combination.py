"""Bounded subset-sum: which of a customer's open invoices add up exactly to a lump sum?

The search looks at the `max_candidates` oldest open items only and at most `max_items` of
them, so it is bounded whatever the customer's history. For each size k = 2..max_items it
walks the amounts largest first; sorted amounts give two bounds that cut almost every branch:
  - upper: if the next `slots` largest amounts cannot reach what is still needed, no amount
    further right can (they are smaller), so the loop stops;
  - lower: an amount that leaves less than the `slots - 1` smallest amounts could fill is
    skipped (bisect jumps past all of them at once).
The last invoice of a combination is a hash look-up, not a loop. A step budget caps the
worst case; the caller records when it was hit, so the evidence says "not searched
exhaustively" instead of pretending there was no combination.
Fewer invoices are more plausible than more, so the sizes are tried in turn and the search
stops at the first size that has a combination; among those, the one holding the oldest
invoices comes first.
"""

from bisect import bisect_left
from itertools import accumulate
from operator import neg


def find_combinations(
    amounts: list[int],
    target: int,
    *,
    max_items: int,
    min_items: int = 2,
    limit: int = 8,
    budget: int = 1000,
) -> tuple[list[tuple[int, ...]], bool]:
    """Index tuples into `amounts` (oldest first) whose values sum exactly to `target`.

    Amounts are positive integers (thousandths). Returns (combinations, oldest first;
    exhaustive), exhaustive being False when the step budget or the limit cut the search short.
    """
    count = len(amounts)
    max_items = min(max_items, count)
    if target <= 0 or max_items < min_items:
        return [], True
    # built by C routines (sorted/map/accumulate/dict(zip)): most searches end within a few
    # steps, so this set-up is much of their cost
    order = sorted(range(count), key=amounts.__getitem__, reverse=True)
    values = list(map(amounts.__getitem__, order))
    negated = list(map(neg, values))  # ascending, for bisect
    prefix = [0, *accumulate(values)]
    # amount -> the first position holding it (equal amounts sit side by side: the sort)
    first = dict(zip(reversed(values), range(count - 1, -1, -1), strict=True))

    def holding(amount: int, start: int) -> int | None:
        """The first position >= start holding the amount, or None."""
        position = first.get(amount)
        if position is None:
            return None
        if position < start:
            position = start
            if position >= count or values[position] != amount:
                return None
        return position

    found: set[tuple[int, ...]] = set()
    chosen: list[int] = []
    steps = 0
    stopped = False

    def smallest(slots: int) -> int:
        return prefix[count] - prefix[count - slots]

    def walk(start: int, needed: int, slots: int) -> None:
        nonlocal steps, stopped
        if slots == 1:  # only when called with min_items=1: slots == 2 looks up the last
            position = holding(needed, start)
            if position is not None:
                found.add(tuple(sorted(order[i] for i in (*chosen, position))))
            return
        # the first amount may not exceed needed minus what the (slots-1) smallest must add
        position = bisect_left(negated, -(needed - smallest(slots - 1)), start)
        if slots == 2:
            pairs(position, needed)
            return
        while position <= count - slots:
            steps += 1
            if steps > budget or len(found) >= limit:
                stopped = True
                return
            if prefix[position + slots] - prefix[position] < needed:
                return  # even the largest remaining amounts fall short
            chosen.append(position)
            if slots == 3:
                # the pair level directly (what walk(..., 2) does, without a call per amount)
                rest = needed - values[position]
                pairs(bisect_left(negated, -(rest - values[-1]), position + 1), rest)
            else:
                walk(position + 1, needed - values[position], slots - 1)
            chosen.pop()
            if stopped:
                return
            position += 1

    def pairs(position: int, needed: int) -> None:
        """The innermost level, where most steps are: the last amount is a look-up here (same
        steps, same order as one more walk() level would take)."""
        nonlocal steps, stopped
        last_start = count - 2
        while position <= last_start:
            steps += 1
            if steps > budget or len(found) >= limit:
                stopped = True
                return
            value = values[position]
            if value + values[position + 1] < needed:
                return  # even the largest remaining amounts fall short
            other = first.get(needed - value)
            if other is not None:
                # the first position after this one holding the rest (equal amounts
                # further right give equivalent combinations)
                if other <= position:
                    other = holding(needed - value, position + 1)
                if other is not None:
                    found.add(tuple(sorted(order[i] for i in (*chosen, position, other))))
            position += 1

    for size in range(min_items, max_items + 1):
        # quick reject per size: the largest `size` amounts too small / the smallest too big
        if prefix[size] < target:
            continue
        if smallest(size) > target:
            break
        walk(0, target, size)
        if stopped or found:
            break
    return sorted(found), not stopped
