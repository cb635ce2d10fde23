"""`xapitap status` renders the store's read model, without importing mitmproxy."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import golden
from support.local import cli
from xapitap.pipeline import matcher
from xapitap.store import StoreFile
from xapitap.translator.config import TranslationConfig
from xapitap.translator.local import LocalTranslation


def captured(case_name: str, store: StoreFile) -> None:
    """The case's requests translated into `store`, as the translator would."""
    case = next(c for c in golden.cases() if c.name == case_name)
    key_file = store.path.with_name("test.key")
    key_file.write_text(golden.TEST_KEY.hex())
    local = LocalTranslation(
        store, TranslationConfig(key_file=str(key_file), max_body_bytes=golden.MAX_BODY)
    )
    rules = matcher()
    for request in case.requests():
        capture = request.capture()
        match = rules.match(
            capture.method, capture.host, capture.path, capture.header, lambda c=capture: c.body
        )
        assert match is not None
        local.add(match, capture)
    local.close()


def test_status_accounts_for_every_event_type(tmp_path: Path) -> None:
    store = StoreFile(tmp_path / "s.sqlite3")
    captured("coursera/eventing-session", store)
    report = cli("status", "--store", str(store.path)).stdout
    # A learning event of a Coursera batch counts as translated; an unmapped key, with its reason.
    assert re.search(r"\s1\s+coursera\s+pageview\s+translated", report), report
    assert re.search(r"coursera\s+open_course\.video\.rate_change\s+ignored: no xAPI", report)
    assert re.search(r"\s2\s+coursera\s+open_course\.video\.play\s+translated", report), report
    assert re.search(r"\s1\s+coursera\.eventing\s+matched", report), report


def test_status_starts_without_mitmproxy(tmp_path: Path) -> None:
    store = StoreFile(tmp_path / "s.sqlite3")
    store.create()
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "xapitap", "status", "--store", str(store.path)],
        capture_output=True,
        text=True,
        env={**os.environ},
        check=True,
    )
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}
    assert "xapitap.store.reads" in imported  # the report is what was measured
    assert not {m for m in imported if m.split(".")[0] == "mitmproxy" or m == "xapitap.addon"}


def test_a_reader_that_leaves_early_is_no_error(tmp_path: Path) -> None:
    """`xapitap status | head`: the rest of the report goes nowhere, and no traceback. (`true`
    leaves before the command writes anything: the pipe is closed for all of it.)"""
    store = StoreFile(tmp_path / "s.sqlite3")
    captured("coursera/eventing-session", store)
    for command in ("status", "export"):
        done = subprocess.run(
            f"{sys.executable} -m xapitap {command} --store {store.path} | true",
            shell=True,
            capture_output=True,
            text=True,
            check=True,
        )
        assert "Traceback" not in done.stderr, done.stderr
