"""A mapping file, checked: what each part of it says, as plain frozen data.

`validate.py` builds these from the TOML; `extract.py` reads requests with them. Nothing here
can run code: every value is data (a path, a template, a constant), read the same way for
every site.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from typing import Literal

from xapitap.events import Kind
from xapitap.events import Verb

# Where a value comes from: the event, the whole body, a named part of the URL path, the
# query string, a header, a cookie, or the mapping itself (a constant).
SourceKind = Literal["field", "body", "path", "query", "header", "cookie", "value"]
Constant = str | int | float | bool


@dataclass(frozen=True)
class Source:
    """One place to read a value from, with how to read it (the keys that apply to its role)."""

    kind: SourceKind
    key: str = ""  # the field path, or the name of the path part, parameter, header, cookie
    value: Constant | None = None  # kind "value"
    divisor: float = 1.0  # times: the value in seconds is value / divisor ("ms": 1000)
    time_format: str = ""  # timestamps: iso, epoch_ms, epoch_s
    id_kind: str = ""  # user ids: which kind of id (userId, anonymousId, ...)
    url: bool = False  # vars: the value is a page URL (its origin and path are used)
    equals: Constant | None = None  # yes/no values: true when the value equals this
    scale: float = 1.0  # progress (1: a share, 100: a percentage), volume (1 or 100)


# Alternatives: the first that gives a usable value wins.
Sources = tuple[Source, ...]


@dataclass(frozen=True)
class Template:
    """An IRI template: literal text and placeholders, each a var, a path part or origin."""

    text: str
    parts: tuple[tuple[bool, str], ...]  # (is a placeholder, text or name)


@dataclass(frozen=True)
class ActivitySpec:
    id: Template
    type: str  # an IRI
    name: Sources = ()


@dataclass(frozen=True)
class EventSpec:
    """One event type of an endpoint: a player action (`kind`) or a learning event (`verb`)."""

    type: str  # the value that selects it
    kind: Kind | None = None
    verb: Verb | None = None
    # Text, number and time roles by name: user, event_id, session, position, length, ...
    values: dict[str, Sources] = field(default_factory=dict)
    time: Sources = ()
    arrival: bool = False  # time = "arrival": the event is sent as it happens
    vars: dict[str, Sources] = field(default_factory=dict)
    video: ActivitySpec | None = None
    object: ActivitySpec | None = None
    course: ActivitySpec | None = None
    module: ActivitySpec | None = None
    lesson: ActivitySpec | None = None
    interaction: dict[str, Sources] = field(default_factory=dict)
    result: dict[str, Sources] = field(default_factory=dict)
    completion: bool = False  # result.completion = true (the completed verb only)
    cadence: float | None = None
    reports_seeks: bool = True
    ends_playback: bool = False
    opens_session: bool = True
    platform_completed: Sources | bool = False
    require: tuple[str, ...] = ()


@dataclass(frozen=True)
class Endpoint:
    name: str  # the rule is "<site>.<name>"
    methods: frozenset[str]
    hosts: tuple[str, ...]  # host globs; empty: any host (a body check is then required)
    path: str  # the template as written
    path_regex: str
    path_groups: tuple[str, ...]
    body_has: tuple[bytes, ...]
    events_path: tuple[str, ...]  # keys from the body's root
    each: bool  # the value there is an array of events
    from_query: bool  # the query parameters are the one event (the body is not read)
    type: Sources
    events: dict[str, EventSpec]


@dataclass(frozen=True)
class Site:
    name: str
    display: str
    origin: str | Sources  # "request", a fixed origin, or where a page URL is


@dataclass(frozen=True)
class Mapping:
    source: str  # the file it came from, as messages name it
    site: Site
    endpoints: tuple[Endpoint, ...]
