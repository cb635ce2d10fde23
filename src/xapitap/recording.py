"""`xapi_record`: matched analytics flows (or, with `xapi_record_all`, every flow), request
and response, appended to a mitmproxy flow file that `mitmdump -nr`, mitmweb and `xapitap
replay` read.

Credentials are removed before anything is written: the values of Cookie, Set-Cookie,
Authorization and Proxy-Authorization, and the password of the proxy login (its user name
is kept: with xapi_participant=proxyauth it names the participant, as it does live). Bodies
are kept: replay needs them. The file is created mode 0600: it holds raw learner data.

The hook only takes the flow's state (no copy of its bodies, which are immutable bytes) and
queues it; a thread of its own redacts and writes it, so recording never holds the
learner's traffic. A flow still waiting for its response when the proxy stops is written
as it is, so that no matched request is lost."""

from __future__ import annotations

import logging
import os
import queue
import threading
from pathlib import Path
from typing import Any

from mitmproxy import http
from mitmproxy.io import FlowWriter

log = logging.getLogger("xapitap")

REQUEST_SECRETS = ("cookie", "authorization", "proxy-authorization")
RESPONSE_SECRETS = ("set-cookie",)
REDACTED = "redacted"


def redact(flow: http.HTTPFlow) -> None:
    """Remove the credentials a flow carries (in place)."""
    for name in REQUEST_SECRETS:
        if name in flow.request.headers:
            flow.request.headers[name] = REDACTED
    if flow.response is not None:
        for name in RESPONSE_SECRETS:
            values = flow.response.headers.get_all(name)
            if values:
                flow.response.headers.set_all(name, [REDACTED] * len(values))
    login = flow.metadata.get("proxyauth")
    if isinstance(login, tuple | list) and login:
        flow.metadata["proxyauth"] = (login[0], REDACTED)


class Recorder:
    def __init__(self, path: Path) -> None:
        """Open (create, 0600) the flow file to append to; OSError if it can't."""
        self.path = path
        descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._file = os.fdopen(descriptor, "ab")
        self._writer = FlowWriter(self._file)  # type: ignore[no-untyped-call]
        self._queue: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        self._waiting: dict[str, http.HTTPFlow] = {}  # matched, without a response yet
        self._thread = threading.Thread(target=self._write, name="xapitap-record", daemon=True)
        self._thread.start()
        self.written = 0

    def expect(self, flow: http.HTTPFlow) -> None:
        """A matched request: it is recorded with its response, or as it is at the stop."""
        self._waiting[flow.id] = flow

    def done(self, flow: http.HTTPFlow) -> None:
        """A flow is over (response or error): record it."""
        self._waiting.pop(flow.id, None)
        self._queue.put(flow.get_state())

    def is_expected(self, flow: http.HTTPFlow) -> bool:
        return flow.id in self._waiting

    def _write(self) -> None:
        while (state := self._queue.get()) is not None:
            try:
                flow = http.HTTPFlow.from_state(state)
                assert isinstance(flow, http.HTTPFlow)
                redact(flow)
                self._writer.add(flow)
                self._file.flush()
                self.written += 1
            except (OSError, ValueError, TypeError) as e:
                log.error("xapitap: cannot record a flow to %s: %s", self.path, e)

    def stop(self) -> None:
        """Record what is still waiting for its response, write everything, close."""
        for flow in list(self._waiting.values()):
            self._queue.put(flow.get_state())
        self._waiting.clear()
        self._queue.put(None)
        self._thread.join()
        try:
            os.fsync(self._file.fileno())
        finally:
            self._file.close()
