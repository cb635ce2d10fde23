"""One Open edX tracking event as a browser sends it to `/event` (wire-formats.md §5.1).

Fields: `event_type`, `event` (the event's data as a JSON string: an object for most events,
a JSON string for `problem_check`, empty for `page_close`), `page` (location.href), and on
legacy LMS pages `courserun_key`. The LMS logs each as one tracking-log line (§5.4).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from xapitap.events import Activity
from xapitap.events import PayloadError
from xapitap.platforms.base import number_or_none
from xapitap.platforms.openedx_keys import CourseKey
from xapitap.platforms.openedx_keys import UsageKey

NAME = "openedx"
PLATFORM_NAME = "Open edX"


@dataclass(frozen=True)
class BrowserEvent:
    name: str  # event_type
    data: Any  # the parsed `event`: an object, a string, or None when empty
    page: str | None
    course: CourseKey | None  # courserun_key, else the course the page names
    lms: str  # the LMS root: the origin the browser posted to
    rule: str
    source_id: str
    when: datetime
    user: tuple[str, str]  # (user ref, its kind)
    session_key: str | None  # the page (origin and path): one player's page

    def common(self) -> dict[str, Any]:
        """What every event made from this one says (PlatformEvent's fields)."""
        return {
            "platform": NAME,
            "platform_name": PLATFORM_NAME,
            "origin": self.lms,
            "rule": self.rule,
            "event_type": self.name,
            "source_event_id": self.source_id,
            # Logger.log posts each event the moment it happens, one event per request, so
            # its arrival is its time (up to the network's delay), as for Udemy's Video
            # Controls: the session model can judge continuity on it.
            "timestamp": self.when,
            "timed": True,
            "user_ref": self.user[0],
            "user_ref_kind": self.user[1],
        }

    def parents(self, usage: UsageKey | None = None) -> tuple[Activity, ...]:
        """The course, as ERB places it (contextActivities.parent)."""
        course = usage.course if usage else self.course
        return (course.activity(self.lms),) if course else ()

    def fields(self) -> dict[str, Any]:
        """The event's data as an object (video and navigation events send one)."""
        if not isinstance(self.data, dict):
            raise PayloadError("event data is not an object")
        return self.data

    def number(self, *names: str) -> float | None:
        """The first of `names` that holds a number: the legacy LMS says `currentTime`,
        MFEs snake_case every key (`current_time`), and the player itself mixes both."""
        data = self.fields()
        for name in names:
            value = number_or_none(data.get(name))
            if value is not None:
                return value
        return None


def parse_data(value: Any) -> Any:
    """The `event` field: decoding already read a JSON object; a JSON string (problem_check's
    answers) is read here; anything else is kept as the text it is."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text:
        return None
    if text[0] == '"':
        try:
            return json.loads(text)
        except (ValueError, RecursionError):
            return text
    return text
