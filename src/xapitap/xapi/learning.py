"""A learning event (not a player action) → one xAPI statement.

Pure, like the video renderer: the same event and actor give the same statement, byte for
byte. The verb is the adapter's choice from `vocab.LEARNING_VERBS` (or a mapping file's);
the result holds only what the traffic gave. Where the event concerns a video whose session
is open, the statement carries that session's id, so that a transcript shown or a lecture
viewed can be read together with the playback around it.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from xapitap.events import LearningEvent
from xapitap.events import LearningResult
from xapitap.ids import MAPPING_VERSION
from xapitap.ids import v4_shaped
from xapitap.privacy import scrub
from xapitap.validation import describe
from xapitap.xapi import models as m
from xapitap.xapi import vocab as v
from xapitap.xapi.translate import Emitted
from xapitap.xapi.translate import Policy
from xapitap.xapi.translate import Quarantined
from xapitap.xapi.translate import activity
from xapitap.xapi.translate import format_duration
from xapitap.xapi.translate import format_timestamp
from xapitap.xapi.translate import plain

MAX_RESPONSE = 2_000  # characters of a response (an answer, a query) that are kept


def render_learning(
    event: LearningEvent, actor: m.Agent, policy: Policy, video_session_id: str | None = None
) -> Emitted:
    statement_id = v4_shaped(
        "statement",
        MAPPING_VERSION,
        event.platform,
        event.source_event_id,
        event.verb.id,
        "0",
        actor.account.name,
        policy.xapi_version,
    )
    source: dict[str, Any] = {
        "platform": event.platform,
        "rule": event.rule,
        "eventId": event.source_event_id,
        "mapping": MAPPING_VERSION,
        "privacy": policy.privacy,
    }
    extensions: dict[str, Any] = {v.SOURCE: source}
    if video_session_id is not None:
        extensions[v.SESSION_ID] = video_session_id
    draft: dict[str, Any] = {
        "id": statement_id,
        "actor": actor,
        "verb": {"id": event.verb.id, "display": {"en-US": event.verb.display}},
        "object": activity(event.object),
        "result": _result(event.result),
        "context": {
            "platform": event.platform_name,
            "contextActivities": {
                "parent": [activity(a) for a in event.parents] or None,
                "grouping": [activity(a) for a in event.groupings] or None,
                "category": [activity(a) for a in event.category] or None,
            },
            "extensions": extensions,
        },
        "timestamp": format_timestamp(event.timestamp),
    }
    if not any(draft["context"]["contextActivities"].values()):
        draft["context"]["contextActivities"] = None
    if policy.xapi_version != "1.0.3":
        draft["version"] = policy.xapi_version
    try:
        return m.Statement.model_validate(draft)
    except ValidationError as error:  # never sent: kept aside with the reason
        return Quarantined(plain(draft), describe(error))


def _result(result: LearningResult | None) -> dict[str, Any] | None:
    if result is None:
        return None
    score = {
        "raw": result.score_raw,
        "min": result.score_min,
        "max": result.score_max,
        "scaled": _scaled(result),
    }
    response = result.response
    if response is not None:
        response = scrub(response if len(response) <= MAX_RESPONSE else response[:1999] + "…")
    out = {
        "completion": result.completion,
        "success": result.success,
        "response": response or None,
        "score": score if any(x is not None for x in score.values()) else None,
        "duration": None if result.duration is None else format_duration(result.duration),
        "extensions": None if result.progress is None else {v.CMI5_PROGRESS: result.progress},
    }
    return out if any(x is not None for x in out.values()) else None


def _scaled(result: LearningResult) -> float | None:
    """raw / max where the score starts at 0 (or says no minimum), as the peers compute it."""
    if result.score_raw is None or not result.score_max or (result.score_min or 0) != 0:
        return None
    return round(min(result.score_raw / result.score_max, 1.0), 4)
