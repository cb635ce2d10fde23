"""An HTTP relay in front of an LRS that can be slow or refuse chosen statements on demand.

It stands for the faults a real LRS deployment has (a slow network, a stricter validator),
while the statements that get through are stored by the real LRS behind it.
"""

from __future__ import annotations

import json
import time
from http.server import BaseHTTPRequestHandler

import requests

from support.loopback import LoopbackServer

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class Relay(LoopbackServer):
    def __init__(self, upstream: str) -> None:
        """`upstream` is the LRS's base URL, e.g. http://127.0.0.1:PORT/."""
        self.upstream = upstream.rstrip("/")
        self.delay = 0.0  # seconds added to every request
        self.refuse_ids: set[str] = set()  # a POST holding one of these gets a 400
        self.about_versions: list[str] | None = None  # answer GET /about with these
        self.versions_seen: list[str] = []  # X-Experience-API-Version of each POST
        relay = self
        session = requests.Session()
        session.trust_env = False

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _relay(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                time.sleep(relay.delay)
                if self.command == "POST":
                    relay.versions_seen.append(self.headers.get("X-Experience-API-Version", ""))
                if self.command == "GET" and self.path.endswith("/about") and relay.about_versions:
                    return self._answer(200, {"version": relay.about_versions})
                if self.command == "POST" and relay.refuse_ids:
                    sent = {s.get("id") for s in json.loads(body or b"[]")}
                    if refused := sent & relay.refuse_ids:
                        return self._answer(400, {"detail": f"statement {min(refused)} refused"})
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                answer = session.request(
                    self.command, relay.upstream + self.path, data=body, headers=headers, timeout=60
                )
                self.send_response(answer.status_code)
                for key, value in answer.headers.items():
                    if key.lower() not in _HOP_BY_HOP and key.lower() != "content-encoding":
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def _answer(self, status: int, payload: object) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = _relay

            def log_message(self, format: str, *args: object) -> None:
                pass

        super().__init__(Handler)

    @property
    def url(self) -> str:
        """The relayed LRS's xAPI base URL."""
        return f"http://127.0.0.1:{self.port}/xAPI/"
