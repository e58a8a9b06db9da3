"""A tiny real HTTP peer for client tests: answers each operation with AIQ's own sample response.

It checks tokens (1.1 body `token`, 2.0 `AiqSoapHeader`), issues them from Login/TokenGet/
TokenRefresh, and can be told to misbehave per operation (Failure, expired token, dropped
connection, slow answer, SOAP faults, HTTP errors, garbage). It is a stepping stone until the AIQ
sandbox (sandbox/) runs in tests; the behaviour is AIQ's wire format, not a mock of our client.
"""

from __future__ import annotations

import http.server
import itertools
import re
import socket
import threading
import time
from pathlib import Path

from lxml import etree

SAMPLES = Path(__file__).resolve().parent / "aiq_samples"
TNS = "http://www.visorsoftware.com/visor/accountsiq/dashboard/Integration/"
FAULT = (
    '<?xml version="1.0" encoding="utf-8"?><soap:Envelope '
    'xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault>'
    "<faultcode>soap:{code}</faultcode><faultstring>{text}</faultstring>"
    "</soap:Fault></soap:Body></soap:Envelope>"
)


class FakeAiq:
    def __init__(self, *, version: str = "1.1", keys=("partner-key-XYZ", "user-key-XYZ")):
        self.version = version
        self.keys = keys
        self.dir = SAMPLES / ("ops-1_1" if version == "1.1" else "ops-2_0")
        self.valid_tokens: set[str] = set()
        self.counter = itertools.count(1)
        self.calls: list[tuple[str, bytes]] = []  # (operation, raw request body)
        self.script: dict[str, list] = {}  # operation -> queue of behaviours for next calls
        self.wsdl_gets = 0
        self.lock = threading.Lock()
        self.server = None

    # --- control -------------------------------------------------------------------------------

    def then(self, operation: str, *behaviours) -> None:
        """Queue behaviours for the next calls of `operation` (one per call)."""
        self.script.setdefault(operation, []).extend(behaviours)

    def expire_all_tokens(self) -> None:
        self.valid_tokens.clear()

    def ops(self) -> list[str]:
        return [op for op, _ in self.calls]

    def start(self, port: int) -> str:
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # One write per answer, no Nagle: otherwise delayed ACKs add ~40 ms per request.
            wbufsize = 1 << 16
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path.endswith("?wsdl"):
                    with fake.lock:
                        fake.wsdl_gets += 1
                    name = (
                        "integration_1_1.wsdl" if fake.version == "1.1" else "integration_2_0.wsdl"
                    )
                    path = Path(__file__).resolve().parent.parent / "ledger" / "aiq" / name
                    self._reply(200, path.read_bytes())
                else:
                    self._reply(404, b"not found", "text/plain")

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                op = self.headers.get("SOAPAction", "").strip('"').rsplit("/", 1)[-1]
                with fake.lock:
                    fake.calls.append((op, body))
                    queue = fake.script.get(op) or []
                    behaviour = queue.pop(0) if queue else None
                fake.handle(self, op, body, behaviour)

            def _reply(self, status, data, ctype="text/xml; charset=utf-8"):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        path = "integration_1_1.asmx" if self.version == "1.1" else "integration_2_0.asmx"
        return f"http://127.0.0.1:{port}/system/dashboard/integration/{path}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    # --- behaviour -----------------------------------------------------------------------------

    def sample(self, op: str) -> bytes:
        data = (self.dir / op / "response.xml").read_bytes().strip()
        return data.replace(b"<HasExpired>true</HasExpired>", b"<HasExpired>false</HasExpired>")

    def handle(self, handler, op: str, body: bytes, behaviour) -> None:
        if behaviour == "drop":
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)
            return
        if behaviour == "answer_then_close":  # answers, then closes the kept-alive connection
            handler.close_connection = True
            behaviour = None
        if isinstance(behaviour, tuple) and behaviour[0] == "sleep":
            time.sleep(behaviour[1])
            behaviour = None
        if behaviour in ("fault_client", "fault_server"):
            code = "Client" if behaviour == "fault_client" else "Server"
            data = FAULT.format(code=code, text="Server was unable to process request.")
            return handler._reply(500, data.encode())
        if isinstance(behaviour, tuple) and behaviour[0] == "http":
            return handler._reply(behaviour[1], b"<html>Service Unavailable</html>", "text/html")
        if behaviour == "garbage":
            return handler._reply(200, b"<html><body>maintenance</body></html>", "text/html")

        root = etree.fromstring(body)
        if op == "Login":
            ok = (text(root, "partnerKey"), text(root, "userKey")) == self.keys
            token = f"tok-{next(self.counter)}" if ok else ""
            if ok:
                self.valid_tokens.add(token)
            data = self.sample(op).replace(b">string<", f">{token}<".encode())
            if not ok:
                data = data.replace(b"<LoginResult></LoginResult>", b"<LoginResult />")
            return handler._reply(200, data)
        if op in ("TokenGet", "TokenRefresh"):
            ok = (text(root, "clientId"), text(root, "clientSecret")) == self.keys
            if op == "TokenRefresh" and text(root, "refreshToken") not in self.valid_tokens:
                ok = False
            n = next(self.counter)
            access, refresh = (f"at-{n}", f"rt-{n}") if ok else ("", "")
            if ok:
                self.valid_tokens.update({access, refresh})
            data = self.sample(op)
            data = data.replace(b"<AccessToken>string</AccessToken>", tag("AccessToken", access))
            data = data.replace(
                b"<RefreshToken>string</RefreshToken>", tag("RefreshToken", refresh)
            )
            data = data.replace(b"<Status>string</Status>", b"<Status>Success</Status>")
            return handler._reply(200, data)

        token = text(root, "AccessToken" if self.version == "2.0" else "token")
        if token not in self.valid_tokens or behaviour == "expired":
            return handler._reply(200, failure(self.sample(op), "TOKEN", "Token expired", True))
        if isinstance(behaviour, tuple) and behaviour[0] == "failure":
            return handler._reply(200, failure(self.sample(op), behaviour[1], behaviour[2]))
        if callable(behaviour):
            return handler._reply(200, behaviour(self.sample(op)))
        return handler._reply(200, self.sample(op))


def tag(name: str, value: str) -> bytes:
    return f"<{name}>{value}</{name}>".encode()


def text(root, name: str) -> str | None:
    found = root.find(f".//{{{TNS}}}{name}")
    return None if found is None else (found.text or "")


def failure(data: bytes, code: str, message: str, expired: bool = False) -> bytes:
    data = data.replace(b"<Status>Success</Status>", b"<Status>Failure</Status>", 1)
    data = data.replace(b"<ErrorCode>SUCCESS</ErrorCode>", tag("ErrorCode", code), 1)
    data = data.replace(b"<ErrorMessage>string</ErrorMessage>", tag("ErrorMessage", message), 1)
    if expired:
        data = data.replace(b"<HasExpired>false</HasExpired>", b"<HasExpired>true</HasExpired>", 1)
    return re.sub(rb"<transactionID>\d+</transactionID>", b"<transactionID>0</transactionID>", data)
