"""The mitmproxy addon: watch requests, queue the analytics ones, keep and forward statements.

The hook never does I/O: it matches the request (cheap for everything else), copies it into a
`Capture` and queues it. The intake thread translates and stores; each sink (an LRS) sends
from a thread of its own. Unless `xapi_answer_locally` is on, the learner's traffic is never
touched.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import threading
from collections.abc import Callable
from collections.abc import Coroutine
from datetime import UTC
from datetime import datetime
from typing import Any

from mitmproxy import ctx
from mitmproxy import exceptions
from mitmproxy import http
from mitmproxy.addonmanager import Loader

from xapitap import answers
from xapitap import settings as opts
from xapitap.capture import Capture
from xapitap.decoding import DecodeError
from xapitap.decoding import decompress
from xapitap.intake import Intake
from xapitap.matching import Candidates
from xapitap.matching import Matcher
from xapitap.matching import RuleMatch
from xapitap.pipeline import Pipeline
from xapitap.pipeline import matcher
from xapitap.platforms import NAMES
from xapitap.privacy import Privacy
from xapitap.pseudonym import Pseudonymizer
from xapitap.pseudonym import key_path_for
from xapitap.pseudonym import load_or_create_key
from xapitap.sinks import Supervisor
from xapitap.sinks.lrs import LrsSink
from xapitap.store import StoreError
from xapitap.store import StoreFile
from xapitap.store import StoreLock
from xapitap.xapi.translate import Policy

log = logging.getLogger("xapitap")

# How long an analytics request may be held until its statements are stored.
COMMIT_WAIT_SECONDS = 2.0


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class XapiTap:
    def __init__(self) -> None:
        self.settings: opts.Settings | None = None
        self.matcher: Matcher | None = None
        self.intake: Intake | None = None
        self.sinks: list[Supervisor] = []
        self._lock: StoreLock | None = None
        # Requests waiting for room in the intake queue, oldest first.
        self._line: collections.deque[asyncio.Future[None]] = collections.deque()

    def load(self, loader: Loader) -> None:
        for name, (typespec, default, help_text) in opts.OPTIONS.items():
            loader.add_option(name, typespec, default, help_text)

    def configure(self, updated: set[str]) -> None:
        problems = opts.misspelled(ctx.options.deferred)
        if problems:
            raise exceptions.OptionsError("; ".join(problems))
        if not updated & opts.OPTIONS.keys():
            return
        values = {name: getattr(ctx.options, name) for name in opts.OPTIONS}
        try:
            new = opts.parse(values, NAMES)
        except ValueError as e:
            raise exceptions.OptionsError(str(e)) from None
        started = self.intake is not None and self.settings is not None
        if started and _restart_needed(self.settings, new):
            raise exceptions.OptionsError(
                "only xapi_answer_locally and xapi_hosts change while running; restart for "
                "the others"
            )
        self.matcher = matcher(new.extra_hosts)
        self.settings = new

    def running(self) -> None:
        assert self.settings is not None, "configure() runs before running()"
        self.start(self.settings)

    def start(self, s: opts.Settings) -> None:
        """Open the store and start the intake thread and one sink per LRS target."""
        store = StoreFile(s.store)
        try:
            self._lock = store.lock()  # one proxy per store: two would send everything twice
            store.create()  # the file and its schema, failing early if it can't
        except StoreError as e:
            if self._lock is not None:
                self._lock.release()
                self._lock = None
            raise exceptions.OptionsError(str(e)) from None
        key_file = s.key_file or key_path_for(s.store)
        privacy = Privacy(
            s.actor, Pseudonymizer(load_or_create_key(key_file)), s.participant, s.user_agent
        )
        policy = Policy(completion_threshold=s.completion_threshold, xapi_version=s.xapi_version)
        pipeline = Pipeline(privacy, s.max_body_bytes, policy=policy)
        self.sinks = [Supervisor(LrsSink(target), store) for target in s.targets]
        for sink in self.sinks:
            sink.start()
        self.intake = Intake(
            pipeline,
            store,
            routes=[sink.sink for sink in self.sinks],
            max_body_bytes=s.max_body_bytes,
            on_stored=self._wake_sinks,
            keep_unreadable=s.keep_unreadable,
        )
        self.intake.start()
        where = ", ".join(f"{t.name} ({t.endpoint})" for t in s.targets) or "no LRS configured"
        log.info("xapitap: storing statements in %s; forwarding to %s", s.store, where)

    def _wake_sinks(self) -> None:
        for sink in self.sinks:
            sink.wake()

    async def done(self) -> None:
        await asyncio.to_thread(self.stop)

    def stop(self) -> None:
        """Store everything queued, then give the sinks their flush time."""
        if self.intake is not None:
            self.intake.stop(timeout=60)
            self.intake = None
        assert self.settings is not None
        flush = self.settings.flush_seconds
        # Side by side, so that several sinks share the flush time instead of adding up.
        stoppers = [
            threading.Thread(target=sink.stop, args=(flush, _grace(sink))) for sink in self.sinks
        ]
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join()
        self.sinks = []
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def request(self, flow: http.HTTPFlow) -> Coroutine[Any, Any, None] | None:
        """Match the request, on the event loop only where no body must be read.

        Rules for any host (a first-party Segment proxy, anything on udemy.com) tell analytics
        by the body, and decoding a body can be costly (brotli, a bomb): those requests are
        settled in a worker thread, while the loop goes on with other traffic."""
        if self.matcher is None or self.intake is None or self.settings is None:
            return None
        req = flow.request
        if req.method == "OPTIONS":
            self._preflight(flow)
            return None
        if req.method not in self.matcher.methods:
            return None  # most traffic ends here, at the cost of one set lookup
        found = self.matcher.candidates(
            req.method, req.pretty_host.lower(), req.path.split("?", 1)[0]
        )
        if found is None:
            return None  # the rest of it here, after one host/path check per rule
        if found.needs_body:
            return self._settle(flow, found, self.settings.max_body_bytes)
        return self._accept(flow, found.matches[0])

    async def _settle(self, flow: http.HTTPFlow, found: Candidates, max_bytes: int) -> None:
        """Run the body checks in a worker thread, on copies of what they read."""
        headers = flow.request.headers.copy()
        body = _body_reader(flow.request.raw_content, headers.get("content-encoding"), max_bytes)
        match = await asyncio.to_thread(found.settle, headers.get, body)
        if match is not None:
            waiting = self._accept(flow, match)
            if waiting is not None:
                await waiting

    def _accept(self, flow: http.HTTPFlow, match: RuleMatch) -> Coroutine[Any, Any, None] | None:
        """An analytics request: answer it if asked to, then queue a copy of it."""
        if self.settings and self.settings.answer_locally and flow.live and flow.response is None:
            flow.response = answers.answer(flow.request)
        capture = _capture(flow)
        if capture is None:
            log.warning("%s request body was streamed, not captured", match.rule.name)
            return None
        return self._submit(match, capture)

    async def _submit(self, match: RuleMatch, capture: Capture) -> None:
        """Queue the request, then hold it until what it says is committed to the store.

        Only this request waits (the event loop does not), so that a crash loses nothing the
        browser saw acknowledged. A full queue holds it too, instead of dropping anything, in
        a line that keeps the order requests arrived in; past COMMIT_WAIT_SECONDS it goes on
        regardless, and is stored when the store can.
        """
        intake = self.intake
        if intake is None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + COMMIT_WAIT_SECONDS
        if self._line or not intake.has_room():
            turn: asyncio.Future[None] = loop.create_future()
            self._line.append(turn)
            try:
                await asyncio.wait_for(asyncio.shield(turn), max(deadline - loop.time(), 0.01))
            except TimeoutError:
                pass
            finally:
                if turn in self._line:
                    self._line.remove(turn)
        committed = loop.create_future()

        def stored() -> None:
            loop.call_soon_threadsafe(self._stored, committed)

        intake.submit(match, capture, stored)
        try:
            await asyncio.wait_for(asyncio.shield(committed), max(deadline - loop.time(), 0.1))
        except TimeoutError:
            log.warning("%s request went on before its statements were stored", match.rule.name)

    def _stored(self, committed: asyncio.Future[None]) -> None:
        """On the event loop: a request is committed, so the queue has room for the next
        ones in line, in the order they came."""
        _resolve(committed)
        while self._line and self.intake is not None and self.intake.has_room():
            _resolve(self._line.popleft())

    def _preflight(self, flow: http.HTTPFlow) -> None:
        req = flow.request
        wanted = req.headers.get("access-control-request-method")
        if not (self.settings and self.settings.answer_locally and wanted and self.matcher):
            return
        match = self.matcher.match(
            wanted.upper(),
            req.pretty_host.lower(),
            req.path.split("?", 1)[0],
            req.headers.get,
            lambda: b"",
        )
        # Rules that need to see a body cannot judge a preflight: leave those to the platform.
        if match and match.rule.body_check is None and flow.live and flow.response is None:
            flow.response = answers.answer_preflight(req)


def _grace(sink: Supervisor) -> float:
    """How long a sink may take past its flush time: an LRS request under way may finish."""
    return sink.sink.target.timeout + 1 if isinstance(sink.sink, LrsSink) else 1.0


def _restart_needed(old: opts.Settings | None, new: opts.Settings) -> bool:
    """Whether options that only apply at start changed (all but the matching ones)."""
    if old is None:
        return False

    def at_start(s: opts.Settings) -> opts.Settings:
        return dataclasses.replace(s, answer_locally=False, extra_hosts={})

    return at_start(old) != at_start(new)


def _body_reader(raw: bytes | None, encoding: str | None, max_bytes: int) -> Callable[[], bytes]:
    """The body as body checks see it, decoded once when first asked for. Where it cannot be
    decoded within the cap (too large, corrupt, a bomb), the checks see it as sent: the
    pipeline refuses such bodies anyway."""
    cache: list[bytes] = []

    def body() -> bytes:
        if not cache:
            data = raw or b""
            try:
                cache.append(
                    decompress(data, encoding, max_bytes) if len(data) <= max_bytes else data
                )
            except DecodeError:
                cache.append(data)
        return cache[0]

    return body


def _capture(flow: http.HTTPFlow) -> Capture | None:
    req = flow.request
    if req.raw_content is None:
        return None
    path, _, query = req.path.partition("?")
    return Capture(
        method=req.method,
        scheme=req.scheme,
        host=req.pretty_host.lower(),
        port=req.port,
        path=path,
        query=query,
        headers=tuple((k.lower(), v) for k, v in req.headers.items(multi=True)),
        body=req.raw_content,
        received_at=datetime.fromtimestamp(req.timestamp_start, UTC),
        flow_id=flow.id,
    )
