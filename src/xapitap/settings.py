"""The addon's options, checked: every `xapi_*` value is validated before anything starts."""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

from pydantic import ValidationError

from xapitap import paths
from xapitap.dashboard.address import DEFAULT as DASHBOARD_DEFAULT
from xapitap.dashboard.address import Listen
from xapitap.dashboard.address import parse_listen
from xapitap.dashboard.auth import check_token_option
from xapitap.decoding import DEFAULT_MAX_BYTES
from xapitap.mappings import MappingError
from xapitap.mappings import MappingFile
from xapitap.mappings import load
from xapitap.mappings import read_files
from xapitap.privacy import ActorMode
from xapitap.targets import Target
from xapitap.targets import load_targets
from xapitap.validation import describe
from xapitap.validation import did_you_mean

# name: (type, default, help). Names are a contract: scripts and config.yaml files use them.
OPTIONS: dict[str, tuple[type, object, str]] = {
    "xapi_store": (
        str,
        "",
        "SQLite file that keeps every statement (default: xapitap.sqlite3 in the data "
        "directory, $XAPITAP_HOME or ~/.local/share/xapitap).",
    ),
    "xapi_lrs_endpoint": (
        str,
        "",
        "xAPI base URL of an LRS to forward statements to, e.g. http://127.0.0.1:8100/xAPI/. "
        "Empty: keep statements in the store only.",
    ),
    "xapi_lrs_username": (str, "", "Basic-auth user name for the LRS."),
    "xapi_lrs_password": (
        str,
        "",
        "Basic-auth password for the LRS. Options are visible to every local user (ps): "
        "prefer xapi_lrs_password_env.",
    ),
    "xapi_lrs_password_env": (
        str,
        "",
        "Name of the environment variable that holds the LRS password.",
    ),
    "xapi_targets_file": (
        str,
        "",
        "TOML file of LRS targets, each with its own credentials, platform/verb filter and "
        "xAPI version (see the README); used alongside xapi_lrs_endpoint.",
    ),
    "xapi_actor": (
        str,
        "pseudonym",
        "Who statements say the learner is: pseudonym (a keyed hash of the platform's user "
        "id), participant (xapi_participant, for everything captured) or platform (the raw "
        "platform id; only when you must).",
    ),
    "xapi_participant": (
        str,
        "",
        "The participant id, with xapi_actor=participant; proxyauth: each request's proxy "
        "login user name (with mitmproxy's proxyauth), so that several participants can "
        "share one proxy.",
    ),
    "xapi_key_file": (
        str,
        "",
        "The study key for pseudonyms, made on first use (default: the store's file name "
        "plus .key). A new key unlinks the learners of one study from another's.",
    ),
    "xapi_user_agent": (
        bool,
        False,
        "Send the browser (family, major version, system; never the full user agent) on "
        "initialized statements.",
    ),
    "xapi_completion_threshold": (
        str,
        "0.95",
        "Share of a video that counts as completed when the platform does not say so.",
    ),
    "xapi_version": (str, "1.0.3", "xAPI version statements are written for: 1.0.3 or 2.0.0."),
    "xapi_answer_locally": (
        bool,
        False,
        "Answer matched analytics requests (and their CORS preflights) in the proxy instead "
        "of passing them to the platform.",
    ),
    "xapi_hosts": (
        Sequence[str],
        [],
        "Extra collector hosts, as PLATFORM=HOST-GLOB (e.g. segment=events.example.org), "
        "for platforms served from hosts of their own.",
    ),
    "xapi_mappings": (
        Sequence[str],
        [],
        "Mapping files (TOML) that describe the analytics of sites without a built-in "
        "adapter (mappings.example/README.md); each is checked at start, and a mistake in one "
        "stops the start with its line.",
    ),
    "xapi_max_body_bytes": (
        int,
        DEFAULT_MAX_BYTES,
        "Largest analytics body (before and after decompression) that is decoded; larger "
        "ones are counted and skipped.",
    ),
    "xapi_keep_unreadable": (
        bool,
        False,
        "Keep the bodies of analytics requests that could not be read (scrubbed of e-mails "
        "and writeKeys), for debugging. They hold raw learner data.",
    ),
    "xapi_journal_max_mb": (
        int,
        1024,
        "Largest size of the journal of captured requests not yet translated (MB); at the "
        "bound, analytics requests are held (never dropped) until translation catches up.",
    ),
    "xapi_flush_seconds": (
        int,
        5,
        "On shutdown, how long to keep sending queued statements to the LRS.",
    ),
    "xapi_record": (
        str,
        "",
        "Append every matched analytics flow (request and response) to this mitmproxy flow "
        "file, credentials removed (mode 0600: it holds raw learner data).",
    ),
    "xapi_record_all": (
        bool,
        False,
        "With xapi_record: record every flow, not only the analytics ones.",
    ),
    "xapi_dashboard": (
        str,
        DASHBOARD_DEFAULT,
        "Where the live dashboard listens, HOST:PORT (port 0: any free one), or off. An "
        "address beyond loopback must be asked for, and is warned about.",
    ),
    "xapi_dashboard_token": (
        str,
        "",
        "The dashboard's token (at least 16 characters); empty: a random one per start, "
        "printed with the dashboard's address.",
    ),
}


@dataclass(frozen=True)
class Settings:
    store: Path
    targets: tuple[Target, ...]
    answer_locally: bool
    extra_hosts: dict[str, list[str]] = field(default_factory=dict)
    max_body_bytes: int = DEFAULT_MAX_BYTES
    flush_seconds: int = 5
    actor: ActorMode = "pseudonym"
    participant: str = ""
    key_file: Path | None = None
    user_agent: bool = False
    completion_threshold: float = 0.95
    xapi_version: str = "1.0.3"
    keep_unreadable: bool = False
    journal_max_bytes: int = 1024 * 2**20
    dashboard: Listen | None = None
    dashboard_token: str = ""
    record: Path | None = None
    record_all: bool = False
    # Mapping files as read at start: their text travels with the settings.
    mappings: tuple[MappingFile, ...] = ()


def parse(values: dict[str, object], platforms: Sequence[str]) -> Settings:
    """Settings from option values; ValueError with a message a user can act on.
    `platforms` are the names a user may write (xapi_hosts, a targets file's filters); the
    sites of mapping files are added to them."""
    files = values.get("xapi_mappings") or []
    assert isinstance(files, Sequence)
    try:
        mappings = read_files([str(f) for f in files], platforms)
        sites = [load(f, platforms).site.name for f in mappings]
    except MappingError as e:
        raise ValueError(f"xapi_mappings: a mapping file cannot be used:\n{e}") from None
    platforms = [*platforms, *sites]
    store = str(values["xapi_store"]).strip()
    endpoint = str(values["xapi_lrs_endpoint"]).strip()
    username = str(values["xapi_lrs_username"])
    password = str(values["xapi_lrs_password"])
    if password_env := str(values["xapi_lrs_password_env"]).strip():
        if password:
            raise ValueError("set xapi_lrs_password or xapi_lrs_password_env, not both")
        if password_env not in os.environ:
            raise ValueError(f"xapi_lrs_password_env: {password_env} is not set")
        password = os.environ[password_env]
    targets: list[Target] = []
    if endpoint:
        try:
            targets.append(
                Target(name="default", endpoint=endpoint, username=username, password=password)
            )
        except ValidationError as e:
            raise ValueError(f"xapi_lrs_*: {describe(e)}") from None
    elif username or password:
        raise ValueError("xapi_lrs_username/password are set but xapi_lrs_endpoint is not")
    if targets_file := str(values["xapi_targets_file"]).strip():
        targets += load_targets(Path(targets_file).expanduser(), platforms)
    if len({t.name for t in targets}) != len(targets):
        raise ValueError("the targets file has a target named 'default', as xapi_lrs_* does")
    max_body = int(str(values["xapi_max_body_bytes"]))
    if max_body <= 0:
        raise ValueError(f"xapi_max_body_bytes must be positive, not {max_body}")
    journal_mb = int(str(values["xapi_journal_max_mb"]))
    if journal_mb < 16:
        raise ValueError(f"xapi_journal_max_mb must be at least 16, not {journal_mb}")
    flush = int(str(values["xapi_flush_seconds"]))
    if flush < 0:
        raise ValueError(f"xapi_flush_seconds must not be negative, not {flush}")
    actor = str(values["xapi_actor"]).strip()
    if actor not in ("pseudonym", "participant", "platform"):
        raise ValueError(f"xapi_actor must be pseudonym, participant or platform, not {actor!r}")
    participant = str(values["xapi_participant"]).strip()
    if (actor == "participant") != bool(participant):
        raise ValueError("xapi_participant goes with xapi_actor=participant, and only with it")
    try:
        threshold = float(str(values["xapi_completion_threshold"]))
    except ValueError:
        threshold = -1.0
    if not 0 < threshold <= 1:
        raise ValueError("xapi_completion_threshold must be a number in (0, 1]")
    version = str(values["xapi_version"]).strip()
    if version not in ("1.0.3", "2.0.0"):
        raise ValueError(f"xapi_version must be 1.0.3 or 2.0.0, not {version!r}")
    key_file = str(values["xapi_key_file"]).strip()
    record = str(values["xapi_record"]).strip()
    if values["xapi_record_all"] and not record:
        raise ValueError("xapi_record_all goes with xapi_record (the file to record to)")
    dashboard = parse_listen(str(values["xapi_dashboard"]))
    token = check_token_option(str(values["xapi_dashboard_token"]))
    return Settings(
        dashboard=dashboard,
        dashboard_token=token,
        record=Path(record).expanduser() if record else None,
        record_all=bool(values["xapi_record_all"]),
        actor=actor,  # type: ignore[arg-type]
        participant=participant,
        key_file=Path(key_file).expanduser() if key_file else None,
        user_agent=bool(values["xapi_user_agent"]),
        completion_threshold=threshold,
        xapi_version=version,
        store=Path(store).expanduser() if store else paths.default_store(),
        targets=tuple(targets),
        answer_locally=bool(values["xapi_answer_locally"]),
        extra_hosts=_hosts(values["xapi_hosts"], set(platforms)),  # type: ignore[arg-type]
        max_body_bytes=max_body,
        flush_seconds=flush,
        keep_unreadable=bool(values["xapi_keep_unreadable"]),
        journal_max_bytes=journal_mb * 2**20,
        mappings=mappings,
    )


def _hosts(entries: Sequence[str], platforms: set[str]) -> dict[str, list[str]]:
    hosts: dict[str, list[str]] = {}
    for entry in entries:
        platform, sep, host = entry.partition("=")
        platform, host = platform.strip().lower(), host.strip()
        if not sep or not host or not platform:
            raise ValueError(f"xapi_hosts entry {entry!r} is not PLATFORM=HOST-GLOB")
        if platform not in platforms:
            hint = did_you_mean(platform, platforms)
            known = ", ".join(sorted(platforms))
            raise ValueError(f"xapi_hosts entry {entry!r}: unknown platform{hint}; known: {known}")
        hosts.setdefault(platform, []).append(host)
    return hosts


def misspelled(unknown: Iterable[str]) -> list[str]:
    """Messages for unknown options that look like ours (mitmproxy ignores them silently)."""
    problems = []
    for name in unknown:
        close = difflib.get_close_matches(name, OPTIONS, n=1, cutoff=0.75)
        if name.startswith("xapi") or close:
            hint = f"; did you mean {close[0]}?" if close else ""
            problems.append(f"unknown option {name}{hint}")
    return problems
