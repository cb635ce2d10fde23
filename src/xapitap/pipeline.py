"""One analytics request in, xAPI statements out: decode → platform events → session → xAPI.

Pure apart from the session state it keeps; it never touches mitmproxy, the network or disk.
Each event is applied to its session as a transaction: if it fails, or its session's
initialized would be quarantined, the session is left as it was before the event.
"""

from __future__ import annotations

from collections import Counter
from collections import OrderedDict
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from datetime import timedelta

from pydantic import ValidationError

from xapitap.accounting import Fate
from xapitap.accounting import Tally
from xapitap.capture import Capture
from xapitap.decoding import DecodeError
from xapitap.decoding import decode_body
from xapitap.events import Activity
from xapitap.events import AnyEvent
from xapitap.events import Interaction
from xapitap.events import Kind
from xapitap.events import LearningEvent
from xapitap.events import MirroredEvent
from xapitap.events import PayloadError
from xapitap.events import Skip
from xapitap.events import VideoEvent
from xapitap.matching import Matcher
from xapitap.matching import RuleMatch
from xapitap.platforms import all_rules
from xapitap.platforms import carrier
from xapitap.platforms import reader_of
from xapitap.platforms import registry
from xapitap.platforms.base import Platform
from xapitap.player import decide
from xapitap.player import end
from xapitap.privacy import Privacy
from xapitap.privacy import coarse_user_agent
from xapitap.privacy import scrub
from xapitap.session import VideoSession
from xapitap.session import VideoSessions
from xapitap.validation import describe
from xapitap.xapi import models as m
from xapitap.xapi.learning import render_learning
from xapitap.xapi.mirror import mirror
from xapitap.xapi.storable import Storable
from xapitap.xapi.translate import DEFAULT_POLICY
from xapitap.xapi.translate import Emitted
from xapitap.xapi.translate import Policy
from xapitap.xapi.translate import Quarantined
from xapitap.xapi.translate import render

# Event times before this are not believed (Go's zero time, year 1, an epoch in seconds read
# as milliseconds): the arrival time is used. Later ones are: a queue can be flushed days
# late, and a recording is replayed years later.
PLAUSIBLE_SINCE = datetime(2005, 1, 1, tzinfo=UTC)
# How many source event ids are remembered to recognise a resent event.
DEFAULT_SEEN_EVENTS = 200_000
# Events translated from one request at most (a browser batch holds tens); the rest are
# counted as rejected, so one request cannot hold translation for long.
MAX_EVENTS_PER_REQUEST = 1_000
NOT_ATTRIBUTED = "not attributed: no proxy login (xapi_participant=proxyauth)"

# Whether a (platform, event id) was translated before this process saw it (the store).
SeenBefore = Callable[[str, str], bool]


@dataclass
class Outcome:
    # Each statement with the event it came from (for its provenance in the store).
    statements: list[tuple[Storable, AnyEvent]] = field(default_factory=list)
    # Statements our xAPI models refuse: never sent, kept with the reason.
    quarantined: list[tuple[Quarantined, AnyEvent]] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    # Why the request, or an event in it, could not be read (malformed, too large, ...).
    errors: list[str] = field(default_factory=list)
    # The (platform, event id) of every event translated, to remember across restarts.
    translated: list[tuple[str, str]] = field(default_factory=list)
    # What became of the request and of each of its events.
    tallies: Counter[Tally] = field(default_factory=Counter)

    def count(self, platform: str, rule: str, skip: Skip, fate: Fate) -> None:
        self.tallies[Tally(platform, rule, skip.event_type, fate, skip.reason)] += 1

    def add(self, emitted: Sequence[Storable | Quarantined], event: AnyEvent) -> None:
        for item in emitted:
            if isinstance(item, Quarantined):
                self.quarantined.append((item, event))
                self.count(event.platform, event.rule, Skip(event.event_type, ""), Fate.QUARANTINED)
            else:
                self.statements.append((item, event))


class Pipeline:
    def __init__(
        self,
        privacy: Privacy,
        max_body_bytes: int,
        sessions: VideoSessions | None = None,
        policy: Policy = DEFAULT_POLICY,
        seen_before: SeenBefore | None = None,
        max_seen_events: int = DEFAULT_SEEN_EVENTS,
        platforms: Sequence[Platform] = (),
    ) -> None:
        """`platforms`: more than the built-in ones (mapping files)."""
        self._privacy = privacy
        self._max_body_bytes = max_body_bytes
        self.sessions = sessions if sessions is not None else VideoSessions()
        self.policy = Policy(policy.completion_threshold, privacy.policy, policy.xapi_version)
        self.seen_before = seen_before
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._max_seen = max_seen_events
        self._extra = tuple(platforms)
        self._platforms = registry(platforms)

    def matcher(self, extra_hosts: dict[str, list[str]] | None = None) -> Matcher:
        return matcher(extra_hosts, self._extra)

    def process(self, match: RuleMatch, capture: Capture) -> Outcome:
        rule = match.rule
        out = Outcome()
        out.count(rule.platform, rule.name, Skip("", ""), Fate.REQUEST)
        if capture.cut_from is not None:
            reason = f"body of {capture.cut_from} bytes exceeds the {self._max_body_bytes}-byte cap"
            return self._unreadable(out, rule.platform, rule.name, reason)
        try:
            doc = (
                decode_body(
                    capture.body,
                    capture.header("content-type"),
                    capture.header("content-encoding"),
                    self._max_body_bytes,
                )
                if rule.reads_body
                else None  # the adapter reads the request itself
            )
            extraction = reader_of(rule, self._platforms).extract(match, capture, doc)
        except (DecodeError, PayloadError) as e:
            return self._unreadable(out, rule.platform, rule.name, str(e))
        except ValidationError as e:  # an adapter read values that do not fit the event model
            return self._unreadable(out, rule.platform, rule.name, describe(e))
        for skip in extraction.ignored:
            out.ignored.append(str(skip))
            out.count(rule.platform, rule.name, skip, Fate.IGNORED)
        for skip in extraction.rejected:
            out.errors.append(f"{rule.name}: {skip}")
            out.count(rule.platform, rule.name, skip, Fate.REJECTED)
        found: list[AnyEvent] = [*extraction.events, *extraction.learning, *extraction.mirrored]
        events = _in_time_order(found, capture.received_at)
        for event in events[MAX_EVENTS_PER_REQUEST:]:
            self._reject(out, event, f"over {MAX_EVENTS_PER_REQUEST} events in one request")
        for event in events[:MAX_EVENTS_PER_REQUEST]:
            self._apply(event, capture, match, out)
        return out

    @staticmethod
    def _unreadable(out: Outcome, platform: str, rule: str, reason: str) -> Outcome:
        out.errors.append(f"{rule}: {reason}")
        out.count(platform, rule, Skip("", _first_words(reason)), Fate.UNREADABLE)
        return out

    def _apply(self, event: AnyEvent, capture: Capture, match: RuleMatch, out: Outcome) -> None:
        update: dict[str, object] = {
            "source_event_id": self._privacy.event_id(event.source_event_id)
        }
        if self._privacy.user_agent:
            update["user_agent"] = coarse_user_agent(capture.header("user-agent"))
        event = event.model_copy(update=update)
        seen_key = (event.platform, event.source_event_id)
        if self._resent(seen_key):
            self._ignore(out, event, "resent (same event id)")
            return
        if isinstance(event, MirroredEvent):  # its agents are replaced where they stand
            self._apply_mirrored(event, capture, seen_key, out)
            return
        who = self._privacy.actor(
            event.platform, event.origin, event.user_ref_kind, event.user_ref, capture.participant
        )
        if who is None:
            self._ignore(out, event, NOT_ATTRIBUTED)
            return
        home, name = who
        try:
            actor = m.Agent(account=m.Account(homePage=home, name=name))
        except ValidationError as e:  # a value the statement model refuses
            self._reject(out, event, describe(e))
            return
        if isinstance(event, LearningEvent):
            self._apply_learning(event, actor, seen_key, out)
            return
        # The raw platform id has done its work (the actor), and e-mails would be scrubbed
        # from every statement anyway: sessions, which the translator keeps in the store,
        # never hold either.
        event = _scrubbed(event.model_copy(update={"user_ref": ""}))
        routed = self.sessions.route(name, event, capture.received_at, home)
        self._end(routed.ended, out)
        session = routed.session
        if session is None:
            self._ignore(out, event, routed.reason)
            return
        before = session.state.copy()
        try:
            decisions, why_none = decide(session.state, event, self.policy.completion_threshold)
            emitted = render(decisions, event, session, actor, self.policy)
        except (ValueError, OverflowError) as e:  # one event's values; the rest go on
            session.state = before
            self._reject(out, event, f"{type(e).__name__}: {e}")
            return
        if any(_is_initialized(item) for item in emitted if isinstance(item, Quarantined)):
            # Its session-id would name no statement: the event starts nothing.
            session.state = before
            emitted = [_quarantined(item) for item in emitted]
        self._remember(seen_key)
        out.translated.append(seen_key)
        out.add(emitted, event)
        if why_none:
            self._ignore(out, event, why_none)
        else:
            out.count(event.platform, event.rule, Skip(event.event_type, ""), Fate.TRANSLATED)
        if event.kind is Kind.TERMINATED:
            self.sessions.drop(session)

    def _apply_learning(
        self, event: LearningEvent, actor: m.Agent, seen_key: tuple[str, str], out: Outcome
    ) -> None:
        event = event.model_copy(update={"user_ref": "", "event_type": scrub(event.event_type)})
        video = event.video or event.object
        session = self.sessions.open_session(actor.account.name, video.id, event.session_key)
        emitted = render_learning(
            event, actor, self.policy, None if session is None else session.session_id
        )
        self._remember(seen_key)
        out.translated.append(seen_key)
        out.add([emitted], event)
        out.count(event.platform, event.rule, Skip(event.event_type, ""), Fate.TRANSLATED)

    def _apply_mirrored(
        self, event: MirroredEvent, capture: Capture, seen_key: tuple[str, str], out: Outcome
    ) -> None:
        made = mirror(event, self._privacy, capture.participant, self.policy)
        if made is None:
            self._ignore(out, event, NOT_ATTRIBUTED)
            return
        self._remember(seen_key)
        out.translated.append(seen_key)
        out.add([made], event)
        out.count(event.platform, event.rule, Skip(event.event_type, ""), Fate.TRANSLATED)

    @staticmethod
    def _ignore(out: Outcome, event: AnyEvent, reason: str) -> None:
        skip = Skip(event.event_type, reason)
        out.ignored.append(f"{event.platform} {skip}")
        out.count(event.platform, event.rule, skip, Fate.IGNORED)

    @staticmethod
    def _reject(out: Outcome, event: AnyEvent, reason: str) -> None:
        out.errors.append(f"{event.rule} {event.event_type}: {reason}")
        out.count(
            event.platform, event.rule, Skip(event.event_type, _first_words(reason)), Fate.REJECTED
        )

    def _resent(self, key: tuple[str, str]) -> bool:
        if key in self._seen:
            return True
        return self.seen_before is not None and self.seen_before(*key)

    def _remember(self, key: tuple[str, str]) -> None:
        self._seen[key] = None
        while len(self._seen) > self._max_seen:
            self._seen.popitem(last=False)

    def forget_seen(self) -> None:
        """Forget the event ids remembered so far: `seen_before` knows them now."""
        self._seen.clear()

    def sweep(self, now: datetime) -> Outcome:
        """End the sessions that went idle: their closing statements."""
        return self._end(self.sessions.expire(now), Outcome())

    def finish(self) -> Outcome:
        """End every open session (the proxy stops): their closing statements."""
        return self._end(self.sessions.close_all(), Outcome())

    def _end(self, sessions: list[VideoSession], out: Outcome) -> Outcome:
        for session in sessions:
            if not session.state.initialized:
                continue  # it never started (its first event failed)
            actor = m.Agent(account=m.Account(homePage=session.actor_home, name=session.actor))
            last = session.last_event
            ended = render(end(session.state), last, session, actor, self.policy, ending=True)
            out.add(ended, last)
        return out


def matcher(
    extra_hosts: dict[str, list[str]] | None = None, platforms: Iterable[Platform] = ()
) -> Matcher:
    """The endpoint rules of every platform, the built-in ones and `platforms` (mapping
    files); hosts added for a platform carried by another (Udacity, by Segment) are its
    carrier's collectors."""
    known = registry(platforms)
    by_carrier: dict[str, list[str]] = {}
    for name, hosts in (extra_hosts or {}).items():
        by_carrier.setdefault(carrier(name, known), []).extend(hosts)
    return Matcher(all_rules(known.values()), by_carrier)


def _first_words(reason: str, limit: int = 120) -> str:
    """A reason short enough to count by (it may quote a value from the body)."""
    return reason if len(reason) <= limit else reason[: limit - 1] + "…"


def _in_time_order(events: list[AnyEvent], received_at: datetime) -> list[AnyEvent]:
    """The events of one request on the proxy's clock, oldest first.

    A time after the arrival means the browser's clock is fast: the whole request is moved
    back by that much, so its events keep their spacing. A time before PLAUSIBLE_SINCE is
    not believed. Events with equal times keep the order the body gave them.
    """
    latest = max((e.timestamp for e in events if e.timed), default=received_at)
    shift = min(received_at - latest, timedelta(0))
    fixed = []
    for event in events:
        try:
            when = event.timestamp + shift if event.timed else event.timestamp
        except OverflowError:  # a time near year 1
            when = datetime.min.replace(tzinfo=received_at.tzinfo)
        if event.timed and when < PLAUSIBLE_SINCE:
            fixed.append(event.model_copy(update={"timestamp": received_at, "timed": False}))
        elif when != event.timestamp:
            fixed.append(event.model_copy(update={"timestamp": when}))
        else:
            fixed.append(event)
    return sorted(fixed, key=lambda e: e.timestamp)


def _scrubbed(event: VideoEvent) -> VideoEvent:
    """The event without e-mail addresses in any text that a session keeps (the event
    itself when there is none, the common case: one serialisation and two scans)."""
    text = event.model_dump_json(exclude={"user_ref", "user_agent", "source_event_id"})
    if "@" not in text and "%40" not in text:
        return event

    def activity(a: Activity) -> Activity:
        name = None if a.name is None else scrub(a.name)
        return a.model_copy(update={"id": scrub(a.id), "name": name})

    def settings(i: Interaction | None) -> Interaction | None:
        if i is None:
            return None
        texts = ("quality", "cc_language", "speed")
        return i.model_copy(update={k: scrub(v) for k in texts if (v := getattr(i, k))})

    return event.model_copy(
        update={
            "event_type": scrub(event.event_type),
            "session_key": None if event.session_key is None else scrub(event.session_key),
            "video": activity(event.video),
            "parents": tuple(activity(a) for a in event.parents),
            "groupings": tuple(activity(a) for a in event.groupings),
            "interaction": settings(event.interaction),
            "player": settings(event.player),
        }
    )


def _is_initialized(item: Quarantined) -> bool:
    verb = item.draft.get("verb", {})
    return isinstance(verb, dict) and verb.get("display", {}).get("en-US") == "initialized"


def _quarantined(item: Emitted) -> Quarantined:
    if isinstance(item, Quarantined):
        return item
    draft = item.model_dump(mode="json", exclude_none=True)
    return Quarantined(draft, "its session's initialized was quarantined")
