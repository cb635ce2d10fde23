"""Udemy's Event Collection Layer: `POST /api-2.0/ecl`, a JSON array of typed events
(wire-formats.md §4.2), read into video session events and learning events.

What each course-taking event means comes from Udemy's front-end source that §4.2 cites
(`CourseTakingStore.track` and the components that call it). Three facts decide most of it:
- every `CourseTaking*` event carries `curriculum`: the item open when it was tracked. For a
  click in the course content menu (ContentView, VideoNavigation) that is the item being
  left; for a checkbox or resource in the menu (ItemProgressUpdate, ContentDownload) it may
  be another row than the one clicked. Those events name no item they concern: no statement.
- CourseTakingVideoViewEvent is tracked once a lecture has loaded, for every asset type
  (`resource` is "lecture video-view", "lecture article-view", ...), right after the lecture
  is marked viewed: the view-log (§4.3, posted on open) records the view; a video lecture's
  player starts its video session here, which the progress logs then extend.
- ItemProgressUpdate's `progress` is "mark_complete" or "mark_reset" (the checkbox), not a
  number: there is no progress value to report.
`LectureCompleted` (`{lecture: {id, type}, course: {id}}`) travels in ECL too: the platform's
completion of a lecture (a video's last 15 s reached, an article open long enough).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from xapitap.capture import Capture
from xapitap.events import Activity
from xapitap.events import Extraction
from xapitap.events import Kind
from xapitap.events import LearningEvent
from xapitap.events import LearningResult
from xapitap.events import PayloadError
from xapitap.events import Skip
from xapitap.events import VideoEvent
from xapitap.platforms.base import dict_at
from xapitap.platforms.base import event_time
from xapitap.platforms.base import parse_epoch_ms
from xapitap.platforms.base import raw_event_id
from xapitap.platforms.base import text_or_none
from xapitap.platforms.udemy_ids import NAME
from xapitap.platforms.udemy_ids import PLATFORM_NAME
from xapitap.platforms.udemy_ids import USER_ID
from xapitap.platforms.udemy_ids import VISITOR_ID
from xapitap.platforms.udemy_ids import course_activity
from xapitap.platforms.udemy_ids import course_iri
from xapitap.platforms.udemy_ids import lecture_iri
from xapitap.platforms.udemy_ids import lecture_video
from xapitap.platforms.udemy_ids import user_from_cookies
from xapitap.xapi.vocab import LEARNING_VERBS
from xapitap.xapi.vocab import LESSON_TYPE
from xapitap.xapi.vocab import LMS_PROFILE
from xapitap.xapi.vocab import MEDIA_TYPE
from xapitap.xapi.vocab import PROFILE_ACTIVITY_TYPE
from xapitap.xapi.vocab import SEARCH_TYPE

# `resource` of a CourseTakingVideoViewEvent whose lecture plays in the video player.
VIDEO_RESOURCES = frozenset({"lecture video-view", "lecture mashup-view"})
# `lecture.type` of LectureCompleted whose lecture is a video (the rest: articles, files...).
VIDEO_LECTURE_TYPES = frozenset({"video", "video_mashup"})

# Events understood, that make no statement, and why (fixed phrases: they are counted).
IGNORED = {
    "CourseTakingContentViewEvent": "names the item open before the click, not the one opened",
    "CourseTakingVideoNavigationEvent": "names the item open before the click, not the one opened",
    "CourseTakingItemProgressUpdateEvent": "a completion checkbox: names the open item, "
    "not the one ticked, and no progress value",
    "CourseTakingContentDownloadEvent": "names neither the resource nor the item it belongs to",
    "CourseTakingSearchResultClickEvent": "names no search result",
    "CourseTakingVideoAutoplayToggleEvent": "a player preference",
    "CourseTakingVideoInterstitialTransitionEvent": "the screen between two lectures",
    "CourseTakingEndScreenViewEvent": "an end screen: says nothing of completion",
    "CourseTakingDashboardTabViewEvent": "a tab of the course page: names no content",
    "CourseTakingFindMoreCourseEvent": "a link to other courses",
    "CourseTakingReportAbuseEvent": "a report to the platform",
    "CourseTakingNoteActionEvent": "a note action: names no note",
    "CourseTakingNoteFilterEvent": "notes list UI",
    "CourseTakingNoteSortEvent": "notes list UI",
    "CourseTakingQASearchEvent": "a Q&A forum search: no activity for the forum yet",
    "CourseTakingQASearchResponseLoadEvent": "Q&A forum UI",
    "CourseTakingQAItemImpressionEvent": "Q&A forum UI",
    "CourseTakingQAItemActionEvent": "Q&A forum UI",
    "CourseTakingAskNewQuestionActionEvent": "Q&A forum UI: names no question",
    "CourseTakingAssessmentBannerDisplayEvent": "a recommendation banner",
    "CourseTakingAssessmentBannerActionEvent": "a recommendation banner",
    "CourseTakingAssessmentGuideActionEvent": "a recommendation guide",
    "CourseTakingPracticeTestResultsViewPageEvent": "a results page: names no answer or score",
    "CourseTakingPracticeTestResultsKnowledgeFilterActionEvent": "results page UI",
    "CourseTakingPracticeTestResultsQuestionFilterActionEvent": "results page UI",
    "CourseTakingPracticeTestResultsScrollContentActionEvent": "results page UI",
    "LectureStarted": "repeats the view-log and the progress logs",
}
NOT_VIDEO_VIEW = "a lecture that is no video opened: its view-log records it"
LMS_PROFILE_ACTIVITY = Activity(id=LMS_PROFILE, type=PROFILE_ACTIVITY_TYPE)


@dataclass(frozen=True)
class _Item:
    """One ECL event, with what every event of it says."""

    capture: Capture
    rule: str
    event_type: str
    data: dict[str, Any]
    source_id: str
    when: datetime
    timed: bool
    user: tuple[str, str]

    def common(self) -> dict[str, Any]:
        """The fields every platform event takes from the ECL envelope."""
        ref, kind = self.user
        return {
            "platform": NAME,
            "platform_name": PLATFORM_NAME,
            "origin": self.capture.origin,
            "rule": self.rule,
            "event_type": self.event_type,
            "source_event_id": self.source_id,
            "timestamp": self.when,
            "timed": self.timed,
            "user_ref": ref,
            "user_ref_kind": kind,
        }

    def course(self) -> str:
        course = text_or_none(dict_at(self.data, "courseTakingHeader").get("courseId"))
        if course is None:
            raise PayloadError("no courseTakingHeader.courseId")
        return course

    def lecture(self) -> str:
        curriculum = dict_at(self.data, "curriculum")
        lecture = text_or_none(curriculum.get("curriculumId"))
        if curriculum.get("curriculumType") != "lecture" or lecture is None:
            raise PayloadError("no curriculum lecture")
        return lecture


Handler = Callable[[_Item, Extraction], None]


def read_ecl(capture: Capture, rule: str, doc: Any) -> Extraction:
    if not isinstance(doc, list):
        raise PayloadError(f"ECL body is {type(doc).__name__}, expected an array of events")
    out = Extraction()
    for raw in doc:
        event_type = text_or_none(raw.get("eventType")) if isinstance(raw, dict) else None
        if event_type is None:
            out.rejected.append(Skip("(ECL item)", "no eventType"))
            continue
        handler = HANDLERS.get(event_type)
        if handler is None:
            reason = IGNORED.get(event_type, "no xAPI mapping")
            out.ignored.append(Skip(event_type, reason))
            continue
        try:
            handler(_item(capture, rule, event_type, raw), out)
        except PayloadError as e:  # one bad item; the others are independent
            out.rejected.append(Skip(event_type, str(e)))
        except ValidationError:
            out.rejected.append(Skip(event_type, "a value does not fit the event model"))
    return out


def _item(capture: Capture, rule: str, event_type: str, raw: dict[str, Any]) -> _Item:
    data = raw.get("eventData")
    if not isinstance(data, dict):
        raise PayloadError("no eventData object")
    when, timed = event_time(parse_epoch_ms(data.get("createTime")), capture)
    return _Item(
        capture=capture,
        rule=rule,
        event_type=event_type,
        data=data,
        source_id=text_or_none(data.get("eventId")) or raw_event_id(raw),
        when=when,
        timed=timed,
        user=_user(capture, dict_at(data, "clientHeader")),
    )


def _user(capture: Capture, header: dict[str, Any]) -> tuple[str, str]:
    """The user id wherever it is, before any visitor id: the progress logs name the learner
    by the cookies only, and the same learner must get the same pseudonym."""
    if user := text_or_none(header.get("userId")):
        return user, USER_ID
    cookie = user_from_cookies(capture)
    if cookie[1] != USER_ID and (visitor := text_or_none(header.get("visitorUuid"))):
        return visitor, VISITOR_ID
    return cookie


def _video_view(item: _Item, out: Extraction) -> None:
    """A lecture loaded: a video lecture's player is initialized (the progress logs that
    follow join its session); no viewed statement, since the view-log records the view."""
    resource = text_or_none(item.data.get("resource"))
    if resource is None:
        raise PayloadError("no resource")
    if resource not in VIDEO_RESOURCES:
        out.ignored.append(Skip(item.event_type, NOT_VIDEO_VIEW))
        return
    video, course = lecture_video(item.capture.origin, item.course(), item.lecture())
    # No session key: the progress logs carry none, and the session must be the same.
    out.events.append(
        VideoEvent(**item.common(), kind=Kind.INITIALIZED, video=video, groupings=(course,))
    )


def _lecture_download(item: _Item, out: Extraction) -> None:
    """The open video lecture's video file downloaded (the player's download button): the
    LMS profile's "downloaded a video"."""
    video, course = lecture_video(item.capture.origin, item.course(), item.lecture())
    out.learning.append(
        LearningEvent(
            **item.common(),
            verb=LEARNING_VERBS["downloaded"],
            object=video,
            video=video,
            groupings=(course,),
            category=(LMS_PROFILE_ACTIVITY,),
        )
    )


def _transcript(item: _Item, out: Extraction) -> None:
    """The transcript beside the open video lecture used (a cue clicked or copied,
    autoscroll switched): interacted with the transcript, in that video's session."""
    video, course = lecture_video(item.capture.origin, item.course(), item.lecture())
    transcript = Activity(id=f"{video.id}#transcript", type=MEDIA_TYPE)
    out.learning.append(
        LearningEvent(
            **item.common(),
            verb=LEARNING_VERBS["interacted"],
            object=transcript,
            video=video,
            parents=(video,),
            groupings=(course,),
        )
    )


def _search(item: _Item, out: Extraction) -> None:
    """A search within the course; the query is the response, where the event has one."""
    course = item.course()
    query = item.data.get("query")
    response = query.strip() if isinstance(query, str) and query.strip() else None
    search = Activity(id=f"{course_iri(item.capture.origin, course)}#search", type=SEARCH_TYPE)
    out.learning.append(
        LearningEvent(
            **item.common(),
            verb=LEARNING_VERBS["searched"],
            object=search,
            result=None if response is None else LearningResult(response=response),
            groupings=(course_activity(item.capture.origin, course),),
        )
    )


def _lecture_completed(item: _Item, out: Extraction) -> None:
    """The platform completed a lecture: a video's completion is kept by its session (as
    the completed-lectures call's is); another lecture's is a completed statement."""
    lecture = text_or_none(dict_at(item.data, "lecture").get("id"))
    course = text_or_none(dict_at(item.data, "course").get("id"))
    if lecture is None or course is None:
        raise PayloadError("no lecture.id or course.id")
    origin = item.capture.origin
    if dict_at(item.data, "lecture").get("type") in VIDEO_LECTURE_TYPES:
        video, course_act = lecture_video(origin, course, lecture)
        # The platform's record, sent while the video may play on: not the player's end.
        out.events.append(
            VideoEvent(
                **item.common(),
                kind=Kind.COMPLETED,
                video=video,
                groupings=(course_act,),
                opens_session=False,  # the platform's rule, not a sign of a player
            )
        )
        return
    out.learning.append(
        LearningEvent(
            **item.common(),
            verb=LEARNING_VERBS["completed"],
            object=Activity(id=lecture_iri(origin, course, lecture), type=LESSON_TYPE),
            result=LearningResult(completion=True),
            groupings=(course_activity(origin, course),),
        )
    )


HANDLERS: dict[str, Handler] = {
    "CourseTakingVideoViewEvent": _video_view,
    "CourseTakingLectureDownloadEvent": _lecture_download,
    "CourseTakingTranscriptActionEvent": _transcript,
    "CourseTakingSearchEvent": _search,
    "LectureCompleted": _lecture_completed,
}
