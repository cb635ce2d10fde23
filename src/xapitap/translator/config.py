"""The translation settings, as the journal carries them.

The proxy journals its settings (a CONFIG record) when it starts, so that each request is
translated with the settings that were in force when it was captured, however late
translation runs, and a journal replayed elsewhere translates the same way.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pydantic import BaseModel
from pydantic import ConfigDict

from xapitap.mappings import MappingError
from xapitap.mappings import MappingFile
from xapitap.mappings import platforms_of
from xapitap.pipeline import Pipeline
from xapitap.platforms.base import Platform
from xapitap.privacy import ActorMode
from xapitap.privacy import Privacy
from xapitap.pseudonym import Pseudonymizer
from xapitap.pseudonym import key_path_for
from xapitap.pseudonym import load_or_create_key
from xapitap.session import VideoSessions
from xapitap.settings import Settings
from xapitap.xapi.translate import Policy

log = logging.getLogger(__name__)


class RouteSpec(BaseModel):
    """A sink as translation sees it: its name, and which statements it takes."""

    model_config = ConfigDict(frozen=True)

    name: str
    platforms: frozenset[str] | None = None
    verbs: frozenset[str] | None = None

    def accepts(self, platform: str, verb_iri: str) -> bool:
        if self.platforms is not None and platform not in self.platforms:
            return False
        return self.verbs is None or verb_iri in self.verbs


class MappingText(BaseModel):
    """A mapping file as the proxy read it at start: its text, not its path, is what
    translation uses, so that a journal translated later gives the same statements."""

    model_config = ConfigDict(frozen=True)

    path: str
    text: str


class TranslationConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    actor: ActorMode = "pseudonym"
    participant: str = ""
    key_file: str
    user_agent: bool = False
    completion_threshold: float = 0.95
    xapi_version: str = "1.0.3"
    max_body_bytes: int
    keep_unreadable: bool = False
    routes: tuple[RouteSpec, ...] = ()
    mappings: tuple[MappingText, ...] = ()

    @classmethod
    def of(cls, s: Settings) -> TranslationConfig:
        return cls(
            actor=s.actor,
            participant=s.participant,
            key_file=str(s.key_file or key_path_for(s.store)),
            user_agent=s.user_agent,
            completion_threshold=s.completion_threshold,
            xapi_version=s.xapi_version,
            max_body_bytes=s.max_body_bytes,
            keep_unreadable=s.keep_unreadable,
            routes=tuple(
                RouteSpec(name=t.name, platforms=t.platforms, verbs=t.verbs) for t in s.targets
            ),
            mappings=tuple(MappingText(path=f.path, text=f.text) for f in s.mappings),
        )

    def platforms(self) -> tuple[Platform, ...]:
        """The mapping files' platforms. One that no longer passes the checks (a newer
        xapitap reads an older journal) is left out, with a message: its requests are then
        counted as unreadable, and nothing else stops."""
        found: list[Platform] = []
        for m in self.mappings:
            try:
                found += platforms_of([MappingFile(m.path, m.text)])
            except MappingError as e:
                log.error("the mapping file %s of these settings cannot be used:\n%s", m.path, e)
        return tuple(found)

    def pipeline(
        self, sessions: VideoSessions, platforms: tuple[Platform, ...] | None = None
    ) -> Pipeline:
        """The pipeline these settings make; `platforms`: the mapping files' (when they are
        at hand already)."""
        key = load_or_create_key(Path(self.key_file))
        privacy = Privacy(self.actor, Pseudonymizer(key), self.participant, self.user_agent)
        policy = Policy(
            completion_threshold=self.completion_threshold, xapi_version=self.xapi_version
        )
        if platforms is None:
            platforms = self.platforms()
        return Pipeline(
            privacy, self.max_body_bytes, sessions=sessions, policy=policy, platforms=platforms
        )
