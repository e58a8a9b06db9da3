"""The sandbox HTTP server: AIQ's two SOAP endpoints, their WSDLs, and a small control API.

    GET  /system/dashboard/integration/integration_1_1.asmx?wsdl   the committed 1.1 WSDL
    POST /system/dashboard/integration/integration_1_1.asmx        SOAP 1.1 calls (token in body)
    GET  /system/dashboard/integration/integration_2_0.asmx?wsdl   the committed 2.0 WSDL
    POST /system/dashboard/integration/integration_2_0.asmx        SOAP 1.1 calls (AiqSoapHeader)

    GET  /_sandbox/health                 {"ok": true}
    GET  /_sandbox/state[?entity=demo]    counters: receipts per CheckReference, transactions
                                          per external reference and type, calls per operation
    GET  /_sandbox/faults                 current fault settings and how often they fired
    POST /_sandbox/faults                 JSON object of settings to change (see faults.py)
    POST /_sandbox/faults/reset           all faults off, stats cleared
    POST /_sandbox/tokens/expire          expire every session/access token now

The control API is for tests and local use; the server binds to 127.0.0.1 by default.
"""

import json
import logging
import socket
import threading
from collections import Counter
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from sandbox import dispatch, wsdl
from sandbox.faults import Faults
from sandbox.registry import load_all
from sandbox.state import State
from sandbox.store import Store
from sandbox.tokens import Tokens

log = logging.getLogger("sandbox")
ENDPOINTS = {
    "/system/dashboard/integration/integration_1_1.asmx": "1_1",
    "/system/dashboard/integration/integration_2_0.asmx": "2_0",
}
MAX_BODY_BYTES = 32 * 1024 * 1024  # AttachDocument carries whole files
MAX_HEADER_LINE = 65536
MAX_HEADERS = 100


class _Headers(dict):
    """A request's headers by lower-cased name (a repeated header: the last one)."""

    def get(self, name, default=None):
        return super().get(name.lower(), default)


class SandboxServer:
    """The AIQ sandbox: one SQLite file of books, tokens in memory, fault switches."""

    def __init__(
        self,
        db_path: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token_ttl_seconds: float = 1200,
        faults: dict | None = None,
    ):
        load_all()
        for version in ENDPOINTS.values():
            wsdl.service(version)  # parse the WSDLs before the first request, not during it
        self.store = Store(db_path)
        self.tokens = Tokens(ttl_seconds=token_ttl_seconds)
        self.faults = Faults(**(faults or {}))
        self.state = State(self)
        self._calls: Counter[str] = Counter()
        self._calls_lock = threading.Lock()
        self.httpd = ThreadingHTTPServer((host, port), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.sandbox = self
        # open keep-alive connections, closed on stop() so that a stopped sandbox looks
        # like a real outage (connection reset) rather than answering from a closed store
        self._connections: set = set()
        self._connections_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        # writes accepted to be committed later (faults: late_commit_*), one timer each
        self._late: dict[int, tuple] = {}  # key -> (timer, fn, args)
        self._late_seq = 0
        self._late_running = 0
        self._late_lock = threading.Condition()

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def wsdl_url(self, version: str = "1_1") -> str:
        return f"{self.url}/system/dashboard/integration/integration_{version}.asmx?wsdl"

    def count_call(self, op: str) -> None:
        with self._calls_lock:
            self._calls[op] += 1

    def calls(self) -> dict[str, int]:
        with self._calls_lock:
            return dict(self._calls)

    def expire_tokens(self) -> int:
        return self.tokens.expire_all()

    def later(self, delay: float, fn, *args) -> None:
        """Run fn(*args) after `delay` seconds on its own thread (a late commit)."""
        with self._late_lock:
            self._late_seq += 1
            key = self._late_seq
            timer = threading.Timer(delay, self._run_late, args=(key,))
            timer.daemon = True
            self._late[key] = (timer, fn, args)
        timer.start()

    def _take_late(self, key: int):
        """The late commit `key`, now owned by the caller (None if another thread took it)."""
        with self._late_lock:
            entry = self._late.pop(key, None)
            if entry is not None:
                self._late_running += 1
            return entry

    def _run_late(self, key: int) -> None:
        entry = self._take_late(key)
        if entry is not None:
            self._run_taken(entry)

    def _run_taken(self, entry) -> None:
        _timer, fn, args = entry
        try:
            fn(*args)
        finally:
            with self._late_lock:
                self._late_running -= 1
                self._late_lock.notify_all()

    def late_pending(self) -> int:
        with self._late_lock:
            return len(self._late) + self._late_running

    def release_late_commits(self) -> int:
        """Commit every write still waiting for its late commit now (AIQ catching up at a
        moment the caller chooses, e.g. after the outbox resent it); returns how many."""
        with self._late_lock:
            keys = list(self._late)
        released = 0
        for key in keys:
            entry = self._take_late(key)
            if entry is None:
                continue  # its timer fired meanwhile
            entry[0].cancel()
            self._run_taken(entry)
            released += 1
        return released

    def settle_late_commits(self, timeout: float = 120) -> bool:
        """Wait until every write accepted for a late commit has been committed (or refused);
        False if some are still waiting after `timeout` seconds."""
        with self._late_lock:
            return self._late_lock.wait_for(
                lambda: not self._late and not self._late_running, timeout=timeout
            )

    def start(self) -> "SandboxServer":
        """Serve in a background thread (tests); returns self."""
        # A short poll interval: stop() (shutdown) waits up to one interval.
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, args=(0.05,), name="aiq-sandbox", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def track(self, connection, open_: bool) -> None:
        with self._connections_lock:
            (self._connections.add if open_ else self._connections.discard)(connection)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        with self._connections_lock:
            connections, self._connections = list(self._connections), set()
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._late_lock:
            late, self._late = list(self._late.values()), {}
        for timer, _fn, _args in late:  # a stopped AIQ commits nothing more
            timer.cancel()
        with self._late_lock:  # ... and finishes what it was committing
            self._late_lock.wait_for(lambda: not self._late_running, timeout=5)
        self.store.close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse connections as with real AIQ
    # Headers and body go out in separate writes; without TCP_NODELAY the client's delayed
    # ACK holds the body back ~40 ms on every keep-alive call.
    disable_nagle_algorithm = True
    server_version = "AIQSandbox/1.0"

    @property
    def sandbox(self) -> SandboxServer:
        return self.server.sandbox

    def setup(self):
        super().setup()
        self.server.sandbox.track(self.connection, True)

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.sandbox.track(self.connection, False)

    def parse_request(self) -> bool:
        """http.server's parse_request with a plain header reader: the standard one parses the
        headers with the email package, a third of the sandbox's CPU for a small SOAP call
        (the look-ups of a bulk sales invoice command are thousands of them). HTTP/1.0 and
        1.1 only; keep-alive unless the client says close (or speaks 1.0 without keep-alive)."""
        self.command = None  # send_error reads these before they are known
        self.request_version = self.default_request_version
        self.close_connection = True
        self.requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = self.requestline.split()
        if len(words) != 3 or words[2] not in ("HTTP/1.0", "HTTP/1.1"):
            self.send_error(HTTPStatus.BAD_REQUEST, f"Bad request line ({self.requestline!r})")
            return False
        self.command, path, self.request_version = words
        self.path = "/" + path.lstrip("/") if path.startswith("//") else path
        headers = _Headers()
        for _ in range(MAX_HEADERS + 1):
            line = self.rfile.readline(MAX_HEADER_LINE + 1)
            if len(line) > MAX_HEADER_LINE:
                self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Line too long")
                return False
            if line in (b"\r\n", b"\n", b""):
                break
            name, colon, value = str(line, "iso-8859-1").partition(":")
            if not colon or not name.strip():
                self.send_error(HTTPStatus.BAD_REQUEST, "Bad header line")
                return False
            headers[name.strip().lower()] = value.strip()
        else:
            self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Too many headers")
            return False
        self.headers = headers
        connection = headers.get("Connection", "").lower()
        self.close_connection = connection == "close" or (
            self.request_version == "HTTP/1.0" and connection != "keep-alive"
        )
        if headers.get("Expect", "").lower() == "100-continue" and not self.close_connection:
            return self.handle_expect_100()
        return True

    def log_message(self, format, *args):  # noqa: A002 - BaseHTTPRequestHandler's signature
        log.debug("%s - %s", self.address_string(), format % args)

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, value) -> None:
        self._send(status, json.dumps(value, default=str).encode(), "application/json")

    def _read_body(self) -> bytes | None:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self._send(411, b"Content-Length required", "text/plain")
            return None
        if int(length) > MAX_BODY_BYTES:
            self.close_connection = True
            self._send(413, b"Request too large", "text/plain")
            return None
        return self.rfile.read(int(length))

    def do_GET(self):
        parts = urlsplit(self.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        version = ENDPOINTS.get(parts.path.rstrip("/").lower())
        if version and any(key.lower() == "wsdl" for key in query):
            base = f"http://{self.headers.get('Host') or self.sandbox.url.split('//')[1]}"
            return self._send(200, wsdl.wsdl_for(version, base), "text/xml; charset=utf-8")
        if version:
            names = sorted(wsdl.service(version).operations)
            items = "".join(f"<li>{name}</li>" for name in names)
            page = f"<html><body><h1>Integration</h1><ul>{items}</ul></body></html>"
            return self._send(200, page.encode(), "text/html; charset=utf-8")
        if parts.path == "/_sandbox/health":
            return self._json(200, {"ok": True})
        if parts.path == "/_sandbox/state":
            entity = (query.get("entity") or [None])[0]
            return self._json(200, self.sandbox.state.snapshot(entity))
        if parts.path == "/_sandbox/faults":
            return self._json(200, self.sandbox.faults.snapshot())
        self._send(404, b"Not found", "text/plain")

    def do_POST(self):
        parts = urlsplit(self.path)
        body = self._read_body()
        if body is None:
            return
        version = ENDPOINTS.get(parts.path.rstrip("/").lower())
        if version:
            return self._soap(version, body)
        if parts.path == "/_sandbox/faults":
            try:
                changes = json.loads(body or b"{}")
                if not isinstance(changes, dict):
                    raise ValueError("send a JSON object of settings")
                settings = self.sandbox.faults.update(**changes)
            except ValueError as exc:  # json.JSONDecodeError is a ValueError too
                return self._json(400, {"error": str(exc)})
            return self._json(200, {"settings": settings})
        if parts.path == "/_sandbox/faults/reset":
            self.sandbox.faults.reset()
            return self._json(200, self.sandbox.faults.snapshot())
        if parts.path == "/_sandbox/tokens/expire":
            return self._json(200, {"expired": self.sandbox.expire_tokens()})
        self._send(404, b"Not found", "text/plain")

    def _soap(self, version: str, body: bytes) -> None:
        sandbox = self.sandbox
        latency = sandbox.faults.latency_seconds()
        if latency:
            threading.Event().wait(latency)
        outcome = dispatch.handle(sandbox, version, body, self.headers.get("SOAPAction"))
        if outcome.drop:
            # The write is committed; the caller never hears about it.
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self._send(outcome.status, outcome.body, "text/xml; charset=utf-8")
