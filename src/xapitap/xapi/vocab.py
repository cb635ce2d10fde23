"""IRIs used in statements: ADL verbs, the ADL Video Profile, and xapitap's own extensions."""

from __future__ import annotations

from types import MappingProxyType

from xapitap.events import Verb

VIDEO_PROFILE = "https://w3id.org/xapi/video"
# The LMS profile (its "downloaded a video" template: a learning event in its category).
LMS_PROFILE = "https://w3id.org/xapi/lms"
PROFILE_ACTIVITY_TYPE = "http://adlnet.gov/expapi/activities/profile"
VIDEO_TYPE = "https://w3id.org/xapi/video/activity-type/video"
COURSE_TYPE = "http://adlnet.gov/expapi/activities/course"
LESSON_TYPE = "http://adlnet.gov/expapi/activities/lesson"
MODULE_TYPE = "http://adlnet.gov/expapi/activities/module"
# Ralph's page-viewed convention (its navigation statements); ERB's and Ralph's own form.
PAGE_TYPE = "http://activitystrea.ms/schema/1.0/page"
FILE_TYPE = "http://adlnet.gov/expapi/activities/file"
INTERACTION_TYPE = "http://adlnet.gov/expapi/activities/cmi.interaction"
ASSESSMENT_TYPE = "http://adlnet.gov/expapi/activities/assessment"
QUESTION_TYPE = "http://adlnet.gov/expapi/activities/question"
SEARCH_TYPE = "https://w3id.org/xapi/acrossx/activities/search-engine"
# ERB's types for Open edX blocks, links and answers: the same activity ids, the same types.
RESOURCE_TYPE = "http://id.tincanapi.com/activitytype/resource"
LINK_TYPE = "http://adlnet.gov/expapi/activities/link"
SOLUTION_TYPE = "http://id.tincanapi.com/activitytype/solution"
# ADL: "text, audio, or video used to convey information" (a reading, a video's transcript).
MEDIA_TYPE = "http://adlnet.gov/expapi/activities/media"

VERBS = MappingProxyType(
    {
        "initialized": "http://adlnet.gov/expapi/verbs/initialized",
        "played": "https://w3id.org/xapi/video/verbs/played",
        "paused": "https://w3id.org/xapi/video/verbs/paused",
        "seeked": "https://w3id.org/xapi/video/verbs/seeked",
        "interacted": "http://adlnet.gov/expapi/verbs/interacted",
        "completed": "http://adlnet.gov/expapi/verbs/completed",
        "terminated": "http://adlnet.gov/expapi/verbs/terminated",
    }
)

# Learning events that are not player actions: the verbs the peers' statements use, so that
# ours and theirs can be queried together (ERB and Ralph for Open edX, the xAPI registry).
# The README's "What is captured" table says which event gets which.
LEARNING_VERBS = MappingProxyType(
    {
        "viewed": Verb(id="http://id.tincanapi.com/verb/viewed", display="viewed"),
        "progressed": Verb(id="http://adlnet.gov/expapi/verbs/progressed", display="progressed"),
        "completed": Verb(id="http://adlnet.gov/expapi/verbs/completed", display="completed"),
        "downloaded": Verb(id="http://id.tincanapi.com/verb/downloaded", display="downloaded"),
        "interacted": Verb(id="http://adlnet.gov/expapi/verbs/interacted", display="interacted"),
        "searched": Verb(id="https://w3id.org/xapi/acrossx/verbs/searched", display="searched"),
        "attempted": Verb(id="http://adlnet.gov/expapi/verbs/attempted", display="attempted"),
        "answered": Verb(id="http://adlnet.gov/expapi/verbs/answered", display="answered"),
        "asked": Verb(id="http://adlnet.gov/expapi/verbs/asked", display="asked"),
        "navigated": Verb(id="https://w3id.org/xapi/dod-isd/verbs/navigated", display="navigated"),
        "terminated": Verb(id="http://adlnet.gov/expapi/verbs/terminated", display="terminated"),
        "passed": Verb(id="http://adlnet.gov/expapi/verbs/passed", display="passed"),
        "failed": Verb(id="http://adlnet.gov/expapi/verbs/failed", display="failed"),
    }
)
# cmi5's progress (an integer percentage), which ERB also uses for Open edX progress.
CMI5_PROGRESS = "https://w3id.org/xapi/cmi5/result/extensions/progress"

_EXT = "https://w3id.org/xapi/video/extensions/"
TIME = _EXT + "time"
TIME_FROM = _EXT + "time-from"
TIME_TO = _EXT + "time-to"
PROGRESS = _EXT + "progress"
PLAYED_SEGMENTS = _EXT + "played-segments"
LENGTH = _EXT + "length"
SESSION_ID = _EXT + "session-id"
COMPLETION_THRESHOLD = _EXT + "completion-threshold"
QUALITY = _EXT + "quality"
SPEED = _EXT + "speed"
VOLUME = _EXT + "volume"
FULL_SCREEN = _EXT + "full-screen"
SCREEN_SIZE = _EXT + "screen-size"
USER_AGENT = _EXT + "user-agent"
CC_LANG = _EXT + "cc-subtitle-lang"
# The profile's concept says cc-subtitle-enabled, its templates (and Ralph) say cc-enabled:
# we send both with the same value, so consumers of either reading find it.
CC_ENABLED = _EXT + "cc-enabled"
CC_SUBTITLE_ENABLED = _EXT + "cc-subtitle-enabled"

# xapitap's own context extension: where a statement came from (documented in the README).
SOURCE = "https://xapitap.github.io/xapi/extensions/source"
