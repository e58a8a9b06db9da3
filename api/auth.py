"""The API's gate: token authentication, read/write scope, a rate limit per client, and JSON
parsed with Decimals (never floats). Kept apart from api/http.py: DRF imports these classes
from its settings while rest_framework.views is still loading."""

import json
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.parsers import JSONParser
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.throttling import SimpleRateThrottle

from api.models import ApiClient
from api.services import api_client_for_token

LAST_USED_EVERY = timedelta(minutes=1)


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
        now = timezone.now()
        if client.last_used_at is None or now - client.last_used_at > LAST_USED_EVERY:
            # a write per minute at most, not per request
            ApiClient.objects.filter(pk=client.pk).update(last_used_at=now)
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
    """API_RATE_LIMIT requests per client (e.g. "1200/min"), counted in the cache (Redis
    when REDIS_URL is set, so every web process counts together)."""

    scope = "client"

    def get_rate(self):
        return settings.API_RATE_LIMIT

    def get_cache_key(self, request, view):
        if isinstance(request.auth, ApiClient):
            return f"throttle_api_{request.auth.pk}"
        return f"throttle_api_anon_{self.get_ident(request)}"


class DecimalJSONParser(JSONParser):
    """Numbers with a fraction become Decimal, not float; amounts are never binary floats."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return json.loads(stream.read().decode("utf-8"), parse_float=Decimal)
        except (ValueError, UnicodeDecodeError) as error:
            raise exceptions.ParseError(f"The body is not valid JSON: {error}") from None
