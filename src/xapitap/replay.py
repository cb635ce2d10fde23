"""`xapitap replay`: translate recorded traffic into a store, the way live capture does.

Flows are read one at a time from mitmproxy flow files (`mitmdump -w`), matched with the same
rules as the proxy's hook and translated by the same core as the translator process, in
batches: memory stays flat however long the recording.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from mitmproxy import http
from mitmproxy import io
from mitmproxy.exceptions import FlowReadException

from xapitap.flows import body_reader
from xapitap.flows import capture_of
from xapitap.matching import Matcher
from xapitap.store import StoreFile
from xapitap.translator.config import TranslationConfig
from xapitap.translator.local import LocalTranslation

PROGRESS_EVERY = 10_000  # flows between two progress lines


@dataclass
class Summary:
    files: int = 0
    flows: int = 0
    matched: int = 0
    streamed: int = 0  # matched, but recorded without a body
    statements: int = 0  # new to the store
    unreadable_files: int = 0

    def __str__(self) -> str:
        text = (
            f"{self.files} files, {self.flows} flows, {self.matched} analytics requests, "
            f"{self.statements} new statements"
        )
        if self.streamed:
            text += f"; {self.streamed} recorded without their body (streamed), passed over"
        if self.unreadable_files:
            text += f"; {self.unreadable_files} files could not be read to the end"
        return text


def http_flows(path: Path, summary: Summary, errors: TextIO) -> Iterator[http.HTTPFlow]:
    """The HTTP flows of a flow file, one at a time; a damaged file is read up to the damage."""
    with path.open("rb") as file:
        try:
            for flow in io.FlowReader(file).stream():
                if isinstance(flow, http.HTTPFlow):
                    yield flow
        except FlowReadException as e:
            summary.unreadable_files += 1
            print(f"xapitap replay: {path}: {e}", file=errors)


def replay(
    paths: Iterable[Path],
    store: StoreFile,
    config: TranslationConfig,
    matcher: Matcher,
    progress: TextIO = sys.stderr,
) -> Summary:
    """Translate the analytics requests of the flow files, in order, into the store. Every
    session is ended at the end, as when a proxy stops."""
    summary = Summary()
    local = LocalTranslation(store, config)
    last_time: float | None = None
    try:
        for path in paths:
            summary.files += 1
            for flow in http_flows(path, summary, progress):
                summary.flows += 1
                if summary.flows % PROGRESS_EVERY == 0:
                    print(f"xapitap replay: {summary.flows} flows read", file=progress)
                req = flow.request
                match = matcher.match(
                    req.method,
                    req.pretty_host.lower(),
                    req.path.split("?", 1)[0],
                    req.headers.get,
                    body_reader(
                        req.raw_content, req.headers.get("content-encoding"), config.max_body_bytes
                    ),
                )
                if match is None:
                    continue
                summary.matched += 1
                capture = capture_of(flow)
                if capture is None:
                    summary.streamed += 1
                    continue
                local.add(match, capture)
                last_time = req.timestamp_start
    finally:
        local.close(at=last_time)
    summary.statements = local.added
    return summary
