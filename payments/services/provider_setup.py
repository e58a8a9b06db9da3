"""The GL accounts a provider account's books post to, checked against AIQ (issue 17.6).

Integration 1.1 and 2.0 have no operation that creates a GL account (GetGLDefaults and
SaveGLDefaults read and save the *defaults* AIQ's screens use for a new account; nothing takes
a code and a name), so the books never create one: they check, at set-up (the provider account's
admin form asks AIQ's GetGLAccountList there and then) and at start-up (payments.W201, the
mirror as last pulled), that every GL account a journal will post to exists in AIQ and can take
a journal, and say which one and why not where it cannot.
"""

from ledger.sync.pull import gl_account_rows

# what the form tells the admin about a missing GL account: AIQ's Integration API cannot make it
CREATE_IN_AIQ = (
    "add it in AIQ's chart of accounts first, then save again (AIQ's API cannot create a GL "
    "account: SaveGLDefaults only sets the defaults AIQ's own screens offer for a new one)"
)
# (label on screen, ProviderAccount field)
GL_ROLES = (
    ("fees", "fees_gl_account_code"),
    ("VAT on fees", "fee_tax_gl_account_code"),
    ("disputes", "disputes_gl_account_code"),
    ("dispute loss", "dispute_loss_gl_account_code"),
    ("FX gain/loss", "fx_gl_account_code"),
    ("bank transfers in transit", "transfer_gl_account_code"),
)
# AIQ posts to these only through its own ledgers and bank operations, never a journal line of
# ours: a fee or a written-off dispute booked there would break the customer/supplier ledger or
# the bank reconciliation
NOT_POSTABLE = {
    "debtors": "the debtors control account",
    "creditors": "the creditors control account",
    "bank": "a bank account's GL account",
}


def gl_problems(
    codes: dict[str, str], gl_types: dict[str, str], currency: str = "", base: str = ""
) -> list[str]:
    """What is wrong with the GL accounts `codes` (field -> code) given AIQ's GL list
    (code -> category), for an account in `currency` of a company in `base`. Empty: every one
    exists and can take a journal."""
    problems = []
    if currency and base and currency != base and not codes.get("transfer_gl_account_code"):
        problems.append(
            f"bank transfers in transit GL account is empty: a {currency} account in a {base} "
            f"company pays out between two {currency} bank accounts through it (AIQ's general "
            "journal has no currency), so its payouts would not be booked"
        )
    for label, field in GL_ROLES:
        code = (codes.get(field) or "").strip()
        if not code:
            continue
        if code not in gl_types:
            problems.append(f"{label} GL account {code} is not in AIQ's GL list: {CREATE_IN_AIQ}")
        elif (gl_types[code] or "").lower() in NOT_POSTABLE:
            problems.append(
                f"{label} GL account {code} is {NOT_POSTABLE[gl_types[code].lower()]} in AIQ: "
                "journals cannot post to it; choose an expense or balance-sheet account"
            )
    if codes.get("disputes_gl_account_code") and not codes.get("dispute_loss_gl_account_code"):
        problems.append(
            "dispute loss GL account is empty: a lost dispute would stay on the disputes "
            "account instead of being written off"
        )
    return problems


def aiq_gl_types(client) -> dict[str, str]:
    """AIQ's GL list as it is now (GetGLAccountList): code -> category."""
    return {code: kind for code, _name, kind in gl_account_rows(client.get_gl_account_list())}
