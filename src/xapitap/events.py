"""Platform-neutral events: what every platform adapter produces.

An adapter reads one platform's wire format and says what happened, in seconds and UTC, with
the activities involved: in the player (`VideoEvent`, which feeds a video session), or any
other learning event (`LearningEvent`: a page or lecture viewed, an item completed, a file
downloaded, a problem attempted). Everything after it (sessions, xAPI) is shared.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from enum import StrEnum
from typing import Any
from typing import Literal

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field


class Kind(StrEnum):
    INITIALIZED = "initialized"
    PLAYED = "played"
    PAUSED = "paused"
    SEEKED = "seeked"
    INTERACTED = "interacted"
    # The platform's own completion signal: it says the player reached the end or the
    # platform marked the item, not that the learner watched it.
    COMPLETED = "completed"
    TERMINATED = "terminated"
    # The platform reports a watched stretch [segment_from, segment_to] after the fact.
    WATCHED = "watched"
    # A heartbeat or progress ping: evidence of the playhead, no player action of its own.
    PROGRESS = "progress"


class Activity(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str  # an IRI; each platform module's docstring gives its scheme
    type: str
    name: str | None = None


class Interaction(BaseModel):
    """A change of player settings; only the fields that changed are set."""

    model_config = ConfigDict(frozen=True)

    quality: str | None = None
    cc_enabled: bool | None = None
    cc_language: str | None = None
    volume: float | None = Field(default=None, ge=0, le=1)
    speed: str | None = None
    full_screen: bool | None = None


class PlatformEvent(BaseModel):
    """What every event says: where it came from, when, and about whom."""

    model_config = ConfigDict(frozen=True)

    platform: str  # adapter id, e.g. "udemy"
    platform_name: str  # shown as context.platform, e.g. "Udemy"
    origin: str  # the platform's origin, the actor's account homePage
    rule: str  # the endpoint rule that matched
    event_type: str = ""  # the platform's own name for it ("Video Playback Paused", ...)
    source_event_id: str  # the platform's own event id, or a hash of the raw event
    timestamp: datetime  # when it happened, UTC
    user_ref: str  # the platform's identifier of the learner: never emitted, only hashed
    user_ref_kind: str  # which field user_ref came from, e.g. "userId" or "anonymousId"
    parents: tuple[Activity, ...] = ()
    groupings: tuple[Activity, ...] = ()
    session_key: str | None = None  # the platform's own (playback) session id, if any
    user_agent: str | None = None  # coarsened, and only when the privacy policy allows it
    # False when `timestamp` is a fallback (the body gave no usable time of its own): such
    # times say nothing about how far apart two events of one request were.
    timed: bool = True


class VideoEvent(PlatformEvent):
    kind: Kind
    video: Activity
    position: float | None = None  # playhead, seconds
    seek_from: float | None = None
    seek_to: float | None = None
    segment_from: float | None = None
    segment_to: float | None = None
    length: float | None = None  # video length, seconds
    interaction: Interaction | None = None
    # The player's settings as this event reports them (state, not a change): a change
    # between two events of a session is an interaction nobody reported.
    player: Interaction | None = None
    # Seconds between the platform's position reports while playing, where it has a fixed
    # cadence (Udemy's progress logs): a longer gap means playback stopped in between.
    cadence: float | None = None
    # Whether the platform can report seeks at all; where it cannot, a first interval of
    # playback is only believed at 1x (a drag would look the same).
    reports_seeks: bool = True
    # Segment: `playback` or `content` level; their positions and lengths differ by ads.
    level: str | None = None
    # False when the event names no asset of its own (its activity is a guess from the page):
    # it then belongs to the open session with its session_key.
    asset_known: bool = True
    # The platform marked the video complete (its own record, not a fact of playback).
    platform_completed: bool = False
    # For COMPLETED: the player reached the end (playback stops), as opposed to a lecture API
    # marking the item complete while the video may play on.
    ends_playback: bool = False
    # False for an event that is no evidence the player was opened (Udemy's completed-lectures,
    # which a tick in the course menu also sends): it joins an open session, or is ignored.
    opens_session: bool = True
    # For WATCHED from a report of the player's state at each flush (YouTube's pings): the
    # state after the stretch. `playing`: it goes on (no pause is claimed); `paused`: it ended
    # in a pause, and a paused session hears nothing new. None: the stretch ended in a pause
    # the platform reports as such (Udacity sends a stretch when the player pauses or seeks).
    reported_state: Literal["playing", "paused"] | None = None


class Verb(BaseModel):
    """An xAPI verb: its IRI and the English display a statement carries."""

    model_config = ConfigDict(frozen=True)

    id: str
    display: str


class LearningResult(BaseModel):
    """What a learning event's statement says in `result`; only what the traffic gave."""

    model_config = ConfigDict(frozen=True)

    completion: bool | None = None
    success: bool | None = None
    response: str | None = None  # an answer, a search query
    score_raw: float | None = None
    score_min: float | None = None
    score_max: float | None = None
    # How far through the item the learner is, 0-100 (cmi5's progress extension).
    progress: int | None = Field(default=None, ge=0, le=100)
    duration: float | None = Field(default=None, ge=0)  # seconds


class LearningEvent(PlatformEvent):
    """A learning event that is not a player action: it becomes one statement."""

    verb: Verb
    object: Activity
    result: LearningResult | None = None
    # The video it concerns, where it names one (a transcript shown, a lecture viewed): its
    # statement carries the session-id of that video's open session.
    video: Activity | None = None
    # Profiles whose statement template it follows (contextActivities.category).
    category: tuple[Activity, ...] = ()


class MirroredEvent(PlatformEvent):
    """A statement a page sent to an LRS of its own (it already speaks xAPI), checked by
    xapi/received.py: its copy keeps the content, with our actor, id and provenance."""

    statement: dict[str, Any]  # as the page sent it (the original actor still in it)
    seen_on: str | None = None  # the page's origin (Origin, else Referer), where known
    sent_to: str  # the host of the LRS it went to


AnyEvent = VideoEvent | LearningEvent | MirroredEvent


@dataclass(frozen=True)
class Skip:
    """An event that made no statement: its type (the platform's own name) and why."""

    event_type: str
    reason: str  # a fixed phrase, never text from the body: it is counted by it

    def __str__(self) -> str:
        return f"{self.event_type}: {self.reason}"


@dataclass
class Extraction:
    """What an adapter made of one decoded request body."""

    events: list[VideoEvent] = field(default_factory=list)
    learning: list[LearningEvent] = field(default_factory=list)
    mirrored: list[MirroredEvent] = field(default_factory=list)
    # Events that were understood but have no xAPI mapping, with the reason.
    ignored: list[Skip] = field(default_factory=list)
    # Items of a batch that could not be read, with the reason; the others still count.
    rejected: list[Skip] = field(default_factory=list)


class PayloadError(ValueError):
    """The body decoded, but is not the shape this endpoint sends; the message says why."""
