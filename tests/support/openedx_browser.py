"""What an Open edX learner's browser sends, as golden-style requests (wire-formats.md §5.1).

- `Logger.log(eventType, data)` (edx-platform `common/static/js/src/logger.js`): jQuery
  `POST /event`, form fields `event_type`, `event` (= JSON.stringify(data)), `courserun_key`,
  `page` (location.href), in that order; `page_close` as `GET /event?event_type=page_close&
  event=&page=...` on unload.
- MFEs (`sendTrackingLogEvent`, frontend-platform): `POST ${LMS_BASE_URL}/event`, fields
  `event_type`, `event` (keys snake_cased), `page`; no courserun_key.
- The video's completion handler: `POST .../handler/publish_completion`, JSON.
Every request carries the LMS's login cookies, of which the learner is read (`edx-user-info`,
JSON quoted by Django as http.cookies quotes it).
"""

from __future__ import annotations

import json
from datetime import datetime
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlencode
from urllib.parse import urlsplit

from golden import Request

LMS = "https://lms.example.org"
COURSE = "course-v1:edX+DemoX+Demo_Course"
VIDEO_BLOCK = "0b9e39477cf34507a7a48f74be381fdd"
# A legacy courseware page (the video's unit), as location.href gives it.
PAGE = (
    f"{LMS}/courses/{COURSE}/courseware/d8a6192ade314473a78242dfeedfbf5b/edx_introduction/1"
    "?activate_block_id=block-v1%3AedX%2BDemoX%2BDemo_Course%2Btype%40sequential%2Bblock"
    "%40edx_introduction"
)
USERNAME = "verified"


def login_cookies(username: str = USERNAME) -> str:
    """The Cookie header of a logged-in LMS browser: Django's session and CSRF cookies and
    the login cookies it sets for other apps (user_authn/cookies.py)."""
    info = {
        "version": 1,
        "username": username,
        "email": f"{username}@example.com",
        "header_urls": {"logout": f"{LMS}/logout"},
    }
    jar: SimpleCookie = SimpleCookie()
    jar["edx-user-info"] = json.dumps(info)  # quoted as Django's set_cookie quotes it
    quoted = jar["edx-user-info"].coded_value
    return (
        "csrftoken=kG5yPZ3sT9aQ1wXr; sessionid=1|x8h2kq9u3c7v0m4n|a1b2c3; "
        f"edxloggedin=true; edx-user-info={quoted}"
    )


def _headers(page: str, content_type: str, username: str) -> dict[str, str]:
    parts = urlsplit(page)
    return {
        "Content-Type": content_type,
        "X-CSRFToken": "kG5yPZ3sT9aQ1wXr",
        "X-Requested-With": "XMLHttpRequest",
        "Origin": f"{parts.scheme}://{parts.netloc}",
        "Referer": page,
        "Cookie": login_cookies(username),
    }


def logger_log(
    event_type: str,
    data: Any,
    received_at: datetime,
    *,
    page: str = PAGE,
    lms: str = LMS,
    course: str | None = COURSE,
    username: str = USERNAME,
) -> Request:
    """`Logger.log(event_type, data)` on a legacy LMS page (or in an MFE's unit iframe)."""
    fields = {
        "event_type": event_type,
        "event": json.dumps(data, separators=(",", ":")),
        "courserun_key": course or "",
        "page": page,
    }
    return Request(
        "POST",
        f"{lms}/event",
        _headers(page, "application/x-www-form-urlencoded; charset=UTF-8", username),
        urlencode(fields).encode(),
        received_at,
    )


def tracking_log_event(
    event_type: str, data: dict[str, Any], received_at: datetime, *, page: str, lms: str = LMS
) -> Request:
    """An MFE's `sendTrackingLogEvent(event_type, data)`: data keys already snake_case."""
    fields = {
        "event_type": event_type,
        "event": json.dumps(data, separators=(",", ":")),
        "page": page,
    }
    headers = _headers(page, "application/x-www-form-urlencoded", USERNAME)
    headers.pop("X-Requested-With")  # axios, not jQuery
    return Request("POST", f"{lms}/event", headers, urlencode(fields).encode(), received_at)


def page_close(received_at: datetime, *, page: str = PAGE, lms: str = LMS) -> Request:
    """Logger.bind's unload request: a GET with the fields in the query string."""
    query = urlencode({"event_type": "page_close", "event": "", "page": page})
    headers = _headers(page, "application/x-www-form-urlencoded; charset=UTF-8", USERNAME)
    del headers["Content-Type"]
    return Request("GET", f"{lms}/event?{query}", headers, b"", received_at)


def publish_completion(
    usage: str,
    received_at: datetime,
    *,
    body: dict[str, Any] | None = None,
    page: str = PAGE,
    lms: str = LMS,
) -> Request:
    """The completion handler (the video's own, or a vertical's with `block_key`)."""
    url = f"{lms}/courses/{COURSE}/xblock/{usage}/handler/publish_completion"
    data = json.dumps(body or {"completion": 1.0}).encode()
    return Request("POST", url, _headers(page, "application/json", USERNAME), data, received_at)


def as_golden(request: Request) -> dict[str, Any]:
    """The request as a golden input's entry (its body as the text sent)."""
    entry: dict[str, Any] = {
        "method": request.method,
        "url": request.url,
        "headers": request.headers,
        "received_at": request.received_at.isoformat(timespec="milliseconds").replace(
            "+00:00", "Z"
        ),
        "body_text": request.body.decode(),
    }
    if request.method == "POST":
        entry.pop("method")
    return entry
