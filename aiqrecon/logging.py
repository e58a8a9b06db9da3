"""A logging filter that removes secret values from every record before it is written.

Secrets come from the environment; any variable whose name says it is a key, token, secret or
password is collected at start-up and replaced by "[redacted]" wherever it would be logged,
including in exception text and arguments.
"""

import logging
import os
import re

_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|SECRETS|PASSWORD)$")


def secret_values() -> list[str]:
    values = []
    for name, value in os.environ.items():
        if not _SECRET_NAME.search(name) or not value:
            continue
        for part in value.split(","):
            part = part.strip()
            if len(part) >= 6:  # short values would redact ordinary words
                values.append(part)
    return sorted(set(values), key=len, reverse=True)


def redact(text: str, secrets: list[str] | None = None) -> str:
    for secret in secret_values() if secrets is None else secrets:
        text = text.replace(secret, "[redacted]")
    return text


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        secrets = secret_values()
        if not secrets:
            return True
        record.msg = redact(record.getMessage(), secrets)
        record.args = ()
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info), secrets)
        return True
