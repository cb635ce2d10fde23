"""Video session state as text, for the store: what a translator that starts again needs to go
on exactly where the last one stopped (session.py: `take_changes`, `VideoSessions.restore`).

Exact: decoding gives back every value as it was, type included (datetimes with their UTC
offset, floats to the last bit, infinities and NaN, tuples as tuples, ints as ints, None), so
the restored sessions make byte-identical statements. Each document names its format; another
format is refused with a ValueError (its sessions cannot be continued exactly).

Pure: JSON text only, never the store.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from datetime import datetime
from typing import Any

from xapitap.events import VideoEvent
from xapitap.player import PlayerState
from xapitap.session import EndedSession
from xapitap.session import SessionCounters
from xapitap.session import SessionKey
from xapitap.session import VideoSession

FORMAT_VERSION = 1

# PlayerState fields that need more than a JSON scalar; every other field must be one (a
# field of another kind is refused when encoded, rather than changed by a round trip).
_STATE_TIMES = ("at", "last_at")
_STATE_SEGMENTS = "segments"
_STATE_SETTINGS = "settings"
_STATE_SCALARS = tuple(
    f.name
    for f in fields(PlayerState)
    if f.name not in (*_STATE_TIMES, _STATE_SEGMENTS, _STATE_SETTINGS)
)
_SCALARS = (str, bool, int, float, type(None))


# --- Keys ------------------------------------------------------------------------------------


def encode_key(key: SessionKey) -> str:
    """A session key as text, one text per key (a primary key)."""
    return _dump(list(key))


def decode_key(text: str) -> SessionKey:
    return _key(_load(text))


def _key(value: Any) -> SessionKey:
    if not (isinstance(value, list) and len(value) == 3 and all(isinstance(p, str) for p in value)):
        raise ValueError("a session key is a JSON array of three strings")
    actor, video, platform_session = value
    return actor, video, platform_session


# --- Sessions --------------------------------------------------------------------------------


def encode_session(session: VideoSession) -> str:
    return _dump(
        {
            "v": FORMAT_VERSION,
            "key": list(session.key),
            "session_id": session.session_id,
            "actor": session.actor,
            "actor_home": session.actor_home,
            "template": _event_doc(session.template),
            "last_event": _event_doc(session.last_event),
            "last_seen": _time(session.last_seen),
            "state": _state_doc(session.state),
            "created": session.created,
            "touched": session.touched,
        }
    )


def decode_session(text: str) -> VideoSession:
    doc = _document(text, "session")
    with _reading("session"):
        return VideoSession(
            key=_key(doc["key"]),
            session_id=doc["session_id"],
            actor=doc["actor"],
            actor_home=doc["actor_home"],
            template=_event(doc["template"]),
            last_event=_event(doc["last_event"]),
            last_seen=_parse_time(doc["last_seen"]),
            state=_state(doc["state"]),
            created=_int(doc["created"]),
            touched=_int(doc["touched"]),
        )


# --- The ended memory and the counters -------------------------------------------------------


def encode_ended(entry: EndedSession) -> str:
    doc = {"v": FORMAT_VERSION, "key": list(entry.key), "at": _time(entry.at), "order": entry.order}
    return _dump(doc)


def decode_ended(text: str) -> EndedSession:
    doc = _document(text, "ended session")
    with _reading("ended session"):
        return EndedSession(_key(doc["key"]), _parse_time(doc["at"]), _int(doc["order"]))


def encode_counters(counters: SessionCounters) -> str:
    return _dump({"v": FORMAT_VERSION, "next_order": counters.next_order})


def decode_counters(text: str) -> SessionCounters:
    doc = _document(text, "session counters")
    with _reading("session counters"):
        return SessionCounters(_int(doc["next_order"]))


# --- Parts -----------------------------------------------------------------------------------


def _event_doc(event: VideoEvent) -> dict[str, Any]:
    # Python mode, not JSON mode: JSON mode would write an infinite float as null. Defaults
    # are left out (half the text); validation puts them back.
    doc = event.model_dump(exclude_defaults=True)
    doc["timestamp"] = _time(event.timestamp)
    return doc


def _event(doc: dict[str, Any]) -> VideoEvent:
    # Parsed here, so that the offset comes back as it was (pydantic would parse it its way).
    return VideoEvent.model_validate({**doc, "timestamp": _parse_time(doc["timestamp"])})


def _state_doc(state: PlayerState) -> dict[str, Any]:
    doc: dict[str, Any] = {name: _scalar(name, getattr(state, name)) for name in _STATE_SCALARS}
    for name in _STATE_TIMES:
        when = getattr(state, name)
        doc[name] = None if when is None else _time(when)
    doc[_STATE_SEGMENTS] = [[a, b] for a, b in state.segments]
    doc[_STATE_SETTINGS] = {k: _scalar(f"settings.{k}", x) for k, x in state.settings.items()}
    return doc


def _state(doc: dict[str, Any]) -> PlayerState:
    values: dict[str, Any] = {name: doc[name] for name in _STATE_SCALARS}
    for name in _STATE_TIMES:
        values[name] = None if doc[name] is None else _parse_time(doc[name])
    values[_STATE_SEGMENTS] = [(a, b) for a, b in doc[_STATE_SEGMENTS]]
    values[_STATE_SETTINGS] = dict(doc[_STATE_SETTINGS])
    return PlayerState(**values)


def _scalar(name: str, value: Any) -> Any:
    if not isinstance(value, _SCALARS):
        raise TypeError(f"player state {name} holds a {type(value).__name__}, not a JSON scalar")
    return value


def _time(when: datetime) -> str:
    """ISO 8601 with the offset as it is; only a fixed offset (UTC, +02:00) says the same
    thing after a round trip (a named zone's offset depends on the date)."""
    if when.tzinfo is not None and when.tzinfo.utcoffset(None) is None:
        raise ValueError(f"a time in a named zone cannot be kept exactly: {when.tzinfo!r}")
    return when.isoformat()


def _parse_time(text: Any) -> datetime:
    if not isinstance(text, str):
        raise ValueError("a time is an ISO 8601 string")
    return datetime.fromisoformat(text)


def _int(value: Any) -> int:
    if type(value) is not int:
        raise ValueError(f"an order is an integer, not {value!r}")
    return value


# --- JSON ------------------------------------------------------------------------------------


def _dump(value: Any) -> str:
    # ASCII: a lone surrogate (JSON bodies can hold one) stays escaped, and SQLite's UTF-8
    # text takes it. NaN and infinities as Python writes them (Infinity): read back exactly.
    return json.dumps(value, ensure_ascii=True, separators=(",", ":"))


def _load(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"session state is not JSON: {e}") from None


def _document(text: str, what: str) -> dict[str, Any]:
    doc = _load(text)
    if not isinstance(doc, dict):
        raise ValueError(f"a stored {what} is a JSON object")
    version = doc.get("v")
    if version != FORMAT_VERSION:
        raise ValueError(
            f"a stored {what} is in session state format {version!r}; this xapitap reads "
            f"format {FORMAT_VERSION} only (its sessions cannot be continued exactly)"
        )
    return doc


@contextmanager
def _reading(what: str) -> Iterator[None]:
    """A document of the right format but the wrong shape: a ValueError, as any other."""
    try:
        yield
    except (KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"a stored {what} is malformed: {type(e).__name__}: {e}") from e
