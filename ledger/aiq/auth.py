"""Credentials from the environment and the per-process session-token cache.

Integration 1.1: `Login(companyID, partnerKey, userKey)` returns a token valid for 20 minutes,
passed as the `token` parameter of every call. Integration 2.0: `TokenGet(clientId, clientSecret)`
returns an access token and a refresh token; the access token goes in the `AiqSoapHeader`, and
`TokenRefresh` renews it. We renew before expiry (TOKEN_LIFETIME - REFRESH_MARGIN) rather than
waiting for AIQ's HasExpired, so a batch rarely meets an expired token; HasExpired is still handled
(the client invalidates the token and renews it: TokenRefresh on 2.0, Login on 1.1).

Tokens are shared by every client of the same (endpoint, company, credentials) in this process and
guarded by one lock per key, so N threads starting together log in once, not N times.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field, replace

from ledger.aiq.errors import AiqConfigurationError

TOKEN_LIFETIME_SECONDS = 20 * 60
REFRESH_MARGIN_SECONDS = 2 * 60


class Secret:
    """A string that never shows itself in repr/str (logs, tracebacks, admin)."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Credentials:
    api_version: str  # "1.1" or "2.0"
    company_id: str
    key_id: Secret  # 1.1 partner key / 2.0 client id
    key_secret: Secret  # 1.1 user key / 2.0 client secret

    def secrets(self) -> list[str]:
        return [s.reveal() for s in (self.key_id, self.key_secret) if s.reveal()]


def env_names(api_version: str, credentials_key: str) -> tuple[str, str]:
    if api_version == "2.0":
        return f"AIQ_{credentials_key}_CLIENT_ID", f"AIQ_{credentials_key}_CLIENT_SECRET"
    return f"AIQ_{credentials_key}_PARTNER_KEY", f"AIQ_{credentials_key}_USER_KEY"


def credentials_from_env(api_version: str, company_id: str, credentials_key: str) -> Credentials:
    names = env_names(api_version, credentials_key)
    values = [os.environ.get(n, "").strip() for n in names]
    missing = [n for n, v in zip(names, values, strict=True) if not v]
    if missing:
        raise AiqConfigurationError(
            f"AIQ credentials not configured: set {', '.join(missing)} in the environment"
        )
    return Credentials(api_version, company_id, Secret(values[0]), Secret(values[1]))


@dataclass
class Session:
    token: Secret
    refresh_token: Secret | None = None
    obtained_at: float = field(default_factory=time.monotonic)

    def fresh(self, now: float | None = None) -> bool:
        age = (now if now is not None else time.monotonic()) - self.obtained_at
        return age < TOKEN_LIFETIME_SECONDS - REFRESH_MARGIN_SECONDS


class TokenCache:
    """(key) -> Session, with a lock per key for single-flight logins."""

    def __init__(self):
        self._sessions: dict[tuple, Session] = {}
        self._locks: dict[tuple, threading.Lock] = {}
        self._guard = threading.Lock()

    def lock(self, key: tuple) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def get(self, key: tuple) -> Session | None:
        return self._sessions.get(key)

    def put(self, key: tuple, session: Session) -> None:
        self._sessions[key] = session

    def invalidate(self, key: tuple, token: Secret) -> None:
        """Mark `token` as no longer usable, unless another thread has already replaced it with a
        newer one. The session is kept, stale, so that a 2.0 refresh token can renew it
        (TokenRefresh) instead of a full TokenGet; 1.1 has no refresh and logs in again."""
        with self.lock(key):
            current = self._sessions.get(key)
            if current is not None and current.token == token:
                self._sessions[key] = replace(current, obtained_at=float("-inf"))

    def clear(self) -> None:
        with self._guard:
            self._sessions.clear()


TOKENS = TokenCache()
