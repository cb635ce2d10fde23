"""Open edX: the LMS's browser tracking events and the completion handler, on any host.

An LMS can live anywhere, so requests are told by their path and shape (wire-formats.md §5.1):
- `POST /event`, form fields `event_type`, `event` (JSON, or empty), `page`: every browser
  event (legacy pages and MFEs alike); `GET /event?event_type=page_close&event=&page=...` as a
  page unloads (read from the query string: the request has no body);
- `POST .../xblock/<usage key>/handler/publish_completion`, JSON `{"completion": 1.0}` (a
  vertical's handler names the completed child in `block_key`).
What each event means: openedx_video.py (the player) and openedx_learning.py (the rest);
activity ids and the learner: openedx_keys.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from xapitap.capture import Capture
from xapitap.decoding import DecodeError
from xapitap.decoding import normalise
from xapitap.events import Activity
from xapitap.events import Extraction
from xapitap.events import LearningEvent
from xapitap.events import LearningResult
from xapitap.events import PayloadError
from xapitap.events import Skip
from xapitap.matching import EndpointRule
from xapitap.matching import HeaderLookup
from xapitap.matching import RuleMatch
from xapitap.platforms.base import Platform
from xapitap.platforms.base import number_or_none
from xapitap.platforms.base import page_url
from xapitap.platforms.base import raw_event_id
from xapitap.platforms.base import require_dict
from xapitap.platforms.base import text_or_none
from xapitap.platforms.openedx_event import NAME
from xapitap.platforms.openedx_event import PLATFORM_NAME
from xapitap.platforms.openedx_event import BrowserEvent
from xapitap.platforms.openedx_event import parse_data
from xapitap.platforms.openedx_keys import USER_INFO_COOKIE
from xapitap.platforms.openedx_keys import course_key
from xapitap.platforms.openedx_keys import course_of_page
from xapitap.platforms.openedx_keys import learner
from xapitap.platforms.openedx_keys import usage_key
from xapitap.platforms.openedx_learning import ignored
from xapitap.platforms.openedx_learning import learning_event
from xapitap.platforms.openedx_video import NAMES as VIDEO_NAMES
from xapitap.platforms.openedx_video import video_event
from xapitap.xapi.vocab import LEARNING_VERBS
from xapitap.xapi.vocab import RESOURCE_TYPE

# An event name: `play_video`, `edx.ui.lms.sequence.next_selected`, an XBlock's own.
_EVENT_NAME = re.compile(r"[\w.:/-]{1,200}")
_MAX_FIELDS = 50  # Logger.log sends four fields


def _form(data: bytes) -> dict[str, str] | None:
    try:
        text = data.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=_MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        return None
    return dict(pairs)


def _looks_like_tracking_event(header: HeaderLookup, body: Callable[[], bytes]) -> bool:
    """Logger.log's form: a plausible event name, `page`, and `event` JSON or empty; another
    site's `/event` endpoint is not read as Open edX."""
    data = body()
    if b"event_type=" not in data or b"page=" not in data:
        return False
    fields = _form(data)
    if fields is None or "event" not in fields or "page" not in fields:
        return False
    event = fields["event"].strip()
    name = fields.get("event_type", "")
    return _EVENT_NAME.fullmatch(name) is not None and (not event or event[0] in '{"[')


def _has_lms_login(header: HeaderLookup, body: Callable[[], bytes]) -> bool:
    """A GET carries nothing else to tell it by: the LMS's login cookies come with it."""
    cookies = header("cookie") or ""
    return f"{USER_INFO_COOKIE}=" in cookies or "edxloggedin=" in cookies


def _looks_like_completion(header: HeaderLookup, body: Callable[[], bytes]) -> bool:
    return b'"completion"' in body()


EVENT = EndpointRule("openedx.event", NAME, r"^/event/?$", body_check=_looks_like_tracking_event)
PAGE_CLOSE = EndpointRule(
    "openedx.event-get",
    NAME,
    r"^/event/?$",
    methods=frozenset({"GET"}),
    body_check=_has_lms_login,
    reads_body=False,  # its fields are in the query string
)
COMPLETION = EndpointRule(
    "openedx.publish-completion",
    NAME,
    r"^(?:/courses/[^/]+)?/xblock/(?P<usage>(?:ccx-)?block-v1(?::|%3A)[^/]+)"
    r"/handler/publish_completion/?$",
    body_check=_looks_like_completion,
)


def _tracking_event(rule: RuleMatch, capture: Capture, doc: Any) -> Extraction:
    return _dispatch(rule, capture, require_dict(doc, "the tracking event form"))


def _tracking_event_get(rule: RuleMatch, capture: Capture, doc: Any) -> Extraction:
    try:
        pairs = parse_qsl(capture.query, keep_blank_values=True, max_num_fields=_MAX_FIELDS)
        fields = normalise({key: value for key, value in pairs})
    except (ValueError, DecodeError):
        raise PayloadError("the tracking event's query string is unreadable") from None
    return _dispatch(rule, capture, fields)


def _dispatch(rule: RuleMatch, capture: Capture, fields: dict[str, Any]) -> Extraction:
    name = text_or_none(fields.get("event_type"))
    if name is None:
        raise PayloadError("tracking event without event_type")
    user = learner(capture)
    if user is None:
        return Extraction(ignored=[Skip(name, "no learner identity (no edx-user-info cookie)")])
    page = text_or_none(fields.get("page"))
    key = fields.get("courserun_key") or fields.get("courserunKey")
    session = page_url(page)
    event = BrowserEvent(
        name=name,
        data=parse_data(fields.get("event")),
        page=page,
        course=course_key(key) or course_of_page(page),
        lms=capture.origin,
        rule=rule.rule.name,
        # Browser events have no id: their fields and when the proxy saw them.
        source_id=raw_event_id([fields, capture.received_at.isoformat()]),
        when=capture.received_at,
        user=user,
        session_key="".join(session) if session else None,
    )
    try:
        if name in VIDEO_NAMES or name.startswith("edx.video.bumper."):
            return video_event(event)
        return learning_event(event) or ignored(name)
    except PayloadError as e:  # the fixed reason this one event cannot be read
        return Extraction(rejected=[Skip(name, str(e))])


def _completion(rule: RuleMatch, capture: Capture, doc: Any) -> Extraction:
    """The LMS records a block complete. A video's own handler is posted by the player's
    completion handler (09_completion.js) together with complete_video, which is read
    already (the platform's completion, no evidence of viewing): alone, it would open a
    session nobody played in. Any other block (an HTML block seen, via its vertical's
    handler and `block_key`): the learner completed it, or progressed to `completion`."""
    name = "publish_completion"
    body = require_dict(doc, "the completion body")
    completion = number_or_none(body.get("completion"))
    if completion is None or completion > 1:
        raise PayloadError("completion body without a completion from 0 to 1")
    block = usage_key(body.get("block_key")) or usage_key(rule.params["usage"])
    if block is None:
        raise PayloadError("completion for no block usage key")
    if block.block_type == "video":
        return Extraction(ignored=[Skip(name, "repeats complete_video")])
    if completion == 0:
        return Extraction(ignored=[Skip(name, "no completion")])
    user = learner(capture)
    if user is None:
        return Extraction(ignored=[Skip(name, "no learner identity (no edx-user-info cookie)")])
    done = completion == 1
    lms = capture.origin
    learning = LearningEvent(
        platform=NAME,
        platform_name=PLATFORM_NAME,
        origin=lms,
        rule=rule.rule.name,
        event_type=name,
        source_event_id=raw_event_id([block.key, body, capture.received_at.isoformat()]),
        timestamp=capture.received_at,
        user_ref=user[0],
        user_ref_kind=user[1],
        parents=(block.course.activity(lms),),
        verb=LEARNING_VERBS["completed" if done else "progressed"],
        object=Activity(id=block.iri(lms), type=RESOURCE_TYPE),
        result=LearningResult(completion=True if done else None, progress=_percent(completion)),
    )
    return Extraction(learning=[learning])


def _percent(completion: float) -> int | None:
    """cmi5's progress (0-100) for a partial completion; none for a whole one."""
    return None if completion == 1 else int(completion * 100)


PLATFORM = Platform(
    NAME,
    {EVENT: _tracking_event, PAGE_CLOSE: _tracking_event_get, COMPLETION: _completion},
)
