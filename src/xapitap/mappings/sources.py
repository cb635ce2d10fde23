"""Checking where a value comes from: a field path, `{ cookie = "uid", kind = "userId" }`,
or a list of such (the first that gives a value), with the keys that say how to read it."""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

from xapitap.mappings.errors import Problems
from xapitap.mappings.lines import Path
from xapitap.mappings.model import Source
from xapitap.mappings.model import SourceKind
from xapitap.mappings.model import Sources
from xapitap.mappings.paths import check_field_path
from xapitap.validation import did_you_mean

MAX_ALTERNATIVES = 8
MAX_NAME = 100
SOURCE_KEYS: tuple[SourceKind, ...] = (
    "field",
    "body",
    "path",
    "query",
    "header",
    "cookie",
    "value",
)
# How to read the value, where its role allows it.
MODIFIERS = ("unit", "format", "kind", "as", "equals", "scale")
_UNITS = {"s": 1.0, "ms": 1000.0}
_FORMATS = ("iso", "epoch_ms", "epoch_s")
_ID_KIND = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")
_EXAMPLES = {
    "unit": '"s" or "ms"',
    "format": '"iso", "epoch_ms" or "epoch_s"',
    "kind": 'the kind of id, e.g. "userId" or "anonymousId"',
    "scale": "1 (a share, 0-1) or 100 (a percentage)",
}


class SourceChecker:
    """Checks sources for one endpoint (its path parts are the `path` sources it has)."""

    def __init__(self, problems: Problems, path_groups: Collection[str] | None) -> None:
        """`path_groups` None: the path itself is wrong (told already), so what names its
        parts is not checked against it."""
        self.problems = problems
        self.path_groups = path_groups

    def sources(
        self,
        value: Any,
        at: Path,
        allowed: Collection[str] = (),
        required: Collection[str] = (),
    ) -> Sources | None:
        """The alternatives `value` gives, None (and a problem told) if it is wrong.
        `allowed`: the modifiers this role takes; `required`: those it must have."""
        items = value if isinstance(value, list) else [value]
        if not items or len(items) > MAX_ALTERNATIVES:
            self.problems.add(at, f"give 1 to {MAX_ALTERNATIVES} places to read it from")
            return None
        found: list[Source] = []
        for index, item in enumerate(items):
            where = (*at, index) if isinstance(value, list) else at
            source = self._one(item, where, allowed, required)
            if source is not None:
                found.append(source)
        return tuple(found) if len(found) == len(items) else None

    def _one(
        self, item: Any, at: Path, allowed: Collection[str], required: Collection[str]
    ) -> Source | None:
        if isinstance(item, str):
            if required:
                need = sorted(required)[0]
                self.problems.add(
                    at, f'say its {need} too: {{ field = "{item}", {need} = {_EXAMPLES[need]} }}'
                )
                return None
            return self._field("field", item, at)
        if not isinstance(item, dict):
            self.problems.add(
                at, 'is a field path ("a.b") or a table such as { field = "a.b" } or { value = 1 }'
            )
            return None
        kinds = [k for k in item if k in SOURCE_KEYS]
        ok = True
        for key in item:
            if key in SOURCE_KEYS:
                continue
            if key in MODIFIERS and key in allowed:
                continue
            hint = did_you_mean(key, (*SOURCE_KEYS, *allowed))
            if key in MODIFIERS:
                self.problems.add((*at, key), f"{key} does not apply here")
            else:
                self.problems.add((*at, key), f"unknown key {key!r}{hint}")
            ok = False
        if len(kinds) != 1:
            self.problems.add(at, f"give exactly one of {', '.join(SOURCE_KEYS)}")
            return None
        for need in sorted(required):
            if need not in item:
                self.problems.add(at, f"say its {need}: {need} = {_EXAMPLES[need]}")
                ok = False
        source = self._located(kinds[0], item[kinds[0]], (*at, kinds[0]))
        modifiers = self._modifiers(item, at)
        if source is None or modifiers is None or not ok:
            return None
        return Source(kind=source.kind, key=source.key, value=source.value, **modifiers)

    def _located(self, kind: SourceKind, value: Any, at: Path) -> Source | None:
        if kind == "value":
            if isinstance(value, str | int | float | bool):
                return Source(kind="value", value=value)
            self.problems.add(at, "a constant is a string, a number or true/false")
            return None
        if not isinstance(value, str):
            self.problems.add(at, "is a string")
            return None
        if kind in ("field", "body"):
            return self._field(kind, value, at)
        if not value or len(value) > MAX_NAME:
            self.problems.add(at, f"a name has 1 to {MAX_NAME} characters")
            return None
        if kind == "path" and self.path_groups is not None and value not in self.path_groups:
            known = ", ".join(f"{{{g}}}" for g in self.path_groups) or "none"
            self.problems.add(at, f"the endpoint's path has no {{{value}}} (it has: {known})")
            return None
        return Source(kind=kind, key=value.lower() if kind == "header" else value)

    def _field(self, kind: SourceKind, path: str, at: Path) -> Source | None:
        try:
            check_field_path(path)
        except ValueError as e:
            self.problems.add(at, str(e))
            return None
        return Source(kind=kind, key=path)

    def _modifiers(self, item: dict[str, Any], at: Path) -> dict[str, Any] | None:
        out: dict[str, Any] = {}
        ok = True

        def bad(key: str, message: str) -> None:
            nonlocal ok
            self.problems.add((*at, key), message)
            ok = False

        if "unit" in item:
            if item["unit"] in _UNITS:
                out["divisor"] = _UNITS[item["unit"]]
            else:
                bad("unit", 'unit must be "s" or "ms"')
        if "format" in item:
            if item["format"] in _FORMATS:
                out["time_format"] = item["format"]
            else:
                bad("format", 'format must be "iso", "epoch_ms" or "epoch_s"')
        if "kind" in item:
            if isinstance(item["kind"], str) and _ID_KIND.fullmatch(item["kind"]):
                out["id_kind"] = item["kind"]
            else:
                bad("kind", 'kind names the kind of id, e.g. "userId" (letters, digits, _ -)')
        if "as" in item:
            if item["as"] == "url":
                out["url"] = True
            else:
                bad("as", 'the only choice is as = "url" (the value is a page URL)')
        if "equals" in item:
            if isinstance(item["equals"], str | int | float | bool):
                out["equals"] = item["equals"]
            else:
                bad("equals", "is a string, a number or true/false")
        if "scale" in item:
            scale = item["scale"]
            if not isinstance(scale, bool) and scale in (1, 100):
                out["scale"] = float(scale)
            else:
                bad("scale", "scale must be 1 (a share, 0-1) or 100 (a percentage)")
        return out if ok else None
