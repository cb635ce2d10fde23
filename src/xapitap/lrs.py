"""An LRS as its sink sees it: POST statements, GET one back, ask which versions it speaks.

Transport errors come out as `requests.RequestException`; HTTP answers, whatever their status,
come back as `Reply` for the delivery logic to judge.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests

from xapitap.privacy import scrub_secrets
from xapitap.targets import Target

DEFAULT_VERSION = "1.0.3"


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    text: str


class LrsClient:
    def __init__(self, target: Target) -> None:
        self.target = target
        self.version = DEFAULT_VERSION if target.version == "auto" else target.version
        self._session = requests.Session()
        self._session.trust_env = False  # never route LRS traffic back through our own proxy
        password = target.password.get_secret_value()
        if target.username or password:
            self._session.auth = (target.username, password)
        basic = base64.b64encode(f"{target.username}:{password}".encode()).decode()
        # What an LRS that echoes our request in its answer must not get into the store.
        self._secrets = tuple(s for s in (password, basic) if password and s)

    def close(self) -> None:
        self._session.close()

    def _headers(self) -> dict[str, str]:
        return {"X-Experience-API-Version": self.version, "Content-Type": "application/json"}

    def negotiate(self) -> str:
        """Use 2.0.0 where the LRS's /about offers it, else 1.0.3 (unless the target fixes it)."""
        if self.target.version != "auto":
            return self.version
        response = self._session.get(self.target.about_url, timeout=self.target.timeout)
        offered: list[str] = []
        if response.ok:
            try:
                offered = list(response.json().get("version", []))
            except (ValueError, AttributeError):
                offered = []
        self.version = "2.0.0" if any(v.startswith("2.0") for v in offered) else DEFAULT_VERSION
        return self.version

    def post(self, statements_json: list[str]) -> Reply:
        body = ("[" + ",".join(statements_json) + "]").encode("utf-8")
        response = self._session.post(
            self.target.statements_url,
            data=body,
            headers=self._headers(),
            timeout=self.target.timeout,
        )
        text = scrub_secrets(response.text[:2000], self._secrets)
        return Reply(response.status_code, response.headers, text)

    def get(self, statement_id: str) -> dict[str, Any] | None:
        response = self._session.get(
            self.target.statements_url,
            params={"statementId": statement_id},
            headers=self._headers(),
            timeout=self.target.timeout,
        )
        if response.status_code == 404:
            return None
        response.raise_for_status()
        found = response.json()
        # Some LRSs (Ralph) answer a StatementResult instead of the statement itself.
        if isinstance(found, dict) and "statements" in found:
            statements = found["statements"]
            return statements[0] if statements else None
        return found if isinstance(found, dict) else None


# What an LRS adds or may set on its own (xAPI Data §2.3.1, immutability exceptions).
_LRS_FIELDS = ("stored", "authority", "version")


def statement_diff(ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> list[str]:
    """Where two statements differ, as `path: ours != theirs` lines (LRS-set fields aside)."""
    a = {k: v for k, v in ours.items() if k not in _LRS_FIELDS}
    b = {k: v for k, v in theirs.items() if k not in _LRS_FIELDS}
    out: list[str] = []
    _diff(a, b, "", out)
    return out


def _diff(a: Any, b: Any, path: str, out: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            _diff(a.get(key, _MISSING), b.get(key, _MISSING), f"{path}.{key}", out)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _diff(x, y, f"{path}[{i}]", out)
    elif a != b:
        out.append(f"{path or '.'}: ours {_show(a)} != theirs {_show(b)}")


class _Missing:
    def __repr__(self) -> str:
        return "(absent)"


_MISSING = _Missing()


def _show(value: Any) -> str:
    if value is _MISSING:
        return "(absent)"
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= 200 else text[:197] + "..."
