"""Who paid: the customer behind a payment, from what the bank statement and remittance say.

A bank transfer carries the payer's account name as their bank shows it (upper case, cut at 18
characters, "LTD" or "LIMITED" as that bank likes) and whatever the payer typed. This module
identifies the customer from, in order of strength:
  1. the payer's bank account or statement name a person confirmed before (PayerMapping keyed
     "acct:<account>" or "name:<normalised name>", written when a person confirms an
     allocation: payments/services/payer_learning.py);
  2. the customer's own account code in the text ("ACC CHIL004");
  3. an email address in the text that one customer has;
  4. the payer name (or, when the statement has no name column, the words of the narrative
     before the first reference-like word) scored against every customer name and trading
     name with rapidfuzz, after normalising company names (Ltd/Limited/PLC/& Co/DAC/Unlimited,
     punctuation, "T/A" trading names) and allowing for the bank's cut at 18 characters.
A name is accepted only at NAME_ACCEPT or above and NAME_MARGIN clear of any other customer:
ties decline to guess. Every identification says how it was made (the names compared, the
score, the runner-up), and the engine puts that in each proposal's evidence.

The name index is built once per run from the customers' names (a token -> names map, so a
payer name is scored against the few customers sharing a word with it, not all of them).
"""

import re
from dataclasses import dataclass, field

from rapidfuzz import fuzz, process

LEGAL_WORDS = frozenset(
    "LTD LIMITED PLC CO COMPANY DAC UNLIMITED TEORANTA TEO LLP LLC INC UK THE AND CLG".split()
)
# words of a narrative that are about the payment, not the payer
PAYMENT_WORDS = frozenset(
    (
        "PAYMENT PAYMENTS PAYMT PMT PYMT REF REFERENCE INV INVOICE INVOICES REMITTANCE TO "
        "FOLLOW FOR OF FPI FP FPS BGC BACS CR CREDIT TFR TRANSFER FROM ACC ACCOUNT PO ORDER ORD "
        "THANKS THANK YOU NO NUMBER SETTLEMENT RE VIA ONLINE BANKING MOBILE SEPA SCT"
    ).split()
)
HONORIFICS = frozenset("MR MRS MS MISS DR".split())
TRADING_AS = re.compile(r"\s+(?:T/A|TA|T A|TRADING AS)\s+")
_NOT_ALNUM = re.compile(r"[^0-9A-Z]+")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
BANK_NAME_LENGTH = 18  # UK Faster Payments: the payer's name and reference are cut here
NAME_ACCEPT = 90  # rapidfuzz score (0-100) a payer name must reach
NAME_MARGIN = 6  # ... and by which it must beat every other customer
TOO_COMMON = 400  # a word more customers share than this does not pick candidates
# how a payer was identified that is strong enough for payer-based auto-approval (a name
# scored by likeness is not)
STRONG_IDENTIFICATION = frozenset(
    (
        "payment.customer",
        "payer_mapping",
        "payer_account",
        "customer_email",
        "learned_alias",
        "account_code",
        "email_in_text",
    )
)


# a payer name that fits this many customers or fewer equally well (or is their initials)
# leaves the choice to the reference or the amount (engine.choose_among)
TIE_MAX = 4
SHORTLIST = 16  # rows per score kept for exact scoring: enough for TIE_MAX + 1 customers
ANSWERS_KEPT = 50_000  # by_name answers a run keeps (payers pay more than once)
NAME_SURE = 97  # a name this like one customer's, and NAME_CLEAR above any other's, is sure
NAME_CLEAR = 10


def strongly_identified(via: dict) -> bool:
    """Is the payer known by evidence that stands on its own? Keys a person confirmed, the
    customer's own account code or email, or a name that fits one customer all but exactly
    and no other."""
    how = via.get("via")
    if how in STRONG_IDENTIFICATION:
        return True
    if how != "payer_name" or via.get("score", 0) < NAME_SURE:
        return False
    runner_up = via.get("runner_up")
    return runner_up is None or runner_up["score"] <= via["score"] - NAME_CLEAR


def payer_confirmed(via: dict) -> bool:
    """Was the payer identified independently of the invoices the reference names: strongly
    (above), or by a name accepted on its own (NAME_ACCEPT or more, NAME_MARGIN clear of any
    other customer)? A payer taken from the invoice the reference names, or chosen among
    customers its name fits equally well, is not: the reference or the amount chose it, so
    neither can confirm it. An allocation confirmed by such a payer *and* an exact amount
    may be approved without a person (calibrated on bench/bench_match_quality.py)."""
    return strongly_identified(via) or (
        via.get("via") == "payer_name" and via.get("score", 0) >= NAME_ACCEPT
    )


def runner_up_customer(via: dict) -> int | None:
    """The customer whose name came second to the identified payer's (name identification)."""
    if via.get("via") != "payer_name" or strongly_identified(via):
        return None
    return (via.get("runner_up") or {}).get("customer_id")


def normalise_name(text: str) -> str:
    """'Chiltern Security (UK) Ltd.' -> 'CHILTERN SECURITY': upper case, words only, legal
    forms and 'and' dropped ('&' is 'and')."""
    if not text:
        return ""
    words = _NOT_ALNUM.sub(" ", text.upper().replace("&", " AND ")).split()
    return " ".join(w for w in words if w not in LEGAL_WORDS)


def name_variants(name: str) -> list[str]:
    """A customer's names to compare with: the whole name, and for 'J Smith T/A Chiltern
    Plumbing' the person and the trading name each."""
    upper = name.upper()
    variants = [normalise_name(name)]
    parts = TRADING_AS.split(upper)
    if len(parts) > 1:
        variants.extend(normalise_name(part) for part in parts)
    return [v for v in dict.fromkeys(variants) if v]


def account_alias_key(payer_account: str) -> str:
    """The PayerMapping key a payer's bank account is remembered under."""
    account = "".join((payer_account or "").split()).lower()
    return f"acct:{account}" if account else ""


def alias_key(payer_name: str) -> str:
    """The PayerMapping key a statement payer name is remembered under."""
    normalised = normalise_name(payer_name)
    return f"name:{normalised.lower()}" if normalised else ""


def narrative_name(text: str) -> str:
    """The payer's words of a narrative that holds name and reference in one field
    ('CHILTERN SECURITY INV-010234' -> 'CHILTERN SECURITY'): the words before the first one
    with a digit, payment words and honorifics left out."""
    words = []
    for word in _NOT_ALNUM.sub(" ", (text or "").upper().replace("&", " AND ")).split():
        if any(c.isdigit() for c in word):
            break
        if word in PAYMENT_WORDS:
            if words:
                break
            continue
        if words and word == words[0]:
            break  # the name again ("ACME SUPPLIES ACME SUPPLIES PAYMENT")
        if word not in HONORIFICS and word not in LEGAL_WORDS:
            words.append(word)
    return " ".join(words)


@dataclass
class NameIndex:
    """Customer names of a run: (customer id, entity id, currency, normalised name) rows and
    a word -> row numbers map; account codes by (entity, code)."""

    rows: list = field(default_factory=list)
    by_word: dict = field(default_factory=dict)  # (entity, currency, word) -> row numbers
    by_code: dict = field(default_factory=dict)
    of_customer: dict = field(default_factory=dict)  # customer id -> its normalised names
    by_initials: dict = field(default_factory=dict)  # "RCS" -> customer ids with those initials
    customers: dict = field(default_factory=dict)  # customer id -> (entity id, currency)
    _answers: dict = field(default_factory=dict, repr=False)  # by_name's, for the run

    def add(self, customer_id, entity_id, currency, name, code) -> None:
        self.customers[customer_id] = (entity_id, currency)
        for variant in name_variants(name or ""):
            number = len(self.rows)
            self.rows.append((customer_id, entity_id, currency, variant))
            self.of_customer.setdefault(customer_id, []).append(variant)
            words = variant.split()
            if len(words) >= 2:
                initials = "".join(word[0] for word in words)
                self.by_initials.setdefault(initials, set()).add(customer_id)
            for word in set(variant.split()):
                if len(word) >= 2:
                    self.by_word.setdefault((entity_id, currency, word), []).append(number)
        if code:
            key = (entity_id, code.upper())
            self.by_code[key] = (
                0 if self.by_code.get(key, customer_id) != customer_id else customer_id
            )

    def fits_another(self, customer_id: int, entity_id: int, currency: str, payer: str) -> bool:
        """Does the payer name fit a customer other than `customer_id` as well (its name, or
        its initials)? Then a name learned for one customer cannot tell them apart."""
        query = normalise_name(payer)
        if self.by_initials.get(query.replace(" ", ""), set()) - {customer_id}:
            return True
        other, evidence = self.by_name(entity_id, currency, payer, truncated=False)
        if other is not None:
            return other != customer_id
        return "name_tie" in evidence

    def likeness(self, customer_id: int, payer: str) -> int | None:
        """How like one customer's names a payer name is (0-100; None: nothing to compare)."""
        query = normalise_name(payer)
        names = self.of_customer.get(customer_id)
        if len(query) < 3 or not names:
            return None
        return round(
            max(
                max(fuzz.token_sort_ratio(query, name), fuzz.ratio(query, name[: len(query)]))
                for name in names
            )
        )

    def by_name(self, entity_id: int, currency: str, payer: str, *, truncated: bool):
        """(customer id, evidence) of the best-scoring customer, or (None, why).

        A tie's evidence lists the customers that fit equally well ("customer_ids", at most
        TIE_MAX of them): the engine may let the reference or the amount choose among them,
        never the name alone. Answers are kept for the run (a payer pays more than once)."""
        key = (entity_id, currency, payer, truncated)
        known = self._answers.get(key)
        if known is None:
            if len(self._answers) >= ANSWERS_KEPT:
                self._answers.clear()
            known = self._answers[key] = self._by_name(entity_id, currency, payer, truncated)
        return known

    def _by_name(self, entity_id: int, currency: str, payer: str, truncated: bool):
        """(customer id, evidence) of the best-scoring customer, or (None, why).

        A tie's evidence lists the customers that fit equally well ("customer_ids", at most
        TIE_MAX of them): the engine may let the reference or the amount choose among them,
        never the name alone."""
        query = " ".join(w for w in normalise_name(payer).split() if w not in HONORIFICS)
        if truncated:
            # the bank's cut left the start of a legal form ("CELTIC TRADING UNL"): drop it
            parts = query.split()
            if len(parts) > 1 and any(
                legal.startswith(parts[-1]) for legal in LEGAL_WORDS if len(parts[-1]) >= 2
            ):
                query = " ".join(parts[:-1])
        if len(query) < 3:
            return None, {}
        words = [w for w in query.split() if len(w) >= 2]
        candidates = set()
        for word in words:
            numbers = self.by_word.get((entity_id, currency, word))
            # a word hundreds of customers share picks nobody (scoring them all would cost
            # a run more than everything else it does; such a name is declined)
            if numbers is not None and len(numbers) <= TOO_COMMON:
                candidates.update(numbers)
        if len(candidates) > TOO_COMMON:
            return None, {}
        if not candidates and truncated and words:
            # the last word may be cut: its prefix picks the candidates
            stem = words[-1]
            for (entity, row_currency, word), numbers in self.by_word.items():
                if (
                    word.startswith(stem)
                    and len(numbers) <= TOO_COMMON
                    and (entity, row_currency) == (entity_id, currency)
                ):
                    candidates.update(numbers)
        here = list(map(self.rows.__getitem__, candidates))  # of this entity and currency
        names = [row[3] for row in here]
        size = len(query)
        # the bank cut the name: compare with as much of ours as it kept (a name no longer
        # than the payer's has nothing cut: "" scores 0)
        cut = [name[:size] if truncated or len(name) > size else "" for name in names]
        # the best rows by either score, scored in C (process.extract); only those can be the
        # best few customers, and only those are scored again, exactly, below
        shortlist = {
            position
            for scorer, choices in ((fuzz.token_sort_ratio, names), (fuzz.ratio, cut))
            for _name, _score, position in process.extract(
                query, choices, scorer=scorer, processor=None, limit=SHORTLIST
            )
        }
        penalty = 0 if truncated else 4
        best: dict[int, tuple] = {}
        for position in shortlist:
            customer_id, _entity, _currency, name = here[position]
            score = fuzz.token_sort_ratio(query, name)
            if cut[position]:
                score = max(score, fuzz.ratio(query, cut[position]) - penalty)
            if score > best.get(customer_id, (-1,))[0]:
                best[customer_id] = (score, name)
        if not best:
            return None, {}
        ranked = sorted(best.items(), key=lambda kv: (-kv[1][0], kv[0]))
        customer_id, (score, name) = ranked[0]
        runner_up = ranked[1] if len(ranked) > 1 else None
        evidence = {
            "via": "payer_name",
            "payer_name": payer,
            "compared_with": name,
            "score": round(score),
        }
        if runner_up is not None:
            evidence["runner_up"] = {
                "name": runner_up[1][1],
                "score": round(runner_up[1][0]),
                "customer_id": runner_up[0],
            }
        if score < NAME_ACCEPT:
            return None, {"name_rejected": evidence}
        if runner_up is not None and runner_up[1][0] > score - NAME_MARGIN:
            tied = [c for c, (s, _n) in ranked if s > score - NAME_MARGIN]
            if len(tied) <= TIE_MAX:
                evidence["customer_ids"] = tied
            return None, {"name_tie": evidence}
        return customer_id, evidence

    def initials_fit(self, customer_id: int, payer: str) -> bool:
        """Is the payer name (one word) the initials of this customer's name?"""
        words = [w for w in normalise_name(payer).split() if w not in HONORIFICS]
        return len(words) == 1 and customer_id in self.by_initials.get(words[0], ())

    def initials_of(self, entity_id: int, currency: str, payer: str) -> list[int]:
        """Customers whose name's initials the payer name is ('RCS LTD' for Royal Castle
        Security Ltd): at most TIE_MAX of them, else none (initials alone decide nothing)."""
        words = [w for w in normalise_name(payer).split() if w not in HONORIFICS]
        if len(words) != 1 or not 2 <= len(words[0]) <= 5:
            return []
        found = sorted(
            customer_id
            for customer_id in self.by_initials.get(words[0], ())
            if self.customers.get(customer_id) == (entity_id, currency)
        )
        return found if len(found) <= TIE_MAX else []


def identify(index, payment) -> tuple[int | None, dict]:
    """The customer the payer name or the remittance text identifies, with how; (None,
    {why...}) when nothing does (the engine has tried the payment's own customer, payer
    mappings and the payer's email before)."""
    names: NameIndex | None = index.names
    if names is None:
        return None, {}
    payer_map = index.payer_map
    payer_name = payment.payer_name or ""
    texts = payment.texts or ()
    # 1. the payer's bank account, or its statement name, a person confirmed before
    if payment.payer_account and payer_map:
        key = account_alias_key(payment.payer_account)
        customer_id = payer_map.get((payment.source, key))
        if customer_id:
            return customer_id, {"via": "payer_account", "payer_account": payment.payer_account}
    if payer_name and payer_map:
        key = alias_key(payer_name)
        customer_id = payer_map.get((payment.source, key)) if key else None
        if customer_id and not names.fits_another(
            customer_id, payment.entity_id, payment.currency, payer_name
        ):
            return customer_id, {"via": "learned_alias", "payer_name": payer_name, "payer_key": key}
    # 2./3. the customer's account code or an email in the text
    for source, text, _whole, _word_keys in texts:
        for word in _NOT_ALNUM.sub(" ", text.upper()).split():
            if len(word) >= 4 and word not in PAYMENT_WORDS:
                customer_id = names.by_code.get((payment.entity_id, word))
                if customer_id:
                    return customer_id, {"via": "account_code", "code": word, "source": source}
        if "@" in text:
            for email in _EMAIL.findall(text):
                customer_id = index.by_email.get((payment.entity_id, email.lower()))
                if customer_id:
                    return customer_id, {"via": "email_in_text", "email": email.lower()}
    # 4. the payer name, else the name at the head of the narrative
    why = {}
    candidates = []
    if payer_name:
        candidates.append((payer_name, len(payer_name.strip()) >= BANK_NAME_LENGTH - 1))
    for _source, text, _whole, _word_keys in texts:
        head = narrative_name(text)
        if head and head != normalise_name(payer_name):
            candidates.append((head, len(head) >= BANK_NAME_LENGTH - 3))
            if payer_map:
                key = alias_key(head)
                customer_id = payer_map.get((payment.source, key))
                if customer_id and not names.fits_another(
                    customer_id, payment.entity_id, payment.currency, head
                ):
                    return customer_id, {
                        "via": "learned_alias",
                        "payer_name": head,
                        "payer_key": key,
                    }
        break  # the first text only: later ones are descriptions, not the payer
    for text, truncated in candidates:
        customer_id, evidence = names.by_name(
            payment.entity_id, payment.currency, text, truncated=truncated
        )
        if customer_id:
            return customer_id, evidence
        for key, value in evidence.items():
            why.setdefault(key, value)
    # the name fits a few customers equally well, or is their initials: the engine may let
    # the reference or the amount choose among them (engine.choose_among)
    tie = why.get("name_tie")
    if tie and tie.get("customer_ids"):
        why["candidates"] = {"how": "name_tie", "customer_ids": tie["customer_ids"]}
    else:
        for text, _truncated in candidates:
            found = names.initials_of(payment.entity_id, payment.currency, text)
            if found:
                why["candidates"] = {"how": "initials", "payer_name": text, "customer_ids": found}
                break
    return None, why
