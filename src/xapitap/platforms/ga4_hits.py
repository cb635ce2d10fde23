"""Google Analytics hits on the wire: shared query parameters and newline-separated lines.

A gtag.js request (GA4, `/g/collect`) carries the parameters every event shares in its URL's
query string, and either no body (one event, all in the query) or one URL-encoded line per
event whose parameters override and extend the shared ones (wire-formats.md §6.1, after d8a's
`protocol.go`: split on newlines, line params override). Universal Analytics' `/batch` holds one
complete hit per line (§6.2). Event parameters come as `ep.<name>` (text) or `epn.<name>`
(number); both are read for every parameter.

The request is read here, as captured: its rules ask the pipeline for no body decoding
(`reads_body=False`), which would refuse a bodiless hit and merge the lines into one set of
fields.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl

from xapitap.capture import Capture
from xapitap.decoding import DEFAULT_MAX_BYTES
from xapitap.decoding import clean_text
from xapitap.decoding import decompress
from xapitap.events import PayloadError
from xapitap.matching import HeaderLookup
from xapitap.platforms.base import number_or_none
from xapitap.platforms.base import raw_event_id

# Parameters read from the query string or from one line at most: a hit has a few dozen.
MAX_PARAMS = 1_000
# Event lines read from one body; gtag.js batches tens. The rest are rejected as one item.
MAX_LINES = 1_000
# Bytes of a body after its Content-Encoding is undone. The pipeline decodes nothing for these
# rules (`reads_body=False`: a hit may have no body), so this is the bound on what a page's
# compressed body can make us hold; gtag.js bodies are a few kilobytes.
MAX_DECODED = DEFAULT_MAX_BYTES
# Lines a first-party body check looks at (enough to tell GA4 lines from anything else).
_CHECKED_LINES = 20


@dataclass(frozen=True)
class Hit:
    """One event: its own line's parameters, then the shared (query) ones."""

    shared: Mapping[str, str]
    line: Mapping[str, str]
    index: int  # its place in the body (0 for a hit without a body)
    raw_line: str

    def get(self, key: str) -> str | None:
        value = self.line.get(key)
        return value if value is not None else self.shared.get(key)

    def text(self, name: str) -> str | None:
        """An event parameter as text (`ep.` first), stripped; None when empty or absent."""
        for key in (f"ep.{name}", f"epn.{name}"):
            value = self.line.get(key)
            if value is not None and value.strip():
                return value.strip()
        for key in (f"ep.{name}", f"epn.{name}"):
            value = self.shared.get(key)
            if value is not None and value.strip():
                return value.strip()
        return None

    def number(self, name: str) -> float | None:
        """An event parameter as a finite, non-negative number (`epn.` first)."""
        for params in (self.line, self.shared):
            for key in (f"epn.{name}", f"ep.{name}"):
                value = number_or_none(params.get(key))
                if value is not None:
                    return value
        return None


@dataclass(frozen=True)
class Hits:
    shared: Mapping[str, str]  # the query string's parameters
    hits: list[Hit]
    # Lines that could not be read, with a fixed reason each (their number is bounded).
    unreadable: list[str]


def params(text: str) -> dict[str, str]:
    """The parameters of a query string or of one line; the first value of a repeated key."""
    try:
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_PARAMS)
    except ValueError:  # more than MAX_PARAMS fields
        raise PayloadError(f"more than {MAX_PARAMS} parameters in one hit") from None
    out: dict[str, str] = {}
    for key, value in pairs:
        out.setdefault(clean_text(key), clean_text(value))
    return out


def body_text(capture: Capture) -> str:
    """The request body as text (Content-Encoding undone); empty for a bodiless hit."""
    if not capture.body:
        return ""
    raw = decompress(capture.body, capture.header("content-encoding"), MAX_DECODED)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise PayloadError("body is not UTF-8") from None


def read_hits(capture: Capture, *, merge_query: bool = True) -> Hits:
    """The hits of a request: one per non-blank body line, or the query alone without a body.

    With `merge_query`, each line extends the query's parameters (GA4); without it, each line
    is a hit of its own (UA's /batch)."""
    shared = params(capture.query)
    lines = [line.strip() for line in body_text(capture).split("\n")]
    lines = [line for line in lines if line]
    if not lines:
        return Hits(shared, [Hit(shared, {}, 0, "")], [])
    base: Mapping[str, str] = shared if merge_query else {}
    hits: list[Hit] = []
    unreadable: list[str] = []
    for index, line in enumerate(lines[:MAX_LINES]):
        try:
            hits.append(Hit(base, params(line), index, line))
        except PayloadError as e:
            unreadable.append(str(e))
    if len(lines) > MAX_LINES:
        unreadable.append(f"over {MAX_LINES} lines in one body: the rest are not read")
    return Hits(shared, hits, unreadable)


def hit_id(capture: Capture, hit: Hit) -> str:
    """An id for a hit, which carries none of its own: a hash of what the browser sent for it
    (its request's query, its line and the line's place), so a resent request repeats it."""
    return raw_event_id({"query": capture.query, "line": hit.raw_line, "index": hit.index})


# GA4 event names: a letter, then letters, digits and underscores, at most 40 in all (Google's
# limit for event names); anything else is no gtag.js event line.
EVENT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,39}")
# Keys a gtag.js event line holds: short protocol keys (`en`, `_et`, `dl`, `pr1`) and event or
# user parameters (`ep.`, `epn.`, `up.`, `upn.`).
_LINE_KEY = re.compile(r"_?[a-z]{1,6}[0-9]{0,3}|(?:ep|epn|up|upn)\.[A-Za-z0-9_]{1,40}")


def looks_like_event_lines(header: HeaderLookup, body: Callable[[], bytes]) -> bool:
    """On a host of the site's own (server-side tagging): a body of gtag.js event lines, each
    naming its event (`en=`) and holding only gtag.js keys.

    A bodiless hit (one event, all in the query) cannot be told from other `/g/collect`
    traffic here, where only the body is seen: such hosts are named with xapi_hosts."""
    try:
        text = body().decode("utf-8")
    except UnicodeDecodeError:
        return False
    lines = [line for line in (raw.strip() for raw in text.split("\n")) if line]
    if not lines:
        return False
    for line in lines[:_CHECKED_LINES]:
        try:
            fields = parse_qsl(line, keep_blank_values=True, max_num_fields=MAX_PARAMS)
        except ValueError:
            return False
        keys = [key for key, _ in fields]
        name = dict(fields).get("en")
        if name is None or EVENT_NAME.fullmatch(name) is None:
            return False
        if not all(_LINE_KEY.fullmatch(key) for key in keys):
            return False
    return True
