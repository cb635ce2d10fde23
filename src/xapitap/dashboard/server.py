"""The dashboard's HTTP server: tornado, mitmproxy's own web framework, on the running asyncio
loop (the proxy's in the addon, its own under `xapitap dashboard`), as mitmweb serves itself.

Every route needs the token (auth.py); reads run off the loop (`Reads`); the one
action, retrying dead letters, is a POST from the page's own origin. Request bodies are never
parsed: every handler streams its body and drops it, so no form parser ever runs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import Awaitable
from collections.abc import Callable
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any
from typing import cast

import tornado.httpserver
import tornado.iostream
import tornado.netutil
import tornado.web

from xapitap.dashboard import reads
from xapitap.dashboard import videos
from xapitap.dashboard.address import Listen
from xapitap.dashboard.auth import Auth
from xapitap.dashboard.auth import same_origin
from xapitap.dashboard.reads import About
from xapitap.dashboard.reads import Reads
from xapitap.store import ReadModel
from xapitap.store.reads import StatementFilter

log = logging.getLogger("xapitap")
MAX_STREAMS = 32  # live feeds open at once; more get 503
STREAM_BATCH = 200  # statements per read while a feed catches up
MAX_LIMIT = 1000
KEEPALIVE_SECONDS = 15.0
POLL_SECONDS = 0.5  # how often the newest statement is looked up (a commit wakes it sooner)
MIN_LOOK_SECONDS = 0.2
FLUSH_TIMEOUT_SECONDS = 30.0  # a browser that takes no data for this long is dropped
# Seconds a status answer is reused for: over a store alone, the backlog is read from the
# journal's files, so less often.
STATUS_MAX_AGE = 1.0
STATUS_MAX_AGE_OVER_A_STORE = 5.0
ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


class Changes:
    """The newest statement's sequence number, watched: feeds wait here for the next one."""

    def __init__(self, read: Reads) -> None:
        self._read = read
        self.last = 0
        self.closed = False
        self._changed = asyncio.Event()
        self._nudged = asyncio.Event()

    async def run(self) -> None:
        while not self.closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._nudged.wait(), POLL_SECONDS)
            # Commits come in bursts: one look for all of them, at most five a second.
            await asyncio.sleep(MIN_LOOK_SECONDS)
            self._nudged.clear()
            with contextlib.suppress(Exception):  # a store being replaced: try again
                last = await self._read(lambda r: r.last_seq())
                if last != self.last:
                    self.last = last
                    self._wake_all()

    def nudge(self) -> None:
        self._nudged.set()

    def close(self) -> None:
        self.closed = True
        self._nudged.set()
        self._wake_all()

    def _wake_all(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def past(self, seq: int, timeout: float) -> bool:
        """Wait until a statement after `seq` is stored (True) or `timeout` passes."""
        deadline = time.monotonic() + timeout
        while self.last <= seq and not self.closed:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)
        return self.last > seq


class Dashboard:
    """The dashboard over one store; `start()` on a running event loop."""

    def __init__(
        self,
        store: Path,
        listen: Listen,
        about: About,
        token: str = "",
        on_retry: Callable[[], None] | None = None,
        journal_end: Callable[[], int] | None = None,
    ) -> None:
        """`on_retry`: dead letters were re-queued (wake the sinks); `journal_end`: the
        proxy's next journal record (for the backlog)."""
        self.listen = listen
        self.journal_end = journal_end
        self.about = about
        self.auth = Auth(token)
        self.on_retry = on_retry
        self.port = listen.port
        self.streams = 0
        self.read = Reads(store)
        self.changes = Changes(self.read)
        self._assets = {
            name: resources.files("xapitap.dashboard").joinpath("static", name).read_bytes()
            for name in ASSETS
        }
        self._status: tuple[float, bytes] | None = None
        self._videos: tuple[int, list[dict[str, Any]]] | None = None
        self._video_index = videos.VideoIndex()
        self._videos_lock = asyncio.Lock()
        self._server: tornado.httpserver.HTTPServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._poller: asyncio.Task[None] | None = None

    @property
    def cookie_name(self) -> str:
        return f"xapitap-dashboard-{self.port}"  # cookies ignore ports: one per dashboard

    @property
    def url(self) -> str:
        """The address to open, with the token."""
        return f"{self.listen.url(self.port)}?token={self.auth.token}"

    def start(self) -> None:
        """Listen (OSError when the address is taken) and watch the store."""
        self._loop = asyncio.get_running_loop()
        sockets = tornado.netutil.bind_sockets(self.listen.port, self.listen.host)
        self.port = sockets[0].getsockname()[1]
        app = tornado.web.Application(
            [
                (r"/", IndexHandler),
                (r"/static/(app\.js|app\.css)", AssetHandler),
                (r"/api/statements", StatementsHandler),
                (r"/api/stream", StreamHandler),
                (r"/api/status", StatusHandler),
                (r"/api/activity", ActivityHandler),
                (r"/api/videos", VideosHandler),
                (r"/api/videos/([0-9a-f]{16})", VideoHandler),
                (r"/api/retry", RetryHandler),
            ],
            dashboard=self,
            default_handler_class=NotFoundHandler,
            log_function=_log_failures,
        )
        self._server = tornado.httpserver.HTTPServer(
            app, max_body_size=64 * 1024, idle_connection_timeout=120
        )
        self._server.add_sockets(sockets)
        self._poller = self._loop.create_task(self.changes.run())

    def wake(self) -> None:
        """From any thread: statements were stored (feeds go on at once)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop is stopping
                loop.call_soon_threadsafe(self.changes.nudge)

    async def stop(self) -> None:
        self.changes.close()
        if self._server is not None:
            self._server.stop()
            await asyncio.sleep(0)  # let feeds see the close and finish
            await self._server.close_all_connections()
            self._server = None
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        await asyncio.to_thread(self.read.close)

    def asset(self, name: str) -> bytes:
        return self._assets[name]

    async def status(self) -> bytes:
        cached = self._status
        max_age = STATUS_MAX_AGE if self.journal_end else STATUS_MAX_AGE_OVER_A_STORE
        if cached is not None and time.monotonic() - cached[0] < max_age:
            return cached[1]
        body = await self.read(lambda r: reads.status(r, self.about, self.journal_end))
        self._status = (time.monotonic(), body)
        return body

    def forget_status(self) -> None:
        self._status = None

    async def videos(self) -> list[dict[str, Any]]:
        """Per-video summaries: brought up to date with what was added since, one caller at
        a time (the others get its answer)."""
        async with self._videos_lock:
            cached, last = self._videos, self.changes.last
            if cached is not None and cached[0] == last:
                return cached[1]
            index = self._video_index
            found = await self.read(lambda r: reads.video_list(r, index))
            self._videos = (last, found)
            return found


def _log_failures(handler: tornado.web.RequestHandler) -> None:
    """Only failures are logged, and without the query string (`?token=` is in it)."""
    if handler.get_status() >= 500:
        log.warning(
            "xapitap dashboard: %d %s %s",
            handler.get_status(),
            handler.request.method,
            handler.request.path,
        )


@tornado.web.stream_request_body
class Base(tornado.web.RequestHandler):
    """Every route: the token first, security headers, JSON errors, bodies dropped unread."""

    @property
    def dash(self) -> Dashboard:
        return cast(Dashboard, self.settings["dashboard"])

    def set_default_headers(self) -> None:
        self.clear_header("Server")
        self.set_header("Content-Security-Policy", _CSP)
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("X-Frame-Options", "DENY")
        self.set_header("Referrer-Policy", "no-referrer")
        self.set_header("Cache-Control", "no-store")

    def data_received(self, chunk: bytes) -> None:
        pass  # no route reads a body

    def by_bearer(self) -> bool:
        return self.dash.auth.bearer_ok(self.request.headers.get("Authorization"))

    def authorized(self) -> bool:
        return self.by_bearer() or self.dash.auth.cookie_ok(self.get_cookie(self.dash.cookie_name))

    def prepare(self) -> None:
        if not self.authorized():
            asked = "Authorization" in self.request.headers or self.dash.cookie_name in (
                self.request.cookies
            )
            raise tornado.web.HTTPError(403 if asked else 401)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.set_header("Content-Type", "application/json")
        # Refused before its body was read, the connection is closed after the answer
        # (tornado does so); say it, so that a client does not send on it again.
        self.set_header("Connection", "close")
        if status_code == 401:
            self.set_header("WWW-Authenticate", 'Bearer realm="xapitap dashboard"')
        error = kwargs.get("exc_info", (None, None))[1]
        reason = error.reason if isinstance(error, tornado.web.HTTPError) else None
        reason = reason or {
            401: "a token is needed: open the address printed when the dashboard started",
            403: "this token is not the dashboard's",
        }.get(status_code, self._reason)
        self.finish(reads.dumps({"error": reason}))

    def send_json(self, body: bytes) -> None:
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(body)

    def wanted(self) -> StatementFilter:
        return StatementFilter(
            platform=self.get_query_argument("platform", "") or "",
            verb=self.get_query_argument("verb", "") or "",
            actor=self.get_query_argument("actor", "") or "",
            video=self.get_query_argument("video", "") or "",
        )

    def number(self, name: str, default: int | None, low: int, high: int) -> int | None:
        text = self.get_query_argument(name, None)
        if text is None:
            return default
        if not text.isdigit() or not low <= int(text) <= high:
            raise tornado.web.HTTPError(400, reason=f"{name} must be a whole number {low}-{high}")
        return int(text)


class NotFoundHandler(Base):
    def prepare(self) -> None:
        super().prepare()  # an unknown route tells nothing without the token either
        raise tornado.web.HTTPError(404)


class IndexHandler(Base):
    def prepare(self) -> None:
        token = self.get_query_argument("token", None)
        if token is None:
            super().prepare()
            return
        if not self.dash.auth.token_ok(token):
            raise tornado.web.HTTPError(403)
        # The token becomes a cookie, and leaves the address bar (and the history).
        self.set_cookie(
            self.dash.cookie_name,
            self.dash.auth.cookie_value,
            httponly=True,
            samesite="Strict",
            path="/",
        )
        self.set_header("Connection", "close")  # answered before its body: see write_error
        self.redirect("/")

    def get(self) -> None:
        self.set_header("Content-Type", ASSETS["index.html"])
        self.finish(self.dash.asset("index.html"))


class AssetHandler(Base):
    def get(self, name: str) -> None:
        self.set_header("Content-Type", ASSETS[name])
        self.finish(self.dash.asset(name))


class StatementsHandler(Base):
    async def get(self) -> None:
        after = self.number("after", None, 0, 2**63 - 1)
        limit = self.number("limit", 100, 1, MAX_LIMIT) or 100
        wanted = self.wanted()
        self.send_json(await self.dash.read(lambda r: reads.statements(r, after, limit, wanted)))


class StatusHandler(Base):
    async def get(self) -> None:
        self.send_json(await self.dash.status())


class ActivityHandler(Base):
    async def get(self) -> None:
        minutes = self.number("minutes", 60, 1, 24 * 60) or 60
        self.send_json(await self.dash.read(lambda r: reads.activity(r, minutes)))


class VideosHandler(Base):
    async def get(self) -> None:
        self.send_json(reads.dumps({"videos": await self.dash.videos()}))


class VideoHandler(Base):
    async def get(self, key: str) -> None:
        found = [v for v in await self.dash.videos() if v["key"] == key]
        if not found:
            raise tornado.web.HTTPError(404, reason="no such video in the store")
        object_id = found[0]["id"]
        body = await self.dash.read(lambda r: reads.video_detail(r, object_id))
        if body is None:
            raise tornado.web.HTTPError(404, reason="no such video in the store")
        self.send_json(body)


class RetryHandler(Base):
    async def post(self) -> None:
        if not self.by_bearer() and not same_origin(
            self.request.host,
            self.request.headers.get("Origin"),
            self.request.headers.get("Sec-Fetch-Site"),
        ):
            raise tornado.web.HTTPError(403, reason="only the dashboard's own page may do this")
        if not self.dash.about.actions:
            raise tornado.web.HTTPError(
                405, reason="this dashboard only reads the store; run `xapitap retry`"
            )
        target = self.get_query_argument("target", "") or None

        def retry(store: Any) -> int:
            outbox = store.outbox()
            try:
                return int(outbox.retry_dead(target))
            finally:
                outbox.close()

        count = await self.dash.read.write(retry)
        if self.dash.on_retry is not None:
            self.dash.on_retry()
        self.dash.forget_status()  # the next status shows it
        self.send_json(reads.dumps({"requeued": count}))


def _page(
    reader: ReadModel, after: int, wanted: StatementFilter
) -> tuple[list[tuple[int, str]], int]:
    return reader.statements_page(after, STREAM_BATCH, wanted)


class StreamHandler(Base):
    """Server-Sent Events: one `statement` event per stored statement, its sequence number as
    the event id, so that a reconnect (`Last-Event-ID`) resumes with no gap and no repeat.
    Each feed reads the store from its own position, one batch at a time, and waits for the
    browser to take each batch: a slow browser only falls behind, holding one batch."""

    async def get(self) -> None:
        dash = self.dash
        if dash.streams >= MAX_STREAMS:
            raise tornado.web.HTTPError(503, reason="too many live feeds are open")
        resume = self.request.headers.get("Last-Event-ID") or self.get_query_argument("after", "")
        if resume and not resume.isdigit():
            raise tornado.web.HTTPError(400, reason="Last-Event-ID must be a sequence number")
        position = int(resume) if resume else await dash.read(lambda r: r.last_seq())
        wanted = self.wanted()
        self.set_header("Content-Type", "text/event-stream; charset=utf-8")
        self.set_header("X-Accel-Buffering", "no")
        dash.streams += 1
        try:
            await self._send(b"retry: 2000\n\n")
            while not dash.changes.closed:
                position = await self._catch_up(position, wanted)
                if not await dash.changes.past(position, KEEPALIVE_SECONDS):
                    await self._send(b": keep-alive\n\n")
        except (tornado.iostream.StreamClosedError, asyncio.CancelledError, TimeoutError):
            pass  # the browser left, or the dashboard stops
        finally:
            dash.streams -= 1
            if not self._finished:
                with contextlib.suppress(Exception):
                    self.finish()

    async def _catch_up(self, position: int, wanted: StatementFilter) -> int:
        while True:
            rows, last = await self.dash.read(partial(_page, after=position, wanted=wanted))
            if last <= position:
                return position
            events = [
                f"id: {seq}\nevent: statement\ndata: {text.replace(chr(10), ' ')}\n\n"
                for seq, text in rows
            ]
            if not rows or rows[-1][0] < last:
                events.append(f"id: {last}\n\n")  # past statements the filter left out
            await self._send("".join(events).encode())
            position = last
            if len(rows) < STREAM_BATCH:
                return position

    async def _send(self, chunk: bytes) -> None:
        self.write(chunk)
        flushed: Awaitable[None] = self.flush()
        try:
            await asyncio.wait_for(asyncio.ensure_future(flushed), FLUSH_TIMEOUT_SECONDS)
        except TimeoutError:
            self.request.connection.close()  # type: ignore[union-attr]
            raise


async def serve_store(store: Path, listen: Listen, token: str = "") -> int:
    """`xapitap dashboard`: serve a store (read-only) until SIGINT or SIGTERM."""
    dashboard = Dashboard(store, listen, About(mode="store", store=str(store)), token)
    try:
        dashboard.start()
    except OSError as e:
        print(f"xapitap: cannot listen at {listen.host}:{listen.port}: {e}", file=sys.stderr)
        return 1
    if not listen.loopback:
        print(
            f"xapitap: the dashboard listens at {listen.host}, beyond this machine: whoever "
            "can reach it and has the token can read every statement",
            file=sys.stderr,
        )
    print(f"xapitap: dashboard at {dashboard.url} (Ctrl-C stops it)", flush=True)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    await stopping.wait()
    await dashboard.stop()
    return 0
