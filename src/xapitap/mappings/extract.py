"""A request read with a mapping: the events a platform module would make of it.

Each event of the body (or the query string) is looked up by its type; an unmapped type is
counted as ignored, an event that lacks what its type needs is rejected with a fixed reason
(never text from the body), and the others of the batch go on.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import ValidationError

from xapitap.capture import Capture
from xapitap.events import Extraction
from xapitap.events import Interaction
from xapitap.events import Kind
from xapitap.events import LearningEvent
from xapitap.events import LearningResult
from xapitap.events import PayloadError
from xapitap.events import Skip
from xapitap.events import VideoEvent
from xapitap.mappings.model import Endpoint
from xapitap.mappings.model import EventSpec
from xapitap.mappings.model import Mapping
from xapitap.mappings.values import Event
from xapitap.mappings.values import Query
from xapitap.matching import RuleMatch
from xapitap.platforms.base import event_time
from xapitap.platforms.base import number_or_none
from xapitap.platforms.base import page_url
from xapitap.platforms.base import raw_event_id
from xapitap.privacy import scrub
from xapitap.validation import describe

MAX_TYPE_CHARS = 100  # of an unmapped type's name, as it is counted


class _Rejected(Exception):
    """The event cannot be read; the reason is a fixed phrase."""


class _Ignored(Exception):
    """The event says nothing a statement can hold."""


def extract(
    mapping: Mapping, endpoint: Endpoint, match: RuleMatch, capture: Capture, doc: Any
) -> Extraction:
    out = Extraction()
    query = Query(capture)
    items = [query.params()] if endpoint.from_query else _located(doc, endpoint)
    for item in items:
        if not isinstance(item, dict):
            out.rejected.append(Skip("(not an object)", "an event that is not an object"))
            continue
        event = Event(capture, match.params, doc, item, query)
        type_name = event.text(endpoint.type)
        if type_name is None:
            out.rejected.append(Skip("(no type)", "no event type"))
            continue
        spec = endpoint.events.get(type_name)
        if spec is None:
            # Counted by its name, which the page chose: cut short, without e-mails.
            out.ignored.append(Skip(scrub(type_name[:MAX_TYPE_CHARS]), "no mapping for this type"))
            continue
        try:
            made = _event(mapping, spec, event, match, type_name)
        except _Rejected as e:
            out.rejected.append(Skip(type_name, str(e)))
        except _Ignored as e:
            out.ignored.append(Skip(type_name, str(e)))
        except ValidationError as e:  # a value the event model refuses
            out.rejected.append(Skip(type_name, describe(e)))
        else:
            if isinstance(made, VideoEvent):
                out.events.append(made)
            else:
                out.learning.append(made)
    return out


def _located(doc: Any, endpoint: Endpoint) -> list[Any]:
    value = doc
    where = "$"
    for key in endpoint.events_path:
        where += f".{key}"
        if not isinstance(value, dict) or key not in value:
            raise PayloadError(f"the body has nothing at {where}")
        value = value[key]
    if not endpoint.each:
        return [value]
    if not isinstance(value, list):
        raise PayloadError(f"the body has no array at {where}")
    return value


def _event(
    mapping: Mapping, spec: EventSpec, event: Event, match: RuleMatch, type_name: str
) -> VideoEvent | LearningEvent:
    capture = event.capture
    event.origin = _origin(mapping, event)
    event.vars = spec.vars
    values = spec.values
    if spec.arrival:
        when, timed = capture.received_at, True
    elif spec.time:
        when, timed = event_time(event.time(spec.time), capture)
    else:
        when, timed = capture.received_at, False
    user = event.user(values.get("user", ()))
    own_id = event.text(values.get("event_id", ()))
    found: dict[str, Any] = {
        "user": user,
        "event_id": own_id,
        "time": when if timed else None,
        "session": event.text(values.get("session", ())),
    }
    if own_id is None:
        # No id of its own: a hash of what it says (and, without a time of its own, of when
        # it came, so that the same event sent again later is not taken for a resend).
        raw: list[Any] = [dict(match.params), event.item]
        if not spec.time:
            raw.append(capture.received_at.isoformat())
        own_id = raw_event_id(raw)
    modules = [event.activity(spec.module), event.activity(spec.course)]
    lesson = event.activity(spec.lesson)
    common: dict[str, Any] = {
        "platform": mapping.site.name,
        "platform_name": mapping.site.display,
        "origin": event.origin,
        "rule": match.rule.name,
        "event_type": type_name,
        "source_event_id": own_id,
        "timestamp": when,
        "timed": timed,
        "user_ref": user[0] if user else "unknown",
        "user_ref_kind": user[1] if user else "none",
        "parents": (lesson,) if lesson else (),
        "groupings": tuple(a for a in modules if a is not None),
        "session_key": found["session"],
    }
    if spec.kind is not None:
        return _player(spec, spec.kind, event, common, found)
    return _learning(spec, event, common, found)


def _origin(mapping: Mapping, event: Event) -> str:
    origin = mapping.site.origin
    if origin == "request":
        return event.capture.origin
    if isinstance(origin, str):
        return origin
    located = event.first(origin, lambda raw, _: page_url(raw))
    return located[0] if located else event.capture.origin


def _not_its_own_context(common: dict[str, Any], iri: str) -> dict[str, Any]:
    """Without the object among its context activities (a lesson completed is not its own
    parent, though the endpoint's `common` names the lesson for all its events)."""
    return common | {
        key: tuple(a for a in common[key] if a.id != iri) for key in ("parents", "groupings")
    }


def _required(spec: EventSpec, found: dict[str, Any]) -> None:
    for name in spec.require:
        if found.get(name) is None:
            raise _Rejected(f"no {name}")


def _player(
    spec: EventSpec, kind: Kind, event: Event, common: dict[str, Any], found: dict[str, Any]
) -> VideoEvent:
    video = event.activity(spec.video)
    if video is None:
        raise _Rejected("no video id")
    common = _not_its_own_context(common, video.id)
    seconds = {k: event.seconds(alts) for k, alts in spec.values.items() if k in _SECONDS}
    found |= seconds
    _required(spec, found)
    position = seconds.get("position")
    if kind is Kind.WATCHED:
        start, end = seconds.get("segment_from"), seconds.get("segment_to")
        if start is None or end is None or end < start:
            raise _Rejected("no valid segment_from/segment_to")
        position = end if position is None else position
    interaction = None
    if kind is Kind.INTERACTED:
        interaction = _interaction(spec, event)
    completed = spec.platform_completed
    if not isinstance(completed, bool):
        completed = bool(event.yes_no(completed))
    return VideoEvent(
        **common,
        kind=kind,
        video=video,
        position=position,
        seek_from=seconds.get("seek_from"),
        seek_to=seconds.get("seek_to"),
        segment_from=seconds.get("segment_from"),
        segment_to=seconds.get("segment_to"),
        length=seconds.get("length") or None,  # a length of 0 is no length
        interaction=interaction,
        cadence=spec.cadence,
        reports_seeks=spec.reports_seeks,
        platform_completed=completed,
        ends_playback=spec.ends_playback,
        opens_session=spec.opens_session,
    )


_SECONDS = ("position", "length", "seek_from", "seek_to", "segment_from", "segment_to")


def _interaction(spec: EventSpec, event: Event) -> Interaction:
    settings = spec.interaction
    speed = event.first(settings.get("speed", ()), _rate)
    volume = event.first(
        settings.get("volume", ()),
        lambda raw, s: None if (n := number_or_none(raw)) is None else min(n / s.scale, 1.0),
    )
    changed = Interaction(
        speed=None if speed is None else f"{speed:g}x",
        volume=volume,
        quality=event.text(settings.get("quality", ())),
        cc_language=event.text(settings.get("cc_language", ())),
        cc_enabled=event.yes_no(settings.get("cc_enabled", ())),
        full_screen=event.yes_no(settings.get("full_screen", ())),
    )
    if changed == Interaction():
        raise _Ignored("no setting given")
    return changed


def _rate(raw: Any, _: object) -> float | None:
    """A playback rate: 1.5, "1.5" or "1.5x"; never 0."""
    if isinstance(raw, str):
        raw = raw.strip().lower().removesuffix("x")
    rate = number_or_none(raw)
    return rate if rate else None


def _learning(
    spec: EventSpec, event: Event, common: dict[str, Any], found: dict[str, Any]
) -> LearningEvent:
    target = event.activity(spec.object)
    if target is None:
        raise _Rejected("no object id")
    common = _not_its_own_context(common, target.id)
    assert spec.verb is not None  # a spec has a kind or a verb
    result = _result(spec, event)
    found |= {} if result is None else result.model_dump(exclude_none=True)
    if result is not None and result.score_raw is not None:
        found["score"] = result.score_raw
    _required(spec, found)
    return LearningEvent(
        **common,
        verb=spec.verb,
        object=target,
        result=result,
        video=event.activity(spec.video),
    )


def _result(spec: EventSpec, event: Event) -> LearningResult | None:
    r = spec.result
    progress = None
    if "progress" in r:
        share = event.first(
            r["progress"],
            lambda raw, s: None if (n := number_or_none(raw)) is None else n * 100 / s.scale,
        )
        if share is not None:
            if share > 100:
                raise _Rejected("progress out of range")
            progress = math.floor(round(share, 6))  # never rounded up to done
    result = LearningResult(
        completion=True if spec.completion else None,
        success=event.yes_no(r.get("success", ())),
        response=event.text(r.get("response", ())),
        score_raw=event.number(r.get("score_raw", ())),
        score_min=event.number(r.get("score_min", ())),
        score_max=event.number(r.get("score_max", ())),
        progress=progress,
        duration=event.seconds(r.get("duration", ())),
    )
    return None if result == LearningResult() else result
