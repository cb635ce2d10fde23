"""Open edX: course and block keys, the activities built from them, and who the learner is.

Activity ids are event-routing-backends' (ERB), so that our statements and an LMS's own
agree on what they are about (wire-formats.md §5.5):
- a block (video, problem, sequence): `<LMS root>/xblock/<usage key>`, the usage key being
  `block-v1:<org+course+run>+type@<type>+block@<id>` (`ccx-block-v1:` in a CCX course);
- the course: `<LMS root>/course/<course key>` (`course-v1:org+course+run`), a parent.
The LMS root is the origin the request went to: browsers post their events to the LMS itself
(legacy pages: `/event`; MFEs: `${LMS_BASE_URL}/event`).

Learner: the `edx-user-info` cookie (JSON set at login, with `username`), else the
`preferred_username` of the JWT cookie's payload (the same username). Browser events carry no
user id of their own; the session cookie is a credential and never read.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from xapitap.capture import Capture
from xapitap.events import Activity
from xapitap.xapi.vocab import COURSE_TYPE

USER_INFO_COOKIE = "edx-user-info"
JWT_COOKIE = "edx-jwt-cookie-header-payload"
# opaque-keys' ALLOWED_ID_CHARS, for one part of a key.
_PART = r"[\w\-~.:]+"
_COURSE_RUN = rf"{_PART}\+{_PART}\+{_PART}(?:\+ccx@{_PART})?"
COURSE_KEY = re.compile(rf"(?P<prefix>course-v1|ccx-v1):(?P<run>{_COURSE_RUN})")
USAGE_KEY = re.compile(
    rf"(?P<prefix>(?:ccx-)?block-v1):(?P<run>{_COURSE_RUN})"
    rf"\+type@(?P<type>[\w\-]+)\+block@(?P<block>[\w\-~.:]+)"
)
BLOCK_ID = re.compile(r"[\w\-~.:]+")
# Where a page's URL names its course: `/courses/<course key>/...` (legacy courseware), an
# MFE's `/course/<course key>/...`, or the usage key of an `/xblock/<usage key>` page.
_COURSE_IN_PAGE = re.compile(rf"(?:^|/)courses?/(?P<key>(?:course|ccx)-v1:{_COURSE_RUN})(?:/|$)")
_BLOCK_IN_PAGE = re.compile(rf"/xblock/(?P<key>(?:ccx-)?block-v1:{_COURSE_RUN}\+type@[^/?#]+)")


@dataclass(frozen=True)
class CourseKey:
    prefix: str  # course-v1, or ccx-v1 for a CCX course
    run: str  # org+course+run (+ccx@n)

    def __str__(self) -> str:
        return f"{self.prefix}:{self.run}"

    def usage(self, block_type: str, block_id: str) -> str:
        """The usage key of a block of this course, as ERB's make_video_block_id builds it."""
        block_prefix = "ccx-block-v1" if self.prefix == "ccx-v1" else "block-v1"
        return f"{block_prefix}:{self.run}+type@{block_type}+block@{block_id}"

    def activity(self, lms: str) -> Activity:
        return Activity(id=f"{lms}/course/{self}", type=COURSE_TYPE)


@dataclass(frozen=True)
class UsageKey:
    key: str
    course: CourseKey
    block_type: str

    def iri(self, lms: str) -> str:
        return f"{lms}/xblock/{self.key}"


def course_key(value: Any) -> CourseKey | None:
    if not isinstance(value, str):
        return None
    m = COURSE_KEY.fullmatch(unquote(value.strip()))
    return CourseKey(m["prefix"], m["run"]) if m else None


def usage_key(value: Any) -> UsageKey | None:
    if not isinstance(value, str):
        return None
    text = unquote(value.strip())
    m = USAGE_KEY.fullmatch(text)
    if m is None:
        return None
    course = CourseKey("ccx-v1" if m["prefix"] == "ccx-block-v1" else "course-v1", m["run"])
    return UsageKey(text, course, m["type"])


def course_of_page(page: Any) -> CourseKey | None:
    """The course a page's URL names, as the LMS itself reads it from `page`."""
    if not isinstance(page, str):
        return None
    path = unquote(page.split("?", 1)[0].split("#", 1)[0])
    if m := _COURSE_IN_PAGE.search(path):
        return course_key(m["key"])
    if m := _BLOCK_IN_PAGE.search(path):
        found = usage_key(m["key"])
        return found.course if found else None
    return None


def learner(capture: Capture) -> tuple[str, str] | None:
    """(user ref, its kind) from the LMS's login cookies, or None when there are none."""
    info = _json(_cookie(capture, USER_INFO_COOKIE))
    name = info.get("username") if isinstance(info, dict) else None
    if not (isinstance(name, str) and name.strip()):
        payload = _jwt_payload(_cookie(capture, JWT_COOKIE))
        name = payload.get("preferred_username") if isinstance(payload, dict) else None
    if isinstance(name, str) and name.strip():
        return name.strip(), "username"
    return None


def _cookie(capture: Capture, name: str) -> str | None:
    """One cookie's value, read by hand: http.cookies gives up on a whole header at the first
    cookie it finds odd, and Django quotes JSON values (`"{\\"a\\": 1\\054 ...}"`)."""
    header = capture.header("cookie")
    if not header:
        return None
    for part in header.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            return _unquote(value.strip())
    return None


_ESCAPE = re.compile(r"\\(?:([0-3][0-7][0-7])|(.))")


def _unquote(value: str) -> str:
    """A cookie value as Python's http.cookies quotes it: octal escapes, backslashes."""
    if len(value) < 2 or value[0] != '"' or value[-1] != '"':
        return value
    return _ESCAPE.sub(lambda m: chr(int(m[1], 8)) if m[1] else m[2], value[1:-1])


def _json(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        try:  # some deployments URL-encode the value instead of quoting it
            return json.loads(unquote(text))
        except (ValueError, RecursionError):
            return None


def _jwt_payload(text: str | None) -> Any:
    """The payload of `header.payload` (base64url JSON); its signature is another cookie."""
    if not text or text.count(".") != 1:
        return None
    payload = text.split(".")[1]
    try:
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        return json.loads(raw)
    except (binascii.Error, ValueError, RecursionError):
        return None
