"""A mapping file's text → a checked `Mapping`, or a `MappingError` that names every mistake
with its line. The format is described in mappings.example/README.md."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Collection
from typing import Any

from xapitap.mappings.errors import MappingError
from xapitap.mappings.errors import Problems
from xapitap.mappings.errors import syntax_error
from xapitap.mappings.lines import Lines
from xapitap.mappings.lines import Path
from xapitap.mappings.model import Endpoint
from xapitap.mappings.model import EventSpec
from xapitap.mappings.model import Mapping
from xapitap.mappings.model import Site
from xapitap.mappings.model import Sources
from xapitap.mappings.paths import compile_path
from xapitap.mappings.paths import parse_events_path
from xapitap.mappings.sources import SourceChecker
from xapitap.mappings.specs import EVERY
from xapitap.mappings.specs import SpecChecker
from xapitap.validation import did_you_mean

FORMAT = 1
MAX_FILE_CHARS = 256 * 1024
MAX_ENDPOINTS = 32
MAX_EVENT_TYPES = 500
MAX_TYPE_CHARS = 100
MAX_BODY_HAS = 8
METHODS = ("GET", "POST", "PUT", "PATCH")
_SITE_NAME = re.compile(r"[a-z][a-z0-9-]{0,31}")
_ENDPOINT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
_HOST_GLOB = re.compile(r"[a-z0-9*-]+(?:\.[a-z0-9*-]+)*")
_ORIGIN = re.compile(r"https?://[a-z0-9.-]+(?::[0-9]{1,5})?")
_TOP = ("format", "site", "endpoint")
_SITE = ("name", "display", "origin")
_ENDPOINT = ("methods", "hosts", "path", "body_has", "events", "type", "common", "event")


def load_text(text: str, source: str, reserved: Collection[str]) -> Mapping:
    """The mapping `text` says; `source` names it in messages, `reserved` are the platform
    names it may not take (the built-in ones)."""
    if len(text) > MAX_FILE_CHARS:
        raise MappingError([f"{source}: a mapping file has at most {MAX_FILE_CHARS} characters"])
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise syntax_error(source, e) from None
    problems = Problems(source, Lines(text))
    mapping = _Checker(problems, source).mapping(doc, reserved)
    if problems or mapping is None:
        raise problems.error()
    return mapping


class _Checker:
    def __init__(self, problems: Problems, source: str) -> None:
        self.problems = problems
        self.source = source

    def unknown(self, table: dict[str, Any], known: Collection[str], at: Path) -> None:
        for key in table:
            if key not in known:
                hint = did_you_mean(key, known)
                self.problems.add((*at, key), f"unknown key {key!r}{hint}")

    def table(self, doc: dict[str, Any], key: str, at: Path, required: bool = True) -> Any:
        value = doc.get(key)
        if value is None:
            if required:
                self.problems.add(at, f"missing [{'.'.join((*map(str, at), key))}] table")
            return None
        if not isinstance(value, dict):
            self.problems.add((*at, key), f"{key} is a table")
            return None
        return value

    def mapping(self, doc: dict[str, Any], reserved: Collection[str]) -> Mapping | None:
        self.unknown(doc, _TOP, ())
        if doc.get("format") != FORMAT:
            self.problems.add(("format",), f"say which format the file is in: format = {FORMAT}")
        site_table = self.table(doc, "site", ())
        site = None if site_table is None else self.site(site_table, reserved)
        endpoints_table = self.table(doc, "endpoint", ())
        endpoints: list[Endpoint] = []
        if endpoints_table is not None:
            if not 0 < len(endpoints_table) <= MAX_ENDPOINTS:
                self.problems.add(("endpoint",), f"give 1 to {MAX_ENDPOINTS} endpoints")
            for name, table in endpoints_table.items():
                endpoint = self.endpoint(name, table, ("endpoint", name))
                if endpoint is not None:
                    endpoints.append(endpoint)
        if site is None or self.problems:
            return None
        return Mapping(source=self.source, site=site, endpoints=tuple(endpoints))

    def site(self, table: dict[str, Any], reserved: Collection[str]) -> Site | None:
        at: Path = ("site",)
        self.unknown(table, _SITE, at)
        name, display = table.get("name"), table.get("display")
        ok = True
        if not isinstance(name, str) or not _SITE_NAME.fullmatch(name):
            self.problems.add(
                (*at, "name"),
                "name is lower-case letters, digits and - (at most 32), starting with a letter",
            )
            ok = False
        elif name in reserved:
            self.problems.add(
                (*at, "name"), f"{name!r} is a built-in platform's name; choose another"
            )
            ok = False
        if not isinstance(display, str) or not 0 < len(display.strip()) <= 100:
            self.problems.add(
                (*at, "display"), 'display is the name statements show, e.g. "Lernwerk" (1-100)'
            )
            ok = False
        origin = self.origin(table.get("origin", "request"), (*at, "origin"))
        if not ok or origin is None:
            return None
        assert isinstance(name, str) and isinstance(display, str)
        return Site(name=name, display=display.strip(), origin=origin)

    def origin(self, value: Any, at: Path) -> str | Sources | None:
        if value == "request" or (isinstance(value, str) and _ORIGIN.fullmatch(value)):
            return str(value)
        if isinstance(value, dict | list):
            return SourceChecker(self.problems, ()).sources(value, at)
        self.problems.add(
            at,
            'origin is "request", an origin such as "https://www.example.org", or where a '
            'page URL is: { field = "page_url" }',
        )
        return None

    def endpoint(self, name: str, table: Any, at: Path) -> Endpoint | None:
        if not isinstance(table, dict):
            self.problems.add(at, "an endpoint is a table: [endpoint.NAME]")
            return None
        self.unknown(table, _ENDPOINT, at)
        count = self.problems.added
        if not _ENDPOINT_NAME.fullmatch(name):
            self.problems.add(at, "an endpoint's name is lower-case letters, digits, _ and -")
        methods = self.methods(table.get("methods", ["POST"]), (*at, "methods"))
        hosts = self.hosts(table.get("hosts"), (*at, "hosts"))
        path = table.get("path")
        regex = ""
        groups: tuple[str, ...] | None = None
        if not isinstance(path, str):
            self.problems.add(at, 'give its URL path: path = "/v1/collect"')
        else:
            try:
                regex, groups = compile_path(path)
            except ValueError as e:
                self.problems.add((*at, "path"), f"the path template {e}")
        body_has = self.body_has(table.get("body_has", []), (*at, "body_has"))
        events_path, each, from_query = self.events(table.get("events", "$"), (*at, "events"))
        if not hosts and not body_has:
            self.problems.add(
                at,
                "an endpoint on any host needs body_has (strings its bodies hold): else it "
                "would read every site's requests to that path",
            )
        if from_query and body_has:
            self.problems.add((*at, "body_has"), 'body_has reads the body, events = "query" not')
        sources = SourceChecker(self.problems, groups)
        type_sources: Sources = ()
        if "type" not in table:
            self.problems.add(
                at, 'give where the event type is: type = "name" (or { value = "..." })'
            )
        else:
            type_sources = sources.sources(table["type"], (*at, "type")) or ()
        common = self.common(table.get("common", {}), (*at, "common"))
        events = self.event_types(table.get("event"), (*at, "event"), common, sources)
        if self.problems.added != count or not isinstance(path, str) or groups is None:
            return None
        return Endpoint(
            name=name,
            methods=methods,
            hosts=hosts,
            path=path,
            path_regex=regex,
            path_groups=groups,
            body_has=body_has,
            events_path=events_path,
            each=each,
            from_query=from_query,
            type=type_sources,
            events=events,
        )

    def methods(self, value: Any, at: Path) -> frozenset[str]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value:
            self.problems.add(at, 'methods is a list: methods = ["POST"]')
            return frozenset()
        out = set()
        for method in value:
            if isinstance(method, str) and method.upper() in METHODS:
                out.add(method.upper())
            else:
                self.problems.add(at, f"{method!r}: a method is one of {', '.join(METHODS)}")
        return frozenset(out)

    def hosts(self, value: Any, at: Path) -> tuple[str, ...]:
        if value is None:
            return ()
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value:
            self.problems.add(at, 'hosts is a list of host names: hosts = ["t.example.org"]')
            return ()
        out = []
        for host in value:
            text = host.strip().lower() if isinstance(host, str) else ""
            if not _HOST_GLOB.fullmatch(text) or "." not in text.strip("*."):
                self.problems.add(
                    at,
                    f"{host!r}: a host is a name such as t.example.org or *.example.org (no "
                    "port, no scheme); to read any host, leave hosts out and give body_has",
                )
            else:
                out.append(text)
        return tuple(out)

    def body_has(self, value: Any, at: Path) -> tuple[bytes, ...]:
        if isinstance(value, str):
            value = [value]
        ok = isinstance(value, list) and len(value) <= MAX_BODY_HAS
        ok = ok and all(isinstance(x, str) and 0 < len(x) <= 100 for x in value)
        if not ok:
            self.problems.add(
                at, f"body_has is a list of 1 to {MAX_BODY_HAS} strings (1-100 characters each)"
            )
            return ()
        return tuple(x.encode() for x in value)

    def events(self, value: Any, at: Path) -> tuple[tuple[str, ...], bool, bool]:
        if value == "query":
            return (), False, True
        if not isinstance(value, str):
            self.problems.add(at, 'events is "$", a path such as "$.events[*]", or "query"')
            return (), False, False
        try:
            keys, each = parse_events_path(value)
        except ValueError as e:
            self.problems.add(at, f"events {e}")
            return (), False, False
        return keys, each, False

    def common(self, value: Any, at: Path) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.problems.add(at, "common is a table: [endpoint.NAME.common]")
            return {}
        for key in value:
            if key in ("kind", "verb"):
                self.problems.add((*at, key), f"{key} belongs to each event type, not to common")
            elif key not in EVERY:
                hint = did_you_mean(key, EVERY)
                self.problems.add((*at, key), f"unknown key {key!r}{hint}")
        return value

    def event_types(
        self, value: Any, at: Path, common: dict[str, Any], sources: SourceChecker
    ) -> dict[str, EventSpec]:
        if not isinstance(value, dict) or not value:
            self.problems.add(
                at[:-1], 'give its event types: [endpoint.NAME.event."video_play"] kind = ...'
            )
            return {}
        if len(value) > MAX_EVENT_TYPES:
            self.problems.add(at, f"at most {MAX_EVENT_TYPES} event types")
        specs = SpecChecker(sources)
        out: dict[str, EventSpec] = {}
        for type_name, table in value.items():
            here = (*at, type_name)
            if not 0 < len(type_name) <= MAX_TYPE_CHARS:
                self.problems.add(here, f"an event type has 1 to {MAX_TYPE_CHARS} characters")
                continue
            if not isinstance(table, dict):
                self.problems.add(here, "an event type is a table")
                continue
            spec = specs.event(type_name, table, here, common, (*at[:-1], "common"))
            if spec is not None:
                out[type_name] = spec
        return out
