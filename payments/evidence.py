"""A proposal's evidence (the dict the matching rules record, payments/matching/) as sentences
a finance clerk reads: who paid and how we know, which words matched which invoice, the amounts.
Keys this module does not know still show, as "Key: value", never as a raw dict."""

_CUSTOMER_VIA = {
    "payment.customer": "the customer set on the payment",
    "payer_mapping": "a saved payer mapping ({payer_key})",
    "customer_email": "the customer's email address {email}",
    "email_in_text": "the email address {email} in the payment's text",
    "paid_invoice_reference": "the reference of one of their invoices in the payment",
    "invoice_reference": "the reference of one of their invoices in the payment",
    "payer_account": "the payer's bank account {payer_account}",
    "learned_alias": "the payer name “{payer_name}”, confirmed for them before",
    "account_code": "their customer code {code} in the payment's {source}",
    "payer_name": "the payer's name “{payer_name}”, {score}% like “{compared_with}”",
    "payer_name_and_reference": (
        "the payer's name “{payer_name}”, which fits {customers_fitting} customers equally, "
        "and the reference, which only this one's invoices fit"
    ),
    "payer_name_and_amount": (
        "the payer's name “{payer_name}”, which fits {customers_fitting} customers equally, "
        "and the amount, which only this one has open"
    ),
}

_AMOUNTS = (
    ("payment", "the payment is {}"),
    ("open", "open on the invoice {}"),
    ("sum", "the invoices add up to {}"),
    ("discount", "settlement discount {}"),
    ("difference", "difference {}"),
    ("allowed", "tolerance allowed {}"),
    ("on_account", "{} would stay on account"),
)

_ACTIONS = {
    "discount": "The difference is booked as a settlement discount.",
    "write_off": "The difference is written off.",
    "on_account": "The difference stays on the customer's account.",
}


def _fill(template: str, values: dict) -> str:
    return template.format_map({k: "" if v is None else v for k, v in values.items()})


def _customer(value: dict) -> str:
    for refused, text in (
        ("name_rejected", "No customer: the payer's name “{payer_name}” is too unlike"),
        ("name_tie", "No customer: the payer's name “{payer_name}” fits more than one equally"),
    ):
        if isinstance(value.get(refused), dict):
            closest = value[refused]
            return _fill(text + " the closest, “{compared_with}” ({score}% alike).", closest)
    via = _CUSTOMER_VIA.get(value.get("via"))
    if via is None:
        return "Customer identified." if value.get("customer_id") else "No customer identified."
    return "Customer identified by " + _fill(via, {"payer_key": "", **value}) + "."


def _token(hit: dict) -> str:
    return _fill(
        "“{token}” in the payment's {source} matches the {field} of invoice {invoice}.", hit
    )


def _invoice_amounts(rows) -> str:
    return ", ".join(f"{row.get('open')} open on invoice #{row.get('invoice_id')}" for row in rows)


def _amounts(value: dict) -> str:
    parts = [text.format(value[key]) for key, text in _AMOUNTS if value.get(key) is not None]
    for key in ("invoices", "summed"):
        if value.get(key):
            parts.append(_invoice_amounts(value[key]))
    return (parts[0][:1].upper() + "; ".join(parts)[1:] + ".") if parts else ""


def _searched(value: dict) -> str:
    text = _fill(
        "Looked at the {oldest_open_invoices} oldest open invoices, up to {max_invoices} at a "
        "time: {combinations_found} combinations add up to the payment",
        value,
    )
    return text + ("." if value.get("exhaustive") else " (not every combination was tried).")


def _plain(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return "; ".join(_plain(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k.replace('_', ' ')} {_plain(v)}" for k, v in value.items())
    return str(value)


def _sentence(key: str, value) -> list[str]:
    if key == "customer" and isinstance(value, dict):
        return [_customer(value)]
    if key == "tokens" and isinstance(value, list):
        return [_token(hit) for hit in value if isinstance(hit, dict)]
    if key == "amounts" and isinstance(value, dict):
        return [_amounts(value)]
    if key == "searched" and isinstance(value, dict):
        return [_searched(value)]
    if key == "terms" and isinstance(value, dict):
        return [_fill("Settlement terms: {percent}% off if paid within {days} days.", value)]
    if key == "action" and value in _ACTIONS:
        return [_ACTIONS[value]]
    if key == "would_auto_approve":
        return ["Within the rule's limits for approval without a person." if value else
                "Needs a person's approval."]  # fmt: skip
    if key == "needs_review":
        return ["Needs a person's review."] if value else []
    if key == "ambiguous_key":
        return [f"The reference {value} names more than one open invoice."]
    if key == "same_amount_invoices":
        count = len(value) if isinstance(value, list) else value
        return [f"Open invoices of the same amount: {count}."]
    if key == "duplicate_of" and isinstance(value, dict):
        return [_fill("Looks like a second payment of invoice {invoice} ({gross}).", value)]
    if key == "warning":
        return [str(value)]
    if key == "cross_company" and isinstance(value, dict):
        return [
            _fill(
                "{invoice} is {company}'s invoice: received as a cross-company receipt (this "
                "company's receipt on the intercompany account, {company}'s credit journal "
                "allocated to it).",
                value,
            )
        ]
    return [f"{key.replace('_', ' ').capitalize()}: {_plain(value)}."]


def evidence_sentences(evidence) -> list[str]:
    """The evidence of one proposal, one sentence per fact, in the order it was recorded."""
    if not isinstance(evidence, dict):
        return []
    return [text for key, value in evidence.items() for text in _sentence(key, value) if text]
