"""Acknowledged means journaled: through a real mitmdump and a real Ralph, with translation
held back (SIGSTOP) so that a backlog builds, the proxy, the translator or both are killed
(SIGKILL) or the proxy is stopped (SIGTERM); nothing acknowledged is lost, nothing is sent
twice, and the statements are exactly those of an uninterrupted run."""

from __future__ import annotations

import os
import re
import secrets
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from support.dashboard import DashboardClient
from support.delivery import in_lrs
from support.delivery import predicted
from support.delivery import proxy_for
from support.delivery import send_all
from support.delivery import target
from support.delivery import targets_file
from support.delivery import video_events
from support.delivery import wait_until_delivered
from support.local import cli
from support.local import reading
from support.local import stored
from support.local import translated
from support.proxy import Mitmdump
from support.ralph import RalphLRS
from xapitap.pseudonym import key_path_for

pytestmark = pytest.mark.e2e

_TRANSLATOR = re.compile(r"xapitap: translator started \(pid (\d+)\)")


def translator_pid(proxy: Mitmdump, timeout: float = 10) -> int:
    """The pid of the proxy's translator process, as its log says (the newest one)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [int(m.group(1)) for line in proxy.lines for m in [_TRANSLATOR.search(line)] if m]
        if found:
            return found[-1]
        assert time.monotonic() < deadline, proxy.output
        time.sleep(0.05)


def started(tmp_path: Path, ralph: RalphLRS, key: bytes) -> Mitmdump:
    proxy = proxy_for(tmp_path, targets_file(tmp_path, target("main", ralph)))
    key_path_for(proxy.store).parent.mkdir(parents=True, exist_ok=True)
    key_path_for(proxy.store).write_text(key.hex())
    return proxy


def behind(store: Path) -> str:
    """`xapitap status`'s line on translation."""
    status = cli("status", "--store", str(store)).stdout
    return next(line for line in status.splitlines() if line.startswith("translation:"))


def assert_delivered_once(ralph: RalphLRS, store: Path, expected: list[dict[str, Any]]) -> None:
    status = wait_until_delivered(store, "main")
    ours = stored(store)
    assert ours == expected  # every statement, once, the same as without the crash
    assert (status.queued, status.delivered, status.dead) == (0, len(ours), 0)
    assert in_lrs(ralph, ours) == ours


def test_sigkill_of_proxy_and_translator_under_backlog_loses_nothing(
    ralph: RalphLRS, tmp_path: Path
) -> None:
    key = secrets.token_bytes(32)
    events = video_events(40, secrets.token_hex(4))
    first = started(tmp_path, ralph, key)
    with first:
        send_all(first, events[:10])
        assert translated(first.store)  # a session is open, its state in the store
        translator = translator_pid(first)
        os.kill(translator, signal.SIGSTOP)  # translation falls behind from here
        send_all(first, events[10:30])  # each answered: each acknowledged
        assert re.match(r"translation: 2\d journal records behind", behind(first.store))
        # The dashboard says the same, from what the proxy knows it journaled.
        shown = DashboardClient(first.dashboard_url).json("/api/status")["translation"]
        expected = int(behind(first.store).split()[1])
        assert shown["behind"] in (expected, expected + 1), (shown, expected)  # + a TICK
        first.kill()
        os.kill(translator, signal.SIGKILL)
    with reading(first.store, settled=False) as reader:
        assert reader.count_statements() == 1 + 10  # what was translated before the crash
    second = started(tmp_path, ralph, key)
    with second:
        send_all(second, events[30:])
        assert translated(second.store)
    assert second.returncode == 0
    assert_delivered_once(ralph, second.store, predicted(events, key))


def test_a_killed_translator_is_restarted_and_resumes_exactly_once(
    ralph: RalphLRS, tmp_path: Path
) -> None:
    key = secrets.token_bytes(32)
    events = video_events(300, secrets.token_hex(4))
    proxy = started(tmp_path, ralph, key)
    with proxy:
        send_all(proxy, events[:100])
        assert translated(proxy.store)  # a session is open, its state in the store
        first = translator_pid(proxy)
        os.kill(first, signal.SIGSTOP)
        send_all(proxy, events[100:])
        os.kill(first, signal.SIGCONT)  # it starts on the backlog ...
        time.sleep(0.05)
        os.kill(first, signal.SIGKILL)  # ... and dies part-way, maybe mid-transaction
        deadline = time.monotonic() + 20
        while translator_pid(proxy) == first:
            assert time.monotonic() < deadline, proxy.output
            time.sleep(0.05)
        assert translated(proxy.store)
        assert "translator exited (-9); restarting it" in proxy.output
    assert_delivered_once(ralph, proxy.store, predicted(events, key))


def test_sigterm_with_a_backlog_keeps_it_for_the_next_start(
    ralph: RalphLRS, tmp_path: Path
) -> None:
    key = secrets.token_bytes(32)
    events = video_events(30, secrets.token_hex(4))
    first = started(tmp_path, ralph, key)
    with first:
        os.kill(translator_pid(first), signal.SIGSTOP)
        send_all(first, events)
        stopping = time.monotonic()
        assert first.stop() == 0  # SIGTERM: a clean exit, whatever the backlog
        took = time.monotonic() - stopping
    assert took < 30, took
    assert "translation is behind the journal" in first.output
    assert re.match(r"translation: \d+ journal records behind", behind(first.store))
    second = started(tmp_path, ralph, key)
    with second:  # started and stopped at once: it finishes the backlog
        pass
    assert second.returncode == 0
    assert_delivered_once(ralph, second.store, predicted(events, key))
