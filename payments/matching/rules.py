"""What each kind of rule proposes for one payment (called by engine.Matcher in rule order).

Each handler reads the payment's shared state (who paid, which invoices its references name,
what is open) and adds zero or more candidates with a confidence, an explanation a person can
read, and the evidence behind it.
"""

from decimal import Decimal

from payments.matching.combination import find_combinations
from payments.models import MatchRule

Kind = MatchRule.Kind
COMBINATION_BUDGET = 400  # search steps per payment (see combination.py and bench/)


def _line(invoice_id: int, amount: int, discount: int = 0, write_off: int = 0, gl: str = ""):
    return (invoice_id, amount, discount, write_off, gl)


def reference(state, rule) -> None:
    """The payment names invoices: exact amount -> a (possibly auto-approved) match."""
    amount = state.payment.amount_milli
    if state.ambiguous:
        # One reference, several invoices: show each, let a person decide.
        for key, group in state.hits.items():
            for hit in group:
                open_amount = state.ctx.open(hit.invoice_id)
                take = min(amount, open_amount)
                state.add(
                    rule,
                    400,
                    f"'{hit.text}' matches {len(group)} invoices; "
                    f"{state.ctx.label(hit.invoice_id)} is one of them: needs review.",
                    [_line(hit.invoice_id, take)],
                    {
                        "tokens": state.token_evidence(),
                        "ambiguous_key": key,
                        "amounts": {"payment": state.m(amount), "open": state.m(open_amount)},
                        "needs_review": True,
                    },
                )
        return
    if not state.target:
        return
    opens = [(i, state.ctx.open(i)) for i in state.target]
    total = sum(o for _i, o in opens)
    if total != amount:
        return  # the tolerance and over/underpayment rules handle the difference
    labels = ", ".join(state.ctx.label(i) for i, _o in opens)
    if state.digits_only:
        confidence = 850
    else:
        confidence = 990 if len(opens) == 1 else 950
    auto = rule.auto_approve and not state.digits_only and not state.conflict
    state.add(
        rule,
        confidence,
        f"Reference names {labels}; {state.m(amount)} equals the open amount.",
        [_line(i, o) for i, o in opens],
        {
            "tokens": state.token_evidence(),
            "amounts": {
                "payment": state.m(amount),
                "invoices": [{"invoice_id": i, "open": state.m(o)} for i, o in opens],
                "sum": state.m(total),
            },
        },
        auto=auto,
    )


def payer_exact(state, rule) -> None:
    """The payer owes exactly this amount on one invoice."""
    if state.customer_id is None:
        return
    amount = state.payment.amount_milli
    same = state.ctx.customer_amounts(state.customer_id, state.payment.currency).get(amount)
    same = [(i, amount) for i in same] if same else None
    if not same:
        return
    if len(same) == 1:
        confidence = 900
    else:
        confidence = 600
    if state.target and same[0][0] not in state.target:
        confidence = min(confidence, 650)  # the payment names another invoice
    for rank, (invoice_id, open_amount) in enumerate(same[:3]):
        state.add(
            rule,
            confidence - 100 * (rank > 0),
            f"Payer's invoice {state.ctx.label(invoice_id)} is open for exactly "
            f"{state.m(amount)}"
            + (
                f" ({len(same)} invoices have that amount; oldest first)." if len(same) > 1 else "."
            ),
            [_line(invoice_id, open_amount)],
            {
                "amounts": {"payment": state.m(amount), "open": state.m(open_amount)},
                "same_amount_invoices": len(same),
            },
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
        [o for _i, o in candidates],
        amount,
        max_items=rule.max_invoices,
        budget=COMBINATION_BUDGET,
    )
    for rank, combo in enumerate(combos[:3]):
        picked = [candidates[i] for i in combo]
        single = len(combos) == 1 and exhaustive
        state.add(
            rule,
            (800 if single else 600) - 100 * (rank > 0),
            f"{len(picked)} of the payer's open invoices add up to {state.m(amount)}: "
            + ", ".join(state.ctx.label(i) for i, _o in picked)
            + ("." if single else f" ({len(combos)} combinations found; oldest first)."),
            [_line(i, o) for i, o in picked],
            {
                "amounts": {
                    "payment": state.m(amount),
                    "summed": [{"invoice_id": i, "open": state.m(o)} for i, o in picked],
                },
                "searched": {
                    "oldest_open_invoices": len(candidates),
                    "max_invoices": rule.max_invoices,
                    "combinations_found": len(combos),
                    "exhaustive": exhaustive,
                },
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
    amount = state.payment.amount_milli
    best = None
    for invoice_id, open_amount in state.open_items():
        difference = open_amount - amount
        if 0 < difference <= tolerance_allowed(rule, open_amount):
            if best is None or difference < best[2]:
                best = (invoice_id, open_amount, difference)
    if best is None:
        return
    invoice_id, open_amount, difference = best
    discount = rule.tolerance_action == MatchRule.ToleranceAction.DISCOUNT
    how = "settlement discount" if discount else f"write-off to {rule.write_off_gl_account_code}"
    line = (
        _line(invoice_id, amount, discount=difference)
        if discount
        else _line(invoice_id, amount, write_off=difference, gl=rule.write_off_gl_account_code)
    )
    state.add(
        rule,
        750 if state.target else 600,
        f"{state.m(amount)} is {state.m(difference)} short of {state.ctx.label(invoice_id)} "
        f"({state.m(open_amount)}), within tolerance: the difference as {how}.",
        [line],
        {
            "tokens": state.token_evidence([invoice_id]),
            "amounts": {
                "payment": state.m(amount),
                "open": state.m(open_amount),
                "difference": state.m(difference),
                "allowed": state.m(tolerance_allowed(rule, open_amount)),
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
    for invoice_id, open_amount in items:
        if remaining <= 0:
            break
        take = min(remaining, open_amount)
        lines.append(_line(invoice_id, take))
        remaining -= take
    total_open = sum(o for _i, o in items)
    if not items:
        confidence, why = 200, "No open invoices: the whole payment goes on account."
    elif remaining > 0:
        confidence = 700 if state.target else 400
        why = (
            f"{state.m(amount)} is more than the {state.m(total_open)} open: all settled, "
            f"{state.m(remaining)} on account."
        )
    else:
        confidence = 600 if state.target else 300
        part = lines[-1]
        why = (
            f"{state.m(amount)} is less than the {state.m(total_open)} open: "
            + ("allocated oldest first, " if len(lines) > 1 else "")
            + f"{state.ctx.label(part[0])} stays part-paid."
        )
    state.add(
        rule,
        confidence,
        why,
        lines,
        {
            "tokens": state.token_evidence(),
            "amounts": {
                "payment": state.m(amount),
                "open_total": state.m(total_open),
                "on_account": state.m(remaining),
            },
            "basis": "reference" if state.target else "payer's open invoices, oldest first",
        },
    )


HANDLERS = {
    Kind.REFERENCE: reference,
    Kind.PAYER_EXACT: payer_exact,
    Kind.PAYER_COMBINATION: payer_combination,
    Kind.TOLERANCE: tolerance,
    Kind.OVERPAYMENT: overpayment,
}
