"""A captured HTTP request, as plain data.

The addon copies what it needs out of a mitmproxy flow into a `Capture`, so that everything
downstream (decoding, platform adapters, translation) is pure and testable without mitmproxy.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from datetime import datetime
from http.cookies import CookieError
from http.cookies import SimpleCookie


@dataclass(frozen=True, slots=True)
class Capture:
    method: str
    scheme: str
    host: str
    port: int
    path: str  # without the query string
    query: str
    headers: tuple[tuple[str, str], ...]  # names lower-cased, in wire order
    body: bytes  # as sent on the wire (still Content-Encoded)
    received_at: datetime  # timezone-aware, UTC
    flow_id: str = ""
    # Where the proxy kept only the start of a body too large to translate: its size as sent.
    cut_from: int | None = None
    # The user name of the proxy login the request came with (mitmproxy's proxyauth), which
    # names the participant with xapi_participant=proxyauth; never the password.
    participant: str = ""
    _header_map: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_header_map", {k: v for k, v in self.headers})

    def header(self, name: str) -> str | None:
        return self._header_map.get(name.lower())

    def cookie(self, name: str) -> str | None:
        raw = self.header("cookie")
        if not raw:
            return None
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(raw)
        except CookieError:
            return None
        morsel = jar.get(name)
        return morsel.value if morsel else None

    @property
    def size(self) -> int:
        """The body's size as sent."""
        return self.cut_from if self.cut_from is not None else len(self.body)

    def cut(self, max_bytes: int) -> Capture:
        """The request with at most `max_bytes` + 1 of its body (enough to tell that it is
        over the cap): what translation would refuse is never kept whole."""
        if len(self.body) <= max_bytes + 1:
            return self
        return replace(self, body=self.body[: max_bytes + 1], cut_from=self.size)

    @property
    def origin(self) -> str:
        default = 443 if self.scheme == "https" else 80
        port = "" if self.port in (default, 0) else f":{self.port}"
        return f"{self.scheme}://{self.host}{port}"
