"""Response headers for every page (issue 20 point 8), beside Django's SecurityMiddleware
(HSTS, nosniff, referrer policy) and XFrameOptionsMiddleware.

- Content-Security-Policy: scripts, styles, images and fetches from this site only, no inline
  script or style (the pages load self-hosted htmx, Chart.js and static/js/app.js), no
  plugins, no framing, forms post only here.
- Permissions-Policy: no camera, microphone, location, payment or USB for any page.
- Cache-Control: no-store on every page but static files: staff pages show money and names,
  which a shared browser cache or the back button must not keep.
"""

from django.conf import settings

from core.inputs import BadInput

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer", "camera", "geolocation", "gyroscope", "magnetometer", "microphone",
        "payment", "usb", "interest-cohort",
    )
)  # fmt: skip


class SecurityHeadersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        if not request.path.startswith("/" + settings.STATIC_URL.lstrip("/")):
            response["Cache-Control"] = "no-store"
        return response


API_PREFIX = "/api/"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class NulCharacterGuardMiddleware:
    """A NUL character is never part of a code, name, amount or note a person types, and
    PostgreSQL cannot store one in a text column: a query string or form field holding one is
    answered 400 with a clear message before any view reads it, so no screen has to guard
    each raw field (forms already refuse it; raw look-ups such as a customer code did not).

    The API (/api/) is left to its own validation, which answers such input with the API's
    published problem document (its serializers refuse NUL characters field by field)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith(API_PREFIX):
            return self.get_response(request)
        fields = [("the address", request.path)]
        fields += [(name, value) for name, values in request.GET.lists() for value in values]
        if request.method == "POST" and request.content_type in FORM_TYPES:
            fields += [(n, v) for n, values in request.POST.lists() for v in values]
        for name, value in fields:
            if "\x00" in name or "\x00" in value:
                shown = name.replace("\x00", "")[:40]
                raise BadInput(
                    f"{shown or 'A field'}: a NUL character cannot be used. Nothing was changed."
                )
        return self.get_response(request)
