"""mitmproxy flow files (`mitmdump -w`, `xapi_record`), one flow at a time: each record is
parsed (tnetstring), brought to this mitmproxy's flow format, and only its request is made
into an object; responses, connections and the rest are never built."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mitmproxy import http
from mitmproxy.io import compat
from mitmproxy.io import tnetstring

from xapitap.capture import Capture
from xapitap.flows import capture_of_request


class FlowFileReader:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.position = 0  # bytes read
        self.read = 0  # flows read
        self.damage = ""  # why the file could not be read to its end

    def __iter__(self) -> Iterator[Capture | Exception | None]:
        with self.path.open("rb") as file:
            while file.peek(1):  # (at the end, tnetstring calls it an empty file)
                try:
                    state = tnetstring.load(file)
                except (EOFError, IndexError):
                    self.damage = "the file ends inside a flow"
                    return
                except (ValueError, TypeError) as e:
                    self.damage = f"not a flow file from here on ({e})"
                    return
                self.position = file.tell()
                self.read += 1
                yield _capture(state)


def _capture(state: Any) -> Capture | Exception | None:
    """The flow's request as captured; None for what is not HTTP (TCP, UDP, DNS flows)."""
    try:
        if not isinstance(state, dict) or state.get("type") != "http":
            return None
        state = compat.migrate_flow(state)
        request = http.Request.from_state(state["request"])  # type: ignore[no-untyped-call]
        login = state.get("metadata", {}).get("proxyauth")
        capture = capture_of_request(request, str(state.get("id", "")), login)
        if capture is None:
            return ValueError("the request's body was streamed, not recorded")
        return capture
    except (KeyError, ValueError, TypeError, AttributeError) as e:
        return ValueError(f"{type(e).__name__}: {e}")
