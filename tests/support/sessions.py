"""Platform-neutral video events through the session model, without a platform adapter."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC
from datetime import datetime
from datetime import timedelta

from xapitap.events import Activity
from xapitap.events import Kind
from xapitap.events import VideoEvent
from xapitap.player import decide
from xapitap.player import end
from xapitap.session import VideoSessions
from xapitap.xapi import models as m
from xapitap.xapi import vocab as v
from xapitap.xapi.translate import Emitted
from xapitap.xapi.translate import Policy
from xapitap.xapi.translate import render

ACTOR = m.Agent(account=m.Account(homePage="https://www.example.org", name="p1"))
T0 = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)


def video_event(kind: Kind, at: float, **kw: object) -> VideoEvent:
    """An event of one learner's video, `at` seconds after T0."""
    return VideoEvent(
        platform="test",
        platform_name="Test",
        origin="https://www.example.org",
        rule="test.rule",
        source_event_id=f"e-{kind}-{at}",
        kind=kind,
        timestamp=T0 + timedelta(seconds=at),
        user_ref="u1",
        user_ref_kind="userId",
        video=Activity(id="https://www.example.org/v/1", type=v.VIDEO_TYPE),
        **kw,  # type: ignore[arg-type]
    )


def run_events(
    events: Iterable[VideoEvent],
    policy: Policy | None = None,
    sessions: VideoSessions | None = None,
    close: bool = True,
) -> list[Emitted]:
    """The statements for `events`, one actor, in order; then every session ends (the proxy
    stops) unless `close` is False."""
    policy = policy or Policy()
    sessions = sessions or VideoSessions()
    out: list[Emitted] = []
    for event in events:
        routed = sessions.route("p1", event, event.timestamp)
        for ended in routed.ended:
            out += render(end(ended.state), ended.last_event, ended, ACTOR, policy, ending=True)
        if routed.session is None:
            continue
        decisions, _ = decide(routed.session.state, event, policy.completion_threshold)
        out += render(decisions, event, routed.session, ACTOR, policy)
        if event.kind is Kind.TERMINATED:
            sessions.drop(routed.session)
    if close:
        for ended in sessions.close_all():
            out += render(end(ended.state), ended.last_event, ended, ACTOR, policy, ending=True)
    return out
