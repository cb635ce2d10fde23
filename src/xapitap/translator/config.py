"""The translation settings, as the journal carries them.

The proxy journals its settings (a CONFIG record) when it starts, so that each request is
translated with the settings that were in force when it was captured, however late
translation runs, and a journal replayed elsewhere translates the same way.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel
from pydantic import ConfigDict

from xapitap.pipeline import Pipeline
from xapitap.privacy import ActorMode
from xapitap.privacy import Privacy
from xapitap.pseudonym import Pseudonymizer
from xapitap.pseudonym import key_path_for
from xapitap.pseudonym import load_or_create_key
from xapitap.session import VideoSessions
from xapitap.settings import Settings
from xapitap.xapi.translate import Policy


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
        )

    def pipeline(self, sessions: VideoSessions) -> Pipeline:
        key = load_or_create_key(Path(self.key_file))
        privacy = Privacy(self.actor, Pseudonymizer(key), self.participant, self.user_agent)
        policy = Policy(
            completion_threshold=self.completion_threshold, xapi_version=self.xapi_version
        )
        return Pipeline(privacy, self.max_body_bytes, sessions=sessions, policy=policy)
