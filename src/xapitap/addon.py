"""The mitmproxy addon: watch requests, journal the analytics ones, keep and forward statements.

The hook never does I/O: it matches the request (cheap for everything else), copies it into a
`Capture` and hands it to the journal's writer thread, and the request goes on once its record
is on disk. The translator, a process of its own, translates the journal into the store; each
sink (an LRS) sends from a thread of its own. Unless `xapi_answer_locally` is on, the
learner's traffic is never touched.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from mitmproxy import ctx
from mitmproxy import exceptions
from mitmproxy import http
from mitmproxy.addonmanager import Loader
from mitmproxy.proxy.server_hooks import ServerConnectionHookData

from xapitap import answers
from xapitap import settings as opts
from xapitap.capture import Capture
from xapitap.dashboard.address import Destinations
from xapitap.dashboard.reads import About
from xapitap.dashboard.server import Dashboard
from xapitap.flows import body_reader
from xapitap.flows import capture_of
from xapitap.journal.format import Kind
from xapitap.journal.format import request_payload
from xapitap.journal.segments import delete_translated
from xapitap.journal.segments import journal_dir
from xapitap.journal.writer import JournalWriter
from xapitap.journal.writer import prepare
from xapitap.mappings import platforms_of
from xapitap.matching import Candidates
from xapitap.matching import Matcher
from xapitap.matching import RuleMatch
from xapitap.pipeline import matcher
from xapitap.platforms import NAMES
from xapitap.privacy import FROM_PROXY_LOGIN
from xapitap.pseudonym import key_path_for
from xapitap.pseudonym import load_or_create_key
from xapitap.recording import Recorder
from xapitap.sinks import Supervisor
from xapitap.sinks.lrs import LrsSink
from xapitap.store import StoreError
from xapitap.store import StoreFile
from xapitap.store import StoreLock
from xapitap.translator.config import TranslationConfig
from xapitap.translator.supervisor import TranslatorProcess

log = logging.getLogger("xapitap")

# How often the proxy journals its clock, so that translation ends idle sessions on time
# (the translator's clock is the journal's: a replay ends them at the same moments).
TICK_SECONDS = 30.0
# Ticks stop this long after the last analytics request: no session is open by then.
TICKS_AFTER_LAST_REQUEST = 31 * 60.0


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class XapiTap:
    def __init__(self) -> None:
        self.settings: opts.Settings | None = None
        self.matcher: Matcher | None = None
        self.journal: JournalWriter | None = None
        self.translator: TranslatorProcess | None = None
        self.sinks: list[Supervisor] = []
        self.dashboard: Dashboard | None = None
        self.recorder: Recorder | None = None
        self._dashboard_at: Destinations | None = None
        self._lock: StoreLock | None = None
        # Requests waiting for room in the journal's queue, oldest first.
        self._line: collections.deque[asyncio.Future[None]] = collections.deque()
        self._ticking = threading.Event()  # set: no more ticks
        # The traffic's clock: the last analytics request's time, and when (monotonic) it came.
        self._last_request = 0.0
        self._last_request_at = 0.0
        self._last_seq = 0  # the last journal record known durable

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
        started = self.journal is not None and self.settings is not None
        if started and _restart_needed(self.settings, new):
            raise exceptions.OptionsError(
                "only xapi_answer_locally and xapi_hosts change while running; restart for "
                "the others"
            )
        self.matcher = matcher(new.extra_hosts, platforms_of(new.mappings))
        self.settings = new

    def running(self) -> None:
        assert self.settings is not None, "configure() runs before running()"
        if self.settings.dashboard is not None:
            self._serve_dashboard(self.settings)
        self.start(self.settings)

    def _serve_dashboard(self, s: opts.Settings) -> None:
        """Serve the dashboard on the proxy's own event loop (as mitmweb serves itself)."""
        assert s.dashboard is not None
        confdir = Path(ctx.options.confdir).expanduser()
        proxy = _proxy_address()
        about = About(
            mode="live",
            store=str(s.store),
            proxy=proxy,
            ca=str(confdir / "mitmproxy-ca-cert.pem"),
            actions=True,
        )
        dashboard = Dashboard(
            s.store,
            s.dashboard,
            about,
            s.dashboard_token,
            on_retry=self._wake_sinks,
            journal_end=lambda: self._last_seq + 1,
        )
        try:
            dashboard.start()
        except OSError as e:
            raise exceptions.OptionsError(
                f"xapi_dashboard: cannot listen at {s.dashboard.host}:{s.dashboard.port} ({e}); "
                "choose another HOST:PORT, or off"
            ) from None
        self.dashboard = dashboard
        self._dashboard_at = Destinations(s.dashboard, dashboard.port)
        if not s.dashboard.loopback:
            log.warning(
                "xapitap: the dashboard listens at %s, beyond this machine: whoever can reach "
                "it and has the token can read every statement",
                s.dashboard.host,
            )
        log.info("xapitap: dashboard at %s", dashboard.url)

    def _wake_sinks(self) -> None:
        for sink in self.sinks:
            sink.wake()

    def start(self, s: opts.Settings) -> None:
        """Open the store and the journal, start the translator and one sink per LRS
        target."""
        store = StoreFile(s.store)
        try:
            self._lock = store.lock()  # one proxy per store: two would send everything twice
            store.create()  # the file and its schema, failing early if it can't
            reader = store.reader()
            try:
                translated_up_to = reader.journal_next_seq()
            finally:
                reader.close()
            directory = journal_dir(s.store)
            first_seq = prepare(directory, translated_up_to)
        except (StoreError, OSError) as e:
            if self._lock is not None:
                self._lock.release()
                self._lock = None
            raise exceptions.OptionsError(str(e)) from None
        if s.record is not None:
            try:
                self.recorder = Recorder(s.record)
            except OSError as e:
                self._lock.release()
                self._lock = None
                raise exceptions.OptionsError(f"xapi_record: cannot open {s.record}: {e}") from None
            log.info(
                "xapitap: recording %s flows to %s",
                "all" if s.record_all else "analytics",
                s.record,
            )
        load_or_create_key(s.key_file or key_path_for(s.store))  # before the translator
        self.sinks = [Supervisor(LrsSink(target), store) for target in s.targets]
        for sink in self.sinks:
            sink.start()
        self.translator = TranslatorProcess(s.store, translated_up_to, self._committed)
        self.journal = JournalWriter(
            directory, first_seq, s.journal_max_bytes, on_durable=self._journaled
        )
        self.journal.start()
        config = TranslationConfig.of(s).model_dump_json().encode()
        self._last_request, self._last_request_at = time.time(), time.monotonic()
        self.journal.append(Kind.CONFIG, self._last_request, lambda: config)
        self.translator.start()
        self._ticking.clear()
        threading.Thread(target=self._tick, name="xapitap-tick", daemon=True).start()
        if s.participant == FROM_PROXY_LOGIN and not ctx.options.proxyauth:
            log.warning(
                "xapitap: xapi_participant=proxyauth names participants by their proxy login, "
                "but proxyauth is not set: nothing will be attributed (set proxyauth=any)"
            )
        where = ", ".join(f"{t.name} ({t.endpoint})" for t in s.targets) or "no LRS configured"
        log.info("xapitap: storing statements in %s; forwarding to %s", s.store, where)

    def _journaled(self, seq: int) -> None:
        """From the journal's thread: records up to `seq` are durable."""
        self._last_seq = seq
        if self.translator is not None:
            self.translator.nudge()

    def _committed(self, position: int) -> None:
        """From the translator's reader: statements were stored."""
        self._wake_sinks()
        if self.dashboard is not None:
            self.dashboard.wake()

    def _tick(self) -> None:
        """Journal the traffic's clock: the last request's time plus the time since. Live, that
        is the proxy's clock; re-running a recording (`mitmdump -nr`), it is the recording's,
        so that sessions end as they did live, not when the re-run happens."""
        while not self._ticking.wait(TICK_SECONDS):
            journal = self.journal
            idle = time.monotonic() - self._last_request_at
            if journal is not None and idle < TICKS_AFTER_LAST_REQUEST:
                journal.append(Kind.TICK, self._last_request + idle, bytes)

    async def done(self) -> None:
        if self.dashboard is not None:
            await self.dashboard.stop()
            self.dashboard = None
        await asyncio.to_thread(self.stop)

    # The dashboard is never served through the proxy (mitmweb's CVE-2025-23217): a proxied
    # request to it would come from this machine, or from the next proxy in upstream mode.
    # Refused by name as the request gives it, by the addresses a name resolves to, and at
    # the connection (a CONNECT tunnel, or traffic passed through untouched).

    # All other traffic costs one comparison, on the event loop: only a request to the
    # dashboard's port is looked at further (a coroutine, where a name must be resolved).

    def requestheaders(self, flow: http.HTTPFlow) -> Coroutine[Any, Any, None] | None:
        return self._guard_flow(flow)

    def http_connect(self, flow: http.HTTPFlow) -> Coroutine[Any, Any, None] | None:
        return self._guard_flow(flow)

    def _guard_flow(self, flow: http.HTTPFlow) -> Coroutine[Any, Any, None] | None:
        at = self._dashboard_at
        if at is None or flow.request.port != at.port:
            return None

        async def guard() -> None:
            if await self._to_dashboard(at, flow.request.host, flow.request.port):
                flow.response = self._refusal()

        return guard()

    def server_connect(self, data: ServerConnectionHookData) -> Coroutine[Any, Any, None] | None:
        at, address = self._dashboard_at, data.server.address
        if at is None or address is None or int(address[1]) != at.port:
            return None

        async def guard() -> None:
            if await self._to_dashboard(at, str(address[0]), int(address[1])):
                data.server.error = "xapitap: the dashboard is not served through the proxy"

        return guard()

    @staticmethod
    async def _to_dashboard(at: Destinations, host: str, port: int) -> bool:
        if at.named(host, port):
            return True
        try:
            found = await asyncio.get_running_loop().getaddrinfo(host, port)
        except OSError:
            return False
        return at.resolved(str(info[4][0]) for info in found)

    def _refusal(self) -> http.Response:
        url = self.dashboard.listen.url(self.dashboard.port) if self.dashboard else ""
        return http.Response.make(
            403,
            f"xapitap: the dashboard is not served through the proxy. Open {url} in a "
            "browser window that does not use the proxy.\n",
            {"Content-Type": "text/plain; charset=utf-8"},
        )

    def stop(self) -> None:
        """Journal the stop; then translation and the sinks share the flush time, and
        whatever is not translated by then is left to the next start."""
        assert self.settings is not None
        deadline = time.monotonic() + self.settings.flush_seconds
        self._ticking.set()
        if self.recorder is not None:
            self.recorder.stop()
            self.recorder = None
        if self.journal is not None:
            self.journal.append(Kind.STOP, time.time(), bytes)
            self.journal.stop()
            self.journal = None
        if self.translator is not None:
            caught_up = self.translator.wait_for(
                self._last_seq + 1, max(deadline - time.monotonic(), 1.0)
            )
            self.translator.stop()
            if caught_up:  # nothing raw is left for the next start to translate
                delete_translated(journal_dir(self.settings.store), self._last_seq + 1, True)
            else:
                log.warning(
                    "xapitap: translation is behind the journal; the next start goes on "
                    "from where it stopped"
                )
            self.translator = None
        flush = max(deadline - time.monotonic(), 0.0)
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
        if self.matcher is None or self.journal is None or self.settings is None:
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
        if found.needs_body and req.raw_content:
            return self._settle(flow, found, self.settings.max_body_bytes)
        if found.needs_body:  # nothing to decode: its checks read headers (a GET's cookies)
            match = found.settle(req.headers.get, lambda: b"")
            return None if match is None else self._accept(flow, match)
        return self._accept(flow, found.matches[0])

    async def _settle(self, flow: http.HTTPFlow, found: Candidates, max_bytes: int) -> None:
        """Run the body checks in a worker thread, on copies of what they read."""
        headers = flow.request.headers.copy()
        body = body_reader(flow.request.raw_content, headers.get("content-encoding"), max_bytes)
        match = await asyncio.to_thread(found.settle, headers.get, body)
        if match is not None:
            waiting = self._accept(flow, match)
            if waiting is not None:
                await waiting

    def _accept(self, flow: http.HTTPFlow, match: RuleMatch) -> Coroutine[Any, Any, None] | None:
        """An analytics request: answer it if asked to, then queue a copy of it."""
        settings = self.settings
        assert settings is not None  # requests are only looked at once configured
        answer = settings.answer_locally and match.rule.answerable  # never an LRS's reply
        if answer and flow.live and flow.response is None:
            flow.response = answers.answer(flow.request)
        if self.recorder is not None:
            self.recorder.expect(flow)
        capture = capture_of(flow)
        if capture is None:
            log.warning("%s request body was streamed, not captured", match.rule.name)
            return None
        # A body over the cap is refused by translation: only its start is journaled, so that
        # a page cannot fill the journal (and hold capture) with large bodies.
        return self._submit(match, capture.cut(settings.max_body_bytes))

    async def _submit(self, match: RuleMatch, capture: Capture) -> None:
        """Journal the request, and hold it until its record is on disk: then nothing can
        lose it, however far translation is behind. While the writer's queue is full
        requests wait for their turn, in the order they came; nothing is dropped."""
        journal = self.journal
        if journal is None:
            return
        loop = asyncio.get_running_loop()
        if self._line or not journal.has_room():
            turn: asyncio.Future[None] = loop.create_future()
            self._line.append(turn)
            try:
                await turn
            finally:
                if turn in self._line:
                    self._line.remove(turn)
        durable: asyncio.Future[None] = loop.create_future()

        def journaled(seq: int) -> None:
            loop.call_soon_threadsafe(self._durable, durable)

        self._last_request = capture.received_at.timestamp()
        self._last_request_at = time.monotonic()
        journal.append(
            Kind.REQUEST,
            self._last_request,
            lambda: request_payload(match, capture),
            size=len(capture.body),
            durable=journaled,
        )
        await durable

    def _durable(self, durable: asyncio.Future[None]) -> None:
        """On the event loop: a request is journaled, so the writer's queue has room for
        the next ones in line, in the order they came."""
        _resolve(durable)
        while self._line and self.journal is not None and self.journal.has_room():
            _resolve(self._line.popleft())

    def response(self, flow: http.HTTPFlow) -> None:
        self._record(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._record(flow)

    def _record(self, flow: http.HTTPFlow) -> None:
        recorder, settings = self.recorder, self.settings
        if recorder is None or settings is None:
            return
        if settings.record_all or recorder.is_expected(flow):
            recorder.done(flow)

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
        local = match and match.rule.body_check is None and match.rule.answerable
        if local and flow.live and flow.response is None:
            flow.response = answers.answer_preflight(req)


def _proxy_address() -> str | None:
    """Where the browser's proxy setting points: the first address the proxy listens at."""
    server = ctx.master.addons.get("proxyserver")
    listening = getattr(server, "listen_addrs", None)
    addresses = listening() if callable(listening) else []
    if not addresses:
        return None
    host, port = str(addresses[0][0]), int(addresses[0][1])
    if host in ("", "::", "0.0.0.0"):
        host = "this machine's address"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


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
