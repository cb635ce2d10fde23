"""The proxy's side of the translator: restarts, and a record that kills it every time."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from xapitap.translator import supervisor as supervisor_module
from xapitap.translator.supervisor import TranslatorProcess


class _Dying:
    """A translator process that dies by a signal at once, having committed nothing."""

    pid = 4242
    stdin = None

    def __init__(self, code: int) -> None:
        self.code = code

    def wait(self, timeout: float | None = None) -> int:
        return self.code


def spawned_with(monkeypatch: pytest.MonkeyPatch, codes: list[int]) -> list[list[str]]:
    """The extra arguments of each start, while the translator dies with `codes` in turn."""
    monkeypatch.setattr(supervisor_module.time, "sleep", lambda _: None)
    seen: list[list[str]] = []
    done = threading.Event()
    process = TranslatorProcess(Path("/nonexistent"), position=7, on_commit=lambda _: None)

    def spawn(extra: list[str]) -> Any:
        seen.append(extra)
        if len(seen) == len(codes):
            process._stopping = True
            done.set()
        return _Dying(codes[len(seen) - 1])

    monkeypatch.setattr(process, "_spawn", spawn)
    process.start()
    assert done.wait(5)
    return seen


def test_a_record_that_kills_the_translator_is_passed_over_after_careful_tries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert spawned_with(monkeypatch, [-11, -11, -11, -11, 0]) == [
        [],
        [],
        ["--batch", "1"],  # one record at a time: the next death names the record
        ["--batch", "1", "--skip", "7"],
        ["--batch", "1", "--skip", "7"],
    ]


def test_exits_that_are_no_crash_never_skip_anything(monkeypatch: pytest.MonkeyPatch) -> None:
    """A translator that stops with an error of its own (a store it cannot open) is
    restarted as it was: skipping a record would lose it for nothing."""
    assert spawned_with(monkeypatch, [1, 1, 1, 1, 1]) == [[]] * 5
