"""Checking one event type of an endpoint: its kind or verb, and where each of its values is.

An endpoint's `common` table gives what all its event types share; an event type's own keys
win. A key of `common` that does not apply to an event type (a playhead, for a learning
event) is passed over for it; the same key in the event type's own table is a mistake.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

from xapitap.events import Kind
from xapitap.events import Verb
from xapitap.mappings.lines import Path
from xapitap.mappings.model import ActivitySpec
from xapitap.mappings.model import EventSpec
from xapitap.mappings.model import Source
from xapitap.mappings.model import Sources
from xapitap.mappings.model import Template
from xapitap.mappings.paths import MAX_TEMPLATE
from xapitap.mappings.sources import SourceChecker
from xapitap.validation import did_you_mean
from xapitap.xapi import vocab as v

SECONDS = ("position", "length", "seek_from", "seek_to", "segment_from", "segment_to")
COMMON = ("user", "time", "event_id", "session", "vars", "course", "module", "lesson", "video")
PLAYER = (
    *SECONDS,
    "interaction",
    "cadence",
    "reports_seeks",
    "ends_playback",
    "opens_session",
    "platform_completed",
)
LEARNING = ("object", "result")
EVERY = (*COMMON, *PLAYER, *LEARNING, "require")
RESULT = ("progress", "response", "score", "success", "duration", "completion")
INTERACTION = ("speed", "volume", "quality", "cc_language", "cc_enabled", "full_screen")
REQUIRABLE = (*SECONDS, "user", "time", "event_id", "session", *RESULT[:-1])
OBJECT_TYPES = {
    "page": v.PAGE_TYPE,
    "file": v.FILE_TYPE,
    "interaction": v.INTERACTION_TYPE,
    "video": v.VIDEO_TYPE,
    "course": v.COURSE_TYPE,
    "lesson": v.LESSON_TYPE,
    "module": v.MODULE_TYPE,
    "assessment": v.ASSESSMENT_TYPE,
    "question": v.QUESTION_TYPE,
    "search": v.SEARCH_TYPE,
}
CONTEXT_TYPES = {
    "video": v.VIDEO_TYPE,
    "course": v.COURSE_TYPE,
    "module": v.MODULE_TYPE,
    "lesson": v.LESSON_TYPE,
}
MAX_PLACEHOLDERS = 16
_IRI = re.compile(r"https?://[^\s<>\"{}|\\^`]{1,300}")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_NOT_IN_IRI = re.compile(r'[\s<>"|\\^`]')
_VAR_NAME = re.compile(r"[a-z_][a-z0-9_]{0,31}")


class SpecChecker:
    def __init__(self, sources: SourceChecker) -> None:
        self.s = sources
        self.problems = sources.problems

    def event(
        self, name: str, table: dict[str, Any], at: Path, common: dict[str, Any], common_at: Path
    ) -> EventSpec | None:
        for key in table:
            if key not in (*EVERY, "kind", "verb"):
                hint = did_you_mean(key, (*EVERY, "kind", "verb"))
                self.problems.add((*at, key), f"unknown key {key!r}{hint}")
        kind, verb = self._kind_or_verb(table, at)
        if kind is None and verb is None:
            return None
        player = kind is not None
        own = PLAYER if player else LEARNING
        other = LEARNING if player else PLAYER
        for key in table:
            if key in other:
                what = "player events (kind)" if not player else "learning events (verb)"
                self.problems.add((*at, key), f"{key} is only for {what}")
        merged: dict[str, tuple[Any, Path]] = {
            k: (value, (*common_at, k)) for k, value in common.items() if k in (*COMMON, *own)
        }
        merged |= {k: (value, (*at, k)) for k, value in table.items() if k in EVERY}
        if "require" in common and "require" not in table:
            merged["require"] = (common["require"], (*common_at, "require"))
        # vars add up: common's, and the event type's own (which win).
        tables = [(common, common_at), (table, at)]
        var_tables = [(t["vars"], (*where, "vars")) for t, where in tables if "vars" in t]
        return self._spec(name, kind, verb, merged, var_tables, at)

    def _kind_or_verb(self, table: dict[str, Any], at: Path) -> tuple[Kind | None, Verb | None]:
        if ("kind" in table) == ("verb" in table):
            self.problems.add(
                at, 'give kind = "played" (a player action) or verb = "viewed" (a learning event)'
            )
            return None, None
        if "kind" in table:
            kinds = [k.value for k in Kind]
            if table["kind"] in kinds:
                return Kind(table["kind"]), None
            hint = did_you_mean(str(table["kind"]), kinds)
            self.problems.add((*at, "kind"), f"kind must be one of {', '.join(kinds)}{hint}")
            return None, None
        return None, self._verb(table["verb"], (*at, "verb"))

    def _verb(self, value: Any, at: Path) -> Verb | None:
        if isinstance(value, str):
            if value in v.LEARNING_VERBS:
                return v.LEARNING_VERBS[value]
            if value in v.VERBS:
                self.problems.add(at, f'{value} is a player action: write kind = "{value}"')
                return None
            hint = did_you_mean(value, v.LEARNING_VERBS)
            known = ", ".join(v.LEARNING_VERBS)
            self.problems.add(
                at, f"unknown verb {value!r}{hint}; known: {known}; or {{ id = IRI, display = }}"
            )
            return None
        if isinstance(value, dict) and set(value) == {"id", "display"}:
            iri, display = value["id"], value["display"]
            ok = isinstance(iri, str) and _IRI.fullmatch(iri) is not None
            if not ok:
                self.problems.add((*at, "id"), "a verb id is an http(s) IRI")
            if not (isinstance(display, str) and 0 < len(display.strip()) <= 64):
                self.problems.add((*at, "display"), "display is 1 to 64 characters")
                ok = False
            return Verb(id=iri, display=display.strip()) if ok else None
        self.problems.add(at, "a verb is a name (viewed, answered, ...) or { id = IRI, display }")
        return None

    def _spec(
        self,
        name: str,
        kind: Kind | None,
        verb: Verb | None,
        merged: dict[str, tuple[Any, Path]],
        var_tables: list[tuple[Any, Path]],
        at: Path,
    ) -> EventSpec | None:
        count = self.problems.added
        vars_: dict[str, Sources] = {}
        for entry in var_tables:
            vars_ |= self._vars(entry)
        url_vars = {k for k, alts in vars_.items() if alts and alts[0].url}
        spec: dict[str, Any] = {"type": name, "kind": kind, "verb": verb, "vars": vars_}
        values: dict[str, Sources] = {}
        for key in ("event_id", "session"):
            if key in merged:
                values[key] = self._sources(merged[key])
        if "user" in merged:
            values["user"] = self._sources(merged["user"], {"kind"}, {"kind"})
        for key in SECONDS:
            if key in merged:
                values[key] = self._sources(merged[key], {"unit"}, {"unit"})
        spec["values"] = values
        if "time" in merged:
            value, where = merged["time"]
            if value == "arrival":
                spec["arrival"] = True
            else:
                spec["time"] = self.s.sources(value, where, {"format"}, {"format"}) or ()
        for key in ("course", "module", "lesson", "video"):
            if key in merged:
                spec[key] = self._activity(merged[key], vars_, url_vars, CONTEXT_TYPES[key])
        if kind is not None:
            self._player(kind, merged, spec, at)
        else:
            self._learning(verb, merged, spec, vars_, url_vars, at)
        require = merged.get("require")
        shared = require is not None and require[1][: len(at)] != at
        spec["require"] = self._require(require, merged, spec, shared)
        if self.problems.added != count:
            return None
        return EventSpec(**spec)

    def _sources(
        self,
        entry: tuple[Any, Path],
        allowed: Collection[str] = (),
        required: Collection[str] = (),
    ) -> Sources:
        return self.s.sources(entry[0], entry[1], allowed, required) or ()

    def _vars(self, entry: tuple[Any, Path]) -> dict[str, Sources]:
        table, at = entry
        if not isinstance(table, dict):
            self.problems.add(at, 'vars is a table: vars = { video = "video_id" }')
            return {}
        out: dict[str, Sources] = {}
        for name, value in table.items():
            where = (*at, name)
            if not _VAR_NAME.fullmatch(name) or name == "origin":
                self.problems.add(where, "a var's name is lower-case letters, digits and _")
                continue
            if name in (self.s.path_groups or ()):
                self.problems.add(where, f"{{{name}}} is already a part of the endpoint's path")
                continue
            alts = self.s.sources(value, where, {"as"})
            if alts is None:
                continue
            if len({a.url for a in alts}) > 1:
                self.problems.add(where, 'as = "url" goes on every place or on none')
                continue
            out[name] = alts
        return out

    def _activity(
        self,
        entry: tuple[Any, Path],
        vars_: dict[str, Sources],
        url_vars: set[str],
        fixed_type: str | None,
    ) -> ActivitySpec | None:
        value, at = entry
        if isinstance(value, str):
            value = {"id": value}
        if not isinstance(value, dict):
            self.problems.add(at, 'is a table: { id = "{origin}/...", name = "title" }')
            return None
        allowed = ("id", "name") if fixed_type else ("id", "name", "type")
        for key in value:
            if key not in allowed:
                hint = did_you_mean(key, allowed)
                why = "its type is fixed" if key == "type" else f"unknown key {key!r}{hint}"
                self.problems.add((*at, key), why)
        if "id" not in value:
            self.problems.add(at, 'give its id: id = "{origin}/..."')
            return None
        template = self._template(value["id"], (*at, "id"), vars_, url_vars)
        name: Sources = ()
        if "name" in value:
            name = self.s.sources(value["name"], (*at, "name")) or ()
        type_iri = fixed_type or self._object_type(value.get("type"), (*at, "type"))
        if template is None or type_iri is None:
            return None
        return ActivitySpec(id=template, type=type_iri, name=name)

    def _object_type(self, value: Any, at: Path) -> str | None:
        if isinstance(value, str) and value in OBJECT_TYPES:
            return OBJECT_TYPES[value]
        if isinstance(value, str) and _IRI.fullmatch(value):
            return value
        known = ", ".join(OBJECT_TYPES)
        hint = did_you_mean(value, OBJECT_TYPES) if isinstance(value, str) else ""
        self.problems.add(at, f"type is one of {known}{hint}, or an activity type IRI")
        return None

    def _template(
        self, text: Any, at: Path, vars_: dict[str, Sources], url_vars: set[str]
    ) -> Template | None:
        if not isinstance(text, str) or not 0 < len(text) <= MAX_TEMPLATE:
            self.problems.add(at, f"an id template is a string of 1 to {MAX_TEMPLATE} characters")
            return None
        parts: list[tuple[bool, str]] = []
        last = 0
        ok = True
        for m in _PLACEHOLDER.finditer(text):
            parts.append((False, text[last : m.start()]))
            name = m[1]
            groups = self.s.path_groups
            known = name in ("origin", *vars_) or groups is None or name in groups
            if not known:
                self.problems.add(
                    at, f"{{{name}}} is neither {{origin}}, a var, nor a part of the path"
                )
                ok = False
            elif name in url_vars and m.start() != 0:
                self.problems.add(at, f"{{{name}}} is a page URL: it can only start the id")
                ok = False
            parts.append((True, name))
            last = m.end()
        parts.append((False, text[last:]))
        literal = "".join(t for is_name, t in parts if not is_name)
        if "{" in literal or "}" in literal:
            self.problems.add(at, "a { or } that is no {name}")
            ok = False
        elif _NOT_IN_IRI.search(literal):
            self.problems.add(at, 'an id holds no spaces, nor any of <>"|\\^`')
            ok = False
        if sum(is_name for is_name, _ in parts) > MAX_PLACEHOLDERS:
            self.problems.add(at, f"at most {MAX_PLACEHOLDERS} placeholders")
            ok = False
        first = parts[1][1] if len(parts) > 1 and parts[0] == (False, "") else None
        absolute = text.startswith(("http://", "https://"))
        if not (absolute or first == "origin" or first in url_vars):
            self.problems.add(
                at, "an id starts with {origin}, a URL var or http(s):// (ids are IRIs)"
            )
            ok = False
        if not ok:
            return None
        return Template(text=text, parts=tuple(p for p in parts if p != (False, "")))

    def _player(
        self, kind: Kind, merged: dict[str, tuple[Any, Path]], spec: dict[str, Any], at: Path
    ) -> None:
        if spec.get("video") is None and "video" not in merged:
            self.problems.add(at, 'a player event needs its video: video = { id = "..." }')
        if kind is Kind.WATCHED and not {"segment_from", "segment_to"} <= merged.keys():
            self.problems.add(at, "a watched stretch needs segment_from and segment_to")
        if "interaction" in merged:
            value, where = merged["interaction"]
            if kind is not Kind.INTERACTED:
                self.problems.add(where, 'interaction is for kind = "interacted"')
            else:
                spec["interaction"] = self._interaction(value, where)
        elif kind is Kind.INTERACTED:
            self.problems.add(at, "an interacted event needs interaction = { speed = ... }")
        if "cadence" in merged:
            value, where = merged["cadence"]
            if kind is not Kind.PROGRESS:
                self.problems.add(where, 'cadence is for progress pings (kind = "progress")')
            elif isinstance(value, bool) or not isinstance(value, int | float):
                self.problems.add(where, "cadence is a number of seconds")
            elif not 0 < value <= 3600:
                self.problems.add(where, "cadence is more than 0 and at most 3600 seconds")
            else:
                spec["cadence"] = float(value)
        for key in ("reports_seeks", "ends_playback", "opens_session"):
            if key in merged:
                value, where = merged[key]
                if not isinstance(value, bool):
                    self.problems.add(where, f"{key} is true or false")
                elif key == "ends_playback" and kind is not Kind.COMPLETED:
                    self.problems.add(where, 'ends_playback is for kind = "completed"')
                else:
                    spec[key] = value
        if "platform_completed" in merged:
            value, where = merged["platform_completed"]
            if isinstance(value, bool):
                spec["platform_completed"] = value
            else:
                spec["platform_completed"] = self.s.sources(value, where, {"equals"}) or ()

    def _interaction(self, value: Any, at: Path) -> dict[str, Sources]:
        if not isinstance(value, dict) or not value:
            self.problems.add(at, 'interaction is a table: { speed = "rate" }')
            return {}
        out: dict[str, Sources] = {}
        for key, item in value.items():
            where = (*at, key)
            if key not in INTERACTION:
                hint = did_you_mean(key, INTERACTION)
                self.problems.add(where, f"unknown setting {key!r}{hint}")
            elif key in ("cc_enabled", "full_screen") and isinstance(item, bool):
                out[key] = (Source(kind="value", value=item),)
            elif key in ("cc_enabled", "full_screen"):
                out[key] = self.s.sources(item, where, {"equals"}) or ()
            elif key == "volume":
                out[key] = self.s.sources(item, where, {"scale"}, {"scale"}) or ()
            else:
                out[key] = self.s.sources(item, where) or ()
        return out

    def _learning(
        self,
        verb: Verb | None,
        merged: dict[str, tuple[Any, Path]],
        spec: dict[str, Any],
        vars_: dict[str, Sources],
        url_vars: set[str],
        at: Path,
    ) -> None:
        if "object" not in merged:
            self.problems.add(at, "a learning event needs its object: object = { id, type }")
        else:
            spec["object"] = self._activity(merged["object"], vars_, url_vars, None)
        if "result" not in merged:
            return
        value, where = merged["result"]
        if not isinstance(value, dict):
            self.problems.add(where, "result is a table: { progress = ..., response = ... }")
            return
        result: dict[str, Sources] = {}
        for key, item in value.items():
            here = (*where, key)
            if key not in RESULT:
                hint = did_you_mean(key, RESULT)
                self.problems.add(here, f"unknown key {key!r}{hint}")
            elif key == "completion":
                if item is not True:
                    self.problems.add(here, "completion = true is the only choice")
                elif verb is None or verb.id != v.LEARNING_VERBS["completed"].id:
                    self.problems.add(here, 'result.completion is for verb = "completed"')
                else:
                    spec["completion"] = True
            elif key == "success" and isinstance(item, bool):
                result[key] = (Source(kind="value", value=item),)
            elif key == "success":
                result[key] = self.s.sources(item, here, {"equals"}) or ()
            elif key == "progress":
                result[key] = self.s.sources(item, here, {"scale"}, {"scale"}) or ()
            elif key == "duration":
                result[key] = self.s.sources(item, here, {"unit"}, {"unit"}) or ()
            elif key == "score":
                result |= self._score(item, here)
            else:
                result[key] = self.s.sources(item, here) or ()
        spec["result"] = result

    def _score(self, value: Any, at: Path) -> dict[str, Sources]:
        if not isinstance(value, dict) or "raw" not in value:
            self.problems.add(at, 'score is a table with raw (and min, max): { raw = "points" }')
            return {}
        out: dict[str, Sources] = {}
        for key, item in value.items():
            if key not in ("raw", "min", "max"):
                self.problems.add((*at, key), f"unknown key {key!r} (raw, min, max)")
            else:
                out[f"score_{key}"] = self.s.sources(item, (*at, key)) or ()
        return out

    def _require(
        self,
        entry: tuple[Any, Path] | None,
        merged: dict[str, tuple[Any, Path]],
        spec: dict[str, Any],
        shared: bool,
    ) -> tuple[str, ...]:
        """The values an event must have to be read. From `common` (`shared`), only those
        that this event type reads."""
        if entry is None:
            return ()
        value, at = entry
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            self.problems.add(at, 'require is a list of names: require = ["position"]')
            return ()
        result = spec.get("result") or {}
        given = set(merged) | {"score" if k.startswith("score_") else k for k in result}
        out = []
        for name in value:
            if name not in REQUIRABLE:
                hint = did_you_mean(name, REQUIRABLE)
                self.problems.add(at, f"{name!r} cannot be required{hint}")
            elif name in given:
                out.append(name)
            elif not shared:
                self.problems.add(at, f"requires {name}, which this event type does not read")
        return tuple(out)
