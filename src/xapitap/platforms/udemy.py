"""Udemy: the course-taking "Video Controls" events, ECL, progress logs, view-logs and
completions. Activity ids and learners: see udemy_ids.py; ECL's events: udemy_ecl.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from xapitap.capture import Capture
from xapitap.events import Activity
from xapitap.events import Extraction
from xapitap.events import Interaction
from xapitap.events import Kind
from xapitap.events import LearningEvent
from xapitap.events import PayloadError
from xapitap.events import Skip
from xapitap.events import VideoEvent
from xapitap.matching import EndpointRule
from xapitap.matching import HeaderLookup
from xapitap.matching import RuleMatch
from xapitap.platforms.base import Platform
from xapitap.platforms.base import dict_at
from xapitap.platforms.base import event_time
from xapitap.platforms.base import number_or_none
from xapitap.platforms.base import parse_iso
from xapitap.platforms.base import raw_event_id
from xapitap.platforms.base import require_dict
from xapitap.platforms.base import text_or_none
from xapitap.platforms.udemy_ecl import read_ecl
from xapitap.platforms.udemy_ids import NAME
from xapitap.platforms.udemy_ids import PLATFORM_NAME
from xapitap.platforms.udemy_ids import course_activity
from xapitap.platforms.udemy_ids import lecture_iri
from xapitap.platforms.udemy_ids import lecture_video
from xapitap.platforms.udemy_ids import user_from_cookies
from xapitap.xapi.vocab import LEARNING_VERBS
from xapitap.xapi.vocab import LESSON_TYPE

PROGRESS_LOG_SECONDS = 15.0  # VIDEO_PROGRESS_INTERVAL of Udemy's lecture player
_HOSTS = r"(?:[a-z0-9-]+\.)*udemy\.com"
_COURSE = r"/api-2\.0/users/me/subscribed-courses/(?P<course>\d+)"


def _looks_like_video_controls(header: HeaderLookup, body: Callable[[], bytes]) -> bool:
    data = body()
    return b'"ctVersion"' in data and b'"action"' in data


ECL = EndpointRule("udemy.ecl", NAME, r"^/api-2\.0/ecl/?$", hosts=_HOSTS)
PROGRESS_LOG = EndpointRule(
    "udemy.progress-log",
    NAME,
    rf"^{_COURSE}/lectures/(?P<lecture>\d+)/progress-logs/?$",
    hosts=_HOSTS,
)
COMPLETED_LECTURE = EndpointRule(
    "udemy.completed-lecture", NAME, rf"^{_COURSE}/completed-lectures/?$", hosts=_HOSTS
)
# Posted without a body when a lecture opens (wire-formats.md §4.3): its path says it all.
VIEW_LOG = EndpointRule(
    "udemy.view-log",
    NAME,
    rf"^{_COURSE}/lectures/(?P<lecture>\d+)/view-logs/?$",
    hosts=_HOSTS,
    reads_body=False,
)
# The legacy course-taking payload's endpoint is unknown: recognise it by its shape.
VIDEO_CONTROLS = EndpointRule(
    "udemy.video-controls", NAME, r"", hosts=_HOSTS, body_check=_looks_like_video_controls
)


def _event(
    capture: Capture, rule: str, source_id: str, kind: Kind, course: str, lecture: str, **kw: Any
) -> VideoEvent:
    video, course_act = lecture_video(capture.origin, course, lecture)
    user, user_kind = kw.pop("user", None) or user_from_cookies(capture)
    return VideoEvent(
        platform=NAME,
        platform_name=PLATFORM_NAME,
        origin=capture.origin,
        rule=rule,
        source_event_id=source_id,
        kind=kind,
        timestamp=kw.pop("timestamp", None) or capture.received_at,
        user_ref=user,
        user_ref_kind=user_kind,
        video=video,
        groupings=(course_act,),
        **kw,
    )


def _action(action: str, extra: dict[str, Any]) -> tuple[Kind, Interaction | None] | None:
    """Kind and settings change of a "Video Controls" action such as `video hd: 480`."""
    name, _, value = action.lower().removeprefix("video ").partition(":")
    name, value = name.strip(), value.strip()
    if name == "play":
        return Kind.PLAYED, None
    if name == "pause":
        return Kind.PAUSED, None
    if name.startswith("seek"):
        return Kind.SEEKED, None
    if name == "hd":
        return Kind.INTERACTED, Interaction(quality=value or text_or_none(extra.get("quality")))
    if name == "cc":
        on = value not in ("off", "none", "")
        language = value if on and re.fullmatch(r"[a-z]{2,3}([-_][a-z0-9]{2,8})*", value) else None
        return Kind.INTERACTED, Interaction(cc_enabled=on, cc_language=language)
    if name == "volume":
        level = number_or_none(extra.get("volume"))
        if level is None:
            return None  # a change that does not say to what
        if level > 1:  # video.js reports 0-1; some players 0-100 (so 1 is read as full)
            level /= 100
        return Kind.INTERACTED, Interaction(volume=min(level, 1.0))
    if name in ("speed", "playback rate", "rate"):
        rate = number_or_none(value or extra.get("playbackRate"))
        if not rate:
            return None
        return Kind.INTERACTED, Interaction(speed=f"{rate:g}x")
    if name in ("fullscreen", "full screen"):
        return Kind.INTERACTED, Interaction(full_screen=value not in ("off", "exit", "false"))
    return None


def _video_controls(rule: RuleMatch, capture: Capture, doc: Any) -> Extraction:
    body = require_dict(doc, "the course-taking payload")
    out = Extraction()
    category = text_or_none(body.get("category"))
    action = text_or_none(body.get("action"))
    if category != "Video Controls" or action is None:
        out.ignored.append(Skip(category or "(no category)", "not a player event"))
        return out
    extra = dict_at(body, "extra")
    mapped = _action(action, extra)
    if mapped is None:
        out.ignored.append(Skip(action, "no xAPI mapping, or no value"))
        return out
    lecture = text_or_none(body.get("objectId"))
    course = text_or_none(body.get("courseId"))
    if lecture is None or course is None:
        raise PayloadError("course-taking payload without courseId/objectId")
    user_id = text_or_none(body.get("userId")) or text_or_none(extra.get("userId"))
    visitor = text_or_none(body.get("visitorUUID"))
    user = (user_id, "userId") if user_id else (visitor, "visitorUUID") if visitor else None
    kind, interaction = mapped
    ms = number_or_none(extra.get("msPosition"))
    position = None if ms is None else ms / 1000
    # The payload has no event id or time: hash it with the time the proxy saw it.
    source_id = raw_event_id([body, capture.received_at.isoformat()])
    out.events.append(
        _event(
            capture,
            rule.rule.name,
            source_id,
            kind,
            course,
            lecture,
            user=user,
            event_type=action,
            position=position,
            interaction=interaction,
            seek_to=position if kind is Kind.SEEKED else None,
        )
    )
    return out


def _progress_log(rule: RuleMatch, capture: Capture, doc: Any) -> Extraction:
    body = require_dict(doc, "the progress log")
    position = number_or_none(body.get("position"))
    if position is None:
        raise PayloadError("progress log without a numeric position")
    when, timed = event_time(parse_iso(body.get("time")), capture)
    event = _event(
        capture,
        rule.rule.name,
        raw_event_id([rule.params, body]),  # the body has its own `time`
        Kind.PROGRESS,
        rule.params["course"],
        rule.params["lecture"],
        event_type="progress-log",
        position=position,
        length=number_or_none(body.get("total")) or None,
        timestamp=when,
        timed=timed,
        # Sent every 15 s while playing, and never about pauses or seeks.
        cadence=PROGRESS_LOG_SECONDS,
        reports_seeks=False,
    )
    return Extraction(events=[event])


def _completed_lecture(rule: RuleMatch, capture: Capture, doc: Any) -> Extraction:
    body = require_dict(doc, "the completed-lecture body")
    lecture = text_or_none(body.get("lecture_id"))
    if lecture is None:
        raise PayloadError("completed-lecture body without lecture_id")
    # Sent when the playhead passes the last 15 s, while the video may play on.
    event = _event(
        capture,
        rule.rule.name,
        raw_event_id([rule.params, body, capture.received_at.isoformat()]),
        Kind.COMPLETED,
        rule.params["course"],
        lecture,
        event_type="completed-lecture",
        opens_session=False,  # also sent by a tick in the course menu, for any lecture
    )
    return Extraction(events=[event])


def _view_log(rule: RuleMatch, capture: Capture, doc: Any) -> Extraction:
    """The lecture was opened. Any lecture (an article as well as a video): viewed, with the
    lecture typed as a lesson; the video player, if any, starts its session from ECL."""
    course, lecture = rule.params["course"], rule.params["lecture"]
    user, user_kind = user_from_cookies(capture)
    event = LearningEvent(
        platform=NAME,
        platform_name=PLATFORM_NAME,
        origin=capture.origin,
        rule=rule.rule.name,
        event_type="view-log",
        # No body, no time: the lecture and the moment the proxy saw it are the event.
        source_event_id=raw_event_id([rule.params, capture.received_at.isoformat()]),
        timestamp=capture.received_at,
        timed=False,
        user_ref=user,
        user_ref_kind=user_kind,
        verb=LEARNING_VERBS["viewed"],
        object=Activity(id=lecture_iri(capture.origin, course, lecture), type=LESSON_TYPE),
        groupings=(course_activity(capture.origin, course),),
    )
    return Extraction(learning=[event])


def _ecl(rule: RuleMatch, capture: Capture, doc: Any) -> Extraction:
    return read_ecl(capture, rule.rule.name, doc)


PLATFORM = Platform(
    NAME,
    {
        ECL: _ecl,
        PROGRESS_LOG: _progress_log,
        COMPLETED_LECTURE: _completed_lecture,
        VIEW_LOG: _view_log,
        VIDEO_CONTROLS: _video_controls,
    },
)
