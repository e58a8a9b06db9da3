"""Session tokens (1.1 `Login`) and OAuth access/refresh tokens (2.0 `TokenGet`).

Tokens live in memory, as AIQ's sessions do on its web servers: restarting the sandbox logs
every client out (they then see `HasExpired` and log in again). Session and access tokens last
`ttl_seconds` (AIQ: 20 minutes); refresh tokens `refresh_ttl_seconds` and are single-use
(`TokenRefresh` returns a new pair). A fault switch can make every token report expiry after
N calls.
"""

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sandbox.registry import INVALID_TOKEN, TOKEN_EXPIRED, AiqFailure


@dataclass
class _Token:
    kind: str  # "session", "access" or "refresh"
    entities: tuple[str, ...]
    client_id: str | None
    expires_at: float
    calls: int = 0


class Tokens:
    def __init__(
        self,
        ttl_seconds: float = 1200,
        refresh_ttl_seconds: float = 86400,
        clock: Callable[[], float] = time.time,
    ):
        self.ttl_seconds = ttl_seconds
        self.refresh_ttl_seconds = refresh_ttl_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._tokens: dict[str, _Token] = {}

    def _issue(self, kind, entities, client_id, ttl) -> str:
        token = secrets.token_urlsafe(32)
        self._tokens[token] = _Token(kind, tuple(entities), client_id, self.clock() + ttl)
        return token

    def issue_session(self, entity_id: str) -> str:
        with self._lock:
            return self._issue("session", [entity_id], None, self.ttl_seconds)

    def issue_pair(self, client_id: str, entities: list[str]) -> tuple[str, str]:
        with self._lock:
            return (
                self._issue("access", entities, client_id, self.ttl_seconds),
                self._issue("refresh", entities, client_id, self.refresh_ttl_seconds),
            )

    def refresh(self, client_id: str, refresh_token: str | None) -> tuple[str, str] | None:
        with self._lock:
            found = self._tokens.get(refresh_token or "")
            if (
                found is None
                or found.kind != "refresh"
                or found.client_id != client_id
                or found.expires_at <= self.clock()
            ):
                return None
            del self._tokens[refresh_token]
            return (
                self._issue("access", found.entities, client_id, self.ttl_seconds),
                self._issue("refresh", found.entities, client_id, self.refresh_ttl_seconds),
            )

    def check(self, token: str | None, kind: str, expire_every: int = 0) -> _Token:
        """The live token, or AiqFailure with HasExpired=true (the signal to log in again)."""
        with self._lock:
            found = self._tokens.get(token or "")
            if found is None or found.kind != kind:
                raise AiqFailure(
                    "The token is not valid. Log in again.", INVALID_TOKEN, has_expired=True
                )
            found.calls += 1
            if found.expires_at <= self.clock() or (expire_every and found.calls > expire_every):
                found.expires_at = 0  # stays expired
                raise AiqFailure(
                    "The session has expired. Log in again.", TOKEN_EXPIRED, has_expired=True
                )
            return found

    def expire_all(self) -> int:
        """Expire every session and access token now (refresh tokens keep working)."""
        with self._lock:
            count = 0
            for token in self._tokens.values():
                if token.kind != "refresh" and token.expires_at > 0:
                    token.expires_at = 0
                    count += 1
            return count

    def live_count(self) -> int:
        with self._lock:
            now = self.clock()
            return sum(1 for t in self._tokens.values() if t.expires_at > now)
