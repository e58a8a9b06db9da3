"""OpenAPI pieces shared by the views: the problem document for every error status, and the
Idempotency-Key header every POST needs."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse

from api.serializers import Problem

_PROBLEM = OpenApiResponse(Problem, description="A problem document (RFC 9457)")
ERRORS = {(code, "application/problem+json"): _PROBLEM for code in (400, 401, 403, 404, 429)}
WRITE_ERRORS = {
    **ERRORS,
    (409, "application/problem+json"): _PROBLEM,
    (422, "application/problem+json"): _PROBLEM,
}
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    required=True,
    description="Any unique string (a UUID) per intended effect; a repeat with the same "
    "key and body gets the first answer, the same key with another body 409. Kept 24 h.",
)


class TokenScheme(OpenApiAuthenticationExtension):
    target_class = "api.auth.TokenAuthentication"
    name = "bearer"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "aiq_… token of an API client"}
