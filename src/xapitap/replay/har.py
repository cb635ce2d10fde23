"""HAR files (HTTP Archive 1.2: browsers' DevTools, Playwright's `recordHar`, mitmweb), one
entry at a time: the `log.entries` array is decoded element by element from a window of the
file, so a large HAR is never held whole.

mitmproxy reads HAR too, but one bad entry aborts its whole file, and a form body given only
as `params` fails; here an entry that cannot be read is reported and the rest go on, and a
`params`-only body is encoded as the form it was."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any
from typing import TextIO
from urllib.parse import urlencode
from urllib.parse import urlsplit

from xapitap.capture import Capture

CHUNK = 1 << 20
# Headers a HAR's decoded `text` makes wrong: the body is no longer as it was sent.
_BODY_FRAMING = {"content-encoding", "content-length", "transfer-encoding"}


class HarError(ValueError):
    pass


class HarReader:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.position = 0  # characters read (about bytes: HAR is mostly ASCII)
        self.read = 0  # entries read
        self.damage = ""

    def __iter__(self) -> Iterator[Capture | Exception | None]:
        try:
            for entry in _entries(self.path, self):
                self.read += 1
                try:
                    yield capture_of_entry(entry)
                except (HarError, KeyError, TypeError, ValueError) as e:
                    yield HarError(f"{type(e).__name__}: {e}")
        except HarError as e:
            self.damage = str(e)


class _Window:
    """A sliding window over a text file: what has been read and not yet consumed."""

    def __init__(self, file: TextIO, reader: HarReader) -> None:
        self._file, self._reader = file, reader
        self.text, self.at = "", 0

    def more(self) -> bool:
        chunk = self._file.read(CHUNK)
        if not chunk:
            return False
        self._reader.position += len(chunk)
        self.text, self.at = self.text[self.at :] + chunk, 0
        return True

    def next_char(self, skipping: str = "") -> str:
        """The next character that is not blank (nor in `skipping`); "" at the end."""
        while True:
            while self.at < len(self.text) and (
                self.text[self.at].isspace() or self.text[self.at] in skipping
            ):
                self.at += 1
            if self.at < len(self.text):
                return self.text[self.at]
            if not self.more():
                return ""

    def expect(self, char: str, what: str) -> None:
        if self.next_char() != char:
            raise HarError(f"not a HAR file: {what}")
        self.at += 1


def _entries(path: Path, reader: HarReader) -> Iterator[Any]:
    decoder = json.JSONDecoder()
    with path.open(encoding="utf-8", errors="surrogateescape") as file:
        window = _Window(file, reader)
        # The entries array (its key is the log object's own in HAR 1.2).
        while (found := window.text.find('"entries"', window.at)) < 0:
            window.at = max(len(window.text) - 16, 0)
            if not window.more():
                raise HarError("not a HAR file: no log.entries")
        window.at = found + len('"entries"')
        window.expect(":", "log.entries has no value")
        window.expect("[", "log.entries is not an array")
        while True:
            char = window.next_char(skipping=",")
            if char == "]":
                return
            if not char:
                raise HarError("the file ends inside log.entries")
            while True:
                try:
                    entry, window.at = decoder.raw_decode(window.text, window.at)
                    break
                except json.JSONDecodeError as e:
                    if not window.more():
                        raise HarError(f"broken JSON in an entry: {e.msg}") from None
            yield entry


def capture_of_entry(entry: Any) -> Capture | None:
    """An entry's request as captured: None for what is not an HTTP request (a WebSocket's
    messages, a data: URL)."""
    if not isinstance(entry, dict):
        raise HarError("an entry is not an object")
    request = entry["request"]
    url = urlsplit(request["url"])
    if url.scheme not in ("http", "https"):
        return None
    body, decoded = _body(request.get("postData"))
    headers = tuple(
        (str(h["name"]).lower(), str(h["value"]))
        for h in request.get("headers", [])
        if not str(h["name"]).startswith(":")  # HTTP/2 pseudo-headers: in the URL already
        and not (decoded and str(h["name"]).lower() in _BODY_FRAMING)
    )
    if not url.hostname:
        raise HarError(f"no host in {request['url']!r}")
    started = datetime.fromisoformat(str(entry["startedDateTime"]).replace("Z", "+00:00"))
    if started.tzinfo is None:
        started = started.replace(tzinfo=UTC)
    return Capture(
        method=str(request["method"]).upper(),
        scheme=url.scheme,
        host=url.hostname.lower(),
        port=url.port or (443 if url.scheme == "https" else 80),
        path=url.path or "/",
        query=url.query,
        headers=headers,
        body=body,
        received_at=started.astimezone(UTC),
        flow_id=str(entry.get("_id", "")),
    )


def _body(post: Any) -> tuple[bytes, bool]:
    """The body, and whether it is decoded (HAR's `text` is the body as the page made it,
    before any Content-Encoding)."""
    if not post:
        return b"", False
    text = post.get("text")
    if isinstance(text, str) and text:
        if post.get("encoding") == "base64":
            return base64.b64decode(text, validate=True), False
        return text.encode("utf-8", errors="surrogateescape"), True
    params = post.get("params")
    if params:  # a form given only field by field
        return urlencode([(str(p["name"]), str(p.get("value", ""))) for p in params]).encode(), True
    return b"", False
