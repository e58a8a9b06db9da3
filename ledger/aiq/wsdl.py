"""Where an entity's AIQ lives, and the parsed WSDL to talk to it.

The endpoint comes from the entity's region ("sandbox" = our local stand-in at AIQ_SANDBOX_URL).
The WSDL is fetched from `<endpoint>?wsdl` through zeep's SqliteCache (var/zeep-cache.sqlite, one
day), parsed once per process and shared by every client; if the fetch fails (offline machine,
endpoint down) the bundled file in this package is used instead. Both describe the same wire
contract, and the service address is always overridden with the entity's endpoint.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from django.conf import settings
from zeep.cache import SqliteCache
from zeep.transports import Transport
from zeep.wsdl import Document

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
TNS = "http://www.visorsoftware.com/visor/accountsiq/dashboard/Integration/"
BINDING = f"{{{TNS}}}IntegrationSoap"
PATHS = {
    "1.1": "/system/dashboard/integration/integration_1_1.asmx",
    "2.0": "/system/dashboard/integration/integration_2_0.asmx",
}
BUNDLED = {
    "1.1": HERE / "integration_1_1.wsdl",
    "2.0": HERE / "integration_2_0.wsdl",
}
WSDL_FETCH_TIMEOUT_SECONDS = 5
WSDL_CACHE_SECONDS = 24 * 3600

_documents: dict[tuple, Document] = {}
_lock = threading.Lock()
_fetch_lock = threading.Lock()


def endpoint_for(region: str, api_version: str) -> str:
    if api_version not in PATHS:
        raise ValueError(f"unknown AIQ API version {api_version!r}")
    region = (region or "").strip().lower()
    if region == "sandbox":
        base = settings.AIQ_SANDBOX_URL.rstrip("/")
    else:
        if not region.replace("-", "").isalnum():
            raise ValueError(f"invalid AIQ region {region!r}")
        base = f"https://{region}.accountsiq.com"
    return base + PATHS[api_version]


def bundled_document(api_version: str) -> Document:
    key = ("bundled", api_version)
    with _lock:
        doc = _documents.get(key)
        if doc is None:
            doc = Document(str(BUNDLED[api_version]), Transport())
            _documents[key] = doc
        return doc


def document_for(endpoint: str, api_version: str, *, fetch: bool = True) -> Document:
    """The parsed WSDL for `endpoint`: from `<endpoint>?wsdl` (cached) or the bundled file."""
    if not fetch:
        return bundled_document(api_version)
    key = (endpoint, api_version)
    with _lock:
        doc = _documents.get(key)
    if doc is not None:
        return doc
    with _fetch_lock:  # N threads starting together fetch and parse it once
        with _lock:
            doc = _documents.get(key)
        if doc is not None:
            return doc
        return _fetch(endpoint, api_version, key)


def _fetch(endpoint: str, api_version: str, key: tuple) -> Document:
    try:
        cache_path = Path(settings.VAR_DIR) / "zeep-cache.sqlite"
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        transport = Transport(
            cache=SqliteCache(path=str(cache_path), timeout=WSDL_CACHE_SECONDS),
            timeout=WSDL_FETCH_TIMEOUT_SECONDS,
        )
        doc = Document(endpoint + "?wsdl", transport)
        if BINDING not in doc.bindings:
            raise ValueError("the served WSDL has no IntegrationSoap binding")
    except Exception as exc:  # any fetch/parse problem: the bundled contract is the same
        log.warning(
            "AIQ WSDL from %s unavailable (%s); using the bundled file",
            endpoint,
            type(exc).__name__,
        )
        doc = bundled_document(api_version)
    with _lock:
        # Remember the fallback too: retrying the fetch on every client would add a timeout to
        # each one while the endpoint is down. A new process tries again.
        _documents.setdefault(key, doc)
        return _documents[key]


def forget_documents() -> None:
    with _lock:
        _documents.clear()
