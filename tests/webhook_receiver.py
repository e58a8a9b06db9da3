"""A subscriber's endpoint as an integrator would write it: a real HTTP server on 127.0.0.1
that checks each event's signature with the subscription's secret (api.webhooks'
webhook_signature_verify, the check docs/api.md tells integrators to make), keeps what it
received, and can be told to answer 500 for a while (an outage). Set-up only."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from api.webhooks import SIGNATURE_HEADER, SignatureInvalid, webhook_signature_verify


class Receiver:
    def __init__(self):
        self.secret = ""
        self.events: list[dict] = []  # verified events, in arrival order
        self.refused: list[str] = []  # why a request was refused
        self.failing = 0  # answer 500 to this many requests
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if receiver.failing:
                    receiver.failing -= 1
                    self.send_response(500)
                    self.end_headers()
                    self.wfile.write(b"down for maintenance")
                    return
                try:
                    webhook_signature_verify(
                        body, self.headers.get(SIGNATURE_HEADER, ""), receiver.secret
                    )
                except SignatureInvalid as error:
                    receiver.refused.append(str(error))
                    self.send_response(400)
                    self.end_headers()
                    return
                event = json.loads(body)
                if event["id"] != self.headers.get("Aiqrecon-Event-Id"):
                    receiver.refused.append("event id header differs")
                receiver.events.append(event)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/aiq"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def types(self) -> list[str]:
        return [event["type"] for event in self.events]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
