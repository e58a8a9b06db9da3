"""The API's gate: token authentication, read/write scope, a rate limit per client, and JSON
parsed with Decimals (never floats). Kept apart from api/http.py: DRF imports these classes
from its settings while rest_framework.views is still loading."""

import json
import os
import threading
import time
from decimal import Decimal

import redis
from django.conf import settings
from django.core.cache import cache
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.parsers import JSONParser
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.throttling import SimpleRateThrottle

from api.models import ApiClient
from api.services import api_client_for_token, api_client_mark_used


class TokenAuthentication(BaseAuthentication):
    """`Authorization: Bearer aiq_...`: the client's service user and the client."""

    keyword = b"bearer"

    def authenticate(self, request):
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Give the token after 'Bearer'.")
        try:
            token = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("The token is not valid.") from None
        client = api_client_for_token(token)
        if client is None or not client.user.is_active:
            raise exceptions.AuthenticationFailed("The token is not valid or was revoked.")
        api_client_mark_used(client)
        return client.user, client

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class ClientScope(BasePermission):
    """Any authenticated client reads; only write-scoped clients change anything."""

    message = "This API client may only read."

    def has_permission(self, request, view):
        client = request.auth
        if not isinstance(client, ApiClient):
            return False
        return request.method in SAFE_METHODS or client.scope == ApiClient.Scope.WRITE


class ClientRateThrottle(SimpleRateThrottle):
    """API_RATE_LIMIT requests per client (e.g. "1200/min") in fixed windows of the rate's
    period, counted in Redis when REDIS_URL is set (every web process counts together; one
    INCR + EXPIRE round trip per request), else in the Django cache. DRF's own throttle keeps
    every request's time in one cached list, read and written back whole on each request: its
    cost grows with the rate. A fixed window lets a client send up to twice the rate across a
    window's edge; the limit is there to stop a runaway client, not to meter exactly."""

    scope = "client"

    def get_rate(self):
        return settings.API_RATE_LIMIT

    def allow_request(self, request, view):
        if isinstance(request.auth, ApiClient):
            who = f"client_{request.auth.pk}"
        else:
            who = f"anon_{self.get_ident(request)}"
        now = time.time()
        window = int(now // self.duration)
        count = _count(f"throttle_api_{who}_{window}", self.duration)
        if count <= self.num_requests:
            return True
        self.wait_seconds = (window + 1) * self.duration - now
        return False

    def wait(self):
        return getattr(self, "wait_seconds", None)


# (process id, REDIS_URL) -> this process's Redis client (its connection pool is thread-safe)
_redis: dict[tuple[int, str], redis.Redis] = {}
_redis_lock = threading.Lock()


def _count(key: str, seconds: int) -> int:
    """One more request in this window; the window's count so far."""
    url = settings.REDIS_URL
    if not url:
        cache.add(key, 0, seconds + 1)
        try:
            return cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.add(key, 1, seconds + 1)
            return 1
    slot = (os.getpid(), url)
    if slot not in _redis:
        with _redis_lock:
            _redis.setdefault(slot, redis.Redis.from_url(url))
    pipe = _redis[slot].pipeline(transaction=False)
    pipe.incr(f"aiqrecon:{key}")
    pipe.expire(f"aiqrecon:{key}", seconds + 1)
    return int(pipe.execute()[0])


class DecimalJSONParser(JSONParser):
    """Numbers with a fraction become Decimal, not float; amounts are never binary floats."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return json.loads(stream.read().decode("utf-8"), parse_float=Decimal)
        except (ValueError, UnicodeDecodeError) as error:
            raise exceptions.ParseError(f"The body is not valid JSON: {error}") from None
