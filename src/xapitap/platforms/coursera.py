"""Coursera: the eventing batches (`open_course.video.*`, `pageview`), the lecture APIs and
the reading (supplement) completions.

Activity ids, on the origin the request went to (www.coursera.org):
- lecture video: `{origin}/learn/{courseSlug}/lecture/{itemId}` (the lecture's own page)
- reading:       `{origin}/learn/{courseSlug}/supplement/{itemId}` (the reading's own page)
- lesson:        `{origin}/learn/{courseSlug}/lesson/{lessonId}` (parent)
- module:        `{origin}/learn/{courseSlug}/module/{moduleId}` (grouping)
- course:        `{origin}/learn/{courseSlug}` (grouping)
- a page viewed: its URL without query and fragment
Learner: eventing bodies carry no user id unless `userId`/`value.user_id` is there; otherwise
the visit id (`visitId`, which changes after 30 idle minutes) is the best the body offers. The
lecture APIs name the user in their path; their visit id comes in the `__400v` cookie, and
where it does, they count for the visit's learner, so that the lecture API's completion joins
the eventing session of the same video.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from xapitap.capture import Capture
from xapitap.events import Activity
from xapitap.events import Extraction
from xapitap.events import Kind
from xapitap.events import LearningEvent
from xapitap.events import LearningResult
from xapitap.events import PayloadError
from xapitap.events import Skip
from xapitap.events import VideoEvent
from xapitap.matching import EndpointRule
from xapitap.matching import RuleMatch
from xapitap.platforms.base import Platform
from xapitap.platforms.base import event_time
from xapitap.platforms.base import iri_segment
from xapitap.platforms.base import number_or_none
from xapitap.platforms.base import page_url
from xapitap.platforms.base import parse_epoch_ms
from xapitap.platforms.base import raw_event_id
from xapitap.platforms.base import require_dict
from xapitap.platforms.base import text_or_none
from xapitap.xapi.vocab import COURSE_TYPE
from xapitap.xapi.vocab import LEARNING_VERBS
from xapitap.xapi.vocab import LESSON_TYPE
from xapitap.xapi.vocab import MEDIA_TYPE
from xapitap.xapi.vocab import MODULE_TYPE
from xapitap.xapi.vocab import PAGE_TYPE
from xapitap.xapi.vocab import VIDEO_TYPE

NAME = "coursera"
VISIT_COOKIE = "__400v"  # the eventing tracker's visit id
_HOSTS = r"(?:[a-z0-9-]+\.)*coursera\.org"
_ITEM = r"/api/opencourse\.v1/user/(?P<user>[^/]+)/course/(?P<course>[^/]+)/item/(?P<item>[^/]+)"

EVENTING = EndpointRule(
    "coursera.eventing",
    NAME,
    r"^/(?:api/rest/v1/)?eventing/info(?:batch)?(?:\.v2)?/?$",
    hosts=_HOSTS,
)
VIDEO_EVENT = EndpointRule(
    "coursera.video-event",
    NAME,
    rf"^{_ITEM}/lecture/videoEvents/(?P<action>[a-z]+)/?$",
    hosts=_HOSTS,
)
VIDEO_PROGRESS = EndpointRule(
    "coursera.video-progress",
    NAME,
    # <userId>~<courseId>~<videoTrackingId>: the user id is named, so nothing keeps it.
    r"^/api/onDemandVideoProgresses\.v1/(?P<user>[^/~]+)~[^/]*/?$",
    hosts=_HOSTS,
    methods=frozenset({"PUT", "POST"}),
)
# A reading marked complete: `{userId, courseId, itemId}` (wire-formats.md §3.4).
SUPPLEMENT_COMPLETION = EndpointRule(
    "coursera.supplement-completion",
    NAME,
    r"^/api/onDemandSupplementCompletions\.v1/?$",
    hosts=_HOSTS,
)

_ACTIONS = {
    "play": Kind.PLAYED,
    "pause": Kind.PAUSED,
    "heartbeat": Kind.PROGRESS,
    "seek": Kind.SEEKED,
    "end": Kind.COMPLETED,
    "ended": Kind.COMPLETED,
    "complete": Kind.COMPLETED,
}
# Eventing keys with no learning meaning (wire-formats.md §3.3), and why; any other key that is
# neither a pageview nor a video key has no documented meaning, and is counted as such.
_NOT_LEARNING = {
    "page.error.javascript": "a script error in the page",
    "open_course.user.login_modal.open": "a login dialog",
}
_COURSE_PAGE = re.compile(r"^/learn/([^/]+)")


def _activities(
    origin: str, slug: str, item: str, value: dict[str, Any]
) -> tuple[Activity, tuple[Activity, ...], tuple[Activity, ...]]:
    course = f"{origin}/learn/{iri_segment(slug)}"
    name = text_or_none(value.get("video_name")) or text_or_none(value.get("item_name"))
    video = Activity(id=f"{course}/lecture/{iri_segment(item)}", type=VIDEO_TYPE, name=name)
    parents: list[Activity] = []
    groupings: list[Activity] = []
    if lesson := text_or_none(value.get("lesson_id")):
        parents.append(
            Activity(
                id=f"{course}/lesson/{iri_segment(lesson)}",
                type=LESSON_TYPE,
                name=text_or_none(value.get("lesson_name")),
            )
        )
    if module := text_or_none(value.get("module_id")):
        groupings.append(
            Activity(
                id=f"{course}/module/{iri_segment(module)}",
                type=MODULE_TYPE,
                name=text_or_none(value.get("module_name")),
            )
        )
    groupings.append(Activity(id=course, type=COURSE_TYPE))
    return video, tuple(parents), tuple(groupings)


def _eventing(rule: RuleMatch, capture: Capture, doc: Any) -> Extraction:
    body = require_dict(doc, "the eventing body")
    items = body.get("events", [body])
    if not isinstance(items, list):
        raise PayloadError("eventing body's events is not an array")
    out = Extraction()
    for item in items:
        try:
            _eventing_item(rule, capture, item, out)
        except PayloadError as e:  # one bad item; the others are independent
            key = item.get("key") if isinstance(item, dict) else None
            out.rejected.append(Skip(text_or_none(key) or "(eventing item)", str(e)))
    return out


def _eventing_item(rule: RuleMatch, capture: Capture, item: Any, out: Extraction) -> None:
    item = require_dict(item, "an eventing event")
    key = text_or_none(item.get("key")) or ""
    if key == "pageview":
        out.learning.append(_pageview(rule, capture, item))
        return
    if not key.startswith("open_course.video."):
        out.ignored.append(Skip(key or "(no key)", _NOT_LEARNING.get(key, "no documented meaning")))
        return
    action = key.removeprefix("open_course.video.")
    kind = _ACTIONS.get(action)
    if kind is None:
        out.ignored.append(Skip(key, "no xAPI mapping"))
        return
    value = require_dict(item.get("value", {}), f"{key} value")
    slug = text_or_none(value.get("open_course_slug"))
    video_item = text_or_none(value.get("item_id"))
    if slug is None or video_item is None:
        raise PayloadError("no open_course_slug/item_id")
    video, parents, groupings = _activities(capture.origin, slug, video_item, value)
    position = number_or_none(value.get("timecode"))
    out.events.append(
        VideoEvent(
            **_eventing_common(rule, capture, item, key),
            kind=kind,
            video=video,
            parents=parents,
            groupings=groupings,
            session_key=text_or_none(item.get("visitId")),
            position=position,
            seek_to=position if kind is Kind.SEEKED else None,
            ends_playback=kind is Kind.COMPLETED,  # the player's own end
        )
    )


def _eventing_common(
    rule: RuleMatch, capture: Capture, item: dict[str, Any], key: str
) -> dict[str, Any]:
    """What every eventing event says: who, when, which event."""
    value = item.get("value")
    value = value if isinstance(value, dict) else {}
    user = text_or_none(item.get("userId")) or text_or_none(value.get("user_id"))
    visit = text_or_none(item.get("visitId"))
    user_ref, user_kind = (
        (user, "userId") if user else (visit, "visitId") if visit else ("unknown", "none")
    )
    when, timed = event_time(parse_epoch_ms(item.get("clientTimestamp")), capture)
    return {
        "platform": NAME,
        "platform_name": "Coursera",
        "origin": capture.origin,
        "rule": rule.rule.name,
        "event_type": key,
        "source_event_id": text_or_none(item.get("guid")) or raw_event_id(item),
        "timestamp": when,
        "timed": timed,
        "user_ref": user_ref,
        "user_ref_kind": user_kind,
    }


def _pageview(rule: RuleMatch, capture: Capture, item: dict[str, Any]) -> LearningEvent:
    """A page viewed: the page is the envelope's `url` (the page's href), without its query
    and fragment; a course page's course is its grouping."""
    page = page_url(item.get("url"))
    if page is None:
        raise PayloadError("pageview without a page url")
    origin, path = page
    course = _COURSE_PAGE.match(path)
    groupings = (
        (Activity(id=f"{origin}/learn/{iri_segment(unquote(course[1]))}", type=COURSE_TYPE),)
        if course
        else ()
    )
    return LearningEvent(
        **_eventing_common(rule, capture, item, "pageview"),
        verb=LEARNING_VERBS["viewed"],
        object=Activity(id=origin + path, type=PAGE_TYPE),
        groupings=groupings,
    )


def _video_event(rule: RuleMatch, capture: Capture, doc: Any) -> Extraction:
    action = rule.params["action"].lower()
    if action != "ended":
        skip = Skip(f"videoEvents/{action}", "repeats the eventing data")
        return Extraction(ignored=[skip])
    params = dict(rule.params)
    video, parents, groupings = _activities(capture.origin, params["course"], params["item"], {})
    visit = capture.cookie(VISIT_COOKIE)
    user_ref, user_kind = (visit, "visitId") if visit else (params["user"], "userId")
    event = VideoEvent(
        platform=NAME,
        platform_name="Coursera",
        origin=capture.origin,
        rule=rule.rule.name,
        event_type="videoEvents/ended",
        source_event_id=raw_event_id([params, capture.received_at.isoformat()]),
        kind=Kind.COMPLETED,
        timestamp=capture.received_at,
        user_ref=user_ref,
        user_ref_kind=user_kind,
        video=video,
        parents=parents,
        groupings=groupings,
        session_key=visit,
    )
    return Extraction(events=[event])


def _video_progress(rule: RuleMatch, capture: Capture, doc: Any) -> Extraction:
    body = require_dict(doc, "the video progress body")
    viewed_ms = number_or_none(body.get("viewedUpTo"))
    if viewed_ms is None:
        raise PayloadError("video progress without a numeric viewedUpTo")
    # Its id is `user~course~trackingId`: no lecture id to tie it to a video activity.
    return Extraction(ignored=[Skip("onDemandVideoProgresses", "names no lecture")])


def _supplement_completion(rule: RuleMatch, capture: Capture, doc: Any) -> Extraction:
    """A reading marked complete (the platform's record). The body names the course by an
    opaque id; the page it was sent from names it by its slug, as every other Coursera id."""
    body = require_dict(doc, "the supplement completion body")
    item = text_or_none(body.get("itemId"))
    if item is None:
        raise PayloadError("supplement completion without itemId")
    page = page_url(capture.header("referer"))
    course = _COURSE_PAGE.match(page[1]) if page else None
    if course is None:
        skip = Skip("onDemandSupplementCompletions", "no referring course page names the course")
        return Extraction(ignored=[skip])
    course_iri = f"{capture.origin}/learn/{iri_segment(unquote(course[1]))}"
    # As the lecture APIs: the visit's learner where the visit cookie names one.
    visit = capture.cookie(VISIT_COOKIE)
    user = text_or_none(body.get("userId"))
    user_ref, user_kind = (
        (visit, "visitId") if visit else (user, "userId") if user else ("unknown", "none")
    )
    event = LearningEvent(
        platform=NAME,
        platform_name="Coursera",
        origin=capture.origin,
        rule=rule.rule.name,
        event_type="onDemandSupplementCompletions",
        source_event_id=raw_event_id([body, capture.received_at.isoformat()]),
        timestamp=capture.received_at,
        timed=False,
        user_ref=user_ref,
        user_ref_kind=user_kind,
        verb=LEARNING_VERBS["completed"],
        object=Activity(id=f"{course_iri}/supplement/{iri_segment(item)}", type=MEDIA_TYPE),
        result=LearningResult(completion=True),
        groupings=(Activity(id=course_iri, type=COURSE_TYPE),),
    )
    return Extraction(learning=[event])


PLATFORM = Platform(
    NAME,
    {
        EVENTING: _eventing,
        VIDEO_EVENT: _video_event,
        VIDEO_PROGRESS: _video_progress,
        SUPPLEMENT_COMPLETION: _supplement_completion,
    },
)
