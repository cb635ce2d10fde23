"""LRS targets: where statements go, with whose credentials, and which statements.

Several targets come from a TOML file (`xapi_targets_file`), validated with pydantic; the
single-target options `xapi_lrs_*` make one target named "default".

    [[target]]
    name = "study-lrs"
    endpoint = "https://lrs.example.org/xAPI/"
    username = "key"
    password_env = "STUDY_LRS_SECRET"    # or password = "…"
    platforms = ["udemy", "coursera"]    # optional: only these platforms (checked by name)
    verbs = ["completed"]                # optional: only these verbs (names or IRIs)
    version = "auto"                     # "auto" (ask GET /about), "1.0.3" or "2.0.0"
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from typing import Literal
from urllib.parse import urljoin
from urllib.parse import urlsplit

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import SecretStr
from pydantic import ValidationError
from pydantic import ValidationInfo
from pydantic import field_validator
from pydantic import model_validator

from xapitap.validation import describe
from xapitap.validation import did_you_mean
from xapitap.xapi.vocab import VERBS


class Target(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    endpoint: str
    username: str = ""
    password: SecretStr = SecretStr("")
    password_env: str | None = None
    platforms: frozenset[str] | None = None
    verbs: frozenset[str] | None = None
    version: Literal["auto", "1.0.3", "2.0.0"] = "auto"
    batch_size: int = Field(default=50, ge=1, le=1000)
    batch_bytes: int = Field(default=1024 * 1024, ge=1024)
    timeout: float = Field(default=10.0, gt=0)
    max_backoff: float = Field(default=60.0, gt=0)

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"must be an http(s) URL, not {value!r}")
        if parts.username or parts.password:
            raise ValueError("put credentials in username/password, not the URL")
        return value.rstrip("/") + "/"

    @field_validator("verbs")
    @classmethod
    def _verbs(cls, value: frozenset[str] | None) -> frozenset[str] | None:
        """Verbs are matched by IRI; a short name stands for its IRI."""
        if value is None:
            return None
        iris = set(VERBS.values())
        unknown = sorted(v for v in value if v not in VERBS and v not in iris)
        if unknown:
            hints = [did_you_mean(v, VERBS) for v in unknown]
            raise ValueError(f"unknown verbs {unknown}{''.join(hints)}; known: {sorted(VERBS)}")
        return frozenset(VERBS.get(v, v) for v in value)

    @field_validator("platforms")
    @classmethod
    def _platforms(
        cls, value: frozenset[str] | None, info: ValidationInfo
    ) -> frozenset[str] | None:
        known = (info.context or {}).get("platforms")
        if value is not None and known is not None:
            unknown = sorted(p for p in value if p not in known)
            if unknown:
                hints = [did_you_mean(p, known) for p in unknown]
                raise ValueError(
                    f"unknown platforms {unknown}{''.join(hints)}; known: {sorted(known)}"
                )
        return value

    @model_validator(mode="after")
    def _password_from_env(self) -> Target:
        if self.password_env is not None:
            secret = os.environ.get(self.password_env)
            if secret is None:
                raise ValueError(f"password_env {self.password_env} is not set")
            object.__setattr__(self, "password", SecretStr(secret))
        if bool(self.username) != bool(self.password.get_secret_value()):
            raise ValueError("set both username and password (or password_env), or neither")
        return self

    @property
    def statements_url(self) -> str:
        return urljoin(self.endpoint, "statements")

    @property
    def about_url(self) -> str:
        return urljoin(self.endpoint, "about")

    def accepts(self, platform: str, verb_iri: str) -> bool:
        """Whether statements of this platform and verb go to this target."""
        if self.platforms is not None and platform not in self.platforms:
            return False
        return self.verbs is None or verb_iri in self.verbs

    @classmethod
    def checked(cls, known_platforms: Iterable[str], **fields: Any) -> Target:
        """A target whose platform names are checked against `known_platforms`."""
        return cls.model_validate(fields, context={"platforms": frozenset(known_platforms)})


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target: list[Target] = Field(min_length=1)


def load_targets(path: Path, platforms: Iterable[str] | None = None) -> list[Target]:
    """The targets in a TOML file; ValueError with every problem, located, if it is wrong.
    Platform names are checked against `platforms` when given."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ValueError(f"cannot read targets file {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"targets file {path} is not valid TOML: {e}") from None
    try:
        context = None if platforms is None else {"platforms": frozenset(platforms)}
        targets = _File.model_validate(data, context=context).target
    except ValidationError as e:
        raise ValueError(f"targets file {path}: {describe(e)}") from None
    names = [t.name for t in targets]
    if len(set(names)) != len(names):
        raise ValueError(f"targets file {path}: target names must differ, got {names}")
    return targets
