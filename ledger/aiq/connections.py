"""Keep-alive HTTP connections to one AIQ endpoint, straight over http.client.

An outbox command makes hundreds of small AIQ calls (its duplicate look-ups); through
requests and urllib3 each costs about three times the client CPU of the same POST over
http.client (bench/bench_invoicing.py: ~1.1 ms against ~0.4 ms a call on this machine), and
urllib3 writes the headers and the envelope in two segments where http.client writes one.
What requests gave, kept here: (connect, read) timeouts, TLS verified against the CA bundle
requests would use, a pool of connections shared by threads, a kept connection the server
closed meanwhile is dropped before use, never written to. Errors come out as requests'
exceptions, so AiqClient classifies them as before: nothing sent (`NotConnected`: the
connection or its TLS handshake failed), or sent without an answer (ReadTimeout,
ConnectionError). A proxy or a client certificate goes requests' way (DirectTransport).
"""

from __future__ import annotations

import http.client
import os
import select
import ssl
import threading
from urllib.parse import urlsplit

import requests


class NotConnected(requests.exceptions.ConnectionError):
    """The connection to AIQ could not be made: nothing was sent."""


class Answer:
    """An HTTP answer as zeep and AiqClient read it (requests.Response's names)."""

    __slots__ = ("status_code", "headers", "content", "encoding")

    def __init__(self, status_code: int, headers, content: bytes):
        self.status_code = status_code
        self.headers = headers  # http.client.HTTPMessage: get() is case-insensitive
        self.content = content
        self.encoding = None


def _dropped(connection: http.client.HTTPConnection) -> bool:
    """A kept connection the server has closed (or that holds bytes nobody asked for)."""
    sock = connection.sock
    if sock is None:
        return True
    try:
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


def tls_context(verify) -> ssl.SSLContext:
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if isinstance(verify, str):  # as requests reads it: a directory of certificates or a file
        if os.path.isdir(verify):
            return ssl.create_default_context(capath=verify)
        return ssl.create_default_context(cafile=verify)
    return ssl.create_default_context(cafile=requests.certs.where())


class Connections:
    """Up to `size` idle keep-alive connections to `endpoint`, taken and given back by the
    threads that call AIQ."""

    def __init__(self, endpoint: str, *, verify, timeouts: tuple[float, float], size: int):
        parts = urlsplit(endpoint)
        self.https = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.https else 80)
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.connect_timeout, self.read_timeout = timeouts
        self.size = size
        self._context = tls_context(verify) if self.https else None
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def _take(self) -> http.client.HTTPConnection | None:
        with self._lock:
            while self._idle:
                connection = self._idle.pop()
                if not _dropped(connection):
                    return connection
                connection.close()
        return None

    def _give(self, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < self.size:
                self._idle.append(connection)
                return
        connection.close()

    def _connect(self) -> http.client.HTTPConnection:
        if self.https:
            connection = http.client.HTTPSConnection(
                self.host, self.port, timeout=self.connect_timeout, context=self._context
            )
        else:
            connection = http.client.HTTPConnection(
                self.host, self.port, timeout=self.connect_timeout
            )
        try:
            connection.connect()  # TCP, and the TLS handshake: nothing of ours sent yet
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            raise NotConnected(f"{type(exc).__name__}: {exc}") from None
        connection.sock.settimeout(self.read_timeout)
        return connection

    def post(self, body: bytes, headers: dict[str, str]) -> Answer:
        connection = self._take() or self._connect()
        try:
            connection.request("POST", self.path, body=body, headers=headers)
            answer = connection.getresponse()
            content = answer.read()
        except TimeoutError as exc:
            connection.close()
            raise requests.exceptions.ReadTimeout(f"no answer in time: {exc}") from None
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            raise requests.exceptions.ConnectionError(f"{type(exc).__name__}: {exc}") from None
        if answer.will_close:
            connection.close()
        else:
            self._give(connection)
        return Answer(answer.status, answer.msg, content)
