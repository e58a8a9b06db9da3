"""An audit entry's change (its `before` and `after` snapshots) as sentences a finance clerk
reads: "Status: sent → confirmed." per field that changed, instead of two raw dicts. The audit
log knows no app's models (staff sits below them), so codes are only made readable, not
translated: "part_paid" reads "part paid"."""

import re

_CODE = re.compile(r"^[a-z]+(_[a-z]+)+$")


def _label(key) -> str:
    return str(key).replace("_", " ").capitalize()


def _value(value) -> str:
    if value is None or value == "":
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_value(v) for v in value) if value else "none"
    if isinstance(value, dict):
        return "; ".join(f"{_label(k).lower()} {_value(v)}" for k, v in value.items())
    text = str(value)
    return text.replace("_", " ") if _CODE.match(text) else text


def change_sentences(before, after) -> list[str]:
    """One sentence per field that changed, in the order the entry recorded them."""
    if before in (None, {}) and after in (None, {}):
        return []
    if not isinstance(before, dict) or not isinstance(after, dict):
        if before in (None, {}):
            return [f"Recorded: {_value(after)}."]
        if after in (None, {}):
            return [f"Was: {_value(before)}."]
        return [f"Was {_value(before)}, now {_value(after)}."]
    sentences = []
    for key in [*before, *(k for k in after if k not in before)]:
        if key not in after:
            sentences.append(f"{_label(key)}: was {_value(before[key])}.")
        elif key not in before:
            sentences.append(f"{_label(key)}: {_value(after[key])}.")
        elif before[key] != after[key]:
            sentences.append(f"{_label(key)}: {_value(before[key])} → {_value(after[key])}.")
    return sentences or ["No field changed."]
