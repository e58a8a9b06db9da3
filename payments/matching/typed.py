"""References as people type them: more keys from one payment text than its words give.

ledger.references.text_keys yields each word and word pair of a text. People also write:
  - several invoices sharing one prefix: "INV6595/6638", "INV 4512 4513 4514",
    "INV-010234, 010240", "10234+10240" (the later numbers complete the first one's digits:
    "INV010234/0240" names INV010240);
  - ranges: "INV 4512-4514", "INV4512-14" (at most MAX_RANGE invoices);
  - the letter O for zero and I or L for one inside a number: "INV-O1O234", "INVI0234".
Each extra key comes with the words it was read from, as text_keys gives them, so the
evidence shows what the payer typed. The engine looks these keys up like any other.
"""

import re

from ledger.references import reference_key

MAX_RANGE = 12
_TOKENS = re.compile(r"[A-Z]+|[0-9]+|[-/,+&]")
_CONFUSED_NUMBER = re.compile(r"^([A-Z]*?)([0-9OIL]*[0-9][0-9OIL]*)$")
_LISTING = frozenset("/,+&")
_CONFUSABLE = str.maketrans("OIL", "011")
_WORD = re.compile(r"[^\s,;:/|()\[\]+&]+")


def typed_keys(text: str, known: set[str]) -> list[tuple[str, str]]:
    """(key, words) pairs for the invoices `text` names beyond its plain words' keys (those in
    `known` are left out)."""
    if not text:
        return []
    upper = text.upper()
    out: list[tuple[str, str]] = []
    seen = set(known)

    def add(key: str, words: str) -> None:
        if key and key not in seen and any(c.isdigit() for c in key):
            seen.add(key)
            out.append((key, words))

    if any(c in upper for c in "OIL"):
        for word in _WORD.findall(upper):
            key = reference_key(word)
            match = _CONFUSED_NUMBER.match(key)
            if match and sum(c.isdigit() for c in match.group(2)) >= 3:
                fixed = reference_key(match.group(1) + match.group(2).translate(_CONFUSABLE))
                if fixed != key:
                    add(fixed, word)
    _lists_and_ranges(upper, add)
    return out


def _lists_and_ranges(upper: str, add) -> None:
    tokens = _TOKENS.findall(upper)
    prefix = ""
    base = ""  # the last full number read
    separator = ""
    for token in tokens:
        if token.isalpha():
            prefix = token if 2 <= len(token) <= 5 else ""
            base, separator = "", ""
            continue
        if not token.isdigit():
            separator = token
            continue
        if base and len(token) < len(base):
            number = base[: len(base) - len(token)] + token
        else:
            number = token
        if base and separator == "-":
            low, high = int(base), int(number)
            if 0 < high - low <= MAX_RANGE:
                width = len(base)
                for value in range(low, high + 1):
                    digits = str(value).zfill(width)
                    add(reference_key(prefix + digits), f"{prefix}{base}-{token}")
                    if not prefix:
                        add(reference_key(digits), f"{base}-{token}")
            base, separator = number, ""
            continue
        if base and (separator in _LISTING or separator == ""):
            add(reference_key(prefix + number), f"{prefix} {token}".strip())
            if not prefix:
                add(reference_key(number), token)
        elif len(token) >= 4 and not prefix:
            add(reference_key(token), token)
        if len(token) >= 3 or base:
            base = number
        separator = ""
