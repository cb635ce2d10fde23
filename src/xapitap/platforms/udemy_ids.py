"""Udemy's activities and learners, shared by its REST endpoints (udemy.py) and ECL (udemy_ecl.py).

Activity ids are the platform's own API resources, on the origin the request went to, so that
Udemy Business portals keep their own ids:
- course:          `{origin}/api-2.0/courses/{courseId}`
- lecture:         `{course}/lectures/{lectureId}` (typed video where it is a video, else lesson)
- quiz, practice:  `{course}/quizzes/{id}`, `{course}/practices/{id}`
- a lecture's transcript: `{lecture}#transcript`; the course's search: `{course}#search`
Learner: `userId` in the body, else the `ud_cache_user` cookie (also the user id), else the
visitor id (`visitorUUID`/`visitorUuid` in the body, or the `__udmy_2_v57r` cookie).
"""

from __future__ import annotations

from xapitap.capture import Capture
from xapitap.events import Activity
from xapitap.platforms.base import iri_segment
from xapitap.xapi.vocab import COURSE_TYPE
from xapitap.xapi.vocab import VIDEO_TYPE

NAME = "udemy"
PLATFORM_NAME = "Udemy"
# The learner's id kinds: one learner gets one pseudonym whichever field named them.
USER_ID = "userId"
VISITOR_ID = "visitorUUID"


def course_iri(origin: str, course: str) -> str:
    return f"{origin}/api-2.0/courses/{iri_segment(course)}"


def course_activity(origin: str, course: str) -> Activity:
    return Activity(id=course_iri(origin, course), type=COURSE_TYPE)


def lecture_iri(origin: str, course: str, lecture: str) -> str:
    return f"{course_iri(origin, course)}/lectures/{iri_segment(lecture)}"


def lecture_video(origin: str, course: str, lecture: str) -> tuple[Activity, Activity]:
    """A video lecture, and its course."""
    video = Activity(id=lecture_iri(origin, course, lecture), type=VIDEO_TYPE)
    return video, course_activity(origin, course)


def user_from_cookies(capture: Capture) -> tuple[str, str]:
    if user := capture.cookie("ud_cache_user"):
        return user, USER_ID
    if visitor := capture.cookie("__udmy_2_v57r"):
        return visitor, VISITOR_ID
    return "unknown", "none"
