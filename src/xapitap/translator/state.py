"""The open sessions as the store keeps them: restored at start, saved with every commit.

Only what changed since the last commit is written (session_codec.py gives the rows), so a
commit costs in proportion to the sessions its records touched, not to all that are open.
"""

from __future__ import annotations

import logging

from xapitap.session import VideoSessions
from xapitap.session_codec import decode_counters
from xapitap.session_codec import decode_ended
from xapitap.session_codec import decode_session
from xapitap.session_codec import encode_counters
from xapitap.session_codec import encode_ended
from xapitap.session_codec import encode_key
from xapitap.session_codec import encode_session
from xapitap.store.records import StateChanges
from xapitap.store.records import TranslationState

log = logging.getLogger(__name__)


def restore(saved: TranslationState, track_changes: bool) -> VideoSessions | None:
    """The sessions the last commit left open (none for a store that has none).

    Sessions saved in a format this version cannot read (an older xapitap's) are not
    resumed, loudly (None: the caller starts afresh and replaces them with its first
    commit); the events that follow open new sessions, and translation goes on."""
    if saved.counters is None:
        return VideoSessions(track_changes=track_changes)
    try:
        return VideoSessions.restore(
            [decode_session(text) for text in saved.sessions],
            [decode_ended(text) for text in saved.ended],
            decode_counters(saved.counters),
            track_changes=track_changes,
        )
    except (ValueError, TypeError) as e:
        log.error(
            "the %d open sessions kept in the store cannot be resumed (%s); they are closed "
            "without their closing statements",
            len(saved.sessions),
            e,
        )
        return None


def changes(
    sessions: VideoSessions, next_seq: int, config: str | None, replace: bool = False
) -> StateChanges:
    """What to write of the sessions with this commit (`replace`: all of them, instead of
    whatever the store holds)."""
    taken = sessions.snapshot() if replace else sessions.take_changes()
    if replace:
        sessions.take_changes()  # what the snapshot holds is written now
    return StateChanges(
        replace=replace,
        next_seq=next_seq,
        config=config,
        counters=encode_counters(taken.counters),
        sessions=tuple((encode_key(s.key), encode_session(s)) for s in taken.open),
        closed=tuple(encode_key(k) for k in taken.closed),
        ended=tuple((encode_key(e.key), encode_ended(e)) for e in taken.ended),
        forgotten=tuple(encode_key(k) for k in taken.forgotten),
    )
