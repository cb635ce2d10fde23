"""The small languages of a mapping file, and reading JSON with them.

- A URL path template, `/api/{course}/lectures/{lecture:digits}/log/`: literal text, one
  `{name}` (any one segment, or part of one) or `*` per segment, and a final `/**` for any
  rest. It compiles to a regular expression without nested repetition, so matching costs a
  pass over the path whatever the template (no pattern can backtrack catastrophically).
- A field path into an event, `props.position` or `ids.0` (keys, and list indexes); a key
  that itself holds dots (GA4's `epn.video_current_time`) is found as the last part.
- Where the events are, `$` (the body), `$.data.events[*]` (each item of an array).
"""

from __future__ import annotations

import re
from typing import Any

MAX_TEMPLATE = 300
MAX_FIELD_PATH = 200
MAX_PATH_PARTS = 16

_GROUP = re.compile(r"\{(?P<name>[^{}:]*)(?::(?P<type>[^{}]*))?\}")
_GROUP_NAME = re.compile(r"[a-z_][a-z0-9_]{0,31}")
_LITERAL = re.compile(r"[A-Za-z0-9._~!$&'()+,;=:@%-]*")
_GROUP_TYPES = {"": "[^/]+", "digits": "[0-9]+"}


def compile_path(template: str) -> tuple[str, tuple[str, ...]]:
    """The regular expression of a path template, and its named parts; ValueError says
    what is wrong."""
    if not template.startswith("/"):
        raise ValueError('must start with "/"')
    if len(template) > MAX_TEMPLATE:
        raise ValueError(f"is longer than {MAX_TEMPLATE} characters")
    rest = ""
    if template.endswith("/**"):
        template, rest = template[:-3], "(?:/.*)?"
    elif template != "/" and template.endswith("/"):
        template = template[:-1]  # with or without its trailing slash
    names: list[str] = []
    regex = ""
    for number, segment in enumerate(template.split("/")[1:], 1):
        regex += "/" + _segment(segment, number, names)
    if not rest:
        rest = "/?"
    return f"^{regex}{rest}$", tuple(names)


def _segment(segment: str, number: int, names: list[str]) -> str:
    if "**" in segment:
        raise ValueError('"**" is only for the end: "/**"')
    groups = list(_GROUP.finditer(segment))
    stars = _GROUP.sub("", segment).count("*")
    if len(groups) + stars > 1:
        raise ValueError(f"segment {number} has more than one {{name}} or *: split it")
    wild = groups or list(re.finditer(r"\*", segment))
    out, at = "", 0
    for m in wild:
        out += _literal(segment[at : m.start()])
        if m.group(0) == "*":
            out += "[^/]*"
        else:
            name, kind = m["name"], m["type"] or ""
            if not _GROUP_NAME.fullmatch(name) or name == "origin":
                raise ValueError(f"{{{name}}}: a name is lower-case letters, digits and _")
            if name in names:
                raise ValueError(f"{{{name}}} is named twice")
            if kind not in _GROUP_TYPES:
                raise ValueError(f'{{{name}:{kind}}}: the only type is "digits"')
            names.append(name)
            out += f"(?P<{name}>{_GROUP_TYPES[kind]})"
        at = m.end()
    return out + _literal(segment[at:])


def _literal(text: str) -> str:
    if not _LITERAL.fullmatch(text):
        bad = next(c for c in text if not _LITERAL.fullmatch(c))
        raise ValueError(f"{bad!r} is not allowed in a path (write a {{name}} or * instead)")
    return re.escape(text)


def check_field_path(path: str) -> None:
    if not path or len(path) > MAX_FIELD_PATH:
        raise ValueError(f"a field path has 1 to {MAX_FIELD_PATH} characters")
    if path.startswith(".") or path.endswith(".") or ".." in path:
        raise ValueError(f"{path!r} has an empty part")
    if path.count(".") >= MAX_PATH_PARTS:
        raise ValueError(f"a field path has at most {MAX_PATH_PARTS} parts")


def get(value: Any, path: str) -> Any:
    """The value at a field path, or None."""
    while True:
        if isinstance(value, dict):
            if path in value:
                return value[path]
            head, dot, rest = path.partition(".")
            if not dot or head not in value:
                return None
            value, path = value[head], rest
        elif isinstance(value, list):
            head, dot, rest = path.partition(".")
            if not head.isdigit() or int(head) >= len(value):
                return None
            value = value[int(head)]
            if not dot:
                return value
            path = rest
        else:
            return None


def parse_events_path(text: str) -> tuple[tuple[str, ...], bool]:
    """(keys from the root, whether the value there is an array of events)."""
    if not text.startswith("$"):
        raise ValueError('starts with "$" (the body), e.g. "$", "$.events[*]" or "$[*]"')
    each = text.endswith("[*]")
    inner = text[1 : -3 if each else None]
    if "[" in inner or "]" in inner:
        raise ValueError('only a final "[*]" is allowed')
    if inner and not inner.startswith("."):
        raise ValueError('keys follow "$" after a dot: "$.events[*]"')
    keys = tuple(inner[1:].split(".")) if inner else ()
    if any(not k for k in keys) or len(keys) > MAX_PATH_PARTS:
        raise ValueError("has an empty part")
    return keys, each
