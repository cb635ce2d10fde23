"""The pipeline's transactions: an event that fails leaves its session as it was."""

from __future__ import annotations

import json

import pytest

from support.fidelity import SEGMENT_T
from support.fidelity import Run
from support.fidelity import seg
from xapitap import pipeline as pipeline_module
from xapitap.xapi.translate import Quarantined
from xapitap.xapi.translate import render


def test_a_quarantined_initialized_starts_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """If a session's initialized cannot be sent, its session-id would name no statement:
    the event's statements are all set aside and the next event starts the session again."""
    refuse = {"initialized": True}

    def refusing(*args: object, **kwargs: object) -> list[object]:
        out: list[object] = list(render(*args, **kwargs))  # type: ignore[arg-type]
        if refuse["initialized"] and out and not isinstance(out[0], Quarantined):
            draft = json.loads(out[0].to_json())  # type: ignore[attr-defined]
            if draft["verb"]["display"]["en-US"] == "initialized":
                out[0] = Quarantined(draft, "refused for this test")
        return out

    monkeypatch.setattr(pipeline_module, "render", refusing)
    run = Run()
    run.post(SEGMENT_T, seg("Video Playback Started", 0, 0), 0.1)
    assert run.statements == [] and len(run.quarantined) == 2  # the initialized, the played
    refuse["initialized"] = False
    run.post(SEGMENT_T, seg("Video Playback Paused", 10, 10), 10.1)
    stored = run.statements
    names = [s["verb"]["display"]["en-US"] for s in stored]
    assert names[0] == "initialized", names  # the session starts again, with this event
    session_ids = {
        s["context"]["extensions"]["https://w3id.org/xapi/video/extensions/session-id"]
        for s in stored
    }
    assert session_ids == {stored[0]["id"]}
