"""Reading one event's values with a mapping's sources: text, seconds, times, yes/no, IRIs.

A value that is missing, or not of its kind (a word where a number belongs), is None: the
next alternative is tried, and a value no alternative gives is left out of the statement.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from typing import Any
from typing import TypeVar

from xapitap.capture import Capture
from xapitap.decoding import DEFAULT_MAX_BYTES
from xapitap.decoding import DecodeError
from xapitap.decoding import decode_body
from xapitap.events import Activity
from xapitap.events import PayloadError
from xapitap.mappings.model import ActivitySpec
from xapitap.mappings.model import Source
from xapitap.mappings.model import Sources
from xapitap.mappings.model import Template
from xapitap.mappings.paths import get
from xapitap.platforms.base import iri_segment
from xapitap.platforms.base import number_or_none
from xapitap.platforms.base import page_url
from xapitap.platforms.base import parse_epoch_ms
from xapitap.platforms.base import parse_iso
from xapitap.platforms.base import text_or_none

T = TypeVar("T")


class Query:
    """The request's query parameters, read once and only when asked for."""

    def __init__(self, capture: Capture) -> None:
        self._capture = capture
        self._params: dict[str, Any] | None = None

    def params(self) -> dict[str, Any]:
        """The parameters (JSON values decoded, as form bodies are); PayloadError if the
        query string is none or not form data."""
        if self._params is None:
            if not self._capture.query:
                raise PayloadError("the URL has no query parameters")
            try:
                doc = decode_body(
                    self._capture.query.encode(),
                    "application/x-www-form-urlencoded",
                    None,
                    DEFAULT_MAX_BYTES,
                )
            except DecodeError:
                raise PayloadError("the query string is not form data") from None
            if not isinstance(doc, dict):
                raise PayloadError("the query string is not form data")
            self._params = doc
        return self._params

    def get(self, name: str) -> Any:
        try:
            return self.params().get(name)
        except PayloadError:
            return None


@dataclass
class Event:
    """One event being read: where its values can come from."""

    capture: Capture
    params: Mapping[str, str]  # the named parts of the URL path
    body: Any
    item: dict[str, Any]
    query: Query
    origin: str = ""
    vars: Mapping[str, Sources] = field(default_factory=dict)

    def raw(self, source: Source) -> Any:
        kind = source.kind
        if kind == "field":
            return get(self.item, source.key)
        if kind == "body":
            return get(self.body, source.key)
        if kind == "path":
            return self.params.get(source.key)
        if kind == "query":
            return self.query.get(source.key)
        if kind == "header":
            return self.capture.header(source.key)
        if kind == "cookie":
            return self.capture.cookie(source.key)
        return source.value

    def first(self, alternatives: Sources, read: Callable[[Any, Source], T | None]) -> T | None:
        for source in alternatives:
            value = read(self.raw(source), source)
            if value is not None:
                return value
        return None

    def text(self, alternatives: Sources) -> str | None:
        return self.first(alternatives, lambda raw, _: text_or_none(raw))

    def seconds(self, alternatives: Sources) -> float | None:
        return self.first(alternatives, _seconds)

    def number(self, alternatives: Sources) -> float | None:
        return self.first(alternatives, lambda raw, _: number_or_none(raw))

    def time(self, alternatives: Sources) -> datetime | None:
        return self.first(alternatives, _time)

    def yes_no(self, alternatives: Sources) -> bool | None:
        return self.first(alternatives, _yes_no)

    def user(self, alternatives: Sources) -> tuple[str, str] | None:
        return self.first(
            alternatives,
            lambda raw, s: None if (t := text_or_none(raw)) is None else (t, s.id_kind),
        )

    def activity(self, spec: ActivitySpec | None) -> Activity | None:
        """The activity, or None when its id lacks a value (or the spec is None)."""
        if spec is None:
            return None
        iri = self.render(spec.id)
        if iri is None:
            return None
        return Activity(id=iri, type=spec.type, name=self.text(spec.name))

    def render(self, template: Template) -> str | None:
        out = ""
        for is_name, text in template.parts:
            if not is_name:
                out += text
            elif text == "origin":
                out += self.origin
            elif text in self.vars:
                alternatives = self.vars[text]
                value = self.first(alternatives, _var)
                if value is None:
                    return None
                out += value
            else:
                part = text_or_none(self.params.get(text))
                if part is None:
                    return None
                out += iri_segment(part)
        return out


def _seconds(raw: Any, source: Source) -> float | None:
    number = number_or_none(raw)
    return None if number is None else number / source.divisor


def _time(raw: Any, source: Source) -> datetime | None:
    if source.time_format == "iso":
        return parse_iso(raw)
    if source.time_format == "epoch_ms":
        return parse_epoch_ms(raw)
    number = number_or_none(raw)
    if number is None or number <= 0:
        return None
    try:
        return datetime.fromtimestamp(number, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _yes_no(raw: Any, source: Source) -> bool | None:
    if raw is None:
        return None
    if source.equals is not None:
        if isinstance(raw, bool) or isinstance(source.equals, bool):
            return raw is source.equals
        return raw == source.equals or text_or_none(raw) == text_or_none(source.equals)
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
        return raw.strip().lower() == "true"
    return None


def _var(raw: Any, source: Source) -> str | None:
    """A var as it goes into an IRI: a page URL's origin and path, or one quoted segment."""
    if source.url:
        located = page_url(raw)
        return None if located is None else located[0] + located[1]
    text = text_or_none(raw)
    return None if text is None else iri_segment(text)
