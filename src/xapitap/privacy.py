"""Who the actor is, and what never leaves the proxy: the privacy policy of a run.

Actor modes:
- `pseudonym` (default): account {homePage: platform origin, name: HMAC-SHA256(study key,
  platform, id kind, user id)}. The key lives in its own file, outside the statement store;
  a new key unlinks everything after it from everything before.
- `participant`: one researcher-set id for everything this proxy captures (lab studies):
  account {homePage: PARTICIPANT_HOME, name: the id}; with the id `proxyauth`, each
  request's proxy login names its participant (several browsers, one proxy), and a request
  without one is attributed to no one.
- `platform`: the platform's own user id, only when explicitly chosen.
Whatever the mode, e-mail addresses are scrubbed from the IRIs and names we emit, and the
browser's user agent is sent only when asked for, and then coarsened.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from xapitap.pseudonym import Pseudonymizer

ActorMode = Literal["pseudonym", "participant", "platform"]
PARTICIPANT_HOME = "https://xapitap.github.io/participants"
FROM_PROXY_LOGIN = "proxyauth"  # xapi_participant's value: each request's proxy login
POLICY_VERSION = "1"

# Bounded repeats (RFC 5321's 64-character local part, 63-character labels): the pattern
# backtracks at most a constant amount per character, so scrubbing stays linear in the text
# (an unbounded one was quadratic, and held the interpreter for minutes on a long value).
_EMAIL = re.compile(
    r"[A-Za-z0-9._%+-]{1,64}(?:@|%40)(?:[A-Za-z0-9-]{1,63}\.){1,8}[A-Za-z]{2,24}(?![A-Za-z])"
)
# Credentials an LRS may echo back in an error body.
_CREDENTIALS = re.compile(r"(?i)\b(basic|bearer)\s+[A-Za-z0-9+/=._~-]{4,4096}")


@dataclass(frozen=True)
class Privacy:
    mode: ActorMode
    pseudonymizer: Pseudonymizer
    participant: str = ""
    user_agent: bool = False

    @property
    def policy(self) -> str:
        """Named in every statement, so a dataset says how its actors were made."""
        agent = "+user-agent" if self.user_agent else ""
        return f"{self.mode}{agent}/{POLICY_VERSION}"

    def actor(
        self, platform: str, origin: str, id_kind: str, user_id: str, login: str = ""
    ) -> tuple[str, str] | None:
        """(homePage, name) of the actor's account; None when the participant is named by
        the proxy login and the request came without one. `login`: the request's proxy
        login user name."""
        if self.mode == "participant":
            participant = login if self.participant == FROM_PROXY_LOGIN else self.participant
            return (PARTICIPANT_HOME, scrub(participant)) if participant else None
        if self.mode == "platform":
            return origin, scrub(user_id)
        return origin, self.pseudonymizer.name(platform, id_kind, user_id)

    def event_id(self, source_event_id: str) -> str:
        """The event id to publish: a platform's own id as it is; a hash of raw content
        (`sha256:…`, see platforms.base.raw_event_id), or an id holding an e-mail, keyed
        with the study key."""
        if source_event_id.startswith(COMPUTED_ID_PREFIX) or scrub(source_event_id) != (
            source_event_id
        ):  # (a platform's id with an e-mail in it is keyed too: scrubbed, two could clash)
            return self.pseudonymizer.event_id(source_event_id)
        return source_event_id


COMPUTED_ID_PREFIX = "sha256:"


def scrub(text: str) -> str:
    """The text without e-mail addresses (also URL-encoded ones)."""
    if "@" not in text and "%40" not in text:
        return text  # the common case, at the cost of two substring scans
    return _EMAIL.sub("redacted-email", text)


_WRITE_KEY = re.compile(rb'("writeKey"\s*:\s*")[^"]{0,512}"')


def scrub_body(body: bytes) -> bytes | None:
    """A raw body kept for debugging, without e-mails or writeKeys; None if it is not text
    (a compressed body cannot be scrubbed, so it is not kept)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return _WRITE_KEY.sub(rb'\1redacted"', scrub(text).encode("utf-8"))


def scrub_secrets(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Text from outside (an LRS's answer) fit to store and log: no e-mails, no credentials
    (Basic or Bearer values, and each of `secrets` as it is)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "redacted-secret")
    return scrub(_CREDENTIALS.sub(r"\1 redacted-secret", text))


_BROWSERS = (
    ("Edge", re.compile(r"Edg(?:e|A|iOS)?/(\d+)")),
    ("Opera", re.compile(r"OPR/(\d+)")),
    ("Firefox", re.compile(r"(?:Firefox|FxiOS)/(\d+)")),
    ("Chrome", re.compile(r"(?:Chrome|CriOS)/(\d+)")),
    ("Safari", re.compile(r"Version/(\d+).*Safari/")),
)
_SYSTEMS = (
    ("Android", "Android"),
    ("iPhone", "iOS"),
    ("iPad", "iOS"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("Macintosh", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
)


def coarse_user_agent(user_agent: str | None) -> str | None:
    """Browser family, major version and system, e.g. "Chrome 66 (macOS)": enough to tell
    players apart, too little to fingerprint a learner."""
    if not user_agent:
        return None
    browser = next(
        (
            f"{name} {m.group(1)}"
            for name, pattern in _BROWSERS
            if (m := pattern.search(user_agent))
        ),
        "other browser",
    )
    system = next((label for token, label in _SYSTEMS if token in user_agent), "other system")
    return f"{browser} ({system})"
