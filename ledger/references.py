"""Reference normalisation: the same key for every way people write one invoice number.

Invoices store their keys (Invoice.number_key and friends, set whenever they are saved), so a
matching run looks up the keys its payments carry in the database instead of normalising a
million invoice numbers; payments' texts are normalised when a run loads them.

"INV-001043", "inv 1043", "Inv/1043" and "INV1043" all become "INV1043": upper case, only
letters and digits, leading zeros of each digit run dropped. Bank narratives split a reference
over words ("inv 001043"), so a payment's text yields each word and each adjacent pair of words.
Only keys with a digit are kept: every invoice number and external reference we match has one,
and words like "PAYMENT" would only cost look-ups.
"""

import re
import string

_NOT_ALNUM = re.compile(r"[^0-9A-Z]+")
_LEADING_ZEROS = re.compile(r"(?<![0-9])0+(?=[0-9])")
_WORD_SPLIT = re.compile(r"[\s,;:/|()\[\]]+")
_DIGIT = re.compile(r"[0-9]")

# Bigram keys longer than this are never a reference (keeps long narratives cheap).
_MAX_KEY = 40


# str.translate deletes ASCII punctuation and spaces in C; the regex only runs for the rare
# text with other characters left (accents, symbols), so indexing a million numbers stays cheap.
_DELETE = str.maketrans("", "", string.punctuation + string.whitespace)
_DIGITS = "0123456789"


def reference_key(text: str) -> str:
    """'inv 001043' -> 'INV1043'; '' when nothing usable is left."""
    if not text:
        return ""
    key = text.upper().translate(_DELETE)
    if not (key.isascii() and key.isalnum()):
        key = _NOT_ALNUM.sub("", key)
    if "0" in key:
        # the usual shape, letters then one number ("INV0001043"): strip without the regex
        head = key.rstrip(_DIGITS)
        if head != key and (not head or head.isalpha()):
            return head + (key[len(head) :].lstrip("0") or "0")
        key = _LEADING_ZEROS.sub("", key)
    return key


# Many texts at once (reference_keys): the same steps as reference_key, each one pass of a C
# routine over all the texts joined by newlines, instead of a few Python calls per text.
_NOT_ALNUM_LINES = re.compile(r"[^0-9A-Z\n]+")
_DELETE_KEEP_LINES = str.maketrans(
    "", "", (string.punctuation + string.whitespace).replace("\n", "")
)
_TRAILING_NUMBER_LINES = re.compile(r"(?m)^(?:[0-9A-Z]*[A-Z]([0-9]+)|.*)$")


def reference_keys(texts: list[str]) -> list[str]:
    """[reference_key(t) for t in texts], for a million invoice numbers in well under a second.

    Texts are joined by newlines and each step of reference_key runs once over the whole
    block; a text holding a newline itself (never an invoice number in practice) would shift
    the lines, so then every text takes the one-by-one path instead.
    """
    if not texts:
        return []
    block = "\n".join(texts)
    if block.count("\n") != len(texts) - 1:
        return [reference_key(text) for text in texts]
    block = block.upper().translate(_DELETE_KEEP_LINES)
    if not (block.isascii() and block.replace("\n", "").isalnum()):
        block = _NOT_ALNUM_LINES.sub("", block)  # accents, symbols: rare, so the regex
    block = _LEADING_ZEROS.sub("", block)
    keys = block.split("\n")
    if len(keys) != len(texts):  # upper() made a newline of something (no known character)
        return [reference_key(text) for text in texts]
    return keys


def digits_keys(keys: list[str]) -> list[str]:
    """[digits_key("", k) for k in keys]: the trailing number of each key that has letters
    before it, '#'-prefixed; '' for the others (keys from reference_keys: [0-9A-Z] only)."""
    if not keys:
        return []
    numbers = _TRAILING_NUMBER_LINES.findall("\n".join(keys))  # one per line, '' if none
    return ["#" + number if number else "" for number in numbers]


def digits_key(invoice_number: str, key: str | None = None) -> str:
    """The trailing number of an invoice number ('INV-001043' -> '#1043'), for payments that
    quote only the number ("Invoice 1043"). Prefixed so it never collides with a full key."""
    if key is None:
        key = reference_key(invoice_number)
    head = key.rstrip(_DIGITS)
    if not head or head == key:
        return ""  # no number, or the number is the whole key (already indexed as is)
    return "#" + key[len(head) :]


def text_keys(text: str, key: str | None = None) -> list[tuple[str, str]]:
    """(key, original words) for each word and each adjacent word pair that holds a digit.

    key: reference_key(text) when the caller has it (a text of one word is its own key)."""
    if not text:
        return []
    if key is not None and _WORD_SPLIT.search(text) is None:
        return [(key, text)] if key and _DIGIT.search(key) else []
    words = []
    for word in _WORD_SPLIT.split(text):
        key = reference_key(word)
        if key:  # "-" or "#" alone normalise to nothing: pair the words around them
            words.append((key, word))
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for index, (key, word) in enumerate(words):
        if key not in seen and _DIGIT.search(key):
            seen.add(key)
            out.append((key, word))
        if index + 1 < len(words):
            next_key, next_word = words[index + 1]
            pair = key + next_key
            if pair not in seen and len(pair) <= _MAX_KEY and _DIGIT.search(pair):
                seen.add(pair)
                out.append((pair, f"{word} {next_word}"))
    return out


def is_number(key: str) -> bool:
    return key.isdigit()


def invoice_keys(invoice_number: str, external_reference: str) -> tuple[str, str, str]:
    """(number key, external reference key, number digits key) as an invoice stores them."""
    number_key = reference_key(invoice_number)
    return number_key, reference_key(external_reference), digits_key(invoice_number, number_key)
