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
    order = sorted(range(count), key=amounts.__getitem__, reverse=True)
    values = [amounts[i] for i in order]
    negated = [-v for v in values]  # ascending, for bisect
    prefix = [0]
    for value in values:
        prefix.append(prefix[-1] + value)
    where: dict[int, list[int]] = {}  # amount -> sorted positions holding it
    for position, value in enumerate(values):
        where.setdefault(value, []).append(position)

    found: set[tuple[int, ...]] = set()
    chosen: list[int] = []
    steps = 0
    stopped = False

    def smallest(slots: int) -> int:
        return prefix[count] - prefix[count - slots]

    def walk(start: int, needed: int, slots: int) -> None:
        nonlocal steps, stopped
        if slots == 1:  # only when called with min_items=1: slots == 2 looks up the last
            for position in where.get(needed, ()):
                if position >= start:
                    found.add(tuple(sorted(order[i] for i in (*chosen, position))))
                    return
            return
        # the first amount may not exceed needed minus what the (slots-1) smallest must add
        position = bisect_left(negated, -(needed - smallest(slots - 1)), start)
        if slots == 2:
            # the innermost level, where most steps are: the last amount is a look-up here
            # (same steps, same order as one more walk() level would take)
            last_start = count - 2
            while position <= last_start:
                steps += 1
                if steps > budget or len(found) >= limit:
                    stopped = True
                    return
                value = values[position]
                if value + values[position + 1] < needed:
                    return  # even the largest remaining amounts fall short
                for other in where.get(needed - value, ()):
                    if other > position:
                        found.add(tuple(sorted(order[i] for i in (*chosen, position, other))))
                        break  # equal amounts further right give equivalent combinations
                position += 1
            return
        while position <= count - slots:
            steps += 1
            if steps > budget or len(found) >= limit:
                stopped = True
                return
            if prefix[position + slots] - prefix[position] < needed:
                return  # even the largest remaining amounts fall short
            chosen.append(position)
            walk(position + 1, needed - values[position], slots - 1)
            chosen.pop()
            if stopped:
                return
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
