"""IRIs used in statements: ADL verbs, the ADL Video Profile, and xapitap's own extensions."""

from __future__ import annotations

from types import MappingProxyType

VIDEO_PROFILE = "https://w3id.org/xapi/video"
PROFILE_ACTIVITY_TYPE = "http://adlnet.gov/expapi/activities/profile"
VIDEO_TYPE = "https://w3id.org/xapi/video/activity-type/video"
COURSE_TYPE = "http://adlnet.gov/expapi/activities/course"
LESSON_TYPE = "http://adlnet.gov/expapi/activities/lesson"
MODULE_TYPE = "http://adlnet.gov/expapi/activities/module"

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
