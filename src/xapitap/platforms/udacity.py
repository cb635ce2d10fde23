"""Udacity's `Course Video Watched` event, sent over Segment when the player pauses or stops.

One event is one watched stretch [startTime, endTime] in seconds, so it becomes a `played`
(inferred, at the start of the stretch) and a `paused` at its end. `playerState: ended` is
the platform's completion signal.
Activity ids follow the classroom's own URLs, on the page's origin:
- video:  `{origin}/courses/{courseKey}/lessons/{lessonKey}/concepts/{conceptKey}/atoms/{atomKey}`
- lesson: `{origin}/courses/{courseKey}/lessons/{lessonKey}` (parent)
- course: `{origin}/courses/{courseKey}` (grouping)
Learner: Segment's `userId` (Udacity's account id), else `anonymousId`.
"""

from __future__ import annotations

from xapitap.events import Activity
from xapitap.events import Kind
from xapitap.events import PayloadError
from xapitap.events import VideoEvent
from xapitap.platforms.base import Platform
from xapitap.platforms.base import iri_segment
from xapitap.platforms.base import number_or_none
from xapitap.platforms.base import text_or_none
from xapitap.platforms.segment import NAME as SEGMENT
from xapitap.platforms.segment import TrackCall
from xapitap.platforms.segment import TrackHandler
from xapitap.platforms.segment import handlers_for
from xapitap.xapi.vocab import COURSE_TYPE
from xapitap.xapi.vocab import LESSON_TYPE
from xapitap.xapi.vocab import VIDEO_TYPE

NAME = "udacity"


def course_video_watched(call: TrackCall) -> list[VideoEvent]:
    p = call.properties
    course = text_or_none(p.get("courseKey")) or text_or_none(p.get("course_key"))
    lesson = text_or_none(p.get("lessonKey"))
    concept = text_or_none(p.get("conceptKey"))
    start, end = number_or_none(p.get("startTime")), number_or_none(p.get("endTime"))
    if course is None or lesson is None or concept is None:
        raise PayloadError("Course Video Watched without courseKey/lessonKey/conceptKey")
    if start is None or end is None or end < start:
        raise PayloadError("Course Video Watched without a valid startTime/endTime")
    course_iri = f"{call.origin}/courses/{iri_segment(course)}"
    lesson_iri = f"{course_iri}/lessons/{iri_segment(lesson)}"
    video_iri = f"{lesson_iri}/concepts/{iri_segment(concept)}"
    if atom := text_or_none(p.get("atomKey")):
        video_iri += f"/atoms/{iri_segment(atom)}"
    common = {
        "platform": NAME,
        "platform_name": "Udacity",
        "origin": call.origin,
        "rule": call.rule,
        "event_type": call.event,
        "timestamp": call.timestamp,
        "timed": call.timed,
        "user_ref": call.user_ref,
        "user_ref_kind": call.user_ref_kind,
        "video": Activity(id=video_iri, type=VIDEO_TYPE, name=text_or_none(p.get("concept_title"))),
        "parents": (
            Activity(id=lesson_iri, type=LESSON_TYPE, name=text_or_none(p.get("lesson_title"))),
        ),
        "groupings": (
            Activity(id=course_iri, type=COURSE_TYPE, name=text_or_none(p.get("course_title"))),
        ),
        "length": number_or_none(p.get("videoDuration")) or None,
    }
    return [
        VideoEvent(
            source_event_id=call.message_id,
            kind=Kind.WATCHED,
            segment_from=start,
            segment_to=end,
            position=end,
            platform_completed=text_or_none(p.get("playerState")) == "ended",
            **common,
        )
    ]


HANDLERS: dict[str, TrackHandler] = handlers_for(["Course Video Watched"], course_video_watched)
# Udacity's events travel in Segment's requests: Segment's rules read them.
PLATFORM = Platform(NAME, {}, carried_by=SEGMENT)
