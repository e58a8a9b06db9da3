"""Response headers in production mode, as served by gunicorn (issue 20 point 8): CSP with no
inline script or style, Permissions-Policy, HSTS, no framing, a referrer policy, no-store on
staff pages, and no Server banner. And the development default shows no debug pages."""

import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from tests.conftest import free_port
from tests.test_settings_env import _clean_environment

HOST = "recon.example.com"


@pytest.fixture(scope="module")
def production_server(tmp_path_factory):
    port = free_port()
    environment = _clean_environment()
    environment.update(
        AIQRECON_MODE="production",
        AIQRECON_VAR_DIR=str(tmp_path_factory.mktemp("production")),
        DJANGO_SECRET_KEY="k" * 20 + "a-long-random-production-secret-value-1234567890",
        DJANGO_ALLOWED_HOSTS=HOST,
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "aiqrecon.wsgi", "--bind", f"127.0.0.1:{port}",
         "--workers", "1"],
        env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            _get(base, "/accounts/login/")
            break
        except OSError:
            time.sleep(0.1)
    yield base
    server.terminate()
    server.wait(timeout=20)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _get(base, path):
    request = urllib.request.Request(
        base + path, headers={"Host": HOST, "X-Forwarded-Proto": "https"}
    )
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        return opener.open(request, timeout=10)
    except urllib.error.HTTPError as error:
        return error


def test_a_staff_page_in_production_carries_every_protective_header(production_server):
    response = _get(production_server, "/accounts/login/")
    assert response.status == 200
    headers = response.headers
    csp = headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp
    assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert "camera=()" in headers["Permissions-Policy"]
    assert headers["Strict-Transport-Security"].startswith("max-age=31536000")
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cache-Control"] == "no-store"
    assert "Server" not in headers


def test_a_missing_page_in_production_lists_no_urls(production_server):
    response = _get(production_server, "/no-such-page/")
    assert response.status == 404
    body = response.read().decode()
    assert "URLconf" not in body and "payments/" not in body
    assert "Server" not in response.headers


def test_the_development_default_has_debug_off(tmp_path):
    environment = _clean_environment()
    environment.pop("DJANGO_DEBUG", None)
    environment.update(AIQRECON_VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="aiqrecon.settings")
    probe = "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)"
    result = subprocess.run(
        [sys.executable, "-c", probe], env=environment, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == "False", result.stderr


def test_no_template_has_inline_script_or_style():
    """The policy forbids them; a page that used one would silently lose it in the browser."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "templates"
    for template in root.rglob("*.html"):
        text = template.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), template
        assert not re.search(r"\sstyle=\"|<style|\son[a-z]+=\"", text), template
