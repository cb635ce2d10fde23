"""One analytics request in, xAPI statements out: decode → platform events → session → xAPI.

Pure apart from the session state it keeps; it never touches mitmproxy, the network or disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from datetime import datetime

from pydantic import ValidationError

from xapitap.capture import Capture
from xapitap.decoding import DecodeError
from xapitap.decoding import decode_body
from xapitap.events import Kind
from xapitap.events import PayloadError
from xapitap.events import VideoEvent
from xapitap.matching import Matcher
from xapitap.matching import RuleMatch
from xapitap.platforms import all_adapters
from xapitap.platforms import all_rules
from xapitap.privacy import Privacy
from xapitap.privacy import coarse_user_agent
from xapitap.session import VideoSession
from xapitap.session import VideoSessions
from xapitap.validation import describe
from xapitap.xapi import models as m
from xapitap.xapi.translate import DEFAULT_POLICY
from xapitap.xapi.translate import Emitted
from xapitap.xapi.translate import Policy
from xapitap.xapi.translate import Quarantined
from xapitap.xapi.translate import terminate
from xapitap.xapi.translate import translate


@dataclass
class Outcome:
    # Each statement with the event it came from (for its provenance in the store).
    statements: list[tuple[m.Statement, VideoEvent]] = field(default_factory=list)
    # Statements our xAPI models refuse: never sent, kept with the reason.
    quarantined: list[tuple[Quarantined, VideoEvent]] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    # Why the request, or an event in it, could not be read (malformed, too large, ...).
    errors: list[str] = field(default_factory=list)

    def add(self, emitted: list[Emitted], event: VideoEvent) -> None:
        for item in emitted:
            if isinstance(item, Quarantined):
                self.quarantined.append((item, event))
            else:
                self.statements.append((item, event))


class Pipeline:
    def __init__(
        self,
        privacy: Privacy,
        max_body_bytes: int,
        sessions: VideoSessions | None = None,
        policy: Policy = DEFAULT_POLICY,
    ) -> None:
        self._adapters = {a.name: a for a in all_adapters()}
        self._privacy = privacy
        self._max_body_bytes = max_body_bytes
        self.sessions = sessions or VideoSessions()
        self.policy = Policy(policy.completion_threshold, privacy.policy, policy.xapi_version)

    def matcher(self, extra_hosts: dict[str, list[str]] | None = None) -> Matcher:
        return Matcher(all_rules(), extra_hosts)

    def process(self, match: RuleMatch, capture: Capture) -> Outcome:
        try:
            doc = decode_body(
                capture.body,
                capture.header("content-type"),
                capture.header("content-encoding"),
                self._max_body_bytes,
            )
            extraction = self._adapters[match.rule.platform].extract(match, capture, doc)
        except (DecodeError, PayloadError) as e:
            return Outcome(errors=[f"{match.rule.name}: {e}"])
        except ValidationError as e:  # an adapter read values that do not fit the event model
            return Outcome(errors=[f"{match.rule.name}: {describe(e)}"])
        out = Outcome(ignored=extraction.ignored)
        for event in extraction.events:
            home, name = self._privacy.actor(
                event.platform, event.origin, event.user_ref_kind, event.user_ref
            )
            if self._privacy.user_agent:
                agent = coarse_user_agent(capture.header("user-agent"))
                event = event.model_copy(update={"user_agent": agent})
            try:
                actor = m.Agent(account=m.Account(homePage=home, name=name))
                session, ended = self.sessions.open(name, event, capture.received_at, home)
                self._end(ended, out)
                statements = translate(event, session, actor, self.policy, capture.received_at)
                out.add(statements, event)
                if event.kind is Kind.TERMINATED:
                    self.sessions.drop(session)
            except ValidationError as e:  # a value the statement model refuses
                out.errors.append(f"{match.rule.name} {event.kind}: {describe(e)}")
        return out

    def sweep(self, now: datetime) -> Outcome:
        """End the sessions that went idle: their closing statements."""
        return self._end(self.sessions.expire(now), Outcome())

    def finish(self) -> Outcome:
        """End every open session (the proxy stops): their closing statements."""
        return self._end(self.sessions.close_all(), Outcome())

    def _end(self, sessions: list[VideoSession], out: Outcome) -> Outcome:
        for session in sessions:
            actor = m.Agent(account=m.Account(homePage=session.actor_home, name=session.actor))
            out.add(terminate(session, actor, self.policy), session.last_event)
        return out
