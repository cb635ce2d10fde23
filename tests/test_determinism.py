"""Rule 11: the same traffic gives byte-identical statements in any process.

A fixed set of generated viewings (tests/truth/, all four platforms, each alone, and three tabs
of one learner interleaved: two on one video, a third on another) is replayed in two fresh
interpreters with different PYTHONHASHSEED; their statements, as JSON, must be the same bytes.
(Replaying twice in one process cannot see an order that depends on str hashing: set
iteration, for instance.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from truth.reporters import PLATFORMS

TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"
PER_PLATFORM = 6

SCRIPT = """
import dataclasses, json, random, sys
sys.path[:0] = [{tests!r}, {src!r}]  # as pytest's pythonpath (and the editable install) do
from truth.reporters import PLATFORMS, merge, random_scenario, replay

out = []
for platform in PLATFORMS:
    for n in range({count}):
        scenario = random_scenario(random.Random(f"{{platform}}-{{n}}"), platform)
        out.append(replay(scenario.traffic().requests).statements)
    # Two tabs of one learner on one video, their requests interleaved; 30 s later a third
    # tab opens another video (which may end the first two sessions, in some order).
    rng = random.Random(f"{{platform}}-tabs")
    a = random_scenario(rng, platform, "a")
    tabs = [a]
    for tab, video, start in (("b", 1, 0.0), ("c", 2, 30.0)):
        other = random_scenario(rng, platform, tab)
        delivery = dataclasses.replace(other.delivery, skew=a.delivery.skew)
        length = a.length if video == 1 else other.length
        tabs.append(dataclasses.replace(
            other, length=length, delivery=delivery, video=video, start=start
        ))
    out.append(replay(merge(*(s.traffic() for s in tabs))).statements)
sys.stdout.write(json.dumps(out, ensure_ascii=False))
"""


def _replay_in_a_process(hash_seed: str) -> str:
    script = SCRIPT.format(tests=str(TESTS), src=str(SRC), count=PER_PLATFORM)
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _first_difference(a: list[Any], b: list[Any]) -> str:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        for j, (s, t) in enumerate(zip(x, y, strict=False)):
            if s != t:
                verbs = (s["verb"]["display"]["en-US"], t["verb"]["display"]["en-US"])
                return f"replay {i}, statement {j} ({verbs}):\n{json.dumps(s)}\n{json.dumps(t)}"
        if len(x) != len(y):
            return f"replay {i}: {len(x)} vs {len(y)} statements"
    return f"{len(a)} vs {len(b)} replays"


def test_statements_are_byte_identical_whatever_the_hash_seed() -> None:
    first = _replay_in_a_process("1")
    second = _replay_in_a_process("2")
    replays = json.loads(first)
    assert len(replays) == len(PLATFORMS) * (PER_PLATFORM + 1)
    assert sum(len(statements) for statements in replays) > 100  # they did say something
    if first != second:
        pytest.fail(_first_difference(replays, json.loads(second)))
