"""Password rules beyond Django's: no "Summer2026"-grade passwords."""

import re

from django.core.exceptions import ValidationError

# One word with digits or symbols around it: the shape of "Summer2026!", "Password123",
# "2026Welcome": guessed first by every spraying tool, whatever their length.
_WORD_AND_NUMBER = re.compile(r"^[\d\W_]*[A-Za-z]+[\d\W_]*$")


class WordAndNumberValidator:
    def validate(self, password, user=None):
        if _WORD_AND_NUMBER.match(password or ""):
            raise ValidationError(
                "This password is one word with numbers or symbols around it (like Summer2026!), "
                "which is guessed first. Use three or four unrelated words, or a password manager.",
                code="password_word_and_number",
            )

    def get_help_text(self):
        return "Your password cannot be one word with numbers or symbols around it."
