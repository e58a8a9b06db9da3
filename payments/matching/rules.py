"""What each kind of rule proposes for one payment (called by engine.Matcher in rule order).

Each handler reads the payment's shared state (who paid, which invoices its references name,
what is open) and adds zero or more candidates with a confidence, the lines, and how to render
the explanation a person reads and the evidence behind it: a `_render_*` function and the
values it needs, captured now and turned into text only when the proposal is written or shown
(engine.Candidate). Deciding stays cheap; every figure in the text is the one of match time.
"""

from decimal import Decimal
from operator import itemgetter

from payments.matching.combination import find_combinations
from payments.matching.index import label
from payments.matching.near import weak_reading
from payments.matching.payers import payer_confirmed, runner_up_customer
from payments.models import MatchRule

Kind = MatchRule.Kind
COMBINATION_BUDGET = 400  # search steps per payment (see combination.py and bench/)
# a shortfall approved without a person is at most this share of the invoice, whatever the
# rule allows (25.00 short of a 50.00 invoice is a part payment, not a bank charge)
SHORTFALL_PERCENT_MAX = 10


def _line(invoice_id: int, amount: int, discount: int = 0, write_off: int = 0, gl: str = ""):
    return (invoice_id, amount, discount, write_off, gl)


def reference(state, rule) -> None:
    """The payment names invoices: exact amount -> a (possibly auto-approved) match."""
    amount = state.payment.amount_milli
    if state.ambiguous:
        # One reference, several invoices: show each, let a person decide.
        opens = state.ctx.open_amounts
        for key, group in state.hits.items():
            for hit in group:
                open_amount = opens[hit[0]]
                state.add(
                    rule,
                    400,
                    [_line(hit[0], min(amount, open_amount))],
                    (_render_ambiguous, key, hit[2], len(group), hit[4], amount, open_amount),
                )
        return
    if not state.target:
        return
    opens = state.open_items()
    total = 0
    for _i, o in opens:
        total += o
    if total != amount:
        return  # the tolerance and over/underpayment rules handle the difference
    if state.digits_only:
        # the number alone, or read as typed (cut short, one digit off, an order number):
        # approvable only where a payer identified on its own owns every invoice named, the
        # amount being exact (three pieces of evidence that agree)
        auto = not state.conflict and (state.payer_confirmed or _read_among_few(state))
        confidence = 920 if auto else 850
    else:
        confidence = 990 if len(opens) == 1 else 950
        auto = not state.conflict
    named = state.target_items
    state.add(
        rule,
        confidence,
        [(i, o, 0, 0, "") for i, o in opens],  # _line(i, o), inlined on the hottest path
        (_render_reference, [named[i] for i, _o in opens], amount, opens, total),
        auto=auto,
    )


def _read_among_few(state) -> bool:
    """The payer's name fits a few customers equally well and the reference, read against
    their invoices (cut short, the number without its prefix, an order number), named one
    invoice of one of them, open for exactly the amount: name, reference and amount agree.
    A reading that is only one digit off (or the end of a number) is not enough for this."""
    return state.facts.customer_via.get("via") == "payer_name_and_reference" and not any(
        weak_reading(hit) for group in state.hits.values() for hit in group
    )


def _render_ambiguous(facts, key, words, count, item, amount, open_amount):
    return (
        f"'{words}' matches {count} invoices; {label(item)} is one of them: needs review.",
        {
            "tokens": facts.token_evidence(),
            "ambiguous_key": key,
            "amounts": {"payment": facts.m(amount), "open": facts.m(open_amount)},
            "needs_review": True,
        },
    )


def _render_reference(facts, items, amount, opens, total):
    m = facts.m
    return (
        f"Reference names {', '.join(map(label, items))}; {m(amount)} equals the open amount.",
        {
            "tokens": facts.token_evidence(),
            "amounts": {
                "payment": m(amount),
                "invoices": [{"invoice_id": i, "open": m(o)} for i, o in opens],
                "sum": m(total),
            },
        },
    )


def payer_exact(state, rule) -> None:
    """The payer owes exactly this amount on one invoice."""
    if state.customer_id is None:
        return
    amount = state.payment.amount_milli
    # the payer's invoices open for exactly the amount, oldest first: a scan of the payer's
    # amounts array (in C) finds them without making a pair per open invoice
    ids, opens = state.customer_amounts()
    how_many = opens.count(amount)
    if not how_many:
        return
    position = opens.index(amount)
    same = [ids[position]]
    for _ in range(min(how_many, 3) - 1):  # the next ones, oldest first (3 are proposed)
        position = opens.index(amount, position + 1)
        same.append(ids[position])
    if how_many == 1:
        confidence = 900
    else:
        confidence = 600
    if state.target and same[0] not in state.target:
        confidence = min(confidence, 650)  # the payment names another invoice
    items = state.ctx.items
    # one invoice open for exactly the amount, of a payer identified on its own (not by the
    # amount), the text naming no other invoice: eligible for auto-approval where the rule
    # allows it; a payer known by name only, when the customer whose name came second does not
    # owe the same amount too
    via = state.facts.customer_via
    eligible = how_many == 1 and not state.target and payer_confirmed(via)
    if eligible:
        rival = runner_up_customer(via)
        if (
            rival is not None
            and amount in state.ctx.customer_arrays(rival, state.payment.currency)[1]
        ):
            eligible = False
    for rank, invoice_id in enumerate(same):
        state.add(
            rule,
            confidence - 100 * (rank > 0),
            [(invoice_id, amount, 0, 0, "")],
            (_render_payer_exact, label(items[invoice_id]), amount, how_many),
            auto=eligible and rank == 0,
        )


def _render_payer_exact(facts, invoice_label, amount, same):
    m = facts.m
    return (
        f"Payer's invoice {invoice_label} is open for exactly {m(amount)}"
        + (f" ({same} invoices have that amount; oldest first)." if same > 1 else "."),
        {"amounts": {"payment": m(amount), "open": m(amount)}, "same_amount_invoices": same},
    )


def payer_combination(state, rule) -> None:
    """A lump sum: several of the payer's oldest open invoices add up exactly."""
    if state.customer_id is None or state.target:
        return
    amount = state.payment.amount_milli
    candidates = state.customer_items(rule.max_candidates)
    if len(candidates) < 2:
        return
    combos, exhaustive = find_combinations(
        list(map(itemgetter(1), candidates)),
        amount,
        max_items=rule.max_invoices,
        budget=COMBINATION_BUDGET,
    )
    searched = (len(candidates), rule.max_invoices, len(combos), exhaustive)
    single = len(combos) == 1 and exhaustive
    for rank, combo in enumerate(combos[:3]):
        picked = [candidates[i] for i in combo]
        # the payer's oldest invoices in full, the only combination that adds up, of a payer
        # identified on its own: what a customer paying its statement does (eligible)
        oldest = single and combo == tuple(range(len(combo)))
        sure = oldest and payer_confirmed(state.facts.customer_via)
        state.add(
            rule,
            (900 if sure else 800 if single else 600) - 100 * (rank > 0),
            [_line(i, o) for i, o in picked],
            (
                _render_combination,
                [state.label(i) for i, _o in picked],
                picked,
                amount,
                single,
                searched,
            ),
            auto=sure and rank == 0,
        )


def _render_combination(facts, labels, picked, amount, single, searched):
    m = facts.m
    looked_at, max_invoices, found, exhaustive = searched
    return (
        f"{len(picked)} of the payer's open invoices add up to {m(amount)}: "
        + ", ".join(labels)
        + ("." if single else f" ({found} combinations found; oldest first)."),
        {
            "amounts": {
                "payment": m(amount),
                "summed": [{"invoice_id": i, "open": m(o)} for i, o in picked],
            },
            "searched": {
                "oldest_open_invoices": looked_at,
                "max_invoices": max_invoices,
                "combinations_found": found,
                "exhaustive": exhaustive,
            },
        },
    )


def settlement_discount(state, rule) -> None:
    """Short by exactly the customer's early-settlement discount, paid within its terms: the
    invoice is settled with that discount (not left part-paid)."""
    index = state.ctx.index
    terms_by_customer = index.terms
    if not terms_by_customer or len(state.target) > 1:
        return
    customer_id = state.customer_id
    if customer_id is None:
        return
    terms = terms_by_customer.get(customer_id) or terms_by_customer.get(None)
    if terms is None:
        return
    percent, days = terms
    payment = state.payment
    received = payment.received_on
    received = received.date() if hasattr(received, "date") else received
    amount = payment.amount_milli
    quantum = _quantum(payment.currency)
    dates = index.dates
    for invoice_id, open_amount in state.open_items():
        discount = open_amount - amount
        if discount <= 0:
            continue
        expected = (
            int((Decimal(open_amount) * percent / 100 / quantum).to_integral_value()) * quantum
        )
        if abs(discount - expected) > quantum:  # rounded either way by the payer
            continue
        invoice_date = dates.get(invoice_id)
        if invoice_date is None or received is None or (received - invoice_date).days > days:
            continue
        # named by its full reference and short by exactly the customer's terms: eligible
        named = bool(state.target) and not state.digits_only and not state.conflict
        state.add(
            rule,
            950 if state.target else 850,
            [_line(invoice_id, amount, discount=discount)],
            (
                _render_discount,
                state.label(invoice_id),
                amount,
                open_amount,
                percent,
                days,
                invoice_date,
                received,
            ),
            auto=named,
        )
        return


def _quantum(currency: str) -> int:
    # local: the engine imports this module (HANDLERS)
    from payments.matching.engine import _QUANTUM, _format_money

    if currency not in _QUANTUM:
        _format_money(0, currency)  # fills in the currency's minor unit
    return _QUANTUM[currency][0]


def _render_discount(facts, invoice_label, amount, open_amount, percent, days, dated, received):
    m = facts.m
    return (
        f"{m(amount)} settles {invoice_label} ({m(open_amount)}) less the {percent.normalize()}% "
        f"settlement discount of {m(open_amount - amount)}: paid on {received:%d/%m/%Y}, "
        f"within {days} days of the invoice date {dated:%d/%m/%Y}.",
        {
            "tokens": facts.token_evidence(),
            "amounts": {
                "payment": m(amount),
                "open": m(open_amount),
                "discount": m(open_amount - amount),
            },
            "terms": {"percent": str(percent), "days": days},
            "action": "discount",
        },
    )


def tolerance_allowed(rule, open_amount: int) -> int:
    """Both limits apply where both are set (the stricter wins); thousandths, rounded down."""
    limits = []
    if rule.tolerance_milli > 0:
        limits.append(rule.tolerance_milli)
    if rule.tolerance_percent > 0:
        limits.append(int(Decimal(open_amount) * rule.tolerance_percent / 100))
    return min(limits) if limits else 0


def tolerance(state, rule) -> None:
    """Slightly short of an invoice: settle it with a discount or a write-off."""
    if len(state.target) > 1 or (not state.target and state.customer_id is None):
        return
    if rule.tolerance_action == MatchRule.ToleranceAction.WRITE_OFF:
        if not rule.write_off_gl_account_code:
            return  # misconfigured rule: a write-off needs an account
    absolute = rule.tolerance_milli
    percent = rule.tolerance_percent
    if absolute <= 0 and percent <= 0:
        return  # nothing is allowed
    amount = state.payment.amount_milli
    best = None
    items = state.open_items()
    if absolute > 0:
        # only invoices open for a little more than the payment qualify: pick those out in
        # one tight comprehension (a payer may have dozens of open invoices)
        upper = amount + absolute
        items = [pair for pair in items if amount < pair[1] <= upper]
    for invoice_id, open_amount in items:
        difference = open_amount - amount
        # within both limits where both are set (= tolerance_allowed(), the costly
        # Decimal percentage only for the few differences the absolute limit lets through)
        if difference <= 0 or (absolute > 0 and difference > absolute):
            continue
        if percent > 0 and difference > int(Decimal(open_amount) * percent / 100):
            continue
        if best is None or difference < best[2]:
            best = (invoice_id, open_amount, difference)
    if best is None:
        return
    invoice_id, open_amount, difference = best
    discount = rule.tolerance_action == MatchRule.ToleranceAction.DISCOUNT
    line = (
        _line(invoice_id, amount, discount=difference)
        if discount
        else _line(invoice_id, amount, write_off=difference, gl=rule.write_off_gl_account_code)
    )
    # one invoice named by its full reference, a little short within what the rule allows
    # (and a small share of it), the shortfall not the customer's settlement discount taken
    # late: eligible
    named = (
        len(state.target) == 1
        and not state.digits_only
        and not state.conflict
        and difference * 100 <= open_amount * SHORTFALL_PERCENT_MAX
        and not _late_discount(state, open_amount, difference)
    )
    state.add(
        rule,
        900 if named else 750 if state.target else 600,
        [line],
        (_render_tolerance, rule, invoice_id, state.label(invoice_id), amount, open_amount),
        auto=named,
    )


def _late_discount(state, open_amount: int, difference: int) -> bool:
    """Is the shortfall the payer's settlement discount (its terms' percentage of the open
    amount), taken when its terms no longer allowed it? Then a person decides."""
    terms_by_customer = state.ctx.index.terms
    terms = terms_by_customer.get(state.customer_id) or terms_by_customer.get(None)
    if terms is None:
        return False
    quantum = _quantum(state.payment.currency)
    expected = int((Decimal(open_amount) * terms[0] / 100 / quantum).to_integral_value()) * quantum
    return abs(difference - expected) <= quantum


def _render_tolerance(facts, rule, invoice_id, invoice_label, amount, open_amount):
    m = facts.m
    difference = open_amount - amount
    if rule.tolerance_action == MatchRule.ToleranceAction.DISCOUNT:
        how = "settlement discount"
    else:
        how = f"write-off to {rule.write_off_gl_account_code}"
    return (
        f"{m(amount)} is {m(difference)} short of {invoice_label} "
        f"({m(open_amount)}), within tolerance: the difference as {how}.",
        {
            "tokens": facts.token_evidence([invoice_id]),
            "amounts": {
                "payment": m(amount),
                "open": m(open_amount),
                "difference": m(difference),
                "allowed": m(tolerance_allowed(rule, open_amount)),
            },
            "action": rule.tolerance_action,
        },
    )


def overpayment(state, rule) -> None:
    """More than is open: settle it all, the rest on account. Less: part-pay, oldest first."""
    if not state.target and state.customer_id is None:
        return
    amount = state.payment.amount_milli
    items = state.open_items()
    remaining = amount
    lines = []
    total_open = sum(map(itemgetter(1), items))
    for invoice_id, open_amount in items:
        take = remaining if remaining < open_amount else open_amount
        lines.append((invoice_id, take, 0, 0, ""))
        remaining -= take
        if not remaining:
            break
    part_label = ""
    if not items:
        confidence = 200
    elif remaining > 0:
        confidence = 700 if state.target else 400
    else:
        confidence = 600 if state.target else 300
        part_label = state.label(lines[-1][0])
    # one invoice named by its full reference, of a payer identified on its own (not by that
    # invoice) who has no invoice open for exactly the amount: the payer said what the money
    # is for, and it goes there (the rest on account, or the invoice left part-paid): eligible,
    # unless a shortfall could as well be a bank charge or a discount (a rule before this one
    # offered that: then a person chooses)
    named = (
        len(state.target) == 1
        and bool(items)
        and not state.digits_only
        and not state.conflict
        and state.payer_confirmed
        and amount not in state.customer_amounts()[1]
        and not any(candidate.rule.kind in _SHORTFALL_KINDS for candidate in state.candidates)
    )
    state.add(
        rule,
        900 if named else confidence,
        lines,
        (
            _render_overpayment,
            bool(items),
            amount,
            total_open,
            remaining,
            len(lines),
            part_label,
            bool(state.target),
        ),
        auto=named,
    )


_SHORTFALL_KINDS = frozenset((Kind.TOLERANCE, Kind.SETTLEMENT_DISCOUNT))


def _render_overpayment(
    facts, any_open, amount, total_open, remaining, line_count, part_label, by_reference
):
    m = facts.m
    if not any_open:
        why = "No open invoices: the whole payment goes on account."
    elif remaining > 0:
        why = (
            f"{m(amount)} is more than the {m(total_open)} open: all settled, "
            f"{m(remaining)} on account."
        )
    else:
        why = (
            f"{m(amount)} is less than the {m(total_open)} open: "
            + ("allocated oldest first, " if line_count > 1 else "")
            + f"{part_label} stays part-paid."
        )
    return why, {
        "tokens": facts.token_evidence(),
        "amounts": {
            "payment": m(amount),
            "open_total": m(total_open),
            "on_account": m(remaining),
        },
        "basis": "reference" if by_reference else "payer's open invoices, oldest first",
    }


HANDLERS = {
    Kind.REFERENCE: reference,
    Kind.PAYER_EXACT: payer_exact,
    Kind.PAYER_COMBINATION: payer_combination,
    Kind.SETTLEMENT_DISCOUNT: settlement_discount,
    Kind.TOLERANCE: tolerance,
    Kind.OVERPAYMENT: overpayment,
}
