"""`xapitap export`: the stored statements for analysis, streamed: as JSON lines, as CSV (one
row per statement), or one row per video session (the table most studies start from).

CSV values are plain: seconds as numbers, times as ISO 8601 UTC, true/false, and empty for
"not known", so that `pandas.read_csv` needs no options."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from typing import Any
from typing import TextIO

from xapitap.store import ReadModel
from xapitap.store.reads import StatementFilter
from xapitap.viewing import Viewing

_EXT = "https://w3id.org/xapi/video/extensions/"
_SOURCE = "https://xapitap.github.io/xapi/extensions/source"
_CMI5_PROGRESS = "https://w3id.org/xapi/cmi5/result/extensions/progress"

STATEMENT_COLUMNS = (
    "id",
    "timestamp",
    "platform",
    "actor",
    "verb",
    "object_id",
    "object_name",
    "session_id",
    "time",
    "time_from",
    "time_to",
    "progress",
    "length",
    "played_segments",
    "completion",
    "inferred",
    "verb_id",
    # Learning events (not player actions): what their result says.
    "success",
    "score_scaled",
    "response",
    "item_progress",
)
SESSION_COLUMNS = (
    "session_id",
    "actor",
    "platform",
    "course",
    "video",
    "video_name",
    "start",
    "end",
    "length",
    "seconds_played",
    "progress",
    "completed",
    "terminated",
    "pauses",
    "seeks",
    "statements",
    "played_segments",
)


def utc(text: str) -> str:
    """A date or time as the store keeps timestamps (`2024-06-01T09:00:00.000Z`); a time
    without a zone is UTC. ValueError when it is not ISO 8601."""
    when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def write_json_lines(reader: ReadModel, wanted: StatementFilter, out: TextIO) -> int:
    count = 0
    for text in reader.statements_json(wanted=wanted):
        out.write(text + "\n")
        count += 1
    return count


def write_statements_csv(reader: ReadModel, wanted: StatementFilter, out: TextIO) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(STATEMENT_COLUMNS)
    count = 0
    for text in reader.statements_json(wanted=wanted):
        writer.writerow(_plain(statement_row(json.loads(text))))
        count += 1
    return count


def statement_row(s: dict[str, Any]) -> tuple[Any, ...]:
    context = s.get("context", {}).get("extensions", {})
    result = s.get("result", {})
    extensions = result.get("extensions", {})
    source = context.get(_SOURCE, {})
    names = s.get("object", {}).get("definition", {}).get("name", {})
    return (
        s["id"],
        s.get("timestamp"),
        source.get("platform"),
        _actor(s.get("actor", {})),
        s["verb"]["id"].rsplit("/", 1)[-1],
        s.get("object", {}).get("id"),
        next(iter(names.values()), None),
        context.get(_EXT + "session-id"),
        extensions.get(_EXT + "time"),
        extensions.get(_EXT + "time-from"),
        extensions.get(_EXT + "time-to"),
        extensions.get(_EXT + "progress"),
        context.get(_EXT + "length"),
        extensions.get(_EXT + "played-segments"),
        result.get("completion"),
        source.get("inferred"),
        s["verb"]["id"],
        result.get("success"),
        result.get("score", {}).get("scaled"),
        result.get("response"),
        extensions.get(_CMI5_PROGRESS),
    )


def _actor(actor: dict[str, Any]) -> str | None:
    account = actor.get("account") or {}
    found = account.get("name") or actor.get("mbox_sha1sum") or actor.get("mbox")
    return str(found) if found else actor.get("openid")


def write_sessions(reader: ReadModel, wanted: StatementFilter, out: TextIO, fmt: str) -> int:
    """One row per video session: a session is written when it ends (terminated), the ones
    still open at the end, so memory holds only the sessions open at once."""
    writer = csv.writer(out, lineterminator="\n") if fmt == "csv" else None
    if writer is not None:
        writer.writerow(SESSION_COLUMNS)
    count = 0
    for row in session_rows(reader, wanted):
        if writer is not None:
            writer.writerow(_plain(row))
        else:
            out.write(json.dumps(dict(zip(SESSION_COLUMNS, row, strict=True))) + "\n")
        count += 1
    return count


def session_rows(reader: ReadModel, wanted: StatementFilter) -> Iterator[tuple[Any, ...]]:
    open_: dict[str, tuple[Viewing, str, str | None]] = {}
    for s in reader.video_statements(wanted=wanted):
        found = open_.get(s.session_id)
        if found is None:
            viewing = Viewing(s.session_id, s.actor, s.platform, s.timestamp)
            found = open_[s.session_id] = (viewing, s.object_id, s.name)
        found[0].add(s)
        if found[0].terminated:
            yield _session_row(*open_.pop(s.session_id))
    yield from (_session_row(*found) for found in open_.values())


def _session_row(v: Viewing, video: str, name: str | None) -> tuple[Any, ...]:
    return (
        v.session_id,
        v.actor,
        v.platform,
        v.course,
        video,
        name,
        v.started,
        v.ended,
        v.length,
        round(v.seconds_played(), 3),
        v.progress,
        v.completed,
        v.terminated,
        v.pauses,
        v.seeks,
        v.statements,
        v.segments,
    )


def _plain(row: Iterable[Any]) -> list[Any]:
    """CSV cells: true/false for booleans, empty for unknown."""
    return ["" if x is None else str(x).lower() if isinstance(x, bool) else x for x in row]
