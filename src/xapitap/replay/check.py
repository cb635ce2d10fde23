"""`xapitap check-mapping FILE [RECORDING]`: is a mapping file right, and what would it make
of a recording? A dry run: the recording's requests (HAR or mitmproxy flow file, in time
order) are matched as the proxy matches them, the built-in platforms' rules first, and those
the mapping's rules take are translated by the pipeline, in memory, with a throwaway key.
Nothing is stored, nothing is sent."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

from xapitap.decoding import DEFAULT_MAX_BYTES
from xapitap.flows import body_reader
from xapitap.mappings.model import Mapping
from xapitap.mappings.platform import platform_of
from xapitap.mappings.platform import rule_of
from xapitap.pipeline import Outcome
from xapitap.pipeline import Pipeline
from xapitap.pipeline import matcher
from xapitap.privacy import Privacy
from xapitap.pseudonym import Pseudonymizer
from xapitap.replay.sources import Source
from xapitap.replay.sources import Unreadable
from xapitap.replay.sources import in_time_order
from xapitap.xapi import vocab as v


def describe_mapping(mapping: Mapping) -> list[str]:
    """What the mapping says, an endpoint and its event types a line each."""
    site = mapping.site
    types = sum(len(e.events) for e in mapping.endpoints)
    lines = [
        f"{mapping.source}: OK: site {site.name} ({site.display}), "
        f"{len(mapping.endpoints)} endpoints, {types} event types"
    ]
    for endpoint in mapping.endpoints:
        rule = rule_of(mapping, endpoint)
        hosts = ", ".join(endpoint.hosts) or "any host (by body_has)"
        where = "the query string" if endpoint.from_query else _events_at(endpoint.events_path)
        if endpoint.each:
            where = f"each item of {where}"
        methods = "/".join(sorted(endpoint.methods))
        lines.append(f"  {rule.name}: {methods} {hosts} {endpoint.path}; events: {where}")
        for name, spec in endpoint.events.items():
            verb = spec.verb.display if spec.verb else ""
            what = f"kind {spec.kind.value}" if spec.kind else f"verb {verb}"
            lines.append(f"    {name!r} → {what}")
    return lines


def _events_at(keys: tuple[str, ...]) -> str:
    return "$" + "".join(f".{k}" for k in keys)


@dataclass
class DryRun:
    entries: int = 0
    unreadable: list[Unreadable] = field(default_factory=list)
    matched: int = 0  # requests the mapping's rules took
    builtin: Counter[str] = field(default_factory=Counter)  # rules of built-in platforms
    verbs: Counter[str] = field(default_factory=Counter)
    ignored: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    lines: list[str] = field(default_factory=list)
    statements: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> list[str]:
        out = [
            f"{self.entries} requests read, {len(self.unreadable)} unreadable, "
            f"{self.matched} matched the mapping, {len(self.statements)} statements"
        ]
        if self.verbs:
            out.append(
                "  statements: " + ", ".join(f"{n} {verb}" for verb, n in self.verbs.items())
            )
        for rule, n in sorted(self.builtin.items()):
            out.append(f"  {n} taken by the built-in rule {rule} (before the mapping's)")
        for reason, n in sorted(self.ignored.items()):
            out.append(f"  {n} ignored: {reason}")
        for reason, n in sorted(self.errors.items()):
            out.append(f"  {n} not read: {reason}")
        for item in self.unreadable[:20]:
            out.append(f"  unreadable: {item.where}: {item.reason}")
        return out


def dry_run(mapping: Mapping, recordings: list[Path]) -> DryRun:
    platform = platform_of(mapping)
    mine = {rule.name for rule in platform.rules}
    pipeline = Pipeline(
        Privacy("pseudonym", Pseudonymizer(os.urandom(32))), DEFAULT_MAX_BYTES, platforms=[platform]
    )
    rules = matcher(None, [platform])
    run = DryRun()
    for item in in_time_order([Source(p) for p in recordings]):
        run.entries += 1
        if isinstance(item, Unreadable):
            run.unreadable.append(item)
            continue
        body = body_reader(item.body, item.header("content-encoding"), DEFAULT_MAX_BYTES)
        match = rules.match(item.method, item.host, item.path, item.header, body)
        if match is None:
            continue
        if match.rule.name not in mine:
            run.builtin[match.rule.name] += 1
            continue
        run.matched += 1
        when = item.received_at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        run.lines.append(f"{when} {item.method} {item.origin}{item.path}")
        _take(run, pipeline.process(match, item.cut(DEFAULT_MAX_BYTES)))
    run.lines.append("(end of the recording: open sessions end)")
    _take(run, pipeline.finish())
    return run


def _take(run: DryRun, outcome: Outcome) -> None:
    for statement, _ in outcome.statements:
        doc = json.loads(statement.to_json())
        run.statements.append(doc)
        run.verbs[doc["verb"]["display"]["en-US"]] += 1
        run.lines.append("  " + describe_statement(doc))
    for item, _ in outcome.quarantined:
        run.errors[f"statement refused by the xAPI models: {item.reason}"] += 1
        run.lines.append(f"  quarantined: {item.reason}")
    for reason in outcome.ignored:
        run.ignored[reason] += 1
        run.lines.append(f"  ignored: {reason}")
    for reason in outcome.errors:
        run.errors[reason] += 1
        run.lines.append(f"  not read: {reason}")


def describe_statement(s: dict[str, Any]) -> str:
    """One line: when, the verb, the object, and what the result says."""
    verb = s["verb"]["display"]["en-US"]
    parts = [s["timestamp"], f"{verb:<11}", s["object"]["id"]]
    result = s.get("result", {})
    extensions = result.get("extensions", {})
    for name, key in (("time", v.TIME), ("from", v.TIME_FROM), ("to", v.TIME_TO)):
        if key in extensions:
            parts.append(f"{name} {extensions[key]} s")
    if v.PROGRESS in extensions:
        parts.append(f"progress {extensions[v.PROGRESS]}")
    if v.CMI5_PROGRESS in extensions:
        parts.append(f"progress {extensions[v.CMI5_PROGRESS]}%")
    for key in ("completion", "success", "response"):
        if key in result:
            parts.append(f"{key} {json.dumps(result[key], ensure_ascii=False)}")
    if "score" in result:
        parts.append(f"score {result['score'].get('raw')}")
    inferred = s["context"]["extensions"][v.SOURCE].get("inferred")
    return "  ".join(parts) + ("  (inferred)" if inferred else "")


def statement_lines(run: DryRun) -> Iterator[str]:
    for statement in run.statements:
        yield json.dumps(statement, sort_keys=True, ensure_ascii=False)
