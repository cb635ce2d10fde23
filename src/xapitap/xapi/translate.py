"""The session model's decisions → xAPI statements following the ADL Video Profile.

A renderer: what the player did is decided in player.py; this writes it down. Pure: the same
decisions (and the same pseudonym) give the same statements, byte for byte. A value the
traffic does not give is left out and named in `missing`, never invented; what xapitap
deduced (an initialized nobody sent, a seek seen only as a jump of the playhead, a pause
before the end of a session) is marked `inferred` in the source extension.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from pydantic import ValidationError

from xapitap import events as ev
from xapitap.events import VideoEvent
from xapitap.ids import MAPPING_VERSION
from xapitap.ids import v4_shaped
from xapitap.player import Decision
from xapitap.privacy import scrub
from xapitap.session import VideoSession
from xapitap.validation import describe
from xapitap.xapi import models as m
from xapitap.xapi import vocab as v

_PROFILE = {
    "objectType": "Activity",
    "id": v.VIDEO_PROFILE,
    "definition": {"type": v.PROFILE_ACTIVITY_TYPE},
}

# Extensions the Video Profile's statement templates require for each verb ("included").
_REQUIRED = {
    "initialized": (v.LENGTH,),
    "played": (v.TIME,),
    "paused": (v.TIME, v.LENGTH, v.PROGRESS, v.PLAYED_SEGMENTS),
    "seeked": (v.TIME_FROM, v.TIME_TO),
    "interacted": (v.TIME,),
    "completed": (v.TIME, v.LENGTH, v.PROGRESS, v.PLAYED_SEGMENTS),
    "terminated": (v.TIME, v.LENGTH, v.PROGRESS, v.PLAYED_SEGMENTS),
}
# Verbs whose context carries completion-threshold (the profile: MUST when it is not 1).
_WITH_THRESHOLD = {"initialized", "paused", "completed", "terminated"}


@dataclass(frozen=True)
class Policy:
    """What every statement of a run shares."""

    completion_threshold: float = 0.95
    privacy: str = "pseudonym/1"  # names the policy that made the actor (see privacy.py)
    xapi_version: str = "1.0.3"  # which xAPI the statements are written for


def seconds(value: float) -> float:
    """Seconds and ratios carry at most 3 decimals (Video Profile); never -0.0."""
    return round(value, 3) + 0.0


def format_timestamp(when: datetime) -> str:
    when = when.astimezone(UTC)
    # Not strftime("%Y"): it drops the zero padding of years before 1000.
    return (
        f"{when.year:04d}-{when.month:02d}-{when.day:02d}T{when.hour:02d}:{when.minute:02d}:"
        f"{when.second:02d}.{when.microsecond // 1000:03d}Z"
    )


def format_duration(total_seconds: float) -> str:
    """ISO 8601 seconds with at most 2 decimals (xAPI asks for 0.01 s precision at most)."""
    return f"PT{round(total_seconds, 2):.2f}".rstrip("0").rstrip(".") + "S"


MAX_NAME = 1_000  # characters of an activity's name (a title) that are kept


def activity(a: ev.Activity) -> dict[str, Any]:
    definition: dict[str, Any] = {"type": a.type}
    if a.name:
        name = a.name if len(a.name) <= MAX_NAME else a.name[: MAX_NAME - 1] + "…"
        definition["name"] = {"und": scrub(name)}
    return {"objectType": "Activity", "id": scrub(a.id), "definition": definition}


@dataclass(frozen=True)
class Quarantined:
    """A statement that our xAPI models refuse: never sent, kept with the reason."""

    draft: dict[str, Any]
    reason: str


Emitted = m.Statement | Quarantined


def plain(value: Any) -> Any:
    """The draft as JSON-ready data (models inside it dumped, None values dropped)."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, dict):
        return {k: plain(v_) for k, v_ in value.items() if v_ is not None}
    if isinstance(value, list):
        return [plain(v_) for v_ in value]
    return value


DEFAULT_POLICY = Policy()


def render(
    decisions: list[Decision],
    event: VideoEvent,
    session: VideoSession,
    actor: m.Agent,
    policy: Policy = DEFAULT_POLICY,
    ending: bool = False,
) -> list[Emitted]:
    """The statements for the decisions one event led to, in order, or (`ending`) for the
    end of a session nobody reported, attributed to its last event.

    `event` gives the provenance; the session gives the video and its context activities,
    so every statement of a session names the same activity."""
    out: list[Emitted] = []
    for index, decision in enumerate(decisions):
        # An ending's statements are told apart from those its last event made itself.
        which = f"end-{index}" if ending else str(index)
        out.append(_statement(decision, which, event, session, actor, policy))
    return out


def _statement(
    d: Decision,
    index: str,
    e: VideoEvent,
    session: VideoSession,
    actor: m.Agent,
    policy: Policy,
) -> Emitted:
    video = session.template
    statement_id = session.session_id if d.verb == "initialized" else None
    statement_id = statement_id or v4_shaped(
        "statement",
        MAPPING_VERSION,
        e.platform,
        e.source_event_id,
        d.verb,
        index,
        actor.account.name,
        session.session_id,
        policy.xapi_version,
    )
    result_ext: dict[str, Any] = {
        v.TIME: _secs(d.time),
        v.TIME_FROM: _secs(d.time_from),
        v.TIME_TO: _secs(d.time_to),
    }
    if d.summary is not None:
        result_ext[v.PROGRESS] = d.summary.progress
        result_ext[v.PLAYED_SEGMENTS] = d.summary.segments
    interaction_result, interaction_context = _interaction(d.interaction)
    if d.verb == "interacted":
        result_ext.update(interaction_result)
    result_ext = {k: val for k, val in result_ext.items() if val is not None}
    ctx_ext: dict[str, Any] = {v.SESSION_ID: session.session_id}
    if d.length:
        ctx_ext[v.LENGTH] = seconds(d.length)
    if d.verb in _WITH_THRESHOLD:
        ctx_ext[v.COMPLETION_THRESHOLD] = seconds(policy.completion_threshold)
    ctx_ext.update(interaction_context)  # the change, or the settings it starts with
    if d.verb == "initialized" and e.user_agent:
        ctx_ext[v.USER_AGENT] = e.user_agent
    source: dict[str, Any] = {
        "platform": e.platform,
        "rule": e.rule,
        "eventId": e.source_event_id,
        "mapping": MAPPING_VERSION,
        "privacy": policy.privacy,
        "inferred": d.inferred,
    }
    missing = [
        key.rsplit("/", 1)[-1]
        for key in _REQUIRED[d.verb]
        if key not in result_ext and key not in ctx_ext
    ]
    duration = format_duration(d.played_seconds) if d.played_seconds else None
    if d.verb == "completed" and duration is None:
        missing.append("duration")
    if missing:  # the profile wants these, but the traffic did not tell them
        source["missing"] = missing
    if d.estimated:  # worked out from other reports rather than reported
        source["estimated"] = list(d.estimated)
    if d.platform_completed:  # the platform's own record says complete
        source["platformCompleted"] = True
    ctx_ext[v.SOURCE] = source
    draft: dict[str, Any] = {
        "id": statement_id,
        "actor": actor,
        "verb": {"id": v.VERBS[d.verb], "display": {"en-US": d.verb}},
        "object": activity(video.video),
        "context": {
            "platform": video.platform_name,
            "contextActivities": {
                "parent": [activity(a) for a in video.parents] or None,
                "grouping": [activity(a) for a in video.groupings] or None,
                "category": [_PROFILE],
            },
            "extensions": ctx_ext,
        },
        "timestamp": format_timestamp(d.at),
    }
    completion = True if d.verb == "completed" else None
    if result_ext or completion is not None or duration is not None:
        draft["result"] = {
            "completion": completion,
            "duration": duration,
            "extensions": result_ext or None,
        }
    if policy.xapi_version != "1.0.3":  # 1.0.3 producers should not set it
        draft["version"] = policy.xapi_version
    try:
        return m.Statement.model_validate(draft)
    except ValidationError as error:  # never sent: kept aside with the reason
        return Quarantined(plain(draft), describe(error))


def _secs(value: float | None) -> float | None:
    return None if value is None else seconds(value)


def _interaction(i: ev.Interaction | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Result and context extensions for a settings change.

    cc-enabled goes in the result, where the profile's closed-captioning template (and Ralph)
    look for it; the concept's cc-subtitle-enabled goes in the context with the same value.
    """
    result: dict[str, Any] = {}
    ext: dict[str, Any] = {}
    if i is None:
        return result, ext
    if i.quality is not None:
        ext[v.QUALITY] = scrub(i.quality)
    if i.speed is not None:
        ext[v.SPEED] = scrub(i.speed)
    if i.volume is not None:
        ext[v.VOLUME] = seconds(i.volume)
    if i.full_screen is not None:
        ext[v.FULL_SCREEN] = i.full_screen
    if i.cc_enabled is not None:
        result[v.CC_ENABLED] = i.cc_enabled
        ext[v.CC_SUBTITLE_ENABLED] = i.cc_enabled
    if i.cc_language is not None:
        ext[v.CC_LANG] = scrub(i.cc_language)
    return result, ext
