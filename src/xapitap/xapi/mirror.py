"""A statement a page sent to an LRS of its own → our copy of it, for our store and LRSs.

Pure, like the other renderers: the same event, privacy and policy give the same copy, byte
for byte. The copy keeps what the page sent, except:
- agents: the actor, and every other agent in the statement (instructor, team and its
  members, an Agent or Group object, a SubStatement's actor and object, 2.0's context agents
  and groups), as the privacy mode says:
  - `pseudonym`: each agent becomes account {homePage: MIRRORED_HOME, name: HMAC(study key,
    its identifier)}; an `mbox` is hashed to its `mbox_sha1sum` first, so a learner named by
    either keeps one pseudonym, wherever the statement was seen. Names go.
  - `participant`: the actor becomes the participant; an agent elsewhere with the actor's
    identifier too; every other agent a pseudonym, as above.
  - `platform`: agents stay as they are, but an `mbox` becomes its `mbox_sha1sum`: e-mail
    addresses never leave the proxy, whatever the mode.
- `authority` and `stored` go: the LRS that stores the copy sets them.
- attachments without `fileUrl` go (their data travelled in a multipart body, not copied).
- timestamps: the same instant in UTC with milliseconds (xAPI counts a timestamp's
  serialisation as no part of a statement); a statement without one gets the time the proxy
  saw it (`estimated: ["timestamp"]`).
- the id is ours, derived from theirs (or, without one, from its content): see `copy_id`.
  A StatementRef (a voiding statement's object, `context.statement`) names our copy of the
  statement it names, so voiding a statement voids our copy of it too.
- e-mail addresses are scrubbed from every text, as from every statement xapitap writes.
- provenance: context.extensions[vocab.SOURCE].
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from xapitap.events import MirroredEvent
from xapitap.ids import MAPPING_VERSION
from xapitap.ids import v4_shaped
from xapitap.privacy import Privacy
from xapitap.privacy import scrub
from xapitap.xapi import vocab as v
from xapitap.xapi.models import canonical_json
from xapitap.xapi.received import Statement
from xapitap.xapi.received import parse_timestamp
from xapitap.xapi.received import reason
from xapitap.xapi.translate import Policy
from xapitap.xapi.translate import Quarantined
from xapitap.xapi.translate import format_timestamp

# The homePage of the pseudonyms of mirrored statements' agents: their identifiers come from
# any system (an LMS's accounts, e-mail addresses), so the pseudonym's system is ours.
MIRRORED_HOME = "https://xapitap.github.io/xapi/mirrored-agents"
PLATFORM = "xapi"  # what the pseudonyms and ids of mirrored statements are keyed under

Json = dict[str, Any]


@dataclass(frozen=True)
class Key:
    id: str


@dataclass(frozen=True)
class Mirrored:
    """Our copy of a mirrored statement, as the store keeps it (xapi/storable.py)."""

    id: str
    timestamp: str
    verb: Key
    object: Key  # an Activity's or StatementRef's id; "" for an agent
    json: str

    def to_json(self) -> str:
        return self.json


def copy_id(their_id: str, privacy: Privacy, policy: Policy) -> str:
    """Our copy's id, from theirs (a statement's id in lower case, or the keyed hash of its
    content where it has none).

    Never theirs: the copy differs from their statement (its provenance, and mostly its
    actor), and an LRS that got both under one id would refuse the second as a conflict,
    which could be theirs. Keyed with the study key (different studies' copies of one
    statement differ, so their ids do too) and the privacy policy; not with the actor, so
    that a StatementRef can be pointed at our copy of the statement it names."""
    keyed = privacy.pseudonymizer.name(PLATFORM, "statement", their_id)
    return v4_shaped("mirrored", MAPPING_VERSION, keyed, policy.privacy)


def mirror(
    event: MirroredEvent, privacy: Privacy, login: str, policy: Policy
) -> Mirrored | Quarantined | None:
    """Our copy; None when it can be attributed to no one (a participant named by the proxy
    login, and the request came without one). `login`: the request's proxy login name."""
    statement: Json = copy.deepcopy(event.statement)
    agents = _Agents(privacy, statement["actor"], login)
    actor = agents.actor(statement["actor"])
    if actor is None:
        return None
    statement["actor"] = actor
    statement.pop("authority", None)
    statement.pop("stored", None)
    refs = _Refs(privacy, policy)
    _object(statement, agents, refs)
    _context(statement.get("context"), agents, refs)
    dropped = _without_unsent_attachments(statement)
    estimated = []
    if "timestamp" in statement:
        statement["timestamp"] = format_timestamp(parse_timestamp(statement["timestamp"]))
    else:
        statement["timestamp"] = format_timestamp(event.timestamp)
        estimated.append("timestamp")
    statement["id"] = copy_id(event.source_event_id, privacy, policy)
    statement = _scrubbed(statement)
    source: Json = {
        "platform": event.platform,
        "rule": event.rule,
        "eventId": event.source_event_id,
        "mapping": MAPPING_VERSION,
        "privacy": policy.privacy,
        "sentTo": event.sent_to,
    }
    if event.seen_on:
        source["seenOn"] = event.seen_on
    if estimated:
        source["estimated"] = estimated
    if dropped:
        source["dropped"] = ["attachments"]
    context = statement.setdefault("context", {})
    context.setdefault("extensions", {})[v.SOURCE] = source
    try:
        Statement.model_validate(statement)
    except ValidationError as error:  # never sent: kept aside with the reason
        return Quarantined(statement, reason(error))
    return Mirrored(
        id=statement["id"],
        timestamp=statement["timestamp"],
        verb=Key(statement["verb"]["id"]),
        object=Key(_object_key(statement["object"])),
        json=canonical_json(statement),
    )


class _Agents:
    """Replaces agents as the privacy mode says (see the module's docstring)."""

    def __init__(self, privacy: Privacy, original_actor: Json, login: str) -> None:
        self._privacy = privacy
        self._actor_ifi = _ifi(original_actor)
        self._participant: Json | None = None
        if privacy.mode == "participant":
            who = privacy.actor(PLATFORM, MIRRORED_HOME, "", "", login)
            if who is not None:
                home, name = who
                self._participant = {
                    "objectType": "Agent",
                    "account": {"homePage": home, "name": name},
                }

    def actor(self, agent: Json) -> Json | None:
        if self._privacy.mode == "participant":
            # Agent or Group: the participant did it, as the participant mode says.
            return None if self._participant is None else copy.deepcopy(self._participant)
        return self.other(agent)

    def other(self, agent: Json) -> Json:
        if self._privacy.mode == "platform":
            return _kept(agent)
        ifi = _ifi(agent)
        if self._participant is not None and ifi is not None and ifi == self._actor_ifi:
            return copy.deepcopy(self._participant)
        out = {"objectType": agent["objectType"]} if "objectType" in agent else {}
        if ifi is not None:
            name = self._privacy.pseudonymizer.name(PLATFORM, *ifi)
            out["account"] = {"homePage": MIRRORED_HOME, "name": name}
        if "member" in agent:
            out["member"] = [self.other(member) for member in agent["member"]]
        return out


def _ifi(agent: Json) -> tuple[str, str] | None:
    """(kind, value) of an agent's identifier, one form per learner: an mbox as the
    mbox_sha1sum it stands for. None for an anonymous Group."""
    if "mbox" in agent:
        return "mbox_sha1sum", _sha1_of(agent["mbox"])
    if "mbox_sha1sum" in agent:
        return "mbox_sha1sum", agent["mbox_sha1sum"].lower()
    if "openid" in agent:
        return "openid", agent["openid"]
    if "account" in agent:
        return "account", f"{agent['account']['homePage']}\x1f{agent['account']['name']}"
    return None


def _sha1_of(mbox: str) -> str:
    """xAPI's mbox_sha1sum: SHA-1 of the mailto IRI, its domain in lower case (the domain of
    an address is case-insensitive; xAPI recommends lower case)."""
    local, _, domain = mbox.removeprefix("mailto:").rpartition("@")
    return hashlib.sha1(f"mailto:{local}@{domain.lower()}".encode()).hexdigest()


def _kept(agent: Json) -> Json:
    """An agent as it is (the platform mode), but no e-mail address."""
    out = dict(agent)
    if "mbox" in out:
        out["mbox_sha1sum"] = _sha1_of(out.pop("mbox"))
    elif "mbox_sha1sum" in out:
        out["mbox_sha1sum"] = out["mbox_sha1sum"].lower()
    if "member" in out:
        out["member"] = [_kept(member) for member in out["member"]]
    return out


class _Refs:
    def __init__(self, privacy: Privacy, policy: Policy) -> None:
        self._privacy = privacy
        self._policy = policy

    def point(self, ref: Json) -> None:
        """A StatementRef: at our copy of the statement it names."""
        ref["id"] = copy_id(ref["id"].lower(), self._privacy, self._policy)


def _object(holder: Json, agents: _Agents, refs: _Refs) -> None:
    """The object of a statement or SubStatement, and what a SubStatement holds."""
    obj = holder["object"]
    kind = obj.get("objectType")
    if kind in ("Agent", "Group"):
        holder["object"] = agents.other(obj)
    elif kind == "StatementRef":
        refs.point(obj)
    elif kind == "SubStatement":
        obj["actor"] = agents.other(obj["actor"])
        _object(obj, agents, refs)
        _context(obj.get("context"), agents, refs)
        if "timestamp" in obj:  # may be in the future (a plan): the same instant, in UTC
            obj["timestamp"] = format_timestamp(parse_timestamp(obj["timestamp"]))


def _context(context: Json | None, agents: _Agents, refs: _Refs) -> None:
    if not context:
        return
    for key in ("instructor", "team"):
        if key in context:
            context[key] = agents.other(context[key])
    for item in context.get("contextAgents", []):
        item["agent"] = agents.other(item["agent"])
    for item in context.get("contextGroups", []):
        item["group"] = agents.other(item["group"])
    if "statement" in context:
        refs.point(context["statement"])


def _without_unsent_attachments(statement: Json) -> bool:
    """Drop the attachments whose data we do not have; whether any were dropped."""
    dropped = False
    holders = [statement]
    if statement["object"].get("objectType") == "SubStatement":
        holders.append(statement["object"])
    for holder in holders:
        items = holder.get("attachments")
        if not items:
            continue
        kept = [item for item in items if "fileUrl" in item]
        if len(kept) < len(items):
            dropped = True
            if kept:
                holder["attachments"] = kept
            else:
                del holder["attachments"]
    return dropped


def _scrubbed(value: Any) -> Any:
    """Every text without e-mail addresses (extension keys are IRIs we keep as they are)."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {key: _scrubbed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrubbed(item) for item in value]
    return value


def _object_key(obj: Json) -> str:
    kind = obj.get("objectType")
    if kind in (None, "Activity", "StatementRef"):
        return str(obj["id"])
    if kind == "SubStatement":
        return _object_key(obj["object"])
    return ""
